// nucleusd's event loop: one thread, one io_uring for everything.
//
// Owns the listening socket, the signalfd, one Connection per attached
// process (its socket, pidfd, channel and doorbell) and the Core. The ring
// is the Loop's (loop.h), which hands each completion to the handler
// route_completions() gave its kind. Who may do what is the Policy's
// (policy.h); nucleusctl's inspection connections and the monitor are the
// Inspector's (inspector.h), which routes its own kind.
//
// Connection doorbell states (per attached process):
//   armed:  channel says daemon_armed=1 and a FUTEX_WAIT (or eventfd read)
//           is outstanding; the process rings when it adds requests.
//   active: on active_, serviced every loop turn; daemon_armed=0, so the
//           process adds requests without a system call.
// An active channel that has had no request for the polling window
// (poll_window.h) is armed again; under traffic the loop polls instead of
// sleeping, so neither side pays for a wake-up.
//
// Threading: everything here runs on the one thread that calls run().
// Programs start on the Launcher's threads (launcher.h), which see none
// of it: a job carries copies, and comes back through an eventfd.
#pragma once

#include <liburing.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nucleus_internal/sys.h>

#include "channel.h"
#include "config.h"
#include "core.h"
#include "device_request.h"
#include "inspector.h"
#include "launcher.h"
#include "log.h"
#include "loop.h"
#include "policy.h"
#include "principal.h"
#include "subtree.h"
#include "swap_phases.h"

namespace nucleus::daemon {

class Server {
 public:
  explicit Server(Config config);
  ~Server();
  Server(const Server &) = delete;
  Server &operator=(const Server &) = delete;

  // Creates the runtime directory and socket, probes the kernel, and sets up
  // the ring. Returns false with a message on failure.
  bool start(const std::string &runtime_dir, std::string *error);
  // Serves until SIGTERM or SIGINT; returns the exit code.
  int run();
  // Where SIGHUP reloads the configuration from ("": the built-in default);
  // `log_level_fixed`: --log-level was given and wins over the file's.
  void set_config_source(std::string path, bool log_level_fixed) {
    config_path_ = std::move(path);
    log_level_fixed_ = log_level_fixed;
  }

 private:
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
    std::string staged;  // program bytes for the next create / modify
    bool staged_overflow = false;
    // Whose children its process control acts on (kActFor): kActSelf, kNone
    // (the root) or a process (with its generation).
    uint32_t acting = kActSelf;
    uint32_t acting_generation = 0;
  };
  static constexpr uint32_t kActSelf = kNone - 2;

  // The Linux side of a process entry nucleusd started (server_control.cc).
  struct Run {
    uint32_t generation = 0;  // the entry's
    pid_t pid = 0;            // its program now (0: none)
    sys::UniqueFd pidfd;
    sys::UniqueFd bound;     // our end of its NUCLEUS_FD until it attaches
    std::string group;       // cgroup path under the root (cgroup mode)
    bool launching = false;  // its launch is on the launcher's thread
  };

  struct Watch {  // a stop waiting for the subtree to be really stopped
    uint32_t id;
    uint32_t generation;
    int64_t deadline_ns;  // then it fails (limits.stop_timeout_ms)
  };

  // A device's file, shared with the operations in flight on it so that its
  // descriptor outlives every SQE that names it.
  using DeviceFile = std::shared_ptr<sys::UniqueFd>;

  // The Linux side of a device entry (server_devices.cc).
  struct DeviceState {
    bool live = false;
    uint32_t generation = 0;  // the entry's
    wire::DeviceKind kind{};
    DeviceFile out;  // disk: the backing file; console: output
    DeviceFile in;   // console: input (none: reads answer end of input)
    DeviceGeometry geometry;
    // console: one write at a time, in arrival order; reads wait for lines.
    std::deque<uint32_t> writes;
    uint32_t writer = kNone;  // the write in flight
    std::deque<uint32_t> readers;
    std::string input;  // read from the input, not yet given to a reader
    bool input_end = false;
    int input_error = 0;
    bool filling = false;  // a read of the input is in flight
  };

