// Starting a program as a Linux process for the nucleus: clone with
// CLONE_VM | CLONE_VFORK | CLONE_PIDFD (as posix_spawn does, plus a pidfd),
// in cgroup mode born in its cgroup (clone3 CLONE_INTO_CGROUP; where the
// kernel cannot, the child joins it before anything else), so nothing it
// forks escapes, its own session and process group (setsid), the pre-bound
// NUCLEUS_FD connection on fd 3, stdout and stderr where the configuration
// says, then its owner's rights (DESIGN.md, "Principals"): groups, gid and
// uid; for a non-root owner no capabilities at all (bounding, ambient and
// inheritable sets cleared; permitted and effective go with the uid); and
// PR_SET_NO_NEW_PRIVS, so no set-uid file gives it more. Only then does it
// enter its working directory (with its own rights) and exec. An exec or a
// step that fails is reported to the caller, not as an exit.
//
// Threading: launch() runs on a Launcher thread (or on the loop's before
// it serves, for the boot section), which is suspended while the child runs
// before exec; the child only makes system calls.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nucleus/wire.h>
#include <nucleus_internal/sys.h>

#include "principal.h"
#include "process_table.h"

namespace nucleus::daemon {

struct LaunchSpec {
  const Program *program = nullptr;
  int nucleus_fd = -1;        // the program's end of its bound connection (becomes fd 3)
  int output_fd = -1;         // stdout and stderr; -1: inherit nucleusd's
  int cgroup_fd = -1;         // the cgroup (directory) to start in; -1: none
  uint64_t memory_limit = 0;  // RLIMIT_AS when no cgroup enforces memory; 0: none
  std::string socket_path;    // NUCLEUS_SOCKET for the program
  // Whose rights it runs with. nucleusd sets them only when it is root
  // (`set_ids`); a nucleusd that is not root starts programs only as its own
  // uid (Programs::spawn refuses any other owner before it gets here).
  const Principal *owner = nullptr;
  bool set_ids = false;
};

struct Launched {
  pid_t pid = 0;
  sys::UniqueFd pidfd;
  uint64_t failed_step = 0;  // on failure: the wire::StartStep that failed
};

// 0 and *out filled, or -errno and out->failed_step (clone failed, or a step
// in the child: its descriptors, its owner's ids, its directory, exec).
int launch(const LaunchSpec &spec, Launched *out);
// One program to start, with everything it needs copied in (the loop goes
// on changing its tables while the launcher works), and who waits for it.
struct LaunchJob {
  Program program;
  Principal owner;
  bool set_ids = false;
  sys::UniqueFd nucleus_fd;  // the program's end of its bound connection
  sys::UniqueFd output_fd;   // none: inherit nucleusd's
  sys::UniqueFd cgroup_fd;   // none: no cgroup
  uint64_t memory_limit = 0;
  std::string socket_path;
  // The loop's bookkeeping: the entry, and the request to answer when done.
  uint32_t id = 0;
  uint32_t generation = 0;
  uint32_t requester = UINT32_MAX;  // UINT32_MAX: nobody waits for an answer
  uint32_t requester_serial = 0;
  uint32_t seq = 0;
  // The result: 0 and launched filled, or -errno.
  int result = 0;
  Launched launched;
  // Not a launch but a chore off the loop (removing an emptied cgroup):
  // run instead of launching; its return value in chore_ok.
  std::function<bool()> chore;
  std::string chore_name;
  bool chore_ok = false;
};

// SIGKILL through a pidfd (what nucleusd started, whatever its group).
void pidfd_kill(int pidfd);

// Runs the job's launch() on the calling thread and fills its result.
void run_launch(LaunchJob *job);

// Starts programs on threads of its own (kThreads), so that nucleusd's loop
// goes on serving while a start waits for the exec (or for a program path
// or working directory on a slow or hung file system). One owner's starts
// run one at a time, in order: an owner whose start hangs holds one thread. The loop submits jobs
// and learns of finished ones through done_fd(), an eventfd it reads in its
// ring; it takes them with take_done(). The thread never touches the ring,
// nucleusd's tables or its log.
class Launcher {
 public:
  Launcher() = default;
  ~Launcher() { stop(); }
  Launcher(const Launcher &) = delete;
  Launcher &operator=(const Launcher &) = delete;
  static constexpr int kThreads = 4;

  bool start(std::string *error);
  // Finishes the launch in progress and returns; jobs not begun come back
  // from take_done() with -ECANCELED.
  void stop();
  bool running() const { return !threads_.empty(); }
  int done_fd() const { return done_.get(); }
  void submit(std::unique_ptr<LaunchJob> job);
  // PTRACE_DETACH of `pid`, giving it `signal`: a program that called
  // PTRACE_TRACEME made the launcher thread that started it its tracer, and
  // only that thread may detach. Done quietly: nothing comes back.
  void detach_tracee(pid_t pid, int signal);
  std::vector<std::unique_ptr<LaunchJob>> take_done();
  size_t in_flight() const { return in_flight_; }  // submitted, not yet taken

 private:
  void work(int index);
  struct Detach {
    pid_t pid;
    int signal;
    unsigned tried;  // a bit per thread that tried
  };

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<LaunchJob>> todo_;       // under mutex_
  std::deque<std::unique_ptr<LaunchJob>> done_list_;  // under mutex_
  bool stopping_ = false;                             // under mutex_
  size_t in_flight_ = 0;                              // the loop's count
  sys::UniqueFd done_;
  std::vector<std::thread> threads_;
  std::vector<uint32_t> busy_uids_;  // owners with a launch in progress; under mutex_
  std::vector<Detach> detaches_;     // under mutex_
};

// False once a launch found that clone3 cannot start a child in its cgroup
// here (CLONE_INTO_CGROUP, Linux 5.7; x86-64 only): children then write
// themselves into cgroup.procs before exec, which blocks nucleusd longer.
bool starts_into_cgroup();

// What failed in a start, for a log line or an error before its errno:
// "cannot execute /bin/x", "cannot enter its working directory /srv",
// "cannot take its owner's ids (uid 65534, gid 65534)"... `step` is a
// wire::StartStep; the program and the owner are the entry's.
std::string start_failure_text(uint64_t step, const Program &program, uint32_t uid, uint32_t gid);

}  // namespace nucleus::daemon
