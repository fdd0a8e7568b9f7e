#include "config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

namespace nucleus::daemon {
namespace {

std::string error_of(const std::string &text) {
  Config c;
  std::string error;
  EXPECT_FALSE(parse_config(text, &c, &error)) << text;
  return error;
}

TEST(Config, DefaultIsValid) {
  Config c;
  std::string error;
  ASSERT_TRUE(parse_config(default_config_text(), &c, &error)) << error;
  EXPECT_EQ(c.pool_buffers, 16384U);
  EXPECT_EQ(c.default_claim_buffers, 32U);
  EXPECT_TRUE(c.allow_own_uid);
  EXPECT_EQ(c.doorbell, DoorbellMode::kAuto);
}

TEST(Config, EmptyObjectKeepsDefaults) {
  Config c;
  std::string error;
  ASSERT_TRUE(parse_config("{}", &c, &error)) << error;
  EXPECT_EQ(c.pool_buffers, 16384U);
}

TEST(Config, ErrorsNameTheFieldPath) {
  EXPECT_EQ(error_of(R"({"pool": {"buffers": "many"}})"),
            "pool.buffers: expected an integer in [1, 16777216], got \"many\"");
  EXPECT_EQ(error_of(R"({"pool": {"buffers": 0}})"),
            "pool.buffers: expected an integer in [1, 16777216], got 0");
  EXPECT_EQ(error_of(R"({"pool": {"bufers": 1}})"), "pool.bufers: unknown field");
  EXPECT_EQ(error_of(R"({"pool": 3})"), "pool: expected an object, got 3");
  EXPECT_EQ(error_of(R"({"channel": {"request_entries": 100}})"),
            "channel.request_entries: expected a power of two, got 100");
  EXPECT_EQ(error_of(R"({"attach": {"uids": [0, -1]}})"),
            "attach.uids[1]: expected a numeric id in [0, 4294967295], got -1");
  EXPECT_EQ(error_of(R"({"doorbell": "bell"})"),
            "doorbell: expected one of \"auto\", \"futex\", \"eventfd\", got \"bell\"");
  EXPECT_EQ(error_of(R"({"pool": {"buffers": 8}, "default_claims": {"buffers": 9}})"),
            "default_claims.buffers: expected at most pool.buffers (8), got 9");
  EXPECT_EQ(error_of("[]"), "(top level): expected an object, got []");
  EXPECT_NE(error_of("{").find("not valid JSON"), std::string::npos);
}

TEST(Config, DevicesDefaultToClockNullAndConsole) {
  Config c;
  std::string error;
  ASSERT_TRUE(parse_config("{}", &c, &error)) << error;
  ASSERT_EQ(c.devices.size(), 3U);
  EXPECT_EQ(c.devices[0].name, "clock");
  EXPECT_EQ(c.devices[2].kind, wire::DeviceKind::kConsole);
  EXPECT_EQ(c.devices[2].path, "stderr");
  EXPECT_EQ(c.devices[2].input, "stdin");
  ASSERT_TRUE(parse_config(default_config_text(), &c, &error)) << error;
  EXPECT_EQ(c.devices.size(), 3U);
  EXPECT_EQ(c.default_claim_devices, 0U);
  // An empty list names none.
  ASSERT_TRUE(parse_config(R"({"devices": []})", &c, &error)) << error;
  EXPECT_TRUE(c.devices.empty());
}

TEST(Config, DevicesAreChecked) {
  Config c;
  std::string error;
  ASSERT_TRUE(parse_config(
      R"({"devices": [{"name": "d0", "kind": "disk", "path": "/var/d0", "block_size": 4096,
                       "direct": true},
                      {"name": "tty", "kind": "console", "output": "/dev/tty1"},
                      {"name": "log", "kind": "console", "output": "/var/log/c", "input": "none"}]})",
      &c, &error))
      << error;
  ASSERT_EQ(c.devices.size(), 3U);
  EXPECT_EQ(c.devices[0].block_size, 4096U);
  EXPECT_TRUE(c.devices[0].direct);
  EXPECT_EQ(c.devices[1].input, "/dev/tty1");  // a terminal both ways
  EXPECT_EQ(c.devices[2].input, "");           // no input

  EXPECT_EQ(error_of(R"({"devices": {}})"), "devices: expected an array of objects, got {}");
  EXPECT_EQ(error_of(R"({"devices": [{"name": "x", "kind": "tape"}]})"),
            "devices[0].kind: expected one of \"clock\", \"console\", \"disk\", \"null\", "
            "got \"tape\"");
  EXPECT_EQ(error_of(R"({"devices": [{"kind": "clock"}]})"),
            "devices[0].name: expected 1 to 31 characters of [A-Za-z0-9._-], got \"\"");
  EXPECT_EQ(
      error_of(R"({"devices": [{"name": "x"}]})"),
      "devices[0].kind: expected one of \"clock\", \"console\", \"disk\", \"null\", got null");
  EXPECT_EQ(
      error_of(R"({"devices": [{"name": "x", "kind": "clock"}, {"name": "x", "kind": "null"}]})"),
      "devices[1].name: expected a name not used before, got \"x\"");
  EXPECT_EQ(error_of(R"({"devices": [{"name": "d", "kind": "disk"}]})"),
            "devices[0].path: expected the backing file of the disk, got null");
  EXPECT_EQ(
      error_of(R"({"devices": [{"name": "d", "kind": "disk", "path": "/d", "block_size": 1000}]})"),
      "devices[0].block_size: expected a power of two, got 1000");
  EXPECT_EQ(
      error_of(R"({"devices": [{"name": "d", "kind": "disk", "path": "/d", "block_size": 256}]})"),
      "devices[0].block_size: expected an integer in [512, 65536], got 256");
  EXPECT_EQ(error_of(R"({"devices": [{"name": "c", "kind": "clock", "speed": 2}]})"),
            "devices[0].speed: unknown field");
  EXPECT_EQ(error_of(R"({"default_claims": {"devices": -1}})"),
            "default_claims.devices: expected an integer in [0, 1048576], got -1");
}

}  // namespace
}  // namespace nucleus::daemon

