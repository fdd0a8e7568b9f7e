// The program/claims shape that boot entries, spawn files and supervisor
// specs share (common/program_spec.h): every field, the rules of each
// place, and every error naming its JSON path.
#include "program_spec.h"

#include <gtest/gtest.h>

namespace nucleus::spec {
namespace {

using nlohmann::json;

Rules spawn_rules() {
  Rules r;
  r.default_buffers = 8;
  r.start = true;
  r.children = true;
  return r;
}

std::vector<Entry> parse(const std::string &text, const Rules &rules, const std::string &path) {
  json doc = json::parse(text);
  Names names;
  return parse_entries(Value(doc, path), rules, &names);
}

// The message parse_entries throws for `text` (an array of entries).
std::string error_of(const std::string &text, const Rules &rules = spawn_rules(),
                     const std::string &path = "processes") {
  try {
    parse(text, rules, path);
  } catch (const Error &e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for " << text;
  return "";
}

TEST(ProgramSpec, ReadsEveryField) {
  auto entries = parse(R"([{"name": "os", "program": "/usr/bin/nucleus-supervisor",
      "args": ["/etc/os.json", "-v"], "env": ["A=1", "B="], "cwd": "/srv", "user": "nobody",
      "group": "nogroup", "claims": {"buffers": 64, "processes": 3, "memory_bytes": 1048576,
      "devices": 1, "data_bytes": 4096}, "start": false,
      "children": [{"name": "w", "program": "/bin/w"}]}])",
                       spawn_rules(), "processes");
  ASSERT_EQ(entries.size(), 1U);
  const Entry &e = entries[0];
  EXPECT_EQ(e.where, "processes[0]");
  EXPECT_EQ(e.name, "os");
  EXPECT_EQ(e.program.path, "/usr/bin/nucleus-supervisor");
  EXPECT_EQ(e.program.argv, (std::vector<std::string>{"nucleus-supervisor", "/etc/os.json", "-v"}));
  EXPECT_EQ(e.program.env, (std::vector<std::string>{"A=1", "B="}));
  EXPECT_EQ(e.program.cwd, "/srv");
  EXPECT_EQ(e.program.user, "nobody");
  EXPECT_EQ(e.program.group, "nogroup");
  EXPECT_EQ(e.claims, (Claims{64, 3, 1048576, 1, 4096}));
  EXPECT_FALSE(e.start);
  ASSERT_EQ(e.children.size(), 1U);
  const Entry &w = e.children[0];
  EXPECT_EQ(w.where, "processes[0].children[0]");
  EXPECT_EQ(w.program.argv, (std::vector<std::string>{"w"}));  // argv[0]: the file name
  EXPECT_TRUE(w.program.env.empty());
  EXPECT_EQ(w.program.cwd, "");
  EXPECT_EQ(w.program.user, "");
  EXPECT_EQ(w.claims, (Claims{8, 0, 0, 0, 0}));  // the rules' default buffers
  EXPECT_TRUE(w.start);
}

TEST(ProgramSpec, ArgvIsTheDeprecatedFormOfArgsWithArgvZero) {
  auto e = parse(R"([{"name": "a", "program": "/bin/sh", "argv": ["-sh", "-c", "true"]},
                     {"name": "b", "program": "/bin/sh", "argv": []}])",
                 spawn_rules(), "");
  EXPECT_EQ(e[0].program.argv, (std::vector<std::string>{"-sh", "-c", "true"}));
  EXPECT_TRUE(e[1].program.argv.empty());  // as given
  EXPECT_EQ(error_of(R"([{"name": "a", "program": "/x", "args": [], "argv": ["x"]}])"),
            R"(processes[0].argv: expected args or argv (deprecated), not both, got ["x"])");
  EXPECT_EQ(error_of(R"([{"name": "a", "program": "/x", "argv": "x"}])"),
            R"(processes[0].argv: expected an array of strings, got "x")");
}

TEST(ProgramSpec, DefaultBuffersFollowTheRules) {
  Rules keep = spawn_rules();
  Rules zero = spawn_rules();
  zero.zero_buffers_default = true;
  const char *text = R"([{"name": "a", "program": "/x"},
      {"name": "b", "program": "/x", "claims": {"processes": 1}},
      {"name": "c", "program": "/x", "claims": {"buffers": 0}},
      {"name": "d", "program": "/x", "claims": {"buffers": 3}}])";
  auto k = parse(text, keep, "");
  auto z = parse(text, zero, "");
  EXPECT_EQ(k[0].claims.buffers, 8U);
  EXPECT_EQ(k[1].claims.buffers, 8U);
  EXPECT_EQ(k[1].claims.processes, 1U);
  EXPECT_EQ(k[2].claims.buffers, 0U);  // given: kept
  EXPECT_EQ(z[2].claims.buffers, 8U);  // given 0: the default
  EXPECT_EQ(k[3].claims.buffers, 3U);
  EXPECT_EQ(z[3].claims.buffers, 3U);
}

