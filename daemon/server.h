// nucleusd's event loop: one thread, one io_uring for everything.
//
// Owns the listening socket, the signalfd, one Connection per attached
// process (its socket, pidfd, channel and doorbell) and the Core. The ring
// is the Loop's (loop.h), which hands each completion to the handler
// route_completions() or the object of its kind gave it; the Linux side of
// device entries is the Devices' (devices.h). Who may do what is the
// Policy's (policy.h); nucleusctl's inspection connections and the monitor
// are the Inspector's (inspector.h).
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

#include "attach.h"
#include "channel.h"
#include "config.h"
#include "connections.h"
#include "core.h"
#include "devices.h"
#include "inspector.h"
#include "launcher.h"
#include "log.h"
#include "loop.h"
#include "policy.h"
#include "principal.h"
#include "programs.h"
#include "reactions.h"
#include "requests.h"
#include "service.h"
#include "subtree.h"
#include "swap_phases.h"
#include "swaps.h"

namespace nucleus::daemon {

class Server : private LinuxSide, private Reactions {
 public:
  explicit Server(Config config);
  ~Server() override;
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
    service_.set_config_source(std::move(path), log_level_fixed);
  }

 private:
  // What devices_ asks of the server: senders' channels and owners'
  // principals.
  Devices::Needs devices_needs();
  bool start_loop(std::string *error);
  void log_polling() const;
  void on_signal(int result);
  void arm_signal();

  // The Linux side the decoder
  // (requests.h) asks for: programs_, devices_ and the swaps.
  bool launching(uint32_t child) const override { return programs_.launching(child); }
  int spawn(uint32_t id, const Waiter &waiter) override { return programs_.spawn(id, waiter); }
  void stop_subtree(uint32_t id) override { programs_.stop_subtree(id); }
  void resume_subtree(uint32_t id) override { programs_.resume_subtree(id); }
  void end_subtree(uint32_t id) override { programs_.end_subtree(id); }
  int open_device(uint32_t caller, uint32_t device, const DeviceConfig &spec) override {
    return devices_.open_device(caller, device, spec);
  }
  // What the objects tell each other (reactions.h).
  void answer(const Waiter &waiter, int result) override;
  void detached(uint32_t id, uint32_t generation, bool old_os, uint32_t taken_over) override;
  void program_ended(uint32_t id) override;
  void removed(uint32_t id) override;
  void bound(uint32_t id, sys::UniqueFd socket, pid_t pid, int pidfd) override {
    attach_.attach_bound(id, std::move(socket), pid, pidfd);
  }
  void candidate_attached(uint32_t cand, sys::UniqueFd socket) override {
    swaps_.attached(cand, std::move(socket));
  }
  void tell_swap(uint32_t os, SwapEvent event, uint64_t detail) override {
    swaps_.event(os, event, detail);
  }
  int64_t swap_deadline() const override { return swaps_.next_deadline(); }
  int begin_swap(uint32_t requester, uint32_t child, const wire::Request &request,
                 const std::string &staged) override {
    return swaps_.begin(requester, child, request, staged);
  }
  int swap_ready(uint32_t cand, uint32_t seq) override { return swaps_.ready(cand, seq); }
  uint64_t data_bytes_of(uint32_t id) const { return requests_.data_bytes_of(id); }

  void flush_dirty();
  void shutdown();

  Config config_;
  Core core_;
  Policy policy_;
  Requests requests_;
  // Before the objects that route their kinds on it; closed first by
  // ~Server, since their memory is what its SQEs in flight name.
  Loop loop_;
  Connections connections_;  // the attached processes' channels
  bool stopping_ = false;
  sys::UniqueFd signal_fd_;
  uint8_t signal_buffer_[128] = {};
  std::string runtime_dir_;
  Devices devices_;    // the Linux side of device entries
  Programs programs_;  // the Linux side of the programs nucleusd starts
  int64_t started_ns_ = 0;
  PrincipalCache principals_;  // owners' groups, read once (cleared on reload)
  Attach attach_;              // the listening socket and the attach handshake
  Swaps swaps_;
  Service service_;  // boot, watchdog, status, reload                // swaps in progress
  // Last: its View refers to the members above, and it routes its kind on
  // loop_.
  Inspector inspector_;
};

}  // namespace nucleus::daemon
