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

}  // namespace
}  // namespace nucleus::daemon
