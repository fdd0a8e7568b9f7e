// Starting a program as a Linux process for the nucleus: clone3 with
// CLONE_PIDFD (and CLONE_INTO_CGROUP when the process has a cgroup), the
// pre-bound NUCLEUS_FD connection on fd 3, its own process group, stdout and
// stderr where the configuration says, and exec. An exec that fails is
// reported to the caller (through a close-on-exec pipe), not as an exit.
//
// Threading: called on nucleusd's single thread; the child between clone3
// and exec only makes system calls.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "../client-lib/src/sys.h"
#include "process_table.h"

namespace nucleus::daemon {

struct LaunchSpec {
  const Program *program = nullptr;
  int nucleus_fd = -1;        // the program's end of its bound connection (becomes fd 3)
  int output_fd = -1;         // stdout and stderr; -1: inherit nucleusd's
  int cgroup_fd = -1;         // a cgroup v2 directory to start in; -1: none
  uint64_t memory_limit = 0;  // RLIMIT_AS when no cgroup enforces memory; 0: none
  std::string socket_path;    // NUCLEUS_SOCKET for the program
};

struct Launched {
  pid_t pid = 0;
  sys::UniqueFd pidfd;
};

// 0 and *out filled, or -errno (clone3 failed, or exec failed in the child).
int launch(const LaunchSpec &spec, Launched *out);

}  // namespace nucleus::daemon
