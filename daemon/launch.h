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
// The child shares the caller's memory and, having no TLS of its own, the
// caller's thread state: from the clone to the exec it runs raw system
// calls only, in code no sanitizer instruments (no libc call a sanitizer
// intercepts, no C++ library). Everything it needs is laid out before the
// clone, the $PATH search included.
//
// Threading: launch() runs on a Launcher thread, which the kernel suspends
// while the child runs before exec (CLONE_VFORK). A LaunchWatch lets another
// thread kill the child meanwhile (decision 62).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include <nucleus/wire.h>
#include <nucleus_internal/sys.h>

#include "principal.h"
#include "process_table.h"

namespace nucleus::daemon {

// Where the kernel shows a child to a watchdog while its launching thread
// waits for the exec: the child's pidfd (CLONE_PIDFD, written as the child
// is created, before the descriptor is installed) and then its pid
// (CLONE_PARENT_SETTID, written once the child exists for good, before it
// first runs). A child is killed only when both are there; -1 in `pid`: a
// clone that cannot report it (the fallback), where the pidfd alone counts.
struct ChildSlot {
  std::atomic<int> pidfd{-1};
  std::atomic<pid_t> pid{0};
};
// The kernel stores plain ints into these.
static_assert(sizeof(std::atomic<int>) == sizeof(int) && std::atomic<int>::is_always_lock_free);
static_assert(sizeof(std::atomic<pid_t>) == sizeof(pid_t) &&
              std::atomic<pid_t>::is_always_lock_free);

// A launch's watchdog, as launch() sees it (Launcher).
class LaunchWatch {
 public:
  struct Taken {
    int pidfd = -1;       // what the slot held: the launch's to close or keep
    bool killed = false;  // the watchdog killed the child (deadline or shutdown)
  };
  // Cleared before the clone.
  virtual ChildSlot &slot() = 0;
  // The clone has returned: takes the pidfd out of the slot under the
  // watchdog's lock, so that the watchdog can no longer signal it once the
  // launch closes it (and its number is reused) or hands it on.
  virtual Taken finish() = 0;

 protected:
  ~LaunchWatch() = default;
};

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
  // The $PATH a program path without a slash is looked for in (nucleusd's
  // own, as execvp does); nullptr: execvp's default.
  const char *search_path = nullptr;
  LaunchWatch *watch = nullptr;  // nullptr: nobody may kill it before exec
};

struct Launched {
  pid_t pid = 0;
  sys::UniqueFd pidfd;
  uint64_t failed_step = 0;  // on failure: the wire::StartStep that failed
};

// 0 and *out filled, or -errno and out->failed_step: clone failed, the exec
// or a step before it failed in the child (its descriptors, its owner's ids,
// its directory, exec), or -ETIMEDOUT (kStartStepDeadline) when the watch
// killed the child before its exec. A child that did not exec is reaped by
// nucleusd's loop.
int launch(const LaunchSpec &spec, Launched *out);

// What failed in a start, for a log line or an error before its errno:
// "cannot execute /bin/x", "cannot enter its working directory /srv",
// "cannot take its owner's ids (uid 65534, gid 65534)"... `step` is a
// wire::StartStep; the program and the owner are the entry's.
std::string start_failure_text(uint64_t step, const Program &program, uint32_t uid, uint32_t gid);
// The path a failed step was about (its program's, its directory), or
// empty: what a client is told with the step (wire::kStartFailedPath).
std::string_view start_step_subject(uint64_t step, const Program &program);

// The files execvp would try for `file`, in order: `file` itself when it
// holds a slash, else each directory of `search_path` (an empty one: the
// working directory) with `file` appended. 0, or the errno execvp gives
// before trying any (ENOENT for an empty name, ENAMETOOLONG).
int exec_candidates(const std::string &file, const char *search_path,
                    std::vector<std::string> *out);

// SIGKILL through a pidfd (what nucleusd started, whatever its group).
void pidfd_kill(int pidfd);

// False once a launch found that clone3 cannot start a child in its cgroup
// here (CLONE_INTO_CGROUP, Linux 5.7; x86-64 only): children then write
// themselves into cgroup.procs before exec, which blocks nucleusd longer.
bool starts_into_cgroup();

}  // namespace nucleus::daemon
