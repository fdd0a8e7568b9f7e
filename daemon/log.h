// Logging for nucleusd: spdlog to stderr. Lines name the process and, where
// there is one, the buffer.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace nucleus::daemon::log {

using spdlog::debug;
using spdlog::error;
using spdlog::info;
using spdlog::warn;

// One kind of line that is logged at most once per interval (a bound that a
// client hits in a loop must not fill the log): the first line of an
// interval goes out with how many were held back since the last one.
class RateLimited {
 public:
  template <typename... Args>
  void warn(int64_t now_ns, int64_t interval_ns, spdlog::format_string_t<Args...> format,
            Args &&...args) {
    if (last_ns_ != 0 && now_ns - last_ns_ < interval_ns) {
      ++held_;
      return;
    }
    last_ns_ = now_ns;
    // Into spdlog's own buffer type: no heap string, and the one type every
    // log line already uses (UBSan's vptr check of a new type probes memory
    // through a pipe, which fails when nucleusd is out of descriptors: the
    // very moment some of these lines are for).
    spdlog::memory_buf_t line;
    fmt::format_to(fmt::appender(line), format, std::forward<Args>(args)...);
    if (held_ != 0) fmt::format_to(fmt::appender(line), " ({} more like it not logged)", held_);
    held_ = 0;
    spdlog::warn("{}", std::string_view(line.data(), line.size()));
  }

 private:
  int64_t last_ns_ = 0;
  uint64_t held_ = 0;
};

// Sends the default logger to stderr at `level` ("trace" .. "off").
// Returns false for an unknown level name.
bool setup(const std::string &level);

}  // namespace nucleus::daemon::log
