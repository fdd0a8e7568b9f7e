// One benchmark's figures, and how latencies become them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace nucleus::bench {

struct Figure {
  std::string name;
  double p50_ns = 0;
  double p99_ns = 0;
  double ops_per_s = 0;
  double extra = -1;  // kib_per_process for the memory figure
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

}  // namespace nucleus::bench