namespace nucleus::daemon {
namespace {

TEST(Config, OperatorsAndLogLevel) {
  Config c;
  std::string error;
  ASSERT_TRUE(parse_config(
      R"({"operators": {"allow_own_uid": false, "uids": [0, 1000], "gids": [4]},
          "log": {"level": "warn"}})",
      &c, &error))
      << error;
  EXPECT_FALSE(c.operators_own_uid);
  EXPECT_EQ(c.operator_uids, (std::vector<uint32_t>{0, 1000}));
  EXPECT_EQ(c.operator_gids, (std::vector<uint32_t>{4}));
  EXPECT_EQ(c.log_level, "warn");
  ASSERT_TRUE(parse_config("{}", &c, &error));
  EXPECT_TRUE(c.operators_own_uid);
  EXPECT_TRUE(c.operator_uids.empty());
  EXPECT_EQ(c.log_level, "info");
  EXPECT_FALSE(parse_config(R"({"operators": {"admins": []}})", &c, &error));
  EXPECT_EQ(error, "operators.admins: unknown field");
  EXPECT_FALSE(parse_config(R"({"log": {"level": 3}})", &c, &error));
  EXPECT_EQ(error.rfind("log.level: expected one of \"trace\"", 0), 0U) << error;
}

TEST(Config, NamesSection) {
  Config c;
  std::string error;
  ASSERT_TRUE(parse_config("{}", &c, &error));
  EXPECT_TRUE(c.names.empty());  // every name is anyone's
  ASSERT_TRUE(parse_config(R"({"names": [{"own": "web", "uids": [0, 33]},
      {"own_prefix": "sup.", "uids": [0], "gids": [27]}, {"own_prefix": "sup.db."},
      {"own": "sup.db", "gids": [27]}]})",
                           &c, &error))
      << error;
  ASSERT_EQ(c.names.size(), 4U);
  EXPECT_EQ(c.names[0], (NameRule{"web", false, {0, 33}, {}}));
  EXPECT_EQ(c.names[1], (NameRule{"sup.", true, {0}, {27}}));
  EXPECT_EQ(c.names[2], (NameRule{"sup.db.", true, {}, {}}));
  // A name's own rule decides; else the longest prefix it begins with.
  EXPECT_EQ(name_rule(c.names, "web"), &c.names[0]);
  EXPECT_EQ(name_rule(c.names, "webby"), nullptr);
  EXPECT_EQ(name_rule(c.names, "sup.web"), &c.names[1]);
  EXPECT_EQ(name_rule(c.names, "sup.db.1"), &c.names[2]);
  EXPECT_EQ(name_rule(c.names, "sup.db"), &c.names[3]);
  EXPECT_EQ(name_rule(c.names, "sup"), nullptr);
  EXPECT_EQ(
      explain_names(c.names),
      (std::vector<std::string>{
          R"(names[0]: "web" may be taken only by uids 0, 33)",
          R"(names[1]: names beginning "sup." may be taken only by uids 0 or primary gids 27)",
          R"(names[2]: names beginning "sup.db." may be taken by no one)",
          R"(names[3]: "sup.db" may be taken only by primary gids 27)"}));
  EXPECT_EQ(error_of(R"({"names": {}})"), "names: expected an array of objects, got {}");
  EXPECT_EQ(error_of(R"({"names": [{"uids": [0]}]})"),
            R"(names[0]: expected exactly one of "own" (a name) and "own_prefix" (the start of )"
            R"(names), got {"uids":[0]})");
  EXPECT_EQ(error_of(R"({"names": [{"own": "a", "own_prefix": "b"}]})"),
            R"(names[0]: expected exactly one of "own" (a name) and "own_prefix" (the start of )"
            R"(names), got {"own":"a","own_prefix":"b"})");
  EXPECT_EQ(
      error_of(R"({"names": [{"own": "bad name"}]})"),
      R"(names[0].own: expected a name: 1 to 31 characters of [A-Za-z0-9._-], got "bad name")");
  EXPECT_EQ(error_of(R"({"names": [{"own_prefix": ""}]})"),
            R"(names[0].own_prefix: expected the start of names: 1 to 31 characters of )"
            R"([A-Za-z0-9._-], got "")");
  EXPECT_EQ(error_of(R"({"names": [{"own": "a"}, {"own": "b"}, {"own": "a", "uids": [1]}]})"),
            R"(names[2].own: expected a name no earlier rule names, got "a")");
  EXPECT_EQ(error_of(R"({"names": [{"own": "a", "uids": [-1]}]})"),
            "names[0].uids[0]: expected a numeric id in [0, 4294967295], got -1");
  EXPECT_EQ(error_of(R"({"names": [{"own": "a", "user": "root"}]})"),
            "names[0].user: unknown field");
}

