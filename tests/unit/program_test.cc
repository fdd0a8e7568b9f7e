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

TEST(Program, OwnerIsTheCreatorsUnlessNamed) {
  using namespace std::string_literals;
  auto p = parse_program(staged(0, 0, "/bin/true\0\0"s));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.value().uid, kNone);
  EXPECT_EQ(p.value().gid, kNone);
  wire::ProgramHeader h{0, 0, 65534, 100};
  std::string named(reinterpret_cast<const char *>(&h), sizeof(h));
  p = parse_program(named + "/bin/true\0\0"s);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.value().uid, 65534U);
  EXPECT_EQ(p.value().gid, 100U);
}

TEST(Program, Utf8) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("plain /bin/true"));
  EXPECT_TRUE(valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf"));
  for (const char *bad :
       {"\x80", "\xbf", "\xc3", "\xc3x", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
        "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80", "\xff", "\xe2\x82", "ok\xfe"}) {
    EXPECT_FALSE(valid_utf8(bad)) << bad;
  }
  for (int byte = 0x80; byte <= 0xff; ++byte) {
    EXPECT_FALSE(valid_utf8(std::string(1, static_cast<char>(byte)))) << byte;
  }
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
      staged(1, 0, "/bin/true\0\0arg\xff\0"s),     // not UTF-8
      staged(0, 1, "/bin/true\0\0A=\xc0\xaf\0"s),  // an overlong form
  };
  for (const std::string &b : bad) EXPECT_FALSE(parse_program(b).ok()) << b.size();
}

}  // namespace
}  // namespace nucleus::daemon
