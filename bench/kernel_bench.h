// The kernel's own IPC between processes, the baselines nucleus is measured
// against, each in a placement (placement.h): futex words, pipes and a
// socketpair between two processes, and a futex relay through a third one.
#pragma once

#include <vector>

#include "figure.h"
#include "placement.h"

namespace nucleus::bench {

// 64-byte round trips between two processes: futex words in shared memory
// (futex_rt), two pipes (pipe_rt), a SOCK_SEQPACKET socketpair (uds_rt).
Figure futex_rt(const Placing &at, int iters, int warmup);
Figure pipe_rt(const Placing &at, int iters, int warmup);
Figure uds_rt(const Placing &at, int iters, int warmup);
// 64-byte messages over a socketpair, `window` outstanding.
Figure uds_pipelined(const Placing &at, int total, int window);
// The floor of any mediated design, with no nucleus code: the client writes
// a 64-byte message into shared memory and wakes the relay (futex); the relay
// copies it into the receiver's slot and wakes the receiver; the receiver
// answers to the relay, which forwards to the client. Four sleeps and
// wake-ups per round trip, as client -> nucleusd -> receiver -> nucleusd ->
// client. Nobody spins: every wait is a futex wait, every post a wake.
// Hops: client 0, relay 1, receiver 2 (two_cpus: the relay on one CPU, the
// client and the receiver on the other).
Figure relay_rt(const Placing &at, int iters, int warmup);

struct BaselineSizes {
  int iters = 0;   // round trips measured, per figure
  int warmup = 0;  // round trips before them
  int piped = 0;   // messages of uds_pipelined
  int window = 0;  // outstanding in uds_pipelined
};

// Every baseline in every placement the allowed CPUs give (two_cpus needs
// two; says so on stdout when it skips one), each baseline's placements one
// after the other.
std::vector<Figure> kernel_baselines(const BaselineSizes &sizes);

}  // namespace nucleus::bench