TEST(Config, BootSection) {
  Config c;
  std::string error;
  ASSERT_TRUE(parse_config(R"({"boot": [{"name": "os", "program": "/usr/bin/nucleus-supervisor",
      "args": ["/etc/nucleus/os.json"], "env": ["A=1"], "cwd": "/",
      "claims": {"buffers": 64, "processes": 8, "devices": 1}, "user": "nucleus-os"},
      {"name": "idle", "program": "/bin/idle", "start": false, "user": "0", "group": "0"}]})",
                           &c, &error))
      << error;
  ASSERT_EQ(c.boot.size(), 2U);
  EXPECT_EQ(c.boot[0].program.argv,
            (std::vector<std::string>{"nucleus-supervisor", "/etc/nucleus/os.json"}));
  EXPECT_EQ(c.boot[0].program.env, (std::vector<std::string>{"A=1"}));
  EXPECT_EQ(c.boot[0].claims.buffers, 64U);
  EXPECT_EQ(c.boot[0].claims.processes, 8U);
  EXPECT_EQ(c.boot[0].claims.devices, 1U);
  EXPECT_TRUE(c.boot[0].start);
  EXPECT_EQ(c.boot[1].claims.buffers, 32U);  // the default
  EXPECT_FALSE(c.boot[1].start);
  EXPECT_FALSE(parse_config(R"({"boot": [{"name": "a", "program": "/a", "user": "root"},
      {"name": "a", "program": "/b"}]})",
                            &c, &error));
  EXPECT_EQ(error, "boot[1].name: expected a name not used before, got \"a\"");
  EXPECT_FALSE(parse_config(
      R"({"boot": [{"name": "a", "program": "/a", "user": "root", "env": ["X"]}]})", &c, &error));
  EXPECT_EQ(error, "boot[0].env[0]: expected NAME=value, got \"X\"");
  EXPECT_FALSE(parse_config(
      R"({"boot": [{"name": "a", "program": "/a", "user": "root", "nice": 1}]})", &c, &error));
  EXPECT_EQ(error, "boot[0].nice: unknown field");
}