  // One message a device is serving, or the console's read of its input.
  struct DeviceOp {
    bool live = false;
    uint32_t generation = 0;
    uint32_t device = 0;
    uint32_t device_generation = 0;
    uint64_t handle = 0;  // the buffer the device received (0: an input fill)
    uint32_t sender = kNone;
    uint32_t sender_generation = 0;
    DeviceRequest request;
    std::shared_ptr<Channel> channel;  // the sender's data area stays mapped while in flight
    DeviceFile file;
    __kernel_timespec timeout{};
    bool submitted = false;  // an SQE names it
    uint64_t done = 0;       // console write: bytes written so far
    std::vector<char> fill;  // console input fill
  };

  // A swap in progress (server_swap.cc, docs/hot-swap.md); its phases are
  // the table in swap_phases.h.
  struct Swap {
    uint32_t id = kNone;  // the OS
    uint32_t generation = 0;
    uint32_t cand = kNone;  // the hidden entry of the new program
    uint32_t cand_generation = 0;
    SwapPhase phase = SwapPhase::kStarting;
    int64_t began_ns = 0;
    int64_t deadline_ns = 0;
    int64_t handed_ns = 0;  // when the old OS answered the handover
    pid_t old_pid = 0;
    uint64_t state_bytes = 0;
    uint32_t ready_seq = 0;  // its kSwapReady (phase committing)
  };

  struct Pending {
    bool live = false;
    uint32_t generation = 0;
    sys::UniqueFd socket;
    ucred cred{};     // SO_PEERCRED, read at accept
    bool op = false;  // an operator's: not counted in pending_by_uid_
  };

  bool listen_socket(const std::string &runtime_dir, std::string *error);
  bool start_loop(std::string *error);
  void log_polling() const;
  // The completions of each kind, to their handlers.
  void route_completions();
  void on_signal(int result);
  // A completion for an attached process's socket, pidfd or doorbell.
  void on_connection(Kind kind, const Completion &done);
  void arm_accept();
  void arm_signal();
  void arm_socket(uint32_t id);
  void arm_pidfd(uint32_t id);
  // Arms the doorbell of an active connection, or keeps it active when the
  // process added requests meanwhile.
  void arm_doorbell(uint32_t id);

  void on_accept(int result);
  // A failed accept is tried again after a back-off, not at once: a kAccept
  // timeout with this index.
  static constexpr uint32_t kAcceptRetry = 1;
  void arm_accept_retry();
  // Frees a pending slot and its place in its uid's count.
  void release_pending(uint32_t index);
  void on_handshake(uint32_t index);
  int attach(int socket_fd, const wire::AttachRequest &request, const ucred &cred,
             std::string *name, uint32_t *id_out);
  void on_socket(uint32_t id, int result);
  // Creates the channel of an entry now attached and its Connection.
  int open_channel(uint32_t id, int pidfd, pid_t pid);
  bool send_attach_reply(int socket_fd, wire::AttachReply *reply, uint32_t id);
  // After an accepted attach: the connection is served (false: the reply
  // could not be sent and it was detached).
  bool begin_serving(uint32_t id, sys::UniqueFd socket, bool reply_sent);

  // The service manager (server_service.cc): socket activation, watchdog,
  // status, reload.
  bool take_listen_fd(std::string *error);
  // Creates and starts the configuration's boot section as the root's
  // children; on failure ends what it started and says which entry.
  bool boot(std::string *error);
  void arm_watchdog();
  void on_watchdog();
  void notify_status();
  void reload();

