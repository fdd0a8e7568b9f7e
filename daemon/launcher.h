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
// Threading: called on nucleusd's single thread, which is suspended while
// the child runs before exec; the child only makes system calls.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "../client-lib/src/sys.h"
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
  // uid (the server refuses any other owner before it gets here).
  const Principal *owner = nullptr;
  bool set_ids = false;
};

struct Launched {
  pid_t pid = 0;
  sys::UniqueFd pidfd;
};

// 0 and *out filled, or -errno (clone failed, or exec failed in the child).
int launch(const LaunchSpec &spec, Launched *out);
// False once a launch found that clone3 cannot start a child in its cgroup
// here (CLONE_INTO_CGROUP, Linux 5.7; x86-64 only): children then write
// themselves into cgroup.procs before exec, which blocks nucleusd longer.
bool starts_into_cgroup();

}  // namespace nucleus::daemon