// Boot entries are read by the parser of the spawn file and the
// supervisor's spec (common/program_spec.h).
TEST(Config, BootEntriesAreTheSharedProgramShape) {
  Config c;
  std::string error;
  ASSERT_TRUE(parse_config(R"({"boot": [{"name": "os", "program": "/bin/sh",
      "argv": ["-sh", "-c", "exec os"], "user": "root", "claims": {"buffers": 0}}]})",
                           &c, &error))
      << error;
  EXPECT_EQ(c.boot[0].program.argv, (std::vector<std::string>{"-sh", "-c", "exec os"}));
  EXPECT_EQ(c.boot[0].claims.buffers, 32U);  // 0: the default
  EXPECT_EQ(error_of(R"({"boot": [{"name": "os", "program": "/bin/os", "user": "root",
      "args": [], "argv": []}]})"),
            "boot[0].argv: expected args or argv (deprecated), not both, got []");
  EXPECT_EQ(error_of(R"({"boot": [{"name": "os", "program": "/bin/os", "user": "root",
      "claims": {"buffer": 1}}]})"),
            "boot[0].claims.buffer: unknown field (claims are buffers, processes, memory_bytes, "
            "devices, data_bytes)");
  EXPECT_EQ(error_of(R"({"boot": [{"name": "os", "program": "/bin/os", "user": "root",
      "children": []}]})"),
            "boot[0].children: unknown field");
  EXPECT_EQ(error_of(R"({"boot": {}})"), "boot: expected an array of objects, got {}");
  EXPECT_EQ(error_of(R"({"boot": [{"name": "os", "program": "/bin/os", "user": "root"}],
      "doorbell": "bell"})"),
            R"(doorbell: expected one of "auto", "futex", "eventfd", got "bell")");
}

TEST(Config, DiffSaysWhatAReloadAppliesAndWhatNeedsARestart) {
  Config a, b;
  std::string error;
  ASSERT_TRUE(parse_config("{}", &a, &error));
  ASSERT_TRUE(parse_config(R"({"log": {"level": "debug"}, "operators": {"uids": [7]},
      "attach": {"uids": [8], "timeout_ms": 100}, "default_claims": {"devices": 2},
      "pool": {"buffers": 1024}, "devices": [], "doorbell": "eventfd",
      "names": [{"own": "web", "uids": [0]}],
      "boot": [{"name": "os", "program": "/bin/os", "user": "root"}]})",
                           &b, &error))
      << error;
  ConfigChanges d = diff_config(a, b);
  EXPECT_EQ(d.applied, (std::vector<std::string>{"log.level", "operators.uids", "attach.uids",
                                                 "names", "default_claims.devices"}));
  EXPECT_EQ(d.restart, (std::vector<std::string>{"pool.buffers", "devices", "boot",
                                                 "attach.timeout_ms", "doorbell"}));
  // A reload copies exactly what the diff calls applied.
  Config reloaded = a;
  apply_reloadable(b, &reloaded);
  ConfigChanges after = diff_config(reloaded, b);
  EXPECT_TRUE(after.applied.empty());
  EXPECT_EQ(after.restart, d.restart);
  ConfigChanges none = diff_config(a, a);
  EXPECT_TRUE(none.applied.empty());
  EXPECT_TRUE(none.restart.empty());
}

// The JSON Schema file and the default configuration name the same fields:
// every field the default sets is in the schema, and every object in the
// schema refuses fields it does not list, as nucleusd does.
void same_fields(const nlohmann::json &schema, const nlohmann::json &value,
                 const std::string &path) {
  if (!value.is_object()) return;
  ASSERT_TRUE(schema.contains("properties")) << path;
  EXPECT_EQ(schema.value("additionalProperties", true), false) << path;
  for (const auto &item : value.items()) {
    ASSERT_TRUE(schema["properties"].contains(item.key())) << path << "." << item.key();
    same_fields(schema["properties"][item.key()], item.value(), path + "." + item.key());
  }
  for (const auto &item : schema["properties"].items()) {
    EXPECT_TRUE(value.contains(item.key()) || path == "(top)" ||
                item.value().value("deprecated", false))
        << path << "." << item.key() << " is in the schema but not in the default";
  }
}

