// `nucleusctl send --data/--data-file/--receive` before anything reaches the
// nucleus: what range is lent with which rights, how many received bytes are
// kept, and the refusals; and the key-value example's shipped spawn file and
// supervisor spec, which nucleusctl and the supervisor must both read.
#include "send_data.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "spawn.h"
#include "spec.h"

namespace nucleus::ctl {
namespace {

TEST(SendData, TextIsLentReadAndAReceiveWriteInOneRangeOfTheLargerSize) {
  SendDataOptions o;
  o.text = "hello";
  DataLend lend;
  std::string error;
  ASSERT_TRUE(plan_lend(o, &lend, &error)) << error;
  EXPECT_EQ(lend.range, 5U);
  EXPECT_EQ(lend.rights, static_cast<uint32_t>(NUCLEUS_LEND_READ));
  EXPECT_EQ(lend.bytes.size(), 5U);
  EXPECT_EQ(rights_name(lend.rights), "read");

  o.receive = 4096;
  ASSERT_TRUE(plan_lend(o, &lend, &error)) << error;
  EXPECT_EQ(lend.range, 4096U);
  EXPECT_EQ(lend.rights, static_cast<uint32_t>(NUCLEUS_LEND_READ | NUCLEUS_LEND_WRITE));
  EXPECT_EQ(rights_name(lend.rights), "read,write");

  SendDataOptions only_receive;
  only_receive.receive = 3;
  ASSERT_TRUE(plan_lend(only_receive, &lend, &error)) << error;
  EXPECT_EQ(lend.range, 3U);
  EXPECT_TRUE(lend.bytes.empty());
  EXPECT_EQ(rights_name(lend.rights), "write");

  // Empty data lends nothing: the message goes without a range.
  SendDataOptions empty;
  empty.text = "";
  ASSERT_TRUE(plan_lend(empty, &lend, &error)) << error;
  EXPECT_EQ(lend.range, 0U);
  EXPECT_EQ(lend.rights, 0U);
}

TEST(SendData, AFileIsReadWhole) {
  char path[] = "/tmp/send-data-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string bytes(70000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7);
  ASSERT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  close(fd);
  SendDataOptions o;
  o.file = path;
  DataLend lend;
  std::string error;
  ASSERT_TRUE(plan_lend(o, &lend, &error)) << error;
  unlink(path);
  ASSERT_EQ(lend.bytes.size(), bytes.size());
  EXPECT_EQ(std::memcmp(lend.bytes.data(), bytes.data(), bytes.size()), 0);
  EXPECT_EQ(lend.range, bytes.size());
}

TEST(SendData, RefusesWhatItCannotMeanAndNamesIt) {
  DataLend lend;
  std::string error;
  SendDataOptions both;
  both.text = "x";
  both.file = "-";
  EXPECT_FALSE(plan_lend(both, &lend, &error));
  EXPECT_NE(error.find("give one of them"), std::string::npos) << error;
  SendDataOptions missing;
  missing.file = "/nonexistent/value.bin";
  EXPECT_FALSE(plan_lend(missing, &lend, &error));
  EXPECT_NE(error.find("cannot read /nonexistent/value.bin: No such file"), std::string::npos)
      << error;
  SendDataOptions word;
  word.receive = 8;
  word.length_word = 8;
  EXPECT_FALSE(plan_lend(word, &lend, &error));
  EXPECT_NE(error.find("0..7"), std::string::npos) << error;
  SendDataOptions no_receive;
  no_receive.text = "x";
  no_receive.length_word = 0;
  EXPECT_FALSE(plan_lend(no_receive, &lend, &error));
  EXPECT_NE(error.find("give --receive too"), std::string::npos) << error;
}

TEST(SendData, TheLengthWordIsBoundedByWhatWasLent) {
  Message answer{{5, 70000}};
  uint64_t kept = 0;
  std::string error;
  ASSERT_TRUE(received_length(answer, -1, 1024, &kept, &error));
  EXPECT_EQ(kept, 1024U);  // no word: the whole range
  ASSERT_TRUE(received_length(answer, 0, 1024, &kept, &error));
  EXPECT_EQ(kept, 5U);
  // A receiver that says more than it was lent is not believed.
  EXPECT_FALSE(received_length(answer, 1, 1024, &kept, &error));
  EXPECT_NE(error.find("says 70000 bytes, more than the 1024 lent"), std::string::npos) << error;
}

TEST(SendData, HexIsTwoDigitsPerByte) {
  const std::byte b[] = {std::byte{0x00}, std::byte{0xab}, std::byte{0x7f}};
  EXPECT_EQ(hex(b, 3), "00ab7f");
}

nlohmann::json read_json(const std::string &path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in, nullptr, false, /*ignore_comments=*/true);
}

// The files installed for the example (share/nucleus/examples), with the
// install's paths.
TEST(KvExampleFiles, TheSpawnFileAndTheSupervisorSpecParse) {
  nlohmann::json spawn = read_json(NUCLEUS_BINARY_DIR "/examples/install/kv.spawn.json");
  ASSERT_FALSE(spawn.is_discarded());
  std::vector<SpawnEntry> entries;
  std::string error;
  ASSERT_TRUE(parse_spawn(spawn, &entries, &error)) << error;
  ASSERT_EQ(entries.size(), 1U);
  ASSERT_EQ(entries[0].program.argv.size(), 2U);
  EXPECT_NE(entries[0].program.argv[1].find("/nucleus/examples/kv.supervisor.json"),
            std::string::npos);
  nlohmann::json spec = read_json(NUCLEUS_BINARY_DIR "/examples/install/kv.supervisor.json");
  ASSERT_FALSE(spec.is_discarded());
  supervisor::Spec s = supervisor::parse_spec(spec);
  ASSERT_EQ(s.children.size(), 2U);
  EXPECT_EQ(s.children[0].name, "kv");
  EXPECT_TRUE(s.children[0].wait_ready);
  EXPECT_EQ(s.children[1].name, "kv-client");
  // The spawn file's supervisor holds its children's buffers and more.
  EXPECT_GT(entries[0].claims.buffers, s.children[0].claims.buffers + s.children[1].claims.buffers);
}

}  // namespace
}  // namespace nucleus::ctl
