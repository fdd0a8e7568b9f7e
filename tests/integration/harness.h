// Test harness: a real nucleusd in a temporary runtime directory, real client
// processes, and a raw client that speaks the wire protocol by hand (to write
// what libnucleus never would). Nothing here sleeps: every wait is on an
// event with a deadline.
#pragma once

#include <nucleus/wire.h>
#include <sys/types.h>
#include <nucleus/nucleus.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon_process.h"

namespace nucleus::test {

inline constexpr std::chrono::seconds kDeadline{20};

// Tries `pred` until it holds or `deadline` passes; true when it held. The
// one polling loop of the tests, for a condition nothing signals (a counter
// in nucleusd, what nucleusctl or a supervisor reports, a free name). It
// never sleeps for a time: between tries it only yields the CPU
// (sched_yield), so the wait stays a wait on the condition and ends as soon
// as it holds; yielding lets nucleusd and the programs whose progress the
// condition waits for run first on a machine with few cores. Most
// predicates are themselves a round trip through nucleusd.
bool eventually(const std::function<bool()> &pred, std::chrono::milliseconds deadline = kDeadline);

class Daemon {
 public:
  // Starts nucleusd with `config_json` (empty: its built-in default) and
  // waits for READY=1 on its NOTIFY_SOCKET. Sets $NUCLEUS_SOCKET.
  explicit Daemon(const std::string &config_json = "");
  ~Daemon();
  Daemon(const Daemon &) = delete;
  Daemon &operator=(const Daemon &) = delete;

  bool ready() const { return ready_; }
  pid_t pid() const { return process_.pid(); }
  const std::string &dir() const { return process_.dir(); }
  const std::string &socket_path() const { return process_.socket_path(); }
  // Sends `signal` and waits for the exit (on its pidfd) until `deadline`;
  // returns the wait status or -1.
  int stop(int signal, std::chrono::milliseconds deadline = kDeadline) {
    return process_.stop(signal, deadline);
  }
  std::string log() const { return process_.log(); }
  // Lets other uids reach the socket (the runtime directory and its parent
  // become 0755): for the tests that attack as an unprivileged uid.
  void let_others_in() const;

 private:
  support::DaemonProcess process_;
  bool ready_ = false;
};

// A SEQPACKET connection to nucleusd's socket, nothing sent yet; -1 when
// it cannot connect.
int connect_to(const std::string &socket_path);

// The unprivileged attacker of the security tests.
inline constexpr uid_t kNobody = 65534;
// Drops this (forked) process to uid and gid `id` with no supplementary
// groups (setgroups, setresgid, setresuid). False when it could not.
bool become(uid_t id = kNobody);

// A path of `program`, a program of the build (NUCLEUSD_PATH,
// NUCLEUS_WORKER_PATH...), that uid kNobody can execute: for what a test
// gives to that uid. The build tree may lie where other uids cannot reach it
// (root's home is 0700): then the program is placed (linked, else copied)
// under a 0755 directory this test process makes in /tmp, at its path
// relative to the build directory, with libnucleus beside it where its
// $ORIGIN runpath finds it; the directory goes when the process ends. Where
// kNobody reaches the build tree, or the tests do not run as root, or
// `program` is not the build's, `program` itself. Call it before forking.
std::string for_others(const std::string &program);

// Waits for a Linux process to be gone (its pidfd readable), with a
// deadline; true when it is.
bool gone(pid_t pid);

// Runs `body` in a forked child; its return value is the exit code.
pid_t spawn(const std::function<int()> &body);
// Waits for `pid` to exit; returns its wait status, or -1 at the deadline.
int wait_exit(pid_t pid, std::chrono::milliseconds deadline = kDeadline);
inline int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A one-shot pipe to say "I got this far" across fork without sleeping.
class Signal {
 public:
  Signal();
  ~Signal();
  void notify(char what = 'x');
  // The byte sent, or 0 at the deadline.
  char wait(std::chrono::milliseconds deadline = kDeadline);

 private:
  int fds_[2] = {-1, -1};
};

// Attaches under `name` or fails the test.
nucleus::Nucleus attach(const std::string &name);
nucleus::Message words(uint64_t w0, uint64_t w1 = 0);

// Polls the nucleus's counters until `pred` holds or the deadline passes
// (eventually); false at once when they cannot be read.
bool wait_stats(nucleus::Nucleus &n, const std::function<bool(const nucleus::Stats &)> &pred,
                nucleus::Stats *last = nullptr);

// Speaks the channel protocol directly, for the bad inputs libnucleus never
// sends.
class RawClient {
 public:
  // Attaches under `name`; status() is 0 or the daemon's -errno.
  explicit RawClient(const std::string &socket_path, const std::string &name);
  ~RawClient();
  int status() const { return status_; }
  wire::ChannelHeader *header() { return header_; }
  uint8_t *base() { return base_; }
  uint64_t bytes() const { return bytes_; }
  uint64_t slot(uint32_t i) const;

  void push(const wire::Request &r);
  // Writes them all, then publishes the tail once: nucleusd takes them in
  // one turn (as long as they are fewer than requests_per_turn).
  void push_all(const std::vector<wire::Request> &requests);
  // The next event, waiting up to the deadline; false at the deadline.
  bool next_event(wire::Event *out, std::chrono::milliseconds deadline = kDeadline);
  // Waits until the channel state is no longer attached.
  bool wait_closed(std::chrono::milliseconds deadline = kDeadline);

 private:
  int status_ = 0;
  int socket_ = -1;
  uint8_t *base_ = nullptr;
  uint64_t bytes_ = 0;
  wire::ChannelHeader *header_ = nullptr;
  uint32_t tail_ = 0;
  uint32_t head_ = 0;
};

}  // namespace nucleus::test
