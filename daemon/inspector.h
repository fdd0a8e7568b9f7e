// nucleusctl's inspection connections (docs/nucleusctl.md): read-only
// inspection (status, processes, devices) and the monitor stream, as JSON
// over nucleusd's socket. What changes the system goes through an attached
// channel (kActFor), never through here.
//
// An inspection connection's first packet is a JSON object (an attach
// request is a binary record starting with kMagic): the attach side reads
// it and hands the connection over with begin(). Every packet is untrusted:
// it is parsed from a copy, bounded, and answered with an error object when
// it makes no sense; a client that does not read its replies is closed.
//
// The work of a request is bounded by its cost, not its packet (DESIGN.md):
// a connection has at most one request in hand, whose reply
// (InspectionReply) is built in slices; its next packet is read only once
// that reply is sent, so a client that sends faster waits in its own
// socket. A readable connection joins the SliceQueue; each loop turn
// (serve_turn) spends at most limits.per_turn.control_bytes of work on the
// queue, a slice a uid a round, so that the loop serves channels, attaches
// and other uids between slices. A reply in progress is at most one page
// (limits.per_connection.control_reply_bytes plus one entry) and the
// entry it is writing.
//
// Owns: the inspection connections (slots, sockets, who they are, which
// monitor, the reply in progress), the queue of those with work, the
// route of Kind::kInspect, the user names read for replies, and the
// rate-limited log of refused connections. Asks of others: the Loop for
// its polls; the Policy who is an operator and who may attach; the Config;
// the Core's state to read, and of the Core's state it changes only the
// tracing (on while a monitor watches; publish_trace takes its events each
// turn); the rest of nucleusd that the replies read, through the View.
//
// Threading: nucleusd's loop thread only.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nucleus_internal/sys.h>

#include "config.h"
#include "connections.h"
#include "core.h"
#include "devices.h"
#include "inspection_reply.h"
#include "log.h"
#include "loop.h"
#include "policy.h"
#include "programs.h"
#include "slice_queue.h"

namespace nucleus::daemon {

class Inspector {
 public:
  // What the replies read of the rest of nucleusd, read-only: references to
  // what lives as long as the Inspector.
  struct View {
    const std::string &socket_path;
    const bool &socket_activated;    // the listening socket came from LISTEN_FDS
    const int64_t &started_ns;       // when nucleusd started (monotonic)
    const Connections &connections;  // doorbells, polling, who is attached
    const Programs &programs;        // cgroup or signal mode
    const Devices &devices;          // their geometry
  };

  // Routes Kind::kInspect to this.
  Inspector(Loop &loop, Core &core, const Config &config, const Policy &policy, View view);
  Inspector(const Inspector &) = delete;
  Inspector &operator=(const Inspector &) = delete;

  // A connection whose first packet, `first`, is not an attach request:
  // served from now on, or answered with an error object and closed.
  void begin(sys::UniqueFd socket, std::string_view first, const ucred &cred);
  // Some connection has a request to serve: the loop must not sleep.
  bool busy() const { return !queue_.empty(); }
  // This loop turn's share of inspection work: slices of the replies in
  // progress, and the next requests of connections whose reply is sent.
  void serve_turn();
  // Sends the message events of this loop turn to the monitors.
  void publish_trace();
  // The configuration was reloaded: who is an operator may have changed
  // (each connection's operator flag is read again and a monitor that no
  // longer may watch is closed), and the user database with it (the user
  // names read are forgotten).
  void operators_changed();
  // At exit: every connection's socket is closed.
  void close_all();

 private:
  // What a page lists.
  enum class Listing : uint8_t { kProcesses, kDevices };

  struct Inspection {
    bool live = false;
    uint32_t generation = 0;
    sys::UniqueFd socket;
    uint32_t uid = 0;
    uint32_t gid = 0;
    pid_t pid = 0;
    bool op = false;                        // an operator
    bool monitor = false;                   // gets the message events
    uint64_t dropped = 0;                   // monitor packets it did not take
    bool queued = false;                    // in queue_ (no poll armed meanwhile)
    std::optional<InspectionReply> reply;   // the reply in progress
    Listing listing = Listing::kProcesses;  // what reply lists, when a page
    uint64_t turn = 0;                      // the turn `requests` counts in
    uint32_t requests = 0;                  // requests read in that turn
  };
  class ProcessesSource;
  class DevicesSource;

  void arm(uint32_t index);
  void enqueue(uint32_t index);
  void on_readable(uint32_t index, int result);
  void close_connection(uint32_t index);
  // Serves one slice of `budget` units on connection `index`: reads its
  // next request when it has none in hand, builds on the reply, sends it
  // once complete. Whether it has more to do (it stays queued).
  SliceQueue::Served serve_slice(uint32_t index, uint64_t budget);
  // Takes the request `text` in hand (never throws): a reply whole at once,
  // or a page to build. Returns the work it took.
  uint64_t begin_reply(uint32_t index, std::string_view text);
  void send_reply(uint32_t index, const std::string &text);
  nlohmann::json status_json(const Inspection &c) const;
  // A page request's "from" and "limit"; an error reply when they make no
  // sense.
  std::optional<nlohmann::json> page_bounds(const nlohmann::json &request, uint64_t *from,
                                            uint64_t *limit) const;
  // Entry `id` without its program; *cost grows by what it walked.
  nlohmann::json process_json(uint32_t id, uint64_t *cost);
  bool visible_to(const Inspection &c, uint32_t id, uint64_t *cost) const;
  const std::string &user_name(uint32_t uid);

  Loop &loop_;
  Core &core_;
  const Config &config_;
  const Policy &policy_;
  const View view_;
  std::vector<Inspection> inspections_;
  std::vector<uint32_t> free_inspections_;
  SliceQueue queue_;  // connections with a request to serve
  // The memory of replies sent, for the next pages: a large reply written
  // into fresh memory spends more time in page faults than in writing.
  // At most kSpareTexts, each at most a page and an entry.
  std::vector<std::string> spare_texts_;
  std::vector<char> packet_;  // a request as read, one at a time
  uint64_t turn_ = 0;         // serve_turn calls, for Inspection::requests
  // The user database's names, read once per uid (getpwuid_r reads a file
  // each time) and forgotten on reload.
  std::unordered_map<uint32_t, std::string> user_names_;
  log::RateLimited refused_log_;
};

}  // namespace nucleus::daemon
