// Staged programs are untrusted bytes: every malformed shape is refused.
#include "program.h"

#include <gtest/gtest.h>

#include <cstring>

namespace nucleus::daemon {
namespace {

std::string staged(uint32_t argc, uint32_t envc, const std::string &strings) {
  wire::ProgramHeader h{argc, envc};
  std::string out(reinterpret_cast<const char *>(&h), sizeof(h));
  return out + strings;
}

TEST(Program, ParsesPathCwdArgvAndEnv) {
  using namespace std::string_literals;
  auto p = parse_program(staged(2, 1, "/bin/echo\0/tmp\0echo\0hi\0A=b\0"s));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.value().path, "/bin/echo");
  EXPECT_EQ(p.value().cwd, "/tmp");
  EXPECT_EQ(p.value().argv, (std::vector<std::string>{"echo", "hi"}));
  EXPECT_EQ(p.value().env, (std::vector<std::string>{"A=b"}));
}

TEST(Program, MalformedIsRefused) {
  using namespace std::string_literals;
  const std::string bad[] = {
      ""s,                                       // nothing
      "abc"s,                                    // short header
      staged(0, 0, ""s),                         // no path
      staged(0, 0, "\0\0"s),                     // empty path
      staged(0, 0, "/bin/true"s),                // not terminated
      staged(1, 0, "/bin/true\0\0"s),            // argv missing
      staged(0, 1, "/bin/true\0\0NOEQUALS\0"s),  // env entry without '='
      staged(0, 0, "/bin/true\0\0extra\0"s),     // bytes left over
      staged(5000, 0, "/bin/true\0\0"s),         // count over the limit
      staged(UINT32_MAX, 2, "/bin/true\0\0"s),   // counts that overflow
      staged(0, 0, "/bin/true\0"s + std::string(wire::kMaxProgramBytes, 'x') + "\0"s),
  };
  for (const std::string &b : bad) EXPECT_FALSE(parse_program(b).ok()) << b.size();
}

}  // namespace
}  // namespace nucleus::daemon
