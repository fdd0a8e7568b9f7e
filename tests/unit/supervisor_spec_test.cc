// The supervisor's spec (os-personalities/supervisor/spec.h): its own
// fields, its children in the shared program/claims shape, and the
// canonical text a handed-over state carries.
#include "spec.h"

#include <gtest/gtest.h>

namespace nucleus::supervisor {
namespace {

using nlohmann::json;

std::string error_of(const std::string &text) {
  try {
    (void)parse_spec(json::parse(text));
  } catch (const std::runtime_error &e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for " << text;
  return "";
}

// A spec written with the deprecated "argv" (argv[0] included).
constexpr const char *kSpec = R"({"strategy": "rest_for_one", "intensity": 5, "period_ms": 1000,
  "backoff_ms": 10, "backoff_max_ms": 80, "children": [
  {"name": "db", "program": "/usr/bin/nucleus-worker", "argv": ["nucleus-worker", "--ready-when-told"],
   "env": ["A=1"], "cwd": "/", "claims": {"buffers": 16, "processes": 2, "memory_bytes": 1048576,
   "devices": 1, "data_bytes": 4096}, "restart": "transient", "wait_ready": true},
  {"name": "web", "program": "/usr/bin/nucleus-worker", "argv": ["/usr/bin/nucleus-worker"],
   "restart": "temporary"}]})";

TEST(SupervisorSpec, ReadsItsFieldsAndItsChildren) {
  Spec s = parse_spec(json::parse(kSpec));
  EXPECT_EQ(s.strategy, Strategy::kRestForOne);
  EXPECT_EQ(s.intensity, 5U);
  EXPECT_EQ(s.period_ms, 1000U);
  EXPECT_EQ(s.backoff_ms, 10U);
  EXPECT_EQ(s.backoff_max_ms, 80U);
  ASSERT_EQ(s.children.size(), 2U);
  const ChildSpec &db = s.children[0];
  EXPECT_EQ(db.name, "db");
  EXPECT_EQ(db.program.argv, (std::vector<std::string>{"nucleus-worker", "--ready-when-told"}));
  EXPECT_EQ(db.program.cwd, "/");
  EXPECT_EQ(db.claims, (spec::Claims{16, 2, 1048576, 1, 4096}));
  EXPECT_EQ(db.restart, Restart::kTransient);
  EXPECT_TRUE(db.wait_ready);
  EXPECT_EQ(s.children[1].claims.buffers, 4U);  // the default
  EXPECT_EQ(s.children[1].restart, Restart::kTemporary);
  EXPECT_FALSE(s.children[1].wait_ready);
  // The defaults.
  Spec empty = parse_spec(json::object());
  EXPECT_EQ(empty.strategy, Strategy::kOneForOne);
  EXPECT_EQ(empty.intensity, 3U);
  EXPECT_TRUE(empty.children.empty());
}

TEST(SupervisorSpec, ChildrenTakeArgsAsTheOtherFilesDo) {
  Spec s = parse_spec(json::parse(R"({"children": [
      {"name": "w", "program": "/usr/bin/nucleus-worker", "args": ["--ready-when-told"],
       "user": "nobody"},
      {"name": "v", "program": "/usr/bin/nucleus-worker"}]})"));
  EXPECT_EQ(s.children[0].program.argv,
            (std::vector<std::string>{"nucleus-worker", "--ready-when-told"}));
  EXPECT_EQ(s.children[0].program.user, "nobody");
  EXPECT_EQ(s.children[0].restart, Restart::kPermanent);
  EXPECT_EQ(s.children[1].program.argv, (std::vector<std::string>{"nucleus-worker"}));
}

// Format 3 of the handed-over state: the same text (and hash) as the
// supervisor wrote before the shared parser, so that versions on either
// side of a swap agree on it.
TEST(SupervisorSpec, CanonicalTextIsFormatThree) {
  std::string text = spec_json(parse_spec(json::parse(kSpec))).dump();
  EXPECT_EQ(
      text,
      R"({"backoff_max_ms":80,"backoff_ms":10,"children":[{"argv":["nucleus-worker","--ready-when-told"],)"
      R"("claims":{"buffers":16,"data_bytes":4096,"devices":1,"memory_bytes":1048576,"processes":2},)"
      R"("cwd":"/","env":["A=1"],"name":"db","program":"/usr/bin/nucleus-worker","restart":"transient",)"
      R"("wait_ready":true},{"argv":["/usr/bin/nucleus-worker"],"claims":{"buffers":4,"data_bytes":0,)"
      R"("devices":0,"memory_bytes":0,"processes":0},"env":[],"name":"web",)"
      R"("program":"/usr/bin/nucleus-worker","restart":"temporary","wait_ready":false}],)"
      R"("intensity":5,"period_ms":1000,"strategy":"rest_for_one"})");
  EXPECT_EQ(fnv1a(text), 2470726573268804589ULL);
  // And it reads back as the same spec.
  EXPECT_EQ(spec_json(parse_spec(json::parse(text))).dump(), text);
}