TEST(Config, EventLoopSection) {
  Config c;
  std::string error;
  ASSERT_TRUE(parse_config("{}", &c, &error)) << error;
  EXPECT_EQ(c.poll.mode, PollMode::kAdaptive);
  EXPECT_EQ(c.poll.window_ns, 250000);
  EXPECT_EQ(c.poll.cpu_percent, 50U);
  EXPECT_TRUE(c.defer_taskrun);
  ASSERT_TRUE(parse_config(R"({"event_loop": {"poll": "fixed", "poll_window_ns": 80000,
      "poll_cpu_percent": 25, "defer_taskrun": false}})",
                           &c, &error))
      << error;
  EXPECT_EQ(c.poll.mode, PollMode::kFixed);
  EXPECT_EQ(c.poll.window_ns, 80000);
  EXPECT_EQ(c.poll.cpu_percent, 25U);
  EXPECT_FALSE(c.defer_taskrun);
  ASSERT_TRUE(parse_config(R"({"event_loop": {"poll": "off"}})", &c, &error)) << error;
  EXPECT_EQ(c.poll.mode, PollMode::kOff);
  // The deprecated spin_ns: above 0 a fixed window; 0 (its old default)
  // leaves the adaptive default.
  ASSERT_TRUE(parse_config(R"({"event_loop": {"spin_ns": 30000}})", &c, &error)) << error;
  EXPECT_EQ(c.poll.mode, PollMode::kFixed);
  EXPECT_EQ(c.poll.window_ns, 30000);
  ASSERT_TRUE(parse_config(R"({"event_loop": {"spin_ns": 0}})", &c, &error)) << error;
  EXPECT_EQ(c.poll.mode, PollMode::kAdaptive);
  for (const char *bad :
       {R"({"event_loop": {"poll": "always"}})", R"({"event_loop": {"poll_cpu_percent": 0}})",
        R"({"event_loop": {"poll_cpu_percent": 101}})", R"({"event_loop": {"poll_window_ns": -1}})",
        R"({"event_loop": {"defer_taskrun": 1}})"}) {
    EXPECT_FALSE(parse_config(bad, &c, &error)) << bad;
    EXPECT_NE(error.find("event_loop."), std::string::npos) << error;
  }
  // Polling is applied by a reload; the ring's flags need a restart.
  Config a, b;
  ASSERT_TRUE(parse_config("{}", &a, &error));
  ASSERT_TRUE(parse_config(R"({"event_loop": {"poll": "off", "poll_cpu_percent": 10,
      "defer_taskrun": false}})",
                           &b, &error))
      << error;
  ConfigChanges d = diff_config(a, b);
  EXPECT_EQ(d.applied,
            (std::vector<std::string>{"event_loop.poll", "event_loop.poll_cpu_percent"}));
  EXPECT_EQ(d.restart, (std::vector<std::string>{"event_loop.defer_taskrun"}));
  apply_reloadable(b, &a);
  EXPECT_EQ(a.poll.mode, PollMode::kOff);
  EXPECT_TRUE(a.defer_taskrun);
}

TEST(Config, SchemaFileMatchesTheDefault) {
  std::ifstream s(NUCLEUS_SOURCE_DIR "/config/nucleus.schema.json");
  std::ifstream d(NUCLEUS_SOURCE_DIR "/config/nucleus.json");
  auto schema = nlohmann::json::parse(s);
  auto config = nlohmann::json::parse(d, nullptr, true, true);
  same_fields(schema, config, "(top)");
  for (const auto &item : schema["properties"].items()) {
    EXPECT_TRUE(config.contains(item.key())) << item.key() << " missing from config/nucleus.json";
  }
  for (const auto &item : schema["properties"]["devices"]["items"]["properties"].items()) {
    Config c;
    std::string error;
    // Every device field the schema names is one nucleusd knows.
    nlohmann::json dev{{"name", "d"}, {"kind", "null"}};
    if (item.key() != "name" && item.key() != "kind") {
      dev[item.key()] = item.value().value("type", "") == "integer"   ? nlohmann::json(512)
                        : item.value().value("type", "") == "boolean" ? nlohmann::json(false)
                                                                      : nlohmann::json("x");
    }
    EXPECT_TRUE(parse_config(nlohmann::json{{"devices", {dev}}}.dump(), &c, &error))
        << item.key() << ": " << error;
  }
}

