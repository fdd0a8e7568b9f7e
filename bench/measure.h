// The measuring loops the benchmarks share, and the forked processes they
// measure against.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <nucleus_internal/sys.h>

#include "figure.h"
#include "placement.h"

namespace nucleus::bench {

// Forks a child that runs `body` (pinned on `cpu` unless it is -1) and exits
// with what it returns.
inline pid_t fork_child(const std::function<int()> &body, int cpu = -1) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    if (!pin_self(cpu)) std::fprintf(stderr, "nucleus-bench: cannot pin a child on CPU %d\n", cpu);
    _exit(body());
  }
  return pid;
}

// `warmup` then `iters` round trips, each `round_trip(i)` for i from 1; the
// latency of each of the last `iters`. A round trip that returns false ends
// the measurement with an empty figure.
template <typename RoundTrip>
Figure round_trips(const std::string &name, int iters, int warmup, RoundTrip round_trip) {
  std::vector<int64_t> lat;
  lat.reserve(static_cast<size_t>(iters));
  int64_t start = 0;
  for (int i = 1; i <= iters + warmup; ++i) {
    if (i == warmup + 1) start = sys::monotonic_ns();
    int64_t t0 = sys::monotonic_ns();
    if (!round_trip(static_cast<uint32_t>(i))) return Figure{name};
    if (i > warmup) lat.push_back(sys::monotonic_ns() - t0);
  }
  return summarize(name, lat, iters, sys::monotonic_ns() - start);
}

// Keeps `window` messages outstanding; latency is per message, send to reply.
template <typename Send, typename Receive>
Figure pipelined(const std::string &name, int total, int window, Send send, Receive receive) {
  std::vector<int64_t> sent_at(static_cast<size_t>(total));
  std::vector<int64_t> lat;
  lat.reserve(static_cast<size_t>(total));
  int64_t start = sys::monotonic_ns();
  int next = 0;
  for (; next < window && next < total; ++next) {
    sent_at[next] = sys::monotonic_ns();
    send(next);
  }
  for (int done = 0; done < total; ++done) {
    int id = receive();
    if (id < 0) break;
    lat.push_back(sys::monotonic_ns() - sent_at[id]);
    if (next < total) {
      sent_at[next] = sys::monotonic_ns();
      send(next++);
    }
  }
  return summarize(name, lat, static_cast<int64_t>(lat.size()), sys::monotonic_ns() - start);
}

}  // namespace nucleus::bench
