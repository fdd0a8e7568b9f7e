// The commands nucleus-test-program serves (see test_program.cc).
//
//   nucleus-test-program serve [TAG [BEHAVIOUR]]
// serves them; as an OS being swapped it hands over its count of messages
// served (BEHAVIOUR no-handover: ignores the request; refuse: answers it
// rejected; bad-offset: hands over an offset past its data area). As a swap's
// new program it takes the count over and says ready (BEHAVIOUR crash: dies
// of SIGSEGV first; never-ready: waits forever instead).
#pragma once

#include <cstdint>

namespace test {

enum class Command : uint64_t {
  kCreate = 1,  // words 1, 2: buffers, processes; 3: 0 serve, N exit(N - 1)
  kStart = 2,
  kStop = 3,  // answers when the stop is answered: word 1 = its result
  kRemove = 4,
  kGet = 5,     // word 1 state, 2 pid, 3/4 buffers given/used, 5/6 processes, 7 exit
  kList = 6,    // word 1 count, 2.. state << 32 | pid of each
  kStats = 7,   // word 1 claim buffers, 2 used, 3 data area bytes
  kFork = 8,    // word 1 = pid of a forked process that pauses
  kNotice = 9,  // answered with the next exit notice: 1 kind, 2 value, 3 pid, 4.. name
  kExit = 10,   // exit(word 1) after answering
  kCrash = 11,  // SIGSEGV after answering
  kSend = 12,   // send a message to the name and keep the buffer out
  kEcho = 13,   // word 1 = its tag, 2 = messages served before (across swaps), 3 = pid

  // setpgid(0, word 1): word 0 = 0 or -errno; 1 = its group, 2 = its session.
  kSetpgid = 14,
  // Forks a helper that leaves the group and traces the program, cancelling
  // every SIGSTOP: the program cannot be stopped. word 1 = the helper's pid.
  kShield = 15,
  // PTRACE_TRACEME (nucleusd becomes its tracer), then a signal it ignores.
  kTraceMe = 16,
  // Names a clock device under the name (nucleus_create_external_process):
  // word 0 = 0 or -errno.
  kNameClock = 17,
};

}  // namespace test
