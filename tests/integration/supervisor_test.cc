// The supervisor against a real nucleusd, for what issue 21 found: a swap to
// a changed spec applies it (children added, removed and replaced; the
// others keep their pids), a spec that cannot be read is refused with the
// old supervisor running on, a name another uid holds stays that child's
// failure across a swap, and a child whose program is missing is retried
// with its backoff, reported (status and log name the step and the errno),
// and given up on past the intensity.
#include <gtest/gtest.h>
#include <nucleus/personalities.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "harness.h"

namespace nucleus::test {
namespace {

const char *kSupervisor = NUCLEUS_SUPERVISOR_PATH;
const char *kWorker = NUCLEUS_WORKER_PATH;

// Output goes to files (<runtime dir>/run/output/<uid>/<name>.log): the
// supervisor's log is read back.
const char *kConfig = R"({"default_claims": {"buffers": 256, "processes": 64},
                          "attach": {"uids": [65534]}})";

std::string read_all(const std::string &path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A worker child: {"name", "program", ...extra}.
std::string worker(const std::string &name, const std::string &extra = "") {
  return R"({"name": ")" + name + R"(", "program": ")" + kWorker + "\"" + extra + "}";
}

class SupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<Daemon>(kConfig);
    ASSERT_TRUE(daemon_->ready());
    top_ = attach("top");
  }

  std::string spec_file(const std::string &name, const std::string &text) {
    std::string path = daemon_->dir() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  void start(const std::string &spec) {
    std::string path = spec_file("spec.json", spec);
    ASSERT_TRUE(top_.create_process("sup", Program{kSupervisor, {kSupervisor, path}, {}, {}},
                                    Claims{64, 16, 0, 0, 1 << 20}));
    ASSERT_TRUE(top_.start_process("sup"));
  }

  Answer ask(const std::string &who, const Message &m) {
    auto b = top_.send_message(who, m);
    EXPECT_TRUE(b) << b.message();
    if (!b) return Answer{};
    auto a = top_.wait_answer(b.value(), kDeadline);
    EXPECT_TRUE(a) << a.message();
    return a ? a.value() : Answer{};
  }

  Message status(uint64_t index) { return ask("sup", Message{{os::kStatus, index}}).message; }
  Message summary() { return ask("sup", Message{{os::kStatus, os::kSummary}}).message; }

  // Child `index` runs (as the supervisor's child) and has a pid: returns it (0: not in time).
  uint64_t running(uint64_t index) {
    uint64_t pid = 0;
    bool ok = eventually([&] {
      Message s = status(index);
      pid = s.word[3];
      return s.word[1] == NUCLEUS_PROCESS_RUNNING && pid != 0;
    });
    return ok ? pid : 0;
  }

  // The child answers a ping itself: it really runs and serves.
  bool serves(const std::string &name) {
    Answer a = ask(name, Message{{1}});
    return a.result == NUCLEUS_RESULT_NORMAL && a.principal.kind == NUCLEUS_FROM_PROCESS;
  }

  Answer swap(const std::vector<std::string> &args) {
    Program p{kSupervisor, {kSupervisor}, {}, {}};
    p.argv.insert(p.argv.end(), args.begin(), args.end());
    auto b = top_.swap_process("sup", p);
    EXPECT_TRUE(b) << b.message();
    if (!b) return Answer{};
    auto a = top_.wait_answer(b.value(), kDeadline);
    EXPECT_TRUE(a) << a.message();
    return a ? a.value() : Answer{};
  }

  std::string log() const { return read_all(daemon_->dir() + "/run/output/0/sup.log"); }

  std::unique_ptr<Daemon> daemon_;
  Nucleus top_;
};

