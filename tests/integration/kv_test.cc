// The key-value example against a real nucleusd (docs/data-and-regret.md):
// nucleus-kv-server and nucleus-kv-client as real programs, values moved as
// data lent with a message and checked byte for byte (0 bytes, 1, 1 KiB and
// the whole 64 KiB data area), authorisation by the sender's principal, a
// put withdrawn by regret while the server is stopped, the whole service
// under the supervisor from its shipped spawn file, and `nucleusctl send
// --data/--data-file/--receive` with the server as the receiver.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "harness.h"
#include "kv_protocol.h"
#include "run_program.h"

namespace nucleus::test {
namespace {

using nlohmann::json;

const char *kServer = NUCLEUS_KV_SERVER_PATH;
const char *kClient = NUCLEUS_KV_CLIENT_PATH;
const char *kSpawnFile = NUCLEUS_KV_SPAWN_FILE;
const char *kCtl = NUCLEUSCTL_PATH;

// Data areas of 64 KiB (the default, said here so that the edges below
// stay the edges): the largest value fills one.
const char *kConfig = R"({"default_claims": {"buffers": 32, "processes": 4},
                          "channel": {"data_bytes": 65536},
                          "attach": {"uids": [65534]}})";

std::vector<std::byte> pattern(size_t size, uint64_t seed) {
  std::vector<std::byte> v(size);
  kv::fill_pattern(v, seed);
  return v;
}

std::vector<std::byte> bytes_of(const std::string &s) {
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

std::vector<std::byte> read_bytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return bytes_of(s);
}

void write_bytes(const std::string &path, const std::vector<std::byte> &v) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char *>(v.data()), static_cast<std::streamsize>(v.size()));
}

// An answer, or result -1 when there was none.
struct Reply {
  int result = -1;
  Message message{};
  std::vector<std::byte> value;  // a get's: the bytes the answer says were copied
};

// A put through the library: the value at the start of `n`'s data area,
// lent read-only (nothing lent for an empty value).
Reply put(Nucleus &n, const std::string &key, const std::vector<std::byte> &value) {
  Reply r;
  if (value.size() > n.data().size()) return r;
  std::copy(value.begin(), value.end(), n.data().begin());
  Lend lend{};
  lend.bytes = value.size();
  lend.rights = NUCLEUS_LEND_READ;
  Message m = kv::request(kv::kPut, key);
  auto b = value.empty() ? n.send_message("kv", m) : n.send_message("kv", m, lend);
  if (!b) return r;
  auto a = n.wait_answer(b.value(), kDeadline);
  if (!a) return r;
  return Reply{a->result, a->message, {}};
}

// A get through the library, lending the first `capacity` bytes of `n`'s
// data area for writing; the area is filled with 0xee first, so that bytes
// the server did not copy cannot pass for the value.
Reply get(Nucleus &n, const std::string &key, uint64_t capacity) {
  Reply r;
  std::fill(n.data().begin(), n.data().end(), std::byte{0xee});
  Lend lend{};
  lend.bytes = capacity;
  lend.rights = NUCLEUS_LEND_WRITE;
  auto b = n.send_message("kv", kv::request(kv::kGet, key), lend);
  if (!b) return r;
  auto a = n.wait_answer(b.value(), kDeadline);
  if (!a) return r;
  r = Reply{a->result, a->message, {}};
  if (a->result == NUCLEUS_RESULT_NORMAL && a->message.word[0] <= capacity) {
    r.value.assign(n.data().begin(), n.data().begin() + static_cast<ptrdiff_t>(a->message.word[0]));
  }
  return r;
}

Reply erase(Nucleus &n, const std::string &key) {
  Reply r;
  auto b = n.send_message("kv", kv::request(kv::kDelete, key));
  if (!b) return r;
  auto a = n.wait_answer(b.value(), kDeadline);
  if (!a) return r;
  return Reply{a->result, a->message, {}};
}

