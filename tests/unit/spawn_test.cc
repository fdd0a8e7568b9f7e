// nucleusctl's spawn file: what parse_spawn builds from it (the create and
// start order comes from it), before anything reaches the nucleus.
#include "spawn.h"

#include <gtest/gtest.h>

namespace nucleus::ctl {
namespace {

TEST(SpawnFile, BuildsEntriesWithPathsProgramsAndClaims) {
  auto doc = nlohmann::json::parse(R"({"processes": [
      {"name": "sup", "program": "/usr/bin/nucleus-supervisor", "args": ["spec.json"],
       "env": ["A=1"], "cwd": "/tmp", "claims": {"buffers": 64, "processes": 3,
       "memory_bytes": 1048576, "devices": 1, "data_bytes": 4096},
       "children": [{"name": "w", "program": "/bin/w", "start": false}]},
      {"name": "x", "program": "/bin/x"}]})");
  std::vector<SpawnEntry> entries;
  std::string error;
  ASSERT_TRUE(parse_spawn(doc, &entries, &error)) << error;
  ASSERT_EQ(entries.size(), 2U);
  const SpawnEntry &sup = entries[0];
  EXPECT_EQ(sup.where, "processes[0]");
  EXPECT_EQ(sup.program.path, "/usr/bin/nucleus-supervisor");
  EXPECT_EQ(sup.program.argv, (std::vector<std::string>{"nucleus-supervisor", "spec.json"}));
  EXPECT_EQ(sup.program.env, (std::vector<std::string>{"A=1"}));
  EXPECT_EQ(sup.program.cwd, "/tmp");
  EXPECT_EQ(sup.claims.buffers, 64U);
  EXPECT_EQ(sup.claims.processes, 3U);
  EXPECT_EQ(sup.claims.memory_bytes, 1048576U);
  EXPECT_EQ(sup.claims.devices, 1U);
  EXPECT_EQ(sup.claims.data_bytes, 4096U);
  EXPECT_TRUE(sup.start);
  ASSERT_EQ(sup.children.size(), 1U);
  EXPECT_EQ(sup.children[0].where, "processes[0].children[0]");
  EXPECT_FALSE(sup.children[0].start);
  EXPECT_EQ(sup.children[0].claims.buffers, 8U);  // the default
  EXPECT_EQ(entries[1].where, "processes[1]");
  // A bare array is the same as {"processes": [...]}.
  entries.clear();
  ASSERT_TRUE(parse_spawn(doc["processes"], &entries, &error)) << error;
  EXPECT_EQ(entries[0].where, "[0]");
}

TEST(SpawnFile, RefusesWhatIsWrongWithThePathOfIt) {
  struct Case {
    const char *text;
    const char *error;
  } cases[] = {
      {R"({"processes": {}})", "processes: expected a non-empty array of processes, got {}"},
      {R"([1])", "[0]: expected an object, got 1"},
      {R"([{"program": "/x"}])",
       "[0].name: expected 1 to 31 characters of [A-Za-z0-9._-], got null"},
      {R"([{"name": "a"}])", "[0].program: expected an absolute path, got null"},
      {R"([{"name": "a", "program": "/x", "args": "x"}])",
       "[0].args: expected an array of strings, got \"x\""},
      {R"([{"name": "a", "program": "/x", "args": [1]}])", "[0].args[0]: expected a string, got 1"},
      {R"([{"name": "a", "program": "/x", "claims": {"buffers": -1}}])",
       "[0].claims.buffers: expected a non-negative integer, got -1"},
      {R"([{"name": "a", "program": "/x", "start": 1}])",
       "[0].start: expected true or false, got 1"},
      {R"([{"name": "a", "program": "/x", "children": [{"name": "a", "program": "/y"}]}])",
       "[0].children[0].name: expected a name not used before in the file, got \"a\""},
      {R"([{"name": "a", "program": "/x", "color": "red"}])", "[0].color: unknown field"},
  };
  for (const Case &c : cases) {
    std::vector<SpawnEntry> entries;
    std::string error;
    EXPECT_FALSE(parse_spawn(nlohmann::json::parse(c.text), &entries, &error)) << c.text;
    EXPECT_EQ(error, c.error) << c.text;
  }
}

}  // namespace
}  // namespace nucleus::ctl
