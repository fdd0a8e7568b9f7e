// Starts a real nucleusd in a temporary runtime directory and waits for it to
// say READY=1 on a NOTIFY_SOCKET of ours (the way systemd would hear it).
// Shared by the integration tests and the benchmarks; no GoogleTest here.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

namespace nucleus::support {

class DaemonProcess {
 public:
  DaemonProcess() = default;
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess &) = delete;
  DaemonProcess &operator=(const DaemonProcess &) = delete;

  // Starts `nucleusd_path` with `config_json` (empty: its built-in default),
  // logging at `log_level` into dir()/nucleusd.log. Returns true once ready,
  // false if it exited or the deadline passed. Sets $NUCLEUS_SOCKET.
  bool start(const std::string &nucleusd_path, const std::string &config_json,
             const std::string &log_level, std::chrono::milliseconds deadline);
  // Sends `signal`, waits for the exit; the wait status, or -1 at the deadline.
  int stop(int signal, std::chrono::milliseconds deadline);

  pid_t pid() const { return pid_; }
  const std::string &dir() const { return dir_; }
  const std::string &socket_path() const { return socket_; }
  std::string log() const;

 private:
  std::string dir_;
  std::string socket_;
  pid_t pid_ = -1;
  int pidfd_ = -1;
};

// Milliseconds left until `until`, at least 0.
int remaining_ms(std::chrono::steady_clock::time_point until);

}  // namespace nucleus::support