class KvExample : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<Daemon>(kConfig);
    ASSERT_TRUE(daemon_->ready()) << daemon_->log();
  }

  // nucleus-kv-server as "kv", a child of `top` (which may stop and start it).
  void start_server() {
    top_ = attach("top");
    Claims claims{};
    claims.buffers = 8;
    ASSERT_TRUE(top_.create_process("kv", Program{kServer, {kServer}, {}, {}, {}, {}}, claims));
    ASSERT_TRUE(top_.start_process("kv"));
  }

  Ran client(std::vector<std::string> args) { return run_program(kClient, args); }
  Ran ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {"--socket", daemon_->socket_path()});
    return run_program(kCtl, args);
  }
  std::string path(const std::string &name) const { return daemon_->dir() + "/" + name; }

  std::unique_ptr<Daemon> daemon_;
  Nucleus top_;
};

TEST_F(KvExample, ValuesOf0And1And1KiBAnd64KiBRoundTripByteForByte) {
  start_server();
  ASSERT_EQ(top_.data().size(), kv::kMaxValueBytes);  // 64 KiB: the whole data area
  // A key never put: the first answer also says the server serves.
  EXPECT_EQ(get(top_, "none", 16).message.word[0], static_cast<uint64_t>(ENOENT));
  const std::vector<std::pair<std::string, std::vector<std::byte>>> values = {
      {"empty", {}},
      {"one", pattern(1, 1)},
      {"kib", pattern(1024, 2)},
      {"whole-area", pattern(kv::kMaxValueBytes, 3)},
  };
  for (const auto &[key, value] : values) {
    Reply p = put(top_, key, value);
    ASSERT_EQ(p.result, NUCLEUS_RESULT_NORMAL) << key << " word 0 " << p.message.word[0];
    EXPECT_EQ(p.message.word[0], value.size()) << key;
    EXPECT_EQ(p.message.word[1], getuid()) << key;  // its owner
  }
  for (const auto &[key, value] : values) {
    Reply g = get(top_, key, kv::kMaxValueBytes);
    ASSERT_EQ(g.result, NUCLEUS_RESULT_NORMAL) << key;
    EXPECT_EQ(g.message.word[0], value.size()) << key;
    EXPECT_TRUE(g.value == value) << key << ": the bytes differ";
  }
  // A put again replaces the value; a delete removes it.
  ASSERT_EQ(put(top_, "kib", pattern(1024, 4)).result, NUCLEUS_RESULT_NORMAL);
  EXPECT_TRUE(get(top_, "kib", 1024).value == pattern(1024, 4));
  EXPECT_EQ(erase(top_, "kib").result, NUCLEUS_RESULT_NORMAL);
  Reply gone = get(top_, "kib", 1024);
  EXPECT_EQ(gone.result, NUCLEUS_RESULT_REJECTED);
  EXPECT_EQ(gone.message.word[0], static_cast<uint64_t>(ENOENT));
}

TEST_F(KvExample, AGetLendingLessThanTheValueIsToldItsLengthAndGetsNothing) {
  start_server();
  ASSERT_EQ(put(top_, "big", pattern(4096, 5)).result, NUCLEUS_RESULT_NORMAL);
  Reply g = get(top_, "big", 4095);
  EXPECT_EQ(g.result, NUCLEUS_RESULT_REJECTED);
  EXPECT_EQ(g.message.word[0], static_cast<uint64_t>(E2BIG));
  EXPECT_EQ(g.message.word[1], 4096U);
  // Nothing was written into the range lent.
  EXPECT_EQ(top_.data()[0], std::byte{0xee});
  // A put that lends nothing readable, and a malformed key, are refused.
  Lend write_only{};
  write_only.bytes = 16;
  write_only.rights = NUCLEUS_LEND_WRITE;
  auto b = top_.send_message("kv", kv::request(kv::kPut, "w"), write_only);
  ASSERT_TRUE(b);
  auto a = top_.wait_answer(b.value(), kDeadline);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result, NUCLEUS_RESULT_REJECTED);
  EXPECT_EQ(a->message.word[0], static_cast<uint64_t>(EPROTO));
  Message no_key = kv::request(kv::kGet, "k");
  no_key.word[1] = kv::kMaxKeyBytes + 1;
  b = top_.send_message("kv", no_key);
  ASSERT_TRUE(b);
  a = top_.wait_answer(b.value(), kDeadline);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result, NUCLEUS_RESULT_UNINTELLIGIBLE);
}