  // Process control (server_control.cc).
  void control(uint32_t id, const wire::Request &request);
  int control_op(uint32_t id, const wire::Request &request, wire::Event *reply);
  // A control request's reply with only a result (-errno).
  void reply_failed(uint32_t id, uint32_t seq, int rc);
  void list_children(uint32_t id, uint32_t caller, const wire::Request &request);
  // Whose children `id`'s process control acts on: itself, the root (kNone)
  // or another (kNoChild when that one is gone).
  Result<uint32_t> authority(uint32_t id) const;
  std::string acting_note(uint32_t id) const;
  int act_for(uint32_t id, int64_t how, std::string_view name);
  // Who waits for a start's answer: a connection's request, or nobody.
  struct Waiter {
    uint32_t id = kNone;
    uint32_t serial = 0;
    uint32_t seq = 0;
  };
  // A control op's result that is not an answer yet: the start is
  // answered when its launch comes back (on_launched).
  static constexpr int kAnswerLater = 1;
  int start_child(uint32_t caller, uint32_t child, const Waiter &waiter);
  // Starts the entry's program: on the launcher's thread (kAnswerLater), or
  // at once before nucleusd serves (the boot section).
  int spawn(uint32_t id, const Waiter &waiter);
  void arm_launcher();
  void on_launched();
  // Takes a finished launch into the tables; its answer (0 or -errno).
  int launched(LaunchJob &job);
  // A program nucleusd started has ended with this wait status.
  void program_ended(uint32_t id, pid_t pid, int status);
  void arm_bound(uint32_t id);
  void on_bound(uint32_t id);
  // Reaps the programs that ended, then looks at stops and cgroups.
  void reap_children();
  void stop_subtree(uint32_t id);
  void resume_subtree(uint32_t id);
  void end_subtree(uint32_t id);
  // At exit: SIGKILL to every program (its pidfd) and its group, then reaps
  // them with a deadline, so that no program can make nucleusd hang.
  void end_programs();
  // *running: a program that has not stopped (signal mode), else 0.
  bool subtree_stopped(uint32_t id, pid_t *running);
  std::vector<pid_t> subtree_groups(uint32_t id, bool only_free);
  void check_progress();
  // A stop past its deadline: answered MALFUNCTION (ETIMEDOUT, the pid that
  // did not stop), logged, and what it stopped resumed.
  void fail_stop(uint32_t id, pid_t running);
  // The progress timer fired: reap, look again, and back off.
  void on_progress_tick();
  // Removes the dead groups that are empty (on a launcher thread once
  // nucleusd serves); the others stay for the next tick.
  void remove_dead_groups();
  void arm_timer();
  Run &run_of(uint32_t id);
  // The size of its data area: its claim, else the configured default.
  uint64_t data_bytes_of(uint32_t id) const {
    uint64_t given = core_.processes().at(id).account.given().data_bytes;
    return given != 0 ? given : config_.data_bytes;
  }
  std::string group_of(uint32_t id);

  // Hot swap (server_swap.cc).
  int begin_swap(uint32_t requester, uint32_t child, const wire::Request &request,
                 const std::string &staged);
  // The new program attached through its bound connection: serve it (it
  // bears no name yet) and ask the old OS for its state.
  void swap_attached(uint32_t cand, sys::UniqueFd socket);
  // kSwapReady from `cand`: 0, or -errno when it is not a swap's new program
  // that has its state.
  int swap_ready(uint32_t cand, uint32_t seq);
  // Handovers answered, ready programs to commit, deadlines passed.
  void advance_swaps();
  // Does what the phase table says of `event` for the swap of `id` (none:
  // nothing) and returns it.
  SwapAction swap_event(uint32_t id, SwapEvent event, uint64_t detail = 0);
  void commit_swap(Swap &s);
  // Ends the swap without changing the OS; the request is answered.
  void swap_failed(uint32_t id, uint64_t outcome, uint64_t detail);
  Swap *swap_of(uint32_t id);
  // Ends a connection without the death of its entry (a swap's old program).
  void retire_connection(uint32_t id);
  void cancel_connection_sqes(uint32_t id);

  // Devices (server_devices.cc).
  bool create_configured_devices(std::string *error);
  int create_external(uint32_t caller, std::string_view name, const wire::Request &request,
                      const std::string &staged);
  // Opens a device's files with the rights of `who` (open_as); `std_streams`
  // lets "stdin", "stdout" and "stderr" name nucleusd's own (configuration
  // only).
  static int open_device(const DeviceConfig &spec, const Principal &who, bool std_streams,
                         DeviceState *out);
  void install_device(uint32_t id, DeviceState state);
  void serve_device(uint32_t id);
  uint32_t new_device_op(uint32_t device, const DeviceMessage &m, const DeviceRequest &r);
  void submit_device_op(uint32_t index);
  void on_device_op(uint32_t index, int result);
  void finish_device_op(uint32_t index, int32_t result, const wire::Message &answer);
  void next_console_write(uint32_t device);
  void serve_console_readers(uint32_t device);
  void cancel_device_op(uint32_t index);
  // Ends what devices were doing for a process that detached.
  void cancel_device_ops_of(uint32_t sender, uint32_t generation);
  // Cancels the operations of devices that left the table.
  void drop_removed_devices();
  DeviceState *device_state(uint32_t id, uint32_t generation);

