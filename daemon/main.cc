// nucleusd: the nucleus daemon. Runs in the foreground and logs to stderr.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "config.h"
#include "log.h"
#include "server.h"

namespace {

std::string default_runtime_dir() {
  if (geteuid() == 0) return "/run/nucleus";
  if (const char *x = std::getenv("XDG_RUNTIME_DIR"); x != nullptr && *x != '\0') {
    return std::string(x) + "/nucleus";
  }
  return "/run/nucleus";
}

}  // namespace

int run(int argc, char **argv) {
  CLI::App app{"nucleusd: the nucleus daemon (message buffers, queues and processes)"};
  std::string config_path;
  std::string runtime_dir = default_runtime_dir();
  std::string level;
  std::string check_path;
  app.add_option("--config", config_path, "configuration file (JSON); default: built in");
  app.add_option("--runtime-dir", runtime_dir, "directory of nucleus.sock")->capture_default_str();
  app.add_option("--log-level", level,
                 "trace, debug, info, warn, error, critical or off (default: log.level of the "
                 "configuration)");
  auto *check = app.add_option("--check-config", check_path,
                               "check a configuration file (default: --config's) and exit: 0 "
                               "valid, 2 not")
                    ->expected(0, 1);
  CLI11_PARSE(app, argc, argv);

  if (!level.empty() && !nucleus::daemon::log::setup(level)) {
    std::cerr << "nucleusd: --log-level: unknown level \"" << level << "\"\n";
    return 2;
  }
  if (level.empty()) nucleus::daemon::log::setup("info");
  bool check_only = check->count() > 0;
  if (check_only && !check_path.empty()) config_path = check_path;
  std::string text = nucleus::daemon::default_config_text();
  std::string source = "built-in default configuration";
  if (!config_path.empty()) {
    std::ifstream in(config_path);
    if (!in) {
      std::cerr << "nucleusd: " << config_path << ": cannot read: " << std::strerror(errno) << "\n";
      return 2;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
    source = config_path;
  }
  nucleus::daemon::Config config;
  std::string error;
  if (!nucleus::daemon::parse_config(text, &config, &error)) {
    // One line on stderr, whether or not logging is set up: the field
    // path, the value and what is allowed.
    std::cerr << "nucleusd: " << source << ": " << error << "\n";
    return 2;
  }
  // What the names section reserves, in words: a rule that reserves more
  // (or less) than meant shows here.
  std::vector<std::string> names = nucleus::daemon::explain_names(config.names);
  if (check_only) {
    std::cout << source << ": valid\n";
    for (const std::string &line : names) std::cout << line << "\n";
    return 0;
  }
  if (level.empty()) nucleus::daemon::log::setup(config.log_level);
  spdlog::info("configuration: {}", source);
  for (const std::string &line : names) spdlog::info("{}", line);
  nucleus::daemon::Server server(std::move(config));
  server.set_config_source(config_path, !level.empty());
  if (!server.start(runtime_dir, &error)) {
    spdlog::critical("{}", error);
    return 1;
  }
  return server.run();
}

int main(int argc, char **argv) {
  // Exceptions can come only from start-up (argument parsing, allocation);
  // the event loop itself throws none.
  try {
    return run(argc, argv);
  } catch (const std::exception &e) {
    std::cerr << "nucleusd: " << e.what() << "\n";
    return 1;
  }
}
