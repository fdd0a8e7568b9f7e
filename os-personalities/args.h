// The personalities' command lines, through CLI11 (not installed).
#pragma once

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace nucleus::os {

// A count: a decimal integer in [0, 2^64-1]. CLI11 2.1 alone would take
// "-1" and numbers past 2^64-1 as 2^64-1.
inline CLI::Validator count() {
  return CLI::Validator(
      [](std::string &text) -> std::string {
        uint64_t v = 0;
        const char *end = text.data() + text.size();
        auto [at, ec] = std::from_chars(text.data(), end, v);
        if (text.empty() || ec != std::errc() || at != end) {
          return "expected an integer in [0, " + std::to_string(UINT64_MAX) + "], got \"" + text +
                 "\"";
        }
        return {};
      },
      "");
}

// Parses argv into `app`'s options. nullopt: go on. Else the exit status:
// 0 after --help, 64 (EX_USAGE) after a bad argument, which is named on
// stderr with the usage (a number that is not one is such an argument).
inline std::optional<int> parse_args(CLI::App &app, int argc, char **argv) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::ParseError &e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::fprintf(stderr, "%s: %s\n%s", app.get_name().c_str(), e.what(), app.help().c_str());
    return 64;
  }
}

}  // namespace nucleus::os
