// Refusals logged at a bounded rate: a sender that is refused again and
// again (a flood of jobs or status requests from a uid the OS does not
// serve) must not fill the OS's log. At most kLinesPerWindow lines per
// window; the refusals past that are counted, and the next line that is
// logged says how many were not.
//
// Given the time (it reads no clock), so its tests need none.
#pragma once

#include <cstdint>
#include <string>

namespace nucleus::os {

class RefusalLog {
 public:
  static constexpr uint64_t kLinesPerWindow = 10;
  static constexpr int64_t kWindowNs = 1000000000;  // 1 s

  // The line to log for a refusal at `now_ns`, or "" when it is over the
  // bound (then it is counted).
  std::string line(int64_t now_ns, const std::string &text) {
    if (now_ns - window_start_ns_ >= kWindowNs) {
      window_start_ns_ = now_ns;
      lines_ = 0;
    }
    if (lines_ >= kLinesPerWindow) {
      ++unlogged_;
      return {};
    }
    ++lines_;
    if (unlogged_ == 0) return text;
    std::string out = text + " (and " + std::to_string(unlogged_) + " refusals not logged before)";
    unlogged_ = 0;
    return out;
  }

 private:
  int64_t window_start_ns_ = INT64_MIN / 2;
  uint64_t lines_ = 0;
  uint64_t unlogged_ = 0;
};

}  // namespace nucleus::os