// Issue 21: the swap said "swapped" and the new supervisor ran the old spec.
// Now the spec it reads runs: d is added, b removed, e replaced (its
// environment changed), c's restart type changed (what runs did not: it
// carries on), a is the same. No unchanged child is restarted.
TEST_F(SupervisorTest, SwapToAChangedSpecAppliesIt) {
  start(R"({"children": [)" + worker("a") + "," + worker("b") + "," + worker("c") + "," +
        worker("e") + "]}");
  uint64_t a = running(0), b = running(1), c = running(2), e = running(3);
  ASSERT_NE(a * b * c * e, 0U);
  std::string changed =
      spec_file("v2.json", R"({"children": [)" + worker("a") + "," +
                               worker("c", R"(, "restart": "transient")") + "," +
                               worker("e", R"(, "env": ["MODE=2"])") + "," + worker("d") + "]}");
  Answer sw = swap({changed, "--version", "2"});
  ASSERT_EQ(sw.result, NUCLEUS_RESULT_NORMAL) << sw.message.word[0] << " " << sw.message.word[1];
  EXPECT_EQ(sw.message.word[0], NUCLEUS_SWAP_DONE);

  Message sum = summary();
  EXPECT_EQ(sum.word[0], 4U) << "a, c, e, d";
  EXPECT_EQ(sum.word[2], 2U) << "version 2 serves";
  EXPECT_EQ(running(0), a) << "a is unchanged: not restarted";
  EXPECT_EQ(running(1), c) << "only c's restart type changed: not restarted";
  uint64_t e2 = running(2);
  EXPECT_NE(e2, 0U);
  EXPECT_NE(e2, e) << "e's program changed: it was replaced";
  EXPECT_EQ(status(2).word[2], 1U) << "counted in e's restarts";
  EXPECT_NE(running(3), 0U) << "d was added and started";
  for (const char *name : {"a", "c", "e", "d"}) EXPECT_TRUE(serves(name)) << name;
  // The new e runs with its new environment.
  std::string environ = read_all("/proc/" + std::to_string(e2) + "/environ");
  EXPECT_NE(environ.find(std::string("MODE=2\0", 7)), std::string::npos);
  // b was removed: its program ended, and its name reaches no one.
  EXPECT_TRUE(eventually([&] { return kill(static_cast<pid_t>(b), 0) != 0; }));
  EXPECT_TRUE(eventually([&] { return ask("b", Message{{1}}).result == NUCLEUS_RESULT_DUMMY; }));
  auto info = top_.get_process("sup");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->used.processes, 4U) << "no child left behind";
  EXPECT_NE(log().find("the spec changed: added d; replaced (program or claims changed) e; "
                       "removed b; the other children run on"),
            std::string::npos)
      << log();
  // The new supervisor restarts by the new spec: c is transient now, and
  // an exit 0 leaves it ended.
  ask("c", Message{{2, 0}});
  EXPECT_TRUE(eventually([&] { return status(1).word[1] == NUCLEUS_PROCESS_EXITED; }));
  EXPECT_EQ(status(1).word[2], 0U) << "not restarted";
}

// A spec the new program cannot read is refused: it exits (65) before it
// attaches, the swap is answered so, and the old supervisor runs on with
// its children.
TEST_F(SupervisorTest, SwapToASpecThatDoesNotParseIsRefused) {
  start(R"({"children": [)" + worker("a") + "]}");
  uint64_t a = running(0);
  ASSERT_NE(a, 0U);
  uint64_t old_pid = summary().word[3];
  for (const std::string &bad :
       {std::string(R"({"children": [)"), std::string(R"({"children": [{"name": "x"}]})")}) {
    Answer sw = swap({spec_file("bad.json", bad), "--version", "2"});
    EXPECT_EQ(sw.result, NUCLEUS_RESULT_REJECTED) << bad;
    EXPECT_EQ(sw.message.word[0], NUCLEUS_SWAP_NEW_EXITED) << bad;
    EXPECT_EQ(sw.message.word[NUCLEUS_SWAP_WORD_EXIT_KIND], NUCLEUS_EXIT_CODE) << bad;
    EXPECT_EQ(sw.message.word[1], 65U) << bad;
  }
  Message sum = summary();
  EXPECT_EQ(sum.word[2], 1U) << "version 1 serves on";
  EXPECT_EQ(sum.word[3], old_pid);
  EXPECT_EQ(running(0), a);
  EXPECT_TRUE(serves("a"));
  EXPECT_NE(log().find("bad.json: children[0].program"), std::string::npos) << log();
}

