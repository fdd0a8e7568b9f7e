// The attached processes' side of nucleusd: one Connection per attached
// process (its socket, pidfd, channel and doorbell), serving the requests
// it writes (through the decoder, requests.h) and publishing its replies
// and events, and the polling of active channels.
//
// Doorbell states (per connection):
//   armed:  the channel says daemon_armed=1 and a FUTEX_WAIT (or eventfd
//           read) is outstanding; the process rings when it adds requests.
//   active: on active_, served every loop turn; daemon_armed=0, so the
//           process adds requests without a system call.
// An active channel that has had no request for the polling window
// (poll_window.h) is armed again; under traffic the loop polls instead of
// sleeping, so neither side pays for a wake-up.
//
// A connection whose process asked for a descriptor to poll (kPollDescriptor)
// has a PollDescriptor: flush() rings it after publishing when the process
// says it waits on it; for every other connection that costs one branch.
//
// Owns: the connections (indexed by process id; a serial per connection
// that its SQEs carry; each one's PollDescriptor), the active list, the
// PollWindow and the Loop's kSocket, kPidfd and kDoorbell routes.
// Tells others through Reactions: a connection that ended (detached).
//
// Threading: nucleusd's loop thread only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include <nucleus_internal/sys.h>

#include "channel.h"
#include "config.h"
#include "core.h"
#include "log.h"
#include "loop.h"
#include "poll_descriptor.h"
#include "poll_window.h"
#include "reactions.h"
#include "requests.h"

namespace nucleus::daemon {

class Connections {
 public:
  // Registers the kSocket, kPidfd and kDoorbell routes on `loop`.
  Connections(const Config &config, Core &core, Loop &loop, Requests &requests,
              Reactions &reactions);
  Connections(const Connections &) = delete;
  Connections &operator=(const Connections &) = delete;

  // Picks the doorbells the configuration asks for (futex words in the
  // channel when this kernel's io_uring has FUTEX_WAIT, else an eventfd
  // each) and says how it will poll. False with a message when futex
  // doorbells are demanded and not available.
  bool setup(bool have_futex_wait, std::string *error);
  bool futex_doorbells() const { return futex_doorbell_; }
  PollWindow &poll() { return poll_; }
  const PollWindow &poll() const { return poll_; }

  // Creates the channel of an entry now attached, and its connection
  // (not yet served). 0 or -errno; takes `pidfd`.
  int open(uint32_t id, int pidfd, pid_t pid);
  // After an accepted attach: the connection is served (false: the reply
  // could not be sent and it was detached).
  bool serve(uint32_t id, sys::UniqueFd socket, bool reply_sent);
  bool live(uint32_t id) const { return id < connections_.size() && connections_[id].live; }
  size_t count() const;
  // The peer's pid of an attached process (0: not attached).
  pid_t pid(uint32_t id) const { return live(id) ? connections_[id].pid : 0; }
  size_t active_count() const { return active_.size(); }
  // Its channel while attached (null otherwise), with the entry's generation.
  std::shared_ptr<Channel> channel(uint32_t id, uint32_t generation) const;
  Channel *channel(uint32_t id) { return live(id) ? connections_[id].channel.get() : nullptr; }
  // Its eventfd doorbell (-1: none, futex mode or not attached).
  int doorbell_fd(uint32_t id) const {
    return live(id) && connections_[id].doorbell_fd ? connections_[id].doorbell_fd.get() : -1;
  }

  // kPollDescriptor: makes the connection's descriptor to poll and sends
  // its read end on the connection's socket. 0 or -errno: -EEXIST it has
  // one (it lasts as long as the connection), -ENOTCONN not attached, an
  // errno of pipe2 or sendmsg (-EAGAIN: the process does not read its
  // socket).
  int open_poll_descriptor(uint32_t id);
  // kPollRing: a byte in its descriptor now (nothing when it has none).
  void ring_poll_descriptor(uint32_t id);
  bool has_poll_descriptor(uint32_t id) const {
    return live(id) && connections_[id].descriptor.open();
  }

