#include "config.h"

#include <gtest/gtest.h>

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