TEST_F(KvExample, TheClientProgramPutsGetsAndChecksEveryByte) {
  start_server();
  Ran run = client({"--name", "runner", "run", "--sizes", "0,1,1024,65536", "--rounds", "5"});
  EXPECT_EQ(run.code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("runner/65536: 65536 bytes x 5"), std::string::npos) << run.out;
  // One line per size, each with every value checked and none different.
  size_t clean = 0;
  for (size_t at = 0;
       (at = run.out.find("5 checked, 0 differed, 0 withdrawn", at)) != std::string::npos; ++at) {
    ++clean;
  }
  EXPECT_EQ(clean, 4U) << run.out;
  // Without --keep it deleted its keys.
  EXPECT_EQ(get(top_, "runner/1024", 1024).message.word[0], static_cast<uint64_t>(ENOENT));

  // A value from a file, back into a file, byte for byte; and one the test
  // puts, got by the client.
  std::vector<std::byte> value = pattern(65536, 6);
  write_bytes(path("value.bin"), value);
  Ran p = client({"put", "from-file", "--file", path("value.bin")});
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_TRUE(get(top_, "from-file", 65536).value == value);
  Ran g = client({"get", "from-file", "--out", path("back.bin")});
  ASSERT_EQ(g.code, 0) << g.err;
  EXPECT_TRUE(read_bytes(path("back.bin")) == value);
  ASSERT_EQ(put(top_, "text", bytes_of("hello, nucleus")).result, NUCLEUS_RESULT_NORMAL);
  Ran t = client({"get", "text"});
  EXPECT_EQ(t.code, 0) << t.err;
  EXPECT_EQ(t.out, "hello, nucleus");
  Ran missing = client({"get", "no-such-key"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("no such key"), std::string::npos) << missing.err;
}

TEST_F(KvExample, OnlyTheKeysOwnerMayPutItAgainOrDeleteIt) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  daemon_->let_others_in();
  start_server();
  std::vector<std::byte> roots = pattern(1024, 7);
  ASSERT_EQ(put(top_, "roots", roots).result, NUCLEUS_RESULT_NORMAL);
  pid_t other = spawn([&]() {
    if (!become()) return 10;
    auto n = Nucleus::attach("other");
    if (!n) return 11;
    // It may read root's key, byte for byte.
    Reply g = get(n.value(), "roots", 1024);
    if (g.result != NUCLEUS_RESULT_NORMAL || g.value != roots || g.message.word[1] != 0) return 12;
    // It may not replace or delete it.
    Reply p = put(n.value(), "roots", pattern(16, 8));
    if (p.result != NUCLEUS_RESULT_REJECTED || p.message.word[0] != EACCES) return 13;
    Reply e = erase(n.value(), "roots");
    if (e.result != NUCLEUS_RESULT_REJECTED || e.message.word[0] != EACCES) return 14;
    // Its own key is its own: kNobody owns it.
    Reply own = put(n.value(), "others", pattern(64, 9));
    if (own.result != NUCLEUS_RESULT_NORMAL || own.message.word[1] != kNobody) return 15;
    return 0;
  });
  EXPECT_EQ(exit_code(wait_exit(other)), 0);
  EXPECT_TRUE(get(top_, "roots", 1024).value == roots);
  // And root may not delete kNobody's.
  Reply e = erase(top_, "others");
  EXPECT_EQ(e.result, NUCLEUS_RESULT_REJECTED);
  EXPECT_EQ(e.message.word[0], static_cast<uint64_t>(EACCES));
}