// "controllers": the uids besides its owner and root that may send it
// control messages, given as uids or user names, kept as uids.
TEST(SupervisorSpec, ControllersAreUidsOrUserNames) {
  Spec s = parse_spec(json::parse(R"({"controllers": [65534, "root", "1000"]})"));
  EXPECT_EQ(s.controllers, (std::vector<uint32_t>{65534, 0, 1000}));
  EXPECT_TRUE(parse_spec(json::parse(kSpec)).controllers.empty());
  // The canonical text has them as uids, and reads back the same; a spec
  // without them has the text an older supervisor wrote (no key).
  std::string text = spec_json(s).dump();
  EXPECT_NE(text.find(R"("controllers":[65534,0,1000])"), std::string::npos) << text;
  EXPECT_EQ(parse_spec(json::parse(text)).controllers, s.controllers);
  EXPECT_EQ(spec_json(parse_spec(json::parse(kSpec))).dump().find("controllers"),
            std::string::npos);
  EXPECT_EQ(error_of(R"({"controllers": 0})"),
            "controllers: expected an array of uids or user names, got 0");
  EXPECT_EQ(error_of(R"({"controllers": ["no-such-user-here"]})"),
            "controllers[0]: expected a uid or a user name in the user database, got "
            "\"no-such-user-here\"");
  EXPECT_EQ(error_of(R"({"controllers": [0, -1]})"),
            "controllers[1]: expected a uid or a user name, got -1");
  EXPECT_EQ(error_of(R"({"controllers": [4294967295]})"),
            "controllers[0]: expected an integer in [0, 4294967294], got 4294967295");
}

TEST(SupervisorSpec, ErrorsNameTheJsonPath) {
  EXPECT_EQ(error_of("[]"), "(top level): expected an object, got []");
  EXPECT_EQ(
      error_of(R"({"strategy": "one_for_some"})"),
      R"(strategy: expected one of "one_for_one", "one_for_all", "rest_for_one", got "one_for_some")");
  EXPECT_EQ(error_of(R"({"intensity": -1})"), "intensity: expected a non-negative integer, got -1");
  EXPECT_EQ(error_of(R"({"children": {}})"), "children: expected an array of objects, got {}");
  EXPECT_EQ(error_of(R"({"restarts": 1})"), "restarts: unknown field");
  EXPECT_EQ(
      error_of(R"({"children": [{"name": "a", "program": "/x", "restart": "often"}]})"),
      R"(children[0].restart: expected one of "permanent", "transient", "temporary", got "often")");
  EXPECT_EQ(error_of(R"({"children": [{"name": "a", "program": "/x", "wait_ready": 1}]})"),
            "children[0].wait_ready: expected true or false, got 1");
  EXPECT_EQ(error_of(R"({"children": [{"name": "a", "program": "/x", "start": false}]})"),
            "children[0].start: unknown field");
  EXPECT_EQ(
      error_of(R"({"children": [{"name": "a", "program": "/x"}, {"name": "a", "program": "/y"}]})"),
      "children[1].name: expected a name not used before, got \"a\"");
  EXPECT_EQ(error_of(R"({"children": [{"name": "a", "program": "worker"}]})"),
            "children[0].program: expected an absolute path, got \"worker\"");
  EXPECT_EQ(
      error_of(R"({"children": [{"name": "a", "program": "/x", "claims": {"buffers": -4}}]})"),
      "children[0].claims.buffers: expected a non-negative integer, got -4");
}

// A swap to a changed spec (decision 72): children are matched by name; a
// change of program (path, argv, env, cwd, user, group) or claims replaces
// the child, a change of only restart or wait_ready does not.
TEST(SupervisorSpec, DiffMatchesChildrenByNameAndReplacesWhatRunsDifferently) {
  auto child = [](const std::string &name, const std::string &extra = "") {
    return R"({"name": ")" + name + R"(", "program": "/bin/w")" + extra + "}";
  };
  Spec before = parse_spec(json::parse(R"({"children": [)" + child("a") + "," + child("b") + "," +
                                       child("c") + "," + child("d") + "," + child("e") + "," +
                                       child("f") + "]}"));
  Spec now = parse_spec(json::parse(R"({"children": [)" +
                                    child("f", R"(, "restart": "temporary", "wait_ready": true)") +
                                    "," + child("a") + "," + child("c", R"(, "env": ["X=1"])") +
                                    "," + child("d", R"(, "claims": {"buffers": 9})") + "," +
                                    child("e", R"(, "args": ["-v"])") + "," + child("g") + "]}"));
  SpecChange d = diff_specs(before, now);
  ASSERT_EQ(d.from.size(), 6U);
  EXPECT_EQ(d.from[0], std::optional<size_t>(5));  // f moved to the front
  EXPECT_FALSE(d.replaced[0]) << "restart and wait_ready are not what runs";
  EXPECT_EQ(d.from[1], std::optional<size_t>(0));
  EXPECT_FALSE(d.replaced[1]);
  EXPECT_TRUE(d.replaced[2]) << "env";
  EXPECT_TRUE(d.replaced[3]) << "claims";
  EXPECT_TRUE(d.replaced[4]) << "args";
  EXPECT_EQ(d.from[5], std::nullopt) << "g is added";
  EXPECT_FALSE(d.replaced[5]);
  EXPECT_EQ(d.removed, std::vector<size_t>{1}) << "b is removed";
  EXPECT_TRUE(d.any());
  EXPECT_FALSE(diff_specs(before, before).any());
}

}  // namespace
}  // namespace nucleus::supervisor
