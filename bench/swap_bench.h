// Hot swap of a supervisor with many children, measured from outside.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>

namespace nucleus::bench {

struct SwapFigures {
  bool ok = false;
  std::string error;
  int children = 0;
  double probe_rtt_p50_ns = 0;   // a status query to the supervisor, before the swap
  double longest_extra_ns = 0;   // the longest wait of a query beyond that, during the swap
  double swap_ns = 0;            // from swap_process to its answer
  double nucleusd_pause_ns = 0;  // nucleusd's own: from the handover answer to the takeover
  uint64_t state_bytes = 0;
  uint64_t probes_during = 0;  // queries that overlapped the swap
  uint64_t probes_lost = 0;    // not answered normal (must be 0)
};

// Starts its own nucleusd, a supervisor with `children` workers, a probe
// thread that queries the supervisor back to back, and swaps the supervisor
// to --version 2.
SwapFigures swap_pause(const std::string &nucleusd, const std::string &supervisor,
                       const std::string &worker, int children, const std::string &dir);

// $NUCLEUS_BENCH_CONTROL picks the subtree mode: processes.control's cgroup,
// signals or auto (the default).
inline std::string subtree_mode() {
  const char *m = std::getenv("NUCLEUS_BENCH_CONTROL");
  return m != nullptr && *m != '\0' ? m : "auto";
}

}  // namespace nucleus::bench