TEST(ProgramSpec, ErrorsNameTheJsonPath) {
  struct Case {
    const char *text;
    const char *error;
  } cases[] = {
      {R"({})", "processes: expected an array of objects, got {}"},
      {R"([1])", "processes[0]: expected an object, got 1"},
      {R"([{"name": "a", "program": "/x", "color": 1}])", "processes[0].color: unknown field"},
      {R"([{"program": "/x"}])",
       "processes[0].name: expected 1 to 31 characters of [A-Za-z0-9._-], got null"},
      {R"([{"name": 7, "program": "/x"}])",
       "processes[0].name: expected 1 to 31 characters of [A-Za-z0-9._-], got 7"},
      {R"([{"name": "a b", "program": "/x"}])",
       "processes[0].name: expected 1 to 31 characters of [A-Za-z0-9._-], got \"a b\""},
      {R"([{"name": "a\u0000b", "program": "/x"}])",
       "processes[0].name: expected 1 to 31 characters of [A-Za-z0-9._-], got \"a\\u0000b\""},
      {R"([{"name": "abcdefghijklmnopqrstuvwxyz012345", "program": "/x"}])",
       "processes[0].name: expected 1 to 31 characters of [A-Za-z0-9._-], got "
       "\"abcdefghijklmnopqrstuvwxyz012345\""},
      {R"([{"name": "a", "program": "/x"}, {"name": "a", "program": "/y"}])",
       "processes[1].name: expected a name not used before, got \"a\""},
      {R"([{"name": "a"}])", "processes[0].program: expected an absolute path, got null"},
      {R"([{"name": "a", "program": "x"}])",
       "processes[0].program: expected an absolute path, got \"x\""},
      {R"([{"name": "a", "program": ["/x"]}])",
       "processes[0].program: expected an absolute path, got [\"/x\"]"},
      {R"([{"name": "a", "program": "/x", "args": "x"}])",
       "processes[0].args: expected an array of strings, got \"x\""},
      {R"([{"name": "a", "program": "/x", "args": ["x", 1]}])",
       "processes[0].args[1]: expected a string, got 1"},
      {R"([{"name": "a", "program": "/x", "env": ["A=1", "B"]}])",
       "processes[0].env[1]: expected NAME=value, got \"B\""},
      {R"([{"name": "a", "program": "/x", "cwd": 1}])",
       "processes[0].cwd: expected a string, got 1"},
      {R"([{"name": "a", "program": "/x", "user": ""}])",
       "processes[0].user: expected a name or a number (as a string), got \"\""},
      {R"([{"name": "a", "program": "/x", "group": 0}])",
       "processes[0].group: expected a name or a number (as a string), got 0"},
      {R"([{"name": "a", "program": "/x", "claims": []}])",
       "processes[0].claims: expected an object, got []"},
      {R"([{"name": "a", "program": "/x", "claims": {"bufers": 1}}])",
       "processes[0].claims.bufers: unknown field (claims are buffers, processes, memory_bytes, "
       "devices, data_bytes)"},
      {R"([{"name": "a", "program": "/x", "claims": {"buffers": -1}}])",
       "processes[0].claims.buffers: expected a non-negative integer, got -1"},
      {R"([{"name": "a", "program": "/x", "claims": {"processes": 1.5}}])",
       "processes[0].claims.processes: expected a non-negative integer, got 1.5"},
      {R"([{"name": "a", "program": "/x", "claims": {"buffers": 65537}}])",
       "processes[0].claims.buffers: expected an integer in [0, 65536], got 65537"},
      {R"([{"name": "a", "program": "/x", "claims": {"devices": 1048577}}])",
       "processes[0].claims.devices: expected an integer in [0, 1048576], got 1048577"},
      {R"([{"name": "a", "program": "/x", "claims": {"data_bytes": 1073741825}}])",
       "processes[0].claims.data_bytes: expected an integer in [0, 1073741824], got 1073741825"},
      {R"([{"name": "a", "program": "/x", "start": "yes"}])",
       "processes[0].start: expected true or false, got \"yes\""},
      {R"([{"name": "a", "program": "/x", "children": {}}])",
       "processes[0].children: expected an array of objects, got {}"},
      // The example of docs/nucleusctl.md.
      {R"([{"name": "a", "program": "/x", "children": [{"name": "v", "program": "/v"},
                                                        {"name": "w", "program": "w"}]}])",
       "processes[0].children[1].program: expected an absolute path, got \"w\""},
      {R"([{"name": "a", "program": "/x", "children": [{"name": "a", "program": "/y"}]}])",
       "processes[0].children[0].name: expected a name not used before, got \"a\""},
  };
  for (const Case &c : cases) EXPECT_EQ(error_of(c.text), c.error) << c.text;
  // At the top of a document.
  EXPECT_NO_THROW(parse("[]", spawn_rules(), ""));  // an empty list is no error here
  EXPECT_EQ(error_of(R"({"a": 1})", spawn_rules(), ""),
            "(top level): expected an array of objects, got {\"a\":1}");
}

