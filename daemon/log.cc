#include "log.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace nucleus::daemon::log {

bool setup(const std::string &level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") return false;
  spdlog::drop("nucleusd");  // set up again: the configuration's level
  auto logger = spdlog::stderr_logger_st("nucleusd");
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e nucleusd[%P] %l: %v");
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  return true;
}

}  // namespace nucleus::daemon::log
