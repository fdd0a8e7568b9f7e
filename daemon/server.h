// nucleusd: the objects that own its state, wired together, and the loop
// turn (docs/architecture.md, "Objects").
//
// Owns: the Config, the Core, the Loop (the ring) and the objects built on
// them (Policy, Requests, Connections, Devices, Programs, Attach, Swaps,
// Service, Inspector), the owners' principals, and the signalfd. It gives
// each object references to the others it needs, forwards the Linux side
// the decoder asks for (LinuxSide, requests.h) to Programs, Devices and
// Swaps, and routes what the objects tell each other (Reactions,
// reactions.h). A turn: the Loop hands completions to their objects;
// Connections serves the active channels; the events the Core queued are
// published; swaps advance; the Inspector builds its turn's slices of
// replies; the monitors get the trace; channels stay polled or are armed.
//
// Construction: members are built in the order declared; an object may
// keep a reference to one declared after it (Attach to the Inspector,
// Programs to the principals) but uses it only once serving.
//
// Threading: everything here runs on the one thread that calls run().
// Programs start on the Launcher's threads (launcher.h), which see none
// of it: a job carries copies, and comes back through an eventfd.
#pragma once

#include <liburing.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nucleus_internal/sys.h>

#include "attach.h"
#include "config.h"
#include "connections.h"
#include "core.h"
#include "devices.h"
#include "inspector.h"
#include "log.h"
#include "loop.h"
#include "policy.h"
#include "principal.h"
#include "programs.h"
#include "reactions.h"
#include "requests.h"
#include "service.h"
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
  bool start_loop(std::string *error);
  void on_signal(int result);
  void arm_signal();

  // The Linux side the decoder
  // (requests.h) asks for: programs_, devices_ and the swaps.
  bool launching(uint32_t child) const override { return programs_.launching(child); }
  int spawn(uint32_t id, const Waiter &waiter, uint64_t *step) override {
    return programs_.spawn(id, waiter, step);
  }
  void stop_subtree(uint32_t id) override { programs_.stop_subtree(id); }
  void resume_subtree(uint32_t id) override { programs_.resume_subtree(id); }
  void end_subtree(uint32_t id) override { programs_.end_subtree(id); }
  int open_device(uint32_t caller, uint32_t device, const DeviceConfig &spec) override {
    return devices_.open_device(caller, device, spec);
  }
  std::span<uint8_t> data_area(uint32_t id) override {
    Channel *ch = connections_.channel(id);
    if (ch == nullptr) return {};
    return {ch->data(), ch->data_bytes()};
  }
  // What the objects tell each other (reactions.h).
  void answer(const Waiter &waiter, int result, uint64_t step) override;
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
  void begin_swap(uint32_t requester, uint32_t child, uint32_t cand) override {
    swaps_.begin(requester, child, cand);
  }
  int swap_ready(uint32_t cand, uint32_t seq) override { return swaps_.ready(cand, seq); }

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
  Service service_;  // boot, watchdog, status, reload
  // Last: its View refers to the members above, and it routes its kind on
  // loop_.
  Inspector inspector_;
};

}  // namespace nucleus::daemon
