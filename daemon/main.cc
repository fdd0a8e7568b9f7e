// nucleusd: the nucleus daemon. Runs in the foreground and logs to stderr.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

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
  std::string level = "info";
  bool check_only = false;
  app.add_option("--config", config_path, "configuration file (JSON); default: built in");
  app.add_option("--runtime-dir", runtime_dir, "directory of nucleus.sock")->capture_default_str();
  app.add_option("--log-level", level, "trace, debug, info, warn, error, critical or off")
      ->capture_default_str();
  app.add_flag("--check-config", check_only, "check the configuration and exit");
  CLI11_PARSE(app, argc, argv);

  if (!nucleus::daemon::log::setup(level)) {
    std::cerr << "nucleusd: --log-level: unknown level \"" << level << "\"\n";
    return 2;
  }
  std::string text = nucleus::daemon::default_config_text();
  std::string source = "built-in default configuration";
  if (!config_path.empty()) {
    std::ifstream in(config_path);
    if (!in) {
      spdlog::critical("cannot read configuration {}", config_path);
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
    spdlog::critical("{}: {}", source, error);
    return 2;
  }
  if (check_only) {
    spdlog::info("{}: valid", source);
    return 0;
  }
  spdlog::info("configuration: {}", source);
  nucleus::daemon::Server server(std::move(config));
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