TEST(ProgramSpec, EachPlaceAllowsItsOwnKeys) {
  Rules boot;
  boot.default_buffers = 32;
  boot.user_required = true;
  boot.start = true;
  EXPECT_EQ(
      error_of(R"([{"name": "a", "program": "/x", "user": "root", "children": []}])", boot, "boot"),
      "boot[0].children: unknown field");
  EXPECT_EQ(error_of(R"([{"name": "a", "program": "/x"}])", boot, "boot"),
            "boot[0].user: expected the user (name or uid) its program runs as, got null");
  Rules child;
  child.own_keys = {"restart"};
  EXPECT_EQ(error_of(R"([{"name": "a", "program": "/x", "start": true}])", child, "children"),
            "children[0].start: unknown field");
  EXPECT_NO_THROW(parse(R"([{"name": "a", "program": "/x", "restart": 1}])", child, "children"));
  // Names taken before, with what a repeat is told; and the rules' wording.
  Names names{{"clock", "a name no device has"}};
  json doc = json::parse(R"([{"name": "clock", "program": "/x", "user": "root"}])");
  try {
    parse_entries(Value(doc, "boot"), boot, &names);
    ADD_FAILURE();
  } catch (const Error &e) {
    EXPECT_STREQ(e.what(), "boot[0].name: expected a name no device has, got \"clock\"");
    EXPECT_EQ(e.path(), "boot[0].name");
    EXPECT_EQ(e.message(), "expected a name no device has, got \"clock\"");
  }
  Rules in_file = spawn_rules();
  in_file.repeated_name = "a name not used before in the file";
  EXPECT_EQ(
      error_of(R"([{"name": "a", "program": "/x"}, {"name": "a", "program": "/x"}])", in_file, ""),
      "[1].name: expected a name not used before in the file, got \"a\"");
}

enum class Color { kRed, kGreen, kBlue = 5 };
NLOHMANN_JSON_SERIALIZE_ENUM(Color, {{Color::kRed, "red"},
                                     {Color::kGreen, "green"},
                                     {Color::kBlue, "blue"}})

TEST(ProgramSpec, EnumsAreOnlyTheirNames) {
  json doc = json::parse(R"({"a": "green", "b": "blue", "c": "purple", "d": 0, "e": "red"})");
  Value v(doc, "paint");
  EXPECT_EQ(v["a"].choice<Color>(), Color::kGreen);
  EXPECT_EQ(v["b"].choice<Color>(), Color::kBlue);
  EXPECT_EQ(v["e"].choice<Color>(), Color::kRed);
  // NLOHMANN_JSON_SERIALIZE_ENUM alone would give kRed (its first entry) for these.
  for (const char *key : {"c", "d", "missing"}) {
    try {
      (void)v[key].choice<Color>();
      ADD_FAILURE() << key;
    } catch (const Error &e) {
      EXPECT_EQ(e.path(), std::string("paint.") + key);
      EXPECT_EQ(e.message().rfind(R"(expected one of "red", "green", "blue", got )", 0), 0U)
          << e.what();
    }
  }
}

TEST(ProgramSpec, SerializersRoundTrip) {
  Program p{"/bin/sh", {"-sh", "-c", "exit 3"}, {"A=1"}, "/tmp", "nobody", ""};
  json j = p;
  EXPECT_EQ(j, json::parse(R"({"program": "/bin/sh", "argv": ["-sh", "-c", "exit 3"],
                              "env": ["A=1"], "cwd": "/tmp", "user": "nobody"})"));
  EXPECT_EQ(j.get<Program>(), p);  // lossless, argv[0] included
  Claims c{1, 2, 3, 4, 5};
  EXPECT_EQ(json(c).get<Claims>(), c);
  // Errors from the serializers get the path of the value they read.
  json doc = json::parse(R"({"claims": {"buffers": "x"}})");
  try {
    (void)Value(doc, "top")["claims"].get<Claims>("an object");
    ADD_FAILURE();
  } catch (const Error &e) {
    EXPECT_STREQ(e.what(), "top.claims.buffers: expected a non-negative integer, got \"x\"");
  }
}

TEST(ProgramSpec, ErrorsComposeTheirPaths) {
  EXPECT_STREQ(Error("b", "m").within("a").what(), "a.b: m");
  EXPECT_STREQ(Error("[2].b", "m").within("a").what(), "a[2].b: m");
  EXPECT_STREQ(Error("", "m").within("a").what(), "a: m");
  EXPECT_STREQ(Error("b", "m").within("").what(), "b: m");
  EXPECT_STREQ(Error("", "m").what(), "(top level): m");
}

}  // namespace
}  // namespace nucleus::spec