  void activate(uint32_t id);
  // Serves the requests in a channel, at most limits.per_connection.
  // requests_per_turn and only while its queued replies leave room for one
  // more request's (replies_full); `final`: the process is gone, take all
  // it wrote. Returns how many it took.
  int64_t service(uint32_t id, bool final = false);
  bool replies_full(const Connection &c) const;
  // Replies or events wait for room in its event ring.
  bool has_output(uint32_t id) const;
  void flush(uint32_t id);
  void flush_dirty();
  // Writes the slot tables of the processes whose claims changed.
  void sync_slots();
  void protocol_error(uint32_t id, const wire::Request &request, Error error);
  void detach(uint32_t id, const char *reason, bool violation);
  void shutdown();

  Config config_;
  Core core_;
  Policy policy_;
  Loop loop_;
  bool futex_doorbell_ = false;
  PollWindow poll_;
  // Longer than a sched_yield that found nobody else to run (about 1 µs
  // here): the rest of a longer one was another task's CPU.
  static constexpr int64_t kBareYieldNs = 3000;
  int64_t now_ns_ = 0;              // the loop turn's time
  bool start_mode_logged_ = false;  // how programs join their cgroup, said once
  bool stopping_ = false;
  std::string socket_path_;
  sys::UniqueFd listen_fd_;
  sys::UniqueFd signal_fd_;
  uint8_t signal_buffer_[128] = {};
  __kernel_timespec attach_timeout_{};   // linked to every handshake poll
  std::vector<Connection> connections_;  // indexed by process id
  std::vector<Pending> pending_;
  std::vector<uint32_t> free_pending_;
  std::vector<uint32_t> active_;
  std::vector<uint32_t> scratch_;
  std::string runtime_dir_;
  Subtree subtree_;
  std::vector<Run> runs_;                       // indexed by process id
  std::unordered_map<pid_t, uint32_t> by_pid_;  // programs running, to their entries
  Launcher launcher_;
  uint64_t launcher_count_ = 0;  // the done eventfd's value, read by the ring
  // Reaped while launches were in flight and not (yet) known: a program
  // that ended before the loop took its launch.
  std::unordered_map<pid_t, int> early_exits_;
  static constexpr size_t kMaxEarlyExits = 4096;
  std::vector<Watch> stops_;
  std::vector<std::string> dead_groups_;             // cgroups to remove once empty
  std::unordered_set<std::string> removing_groups_;  // of those, on a launcher thread now
  bool timer_armed_ = false;
  __kernel_timespec tick_{};
  // The timer's back-off while something is pending: 1 ms after a new stop
  // or removal, doubling to 100 ms (SIGCHLD reports most stops sooner).
  int64_t tick_ns_ = 0;
  int64_t timer_due_ns_ = 0;          // when the armed timer fires
  __kernel_timespec timer_update_{};  // a timeout update's (read at submit)
  log::RateLimited stop_timeouts_;
  std::vector<DeviceState> device_states_;  // indexed by process id
  std::vector<std::unique_ptr<DeviceOp>> device_ops_;
  std::vector<std::unique_ptr<Swap>> swaps_;
  uint32_t connection_serial_ = 0;
  int64_t started_ns_ = 0;
  bool socket_activated_ = false;  // the listening socket came from LISTEN_FDS
  std::string config_path_;
  bool log_level_fixed_ = false;
  __kernel_timespec watchdog_interval_{};
  bool watchdog_ = false;
  std::string last_status_;
  std::vector<uint32_t> free_device_ops_;
  PrincipalCache principals_;  // owners' groups, read once (cleared on reload)
  // Bounds (config_.limits): pending attaches per uid (operators are not
  // counted), the accept back-off, and one rate-limited log line per kind.
  std::unordered_map<uint32_t, uint32_t> pending_by_uid_;
  uint64_t accept_backoff_ms_ = 0;  // 0: the last accept worked
  __kernel_timespec accept_retry_{};
  log::RateLimited accept_log_;
  log::RateLimited refused_log_;
  log::RateLimited pending_log_;
  log::RateLimited replies_log_;
  // Last: its View refers to the members above, and it routes its kind on
  // loop_.
  Inspector inspector_;
};

}  // namespace nucleus::daemon
