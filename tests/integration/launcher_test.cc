// Programs start on nucleusd's launcher thread (daemon/launcher.h): a start
// is answered when its launch comes back, and the loop goes on serving
// meanwhile. What may meet a start in flight, asserted on what nucleusd
// answers and on the Linux processes left.
#include <dirent.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "harness.h"

namespace nucleus::test {
namespace {

const char *kProgram = NUCLEUS_TEST_PROGRAM;

wire::Request request(wire::Op op, uint32_t seq, const std::string &name, int64_t arg = 0) {
  wire::Request r{};
  r.op = static_cast<uint32_t>(op);
  r.seq = seq;
  r.arg = arg;
  std::memcpy(r.name, name.data(), std::min(name.size(), sizeof(r.name) - 1));
  return r;
}

// The processes whose parent is `parent`.
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  DIR *d = opendir("/proc");
  while (dirent *e = readdir(d)) {
    char *end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::ifstream in("/proc/" + std::string(e->d_name) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent && state != 'Z') out.push_back(static_cast<pid_t>(pid));
  }
  closedir(d);
  return out;
}

class LauncherModes : public ::testing::TestWithParam<std::string> {};

TEST_P(LauncherModes, WhatMeetsAStartInFlightIsAnsweredAndNothingOutlivesARemove) {
  Daemon d(R"({"default_claims": {"buffers": 16, "processes": 4}, "processes": {"control": ")" +
           GetParam() + "\"}}");
  ASSERT_TRUE(d.ready()) << d.log();
  Nucleus t = attach("t");
  static const char *argv[] = {kProgram, "serve", nullptr};
  nucleus_program_t p{kProgram, argv, nullptr, nullptr};
  nucleus_claims_t c{4, 0, 0};
  ASSERT_EQ(nucleus_create_process(t.c_handle(), "s", &p, &c), 0);
  // Another connection of the same uid acts for t, and sends in one batch:
  // a start, a second start, a modify and a remove. nucleusd takes them in
  // one turn, so all but the first meet the start in flight.
  RawClient raw(d.socket_path(), "raw");
  ASSERT_EQ(raw.status(), 0);
  raw.push_all({request(wire::Op::kActFor, 1, "t", wire::kActForProcess),
                request(wire::Op::kStartProcess, 2, "s"), request(wire::Op::kStartProcess, 3, "s"),
                request(wire::Op::kModifyProcess, 4, "s", wire::kModifyClaims),
                request(wire::Op::kGetProcess, 5, "s"), request(wire::Op::kRemoveProcess, 6, "s")});
  std::map<uint32_t, int32_t> result;
  while (result.size() < 6) {
    wire::Event e{};
    ASSERT_TRUE(raw.next_event(&e)) << "answers so far: " << result.size() << "\n" << d.log();
    ASSERT_EQ(e.kind, static_cast<uint32_t>(wire::EventKind::kReply));
    EXPECT_EQ(result.count(e.seq), 0U) << "answered twice: " << e.seq;
    result[e.seq] = e.result;
  }
  EXPECT_EQ(result[1], 0);
  EXPECT_EQ(result[3], -EBUSY) << "one start at a time";
  EXPECT_EQ(result[4], -EBUSY) << "no change while it starts";
  EXPECT_EQ(result[5], 0) << "it can be looked at";
  EXPECT_EQ(result[6], 0) << "and removed";
  // The start is answered last: its entry went away while it started.
  EXPECT_EQ(result[2], -ESRCH);
  nucleus_process_t gone_info{};
  EXPECT_EQ(nucleus_get_process(t.c_handle(), "s", &gone_info), -ESRCH);
  // The program it had started was ended and reaped: nucleusd has no child.
  EXPECT_TRUE(eventually([&] { return children_of(d.pid()).empty(); })) << d.log();
  // And the name is free again, for a start that goes through.
  ASSERT_EQ(nucleus_create_process(t.c_handle(), "s", &p, &c), 0);
  ASSERT_EQ(nucleus_start_process(t.c_handle(), "s"), 0);
  nucleus_process_t info{};
  ASSERT_EQ(nucleus_get_process(t.c_handle(), "s", &info), 0);
  EXPECT_EQ(info.state, NUCLEUS_PROCESS_RUNNING);
  EXPECT_GT(info.pid, 0);
}

INSTANTIATE_TEST_SUITE_P(Launcher, LauncherModes, ::testing::Values("cgroup", "signals"),
                         [](const auto &info) { return info.param; });

TEST(Launcher, StartsAnsweredToTheirOwnRequestersWhileMessagesFlow) {
  Daemon d(R"({"default_claims": {"buffers": 16, "processes": 8}})");
  ASSERT_TRUE(d.ready()) << d.log();
  Signal up;
  pid_t echo = spawn([&]() {
    auto n = nucleus::Nucleus::attach("echo");
    if (!n) return 10;
    up.notify();
    for (;;) {
      auto m = n->wait_message(kDeadline);
      if (!m) return 11;
      if (!n->send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, words(m->message.word[0] + 1))) {
        return 12;
      }
      if (m->message.word[0] == 0) return 0;
    }
  });
  ASSERT_EQ(up.wait(), 'x');
  // Two parents start and remove children over and over, one a missing
  // program; a third process does round trips all along.
  auto starter = [&](const std::string &me, const char *path, int want) {
    return spawn([=]() {
      auto n = nucleus::Nucleus::attach(me);
      if (!n) return 20;
      const char *args[] = {path, "serve", nullptr};
      nucleus_program_t p{path, args, nullptr, nullptr};
      nucleus_claims_t c{4, 0, 0};
      for (int i = 0; i < 30; ++i) {
        std::string child = me + "-" + std::to_string(i);
        if (nucleus_create_process(n->c_handle(), child.c_str(), &p, &c) != 0) return 21;
        if (nucleus_start_process(n->c_handle(), child.c_str()) != want) return 22;
        if (nucleus_remove_process(n->c_handle(), child.c_str()) != 0) return 23;
      }
      return 0;
    });
  };
  pid_t good = starter("good", kProgram, 0);
  pid_t bad = starter("bad", "/nonexistent/program", -ENOENT);
  auto n = attach("client");
  for (uint64_t i = 1; i <= 500; ++i) {
    auto b = n.send_message("echo", words(i));
    ASSERT_TRUE(b) << b.message();
    auto a = n.wait_answer(b.value(), kDeadline);
    ASSERT_TRUE(a) << a.message();
    ASSERT_EQ(a->message.word[0], i + 1);
  }
  EXPECT_EQ(exit_code(wait_exit(good)), 0) << d.log();
  EXPECT_EQ(exit_code(wait_exit(bad)), 0) << d.log();
  auto b = n.send_message("echo", words(0));
  ASSERT_TRUE(b);
  ASSERT_TRUE(n.wait_answer(b.value(), kDeadline));
  EXPECT_EQ(exit_code(wait_exit(echo)), 0);
}

}  // namespace
}  // namespace nucleus::test