// A changed spec adds a child whose name uid 65534 holds: the swap is done,
// that child waits for its name (logged, retried; not a restart), the
// others run on with their pids, and it starts once the name is free.
TEST_F(SupervisorTest, SwapAddingAChildWhoseNameAnotherUidHolds) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to attach as another uid";
  daemon_->let_others_in();
  start(R"({"children": [)" + worker("a") + "]}");
  uint64_t a = running(0);
  ASSERT_NE(a, 0U);
  Signal holding;
  Signal release;
  pid_t holder = spawn([&]() {
    if (!become()) return 10;
    auto n = Nucleus::attach("taken");
    if (!n) return 11;
    holding.notify();
    return release.wait() == 'q' ? 0 : 12;
  });
  ASSERT_EQ(holding.wait(), 'x');
  Answer sw = swap(
      {spec_file("v2.json", R"({"children": [)" + worker("a") + "," + worker("taken") + "]}")});
  ASSERT_EQ(sw.result, NUCLEUS_RESULT_NORMAL) << sw.message.word[0];
  EXPECT_TRUE(eventually([&] { return summary().word[5] == 1; })) << "taken waits for its name";
  EXPECT_EQ(status(1).word[1], 0U) << "not created: the name is not its child's";
  EXPECT_EQ(running(0), a);
  EXPECT_EQ(summary().word[1], 0U) << "no restart";
  EXPECT_NE(log().find("cannot create taken: another process, not a child of this supervisor, "
                       "holds the name"),
            std::string::npos)
      << log();
  release.notify('q');
  EXPECT_EQ(exit_code(wait_exit(holder)), 0);
  EXPECT_NE(running(1), 0U) << "started once the name was free";
  EXPECT_TRUE(serves("taken"));
  EXPECT_EQ(running(0), a);
}

// Issue 21: a child whose program is missing is a failing child like any
// other: retried after its backoff, counted against the intensity, and
// reported: the status (kWhy) and the log name the step and the errno.
TEST_F(SupervisorTest, AMissingProgramIsRetriedAndReported) {
  start(R"({"intensity": 1000000, "period_ms": 60000, "backoff_ms": 20, "backoff_max_ms": 20,
            "children": [)" +
        worker("ok") + R"(, {"name": "gone", "program": "/no/such/program"}]})");
  uint64_t ok = running(0);
  ASSERT_NE(ok, 0U);
  Message why;
  ASSERT_TRUE(eventually([&] {
    why = ask("sup", Message{{os::kStatus, 1, os::kWhy}}).message;
    return why.word[3] >= 3;
  })) << "it is tried again, on its own";
  EXPECT_EQ(why.word[1], static_cast<uint64_t>(ENOENT));
  EXPECT_EQ(why.word[2], static_cast<uint64_t>(NUCLEUS_START_STEP_EXEC));
  EXPECT_EQ(std::string(reinterpret_cast<const char *>(&why.word[4])), "gone");
  Message sum = summary();
  EXPECT_EQ(sum.word[6], 1U) << "one child fails to start";
  EXPECT_GE(sum.word[1], 3U) << "each failure is a restart";
  EXPECT_EQ(running(0), ok) << "one_for_one: ok runs on";
  EXPECT_TRUE(serves("ok"));
  std::string text = log();
  EXPECT_NE(text.find("cannot start gone: cannot execute /no/such/program: No such file or "
                      "directory; trying again in "),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("failure 3 in a row"), std::string::npos) << text;
  // A child that runs says no failure.
  Message fine = ask("sup", Message{{os::kStatus, 0, os::kWhy}}).message;
  EXPECT_EQ(fine.word[1], 0U);
  EXPECT_EQ(fine.word[3], 0U);
}

// ... and past the intensity the supervisor gives up: it removes its
// children and exits 1 for its parent to decide, and says why.
TEST_F(SupervisorTest, AMissingProgramMakesTheSupervisorGiveUpPastTheIntensity) {
  start(R"({"intensity": 2, "period_ms": 60000, "backoff_ms": 10, "children": [)" + worker("ok") +
        R"(, {"name": "gone", "program": "/no/such/program"}]})");
  auto r = top_.wait_message(kDeadline);
  ASSERT_TRUE(r) << r.message();
  auto n = Nucleus::exit_notice(r.value());
  ASSERT_TRUE(n.has_value());
  (void)top_.send_answer(r->buffer, NUCLEUS_RESULT_NORMAL, Message{});
  EXPECT_STREQ(n->name, "sup");
  EXPECT_EQ(n->exit_kind, NUCLEUS_EXIT_CODE);
  EXPECT_EQ(n->exit_value, 1);
  auto info = top_.get_process("sup");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->used.processes, 0U) << "its children were removed";
  EXPECT_NE(log().find("more than 2 restarts in 60000 ms: giving up (the last: cannot start gone: "
                       "cannot execute /no/such/program: No such file or directory)"),
            std::string::npos)
      << log();
}

}  // namespace
}  // namespace nucleus::test