// The issue's trial: with the server stopped, a put that timed out stayed
// queued and was applied when the server resumed. Now the client regrets it.
TEST_F(KvExample, APutThatTimesOutIsWithdrawnAndNeverApplied) {
  start_server();
  ASSERT_EQ(put(top_, "late", bytes_of("old")).result, NUCLEUS_RESULT_NORMAL);
  auto stop = top_.stop_process("kv");
  ASSERT_TRUE(stop);
  auto stopped = top_.wait_answer(stop.value(), kDeadline);
  ASSERT_TRUE(stopped);
  ASSERT_EQ(stopped->result, NUCLEUS_RESULT_NORMAL);
  // The stopped server cannot take it: the client's put times out, and its
  // regret withdraws it.
  Ran p = client({"--timeout-ms", "100", "put", "late", "--text", "stale"});
  EXPECT_EQ(p.code, 3) << p.err;
  EXPECT_NE(p.err.find("withdrawn (regret)"), std::string::npos) << p.err;
  ASSERT_TRUE(top_.start_process("kv"));
  Reply g = get(top_, "late", 64);
  ASSERT_EQ(g.result, NUCLEUS_RESULT_NORMAL);
  EXPECT_TRUE(g.value == bytes_of("old")) << "the withdrawn put was applied";
}