TEST(Config, LimitsSection) {
  Config c;
  std::string error;
  ASSERT_TRUE(parse_config("{}", &c, &error)) << error;
  EXPECT_EQ(c.limits, Limits{});
  EXPECT_EQ(c.output, OutputMode::kFile);  // never nucleusd's own stderr
  ASSERT_TRUE(parse_config(R"({"limits": {"per_uid": {"processes": 3, "pending_attaches": 2},
      "per_connection": {"replies": 32}, "per_parent": {"exit_notices": 1},
      "stop_timeout_ms": 50, "launch_timeout_ms": 70}})",
                           &c, &error))
      << error;
  EXPECT_EQ(c.limits.uid_processes, 3U);
  EXPECT_EQ(c.limits.uid_pending_attaches, 2U);
  EXPECT_EQ(c.limits.connection_replies, 32U);
  EXPECT_EQ(c.limits.parent_exit_notices, 1U);
  EXPECT_EQ(c.limits.stop_timeout_ms, 50U);
  EXPECT_EQ(c.limits.launch_timeout_ms, 70U);
  EXPECT_EQ(c.limits.uid_names, Limits{}.uid_names);
  EXPECT_FALSE(parse_config(R"({"limits": {"per_uid": {"processes": 0}}})", &c, &error));
  EXPECT_EQ(error, "limits.per_uid.processes: expected an integer in [1, 1048576], got 0");
  // Inspection work: a page's bytes and a turn's.
  ASSERT_TRUE(parse_config(R"({"limits": {"per_connection": {"control_reply_bytes": 4096},
      "per_turn": {"control_bytes": 1024}}})",
                           &c, &error))
      << error;
  EXPECT_EQ(c.limits.connection_control_reply_bytes, 4096U);
  EXPECT_EQ(c.limits.turn_control_bytes, 1024U);
  EXPECT_FALSE(parse_config(R"({"limits": {"per_connection": {"control_reply_bytes": 262144}}})",
                            &c, &error));
  EXPECT_EQ(error,
            "limits.per_connection.control_reply_bytes: expected an integer in [4096, 131072], "
            "got 262144");
  EXPECT_FALSE(parse_config(R"({"limits": {"per_turn": {"control_bytes": 0}}})", &c, &error));
  EXPECT_EQ(error, "limits.per_turn.control_bytes: expected an integer in [1024, 16777216], got 0");
  EXPECT_FALSE(parse_config(R"({"limits": {"launch_timeout_ms": 0}})", &c, &error));
  EXPECT_EQ(error, "limits.launch_timeout_ms: expected an integer in [1, 3600000], got 0");
  EXPECT_FALSE(parse_config(R"({"processes": {"output_dir": "logs"}})", &c, &error));
  EXPECT_EQ(error, R"(processes.output_dir: expected an absolute path (or ""), got "logs")");
  EXPECT_FALSE(parse_config(R"({"processes": {"output": "inherit"}})", &c, &error));
  EXPECT_EQ(error, R"(processes.output: expected one of "file", "discard", got "inherit")");
  EXPECT_FALSE(parse_config(R"({"boot": [{"name": "os", "program": "/bin/os"}]})", &c, &error));
  EXPECT_EQ(error, "boot[0].user: expected the user (name or uid) its program runs as, got null");
  // Limits apply at once on a reload.
  Config a, b;
  ASSERT_TRUE(parse_config("{}", &a, &error));
  ASSERT_TRUE(parse_config(R"({"limits": {"per_uid": {"names": 9}}})", &b, &error));
  EXPECT_EQ(diff_config(a, b).applied, (std::vector<std::string>{"limits"}));
}

}  // namespace
}  // namespace nucleus::daemon
