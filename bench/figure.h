// One benchmark's figures, and how latencies become them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "placement.h"

namespace nucleus::bench {

struct Figure {
  std::string name;
  double p50_ns = 0;
  double p99_ns = 0;
  double ops_per_s = 0;
  // A figure that is not a latency (nucleusd's memory per process, its idle
  // CPU) has a value >= 0 instead, with its JSON key and its unit in the
  // table; its p50_ns, p99_ns and ops_per_s print as null.
  double value = -1;
  const char *value_key = "";
  const char *value_unit = "";
  // Where its processes ran (kernel baselines); the nucleus processes are
  // never pinned.
  Placement placement = Placement::kUnpinned;
};

inline Figure summarize(const std::string &name, std::vector<int64_t> &lat, int64_t ops,
                        int64_t elapsed_ns) {
  std::sort(lat.begin(), lat.end());
  Figure f;
  f.name = name;
  if (lat.empty()) return f;
  f.p50_ns = static_cast<double>(lat[lat.size() / 2]);
  f.p99_ns = static_cast<double>(lat[lat.size() * 99 / 100]);
  f.ops_per_s = static_cast<double>(ops) * 1e9 / static_cast<double>(elapsed_ns);
  return f;
}

inline Figure value_figure(const std::string &name, double value, const char *key,
                           const char *unit) {
  Figure f;
  f.name = name;
  f.value = value;
  f.value_key = key;
  f.value_unit = unit;
  return f;
}

}  // namespace nucleus::bench