TEST_F(KvExample, RunsUnderTheSupervisorFromItsSpawnFile) {
  Ran s = ctl({"spawn", "-f", kSpawnFile});
  ASSERT_EQ(s.code, 0) << s.err;
  // The client's run ends with status 0 when every value came back as put.
  json client_entry;
  ASSERT_TRUE(eventually([&] {
    Ran ps = ctl({"--json", "ps"});
    json j = json::parse(ps.out, nullptr, false);
    if (j.is_discarded()) return false;
    for (const json &p : j["processes"]) {
      if (p["name"] == "kv-client" && p.contains("exit")) {
        client_entry = p;
        return true;
      }
    }
    return false;
  })) << daemon_->log();
  std::ifstream log(daemon_->dir() + "/output/" + std::to_string(getuid()) + "/kv-client.log");
  std::string output((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_EQ(client_entry["exit"]["kind"], "code") << output;
  EXPECT_EQ(client_entry["exit"]["value"], 0) << output;
  // It kept the last value of each size (--keep, 100 rounds): byte for byte
  // what round 100 put.
  Nucleus n = attach("checker");
  for (uint64_t size : {1024U, 65536U}) {
    Reply g = get(n, "kv-client/" + std::to_string(size), 65536);
    ASSERT_EQ(g.result, NUCLEUS_RESULT_NORMAL) << size;
    EXPECT_TRUE(g.value == pattern(size, size << 16 | 100)) << size << ": the bytes differ";
  }
}

// ---- nucleusctl send with data ---------------------------------------------------

// Key "k1" in the words of nucleusctl send: its length, then its bytes.
const std::vector<std::string> kPutK1 = {"1", "2", "0x316b"};
const std::vector<std::string> kGetK1 = {"2", "2", "0x316b"};

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string> &b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST_F(KvExample, CtlSendLendsDataFromTheCommandLineAFileOrStdin) {
  start_server();
  Ran text = ctl(std::vector<std::string>{"send", "kv", "--data", "hello"} + kPutK1);
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_TRUE(get(top_, "k1", 64).value == bytes_of("hello"));

  std::vector<std::byte> value = pattern(65536, 10);
  write_bytes(path("v.bin"), value);
  Ran file = ctl(std::vector<std::string>{"send", "kv", "--data-file", path("v.bin")} + kPutK1);
  ASSERT_EQ(file.code, 0) << file.err;
  EXPECT_TRUE(get(top_, "k1", 65536).value == value);

  std::vector<std::byte> kib = pattern(1024, 11);
  write_bytes(path("kib.bin"), kib);
  Ran in =
      run_program("/bin/sh", {"-c", std::string(kCtl) + " --socket " + daemon_->socket_path() +
                                        " send kv --data-file - 1 2 0x316b < " + path("kib.bin")});
  ASSERT_EQ(in.code, 0) << in.err;
  EXPECT_TRUE(get(top_, "k1", 65536).value == kib);
}

TEST_F(KvExample, CtlSendReceivesIntoAFileStdoutOrJson) {
  start_server();
  std::vector<std::byte> value = pattern(65536, 12);
  ASSERT_EQ(put(top_, "k1", value).result, NUCLEUS_RESULT_NORMAL);
  Ran to_file = ctl(std::vector<std::string>{"send", "kv", "--receive", "65536", "--length-word",
                                             "0", "--out", path("got.bin")} +
                    kGetK1);
  ASSERT_EQ(to_file.code, 0) << to_file.err;
  EXPECT_NE(to_file.out.find("received 65536 bytes into"), std::string::npos) << to_file.out;
  EXPECT_TRUE(read_bytes(path("got.bin")) == value);

  ASSERT_EQ(put(top_, "k1", bytes_of("short")).result, NUCLEUS_RESULT_NORMAL);
  // To stdout: only the bytes (--length-word: 5 of the 1024 lent); the
  // answer's lines go to stderr.
  Ran out = ctl(std::vector<std::string>{"send", "kv", "--receive", "1024", "--length-word", "0"} +
                kGetK1);
  ASSERT_EQ(out.code, 0) << out.err;
  EXPECT_EQ(out.out, "short");
  EXPECT_NE(out.err.find("result 1 (normal)"), std::string::npos) << out.err;
  // Without --length-word, all the range lent: what the server did not write is zero.
  Ran whole = ctl(std::vector<std::string>{"send", "kv", "--receive", "8"} + kGetK1);
  ASSERT_EQ(whole.code, 0) << whole.err;
  EXPECT_EQ(whole.out, std::string("short\0\0\0", 8));

  Ran j = ctl(
      std::vector<std::string>{"--json", "send", "kv", "--receive", "16", "--length-word", "0"} +
      kGetK1);
  ASSERT_EQ(j.code, 0) << j.err;
  json doc = json::parse(j.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << j.out;
  EXPECT_EQ(doc["data"]["lent_bytes"], 16);
  EXPECT_EQ(doc["data"]["rights"], "write");
  EXPECT_EQ(doc["data"]["received_bytes"], 5);
  EXPECT_EQ(doc["data"]["received_hex"], "73686f7274");  // "short"

  // A rejected answer writes nothing: its words say why, not how much.
  Ran small = ctl(
      std::vector<std::string>{"send", "kv", "--receive", "2", "--out", path("none.bin")} + kGetK1);
  EXPECT_EQ(small.code, 1);
  EXPECT_NE(small.out.find("rejected"), std::string::npos) << small.out;
  EXPECT_NE(access(path("none.bin").c_str(), F_OK), 0);
}

TEST_F(KvExample, CtlSendRefusesWhatItCannotLendAndWithdrawsWhatTimesOut) {
  start_server();
  // More than its data area (64 KiB here), before anything is sent.
  Ran big = ctl(std::vector<std::string>{"send", "kv", "--receive", "65537"} + kGetK1);
  EXPECT_EQ(big.code, 1);
  EXPECT_NE(big.err.find("larger than nucleusctl's data area (65536 bytes"), std::string::npos)
      << big.err;
  Ran both =
      ctl(std::vector<std::string>{"send", "kv", "--data", "x", "--data-file", "-"} + kPutK1);
  EXPECT_EQ(both.code, 1);
  EXPECT_NE(both.err.find("give one of them"), std::string::npos) << both.err;
  Ran word =
      ctl(std::vector<std::string>{"send", "kv", "--receive", "8", "--length-word", "8"} + kGetK1);
  EXPECT_EQ(word.code, 1);
  EXPECT_NE(word.err.find("a word is 0..7"), std::string::npos) << word.err;
  Ran missing = ctl(std::vector<std::string>{"send", "kv", "--data-file", path("absent")} + kPutK1);
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("cannot read " + path("absent")), std::string::npos) << missing.err;

  // The server stopped: the send times out and is withdrawn, never applied.
  ASSERT_EQ(put(top_, "k1", bytes_of("old")).result, NUCLEUS_RESULT_NORMAL);
  auto stop = top_.stop_process("kv");
  ASSERT_TRUE(stop);
  ASSERT_TRUE(top_.wait_answer(stop.value(), kDeadline));
  Ran late =
      ctl(std::vector<std::string>{"--timeout", "100", "send", "kv", "--data", "stale"} + kPutK1);
  EXPECT_EQ(late.code, 1);
  EXPECT_NE(late.err.find("withdrawn: kv never took it"), std::string::npos) << late.err;
  ASSERT_TRUE(top_.start_process("kv"));
  EXPECT_TRUE(get(top_, "k1", 64).value == bytes_of("old"));
}

}  // namespace
}  // namespace nucleus::test