  // A reply or event for `id`, if attached; queued beyond its bound (the
  // caller bounds what it adds). One without a principal is the nucleus's
  // (from_nucleus).
  void push(uint32_t id, const wire::Event &event);
  // A start's answer to the connection that asked, if it is still there:
  // the result, and with a -errno the wire::StartStep that failed.
  // A start answered later: result, the step that failed and its path.
  void answer(const Waiter &waiter, int result, uint64_t step, std::string_view path = {});
  // Publishes its queued replies and events to its event ring.
  void flush(uint32_t id);
  // Writes the slot tables of the processes whose claims changed.
  void sync_slots();
  void activate(uint32_t id);
  // Its program ended: what it wrote before still counts, then it ends.
  void end(uint32_t id, const char *reason);
  // Ends the connection and the entry's attachment; `violation`: it broke
  // the channel protocol (the channel says so).
  void detach(uint32_t id, const char *reason, bool violation);
  // Ends a connection without the death of its entry (a swap's old program,
  // or its new one when the swap fails); nothing when `id` has none.
  void retire(uint32_t id);
  // A swap's takeover: the new program's connection becomes the entry's
  // (a new serial; its old SQEs are cancelled). Then resume() serves it.
  void move(uint32_t from, uint32_t to);
  void resume(uint32_t id);

  // One loop turn: serves the active channels (at most
  // limits.per_connection.requests_per_turn each). True when one had work.
  bool serve_active(int64_t now);
  bool any_active() const { return !active_.empty(); }
  // After the turn: channels with a request within the polling window stay
  // active; the others are armed. `worked`: the turn found something.
  void poll_or_arm(int64_t turn_start, int64_t now, bool worked);
  // At exit: every channel says nucleusd shut down.
  void shutdown();

 private:
  // `event` stamped as the nucleus's, unless it carries a principal already.
  wire::Event from_nucleus(wire::Event event) const;
  struct Connection {
    bool live = false;
    uint32_t generation = 0;  // the entry's
    uint32_t serial = 0;      // this connection's: its SQEs carry it (a swap moves connections)
    sys::UniqueFd socket;
    sys::UniqueFd pidfd;
    sys::UniqueFd doorbell_fd;         // eventfd mode only
    std::shared_ptr<Channel> channel;  // device operations in flight hold it too
    pid_t pid = 0;
    bool armed = false;                // a doorbell wait is outstanding
    bool active = false;               // on active_
    int64_t last_request_ns = 0;       // when service() last found requests
    int64_t last_event_ns = 0;         // when flush() last gave it events
    bool awaiting_turnaround = false;  // given events since its last request
    uint64_t eventfd_value = 0;
    // Replies waiting for ring space: service() takes a request only while
    // its replies fit in limits.per_connection.replies; a swap's inherit
    // events, which nucleusd must deliver, are queued beyond it.
    std::deque<wire::Event> replies;
    Session session;  // staged program bytes, whom it acts for
    // Its descriptor to poll, once asked for; closed with the connection.
    PollDescriptor descriptor;
  };

  void arm_socket(uint32_t id);
  void arm_pidfd(uint32_t id);
  // Arms the doorbell of an active connection, or keeps it active when the
  // process added requests meanwhile.
  void arm_doorbell(uint32_t id);
  void on_completion(Kind kind, const Completion &done);
  void on_socket(uint32_t id, int result);
  // Serves the requests in a channel, at most limits.per_connection.
  // requests_per_turn and only while its queued replies leave room for one
  // more request's (replies_full); `final`: the process is gone, take all
  // it wrote. Returns how many it took.
  int64_t service(uint32_t id, bool final = false);
  bool replies_full(const Connection &c) const;
  // Replies or events wait for room in its event ring.
  bool has_output(uint32_t id) const;
  void protocol_error(uint32_t id, const wire::Request &request, Error error);
  // A receive window's copy of the message about to be published.
  void fill_window(uint32_t id, Connection &c, wire::Event *event);
  void cancel_sqes(uint32_t id);

  const Config &config_;
  Core &core_;
  Loop &loop_;
  Requests &requests_;
  Reactions &reactions_;
  bool futex_doorbell_ = false;
  PollWindow poll_;
  // Longer than a sched_yield that found nobody else to run (about 1 µs
  // here): the rest of a longer one was another task's CPU.
  static constexpr int64_t kBareYieldNs = 3000;
  int64_t now_ns_ = 0;                   // the loop turn's time
  std::vector<Connection> connections_;  // indexed by process id
  std::vector<uint32_t> active_;
  std::vector<uint32_t> scratch_;
  uint32_t serial_ = 0;
  log::RateLimited replies_log_;
};

}  // namespace nucleus::daemon
