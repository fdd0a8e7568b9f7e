// Logging for nucleusd: spdlog to stderr. Lines name the process and, where
// there is one, the buffer.
#pragma once

#include <spdlog/spdlog.h>

namespace nucleus::daemon::log {

using spdlog::debug;
using spdlog::error;
using spdlog::info;
using spdlog::warn;

// Sends the default logger to stderr at `level` ("trace" .. "off").
// Returns false for an unknown level name.
bool setup(const std::string &level);

}  // namespace nucleus::daemon::log
