// Stopping subtrees in signal mode against a real nucleusd: a program
// cannot leave the session nucleusd gave it for another group, a stop is
// answered "stopped" only when the program is, a stop that cannot complete
// fails at limits.stop_timeout_ms, and a program that makes nucleusd its
// tracer is not taken for dead.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "commands.h"
#include "harness.h"
#include "test_program.h"

namespace nucleus::test {
namespace {

using ::test::Command;

const char *kProgram = NUCLEUS_TEST_PROGRAM;

int rc_of(const Message &m) {
  return static_cast<int>(static_cast<int64_t>(m.word[0]));
}

// Its state letter in /proc/<pid>/stat ('T': stopped), 0 when gone.
char state_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string stat = ss.str();
  size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() ? stat[close + 2] : '\0';
}

// Creates and starts a serving child of `n` running `program` (a path its
// owner can run: for_others for uid 65534); its pid, or -1.
pid_t make(Nucleus &n, const std::string &name, const std::string &program = kProgram) {
  const char *argv[] = {program.c_str(), "serve", nullptr};
  nucleus_program_t p{program.c_str(), argv, nullptr, nullptr};
  nucleus_claims_t c{4, 0, 0};
  if (nucleus_create_process(n.c_handle(), name.c_str(), &p, &c) != 0) return -1;
  if (nucleus_start_process(n.c_handle(), name.c_str()) != 0) return -1;
  nucleus_process_t info{};
  if (nucleus_get_process(n.c_handle(), name.c_str(), &info) != 0) return -1;
  return info.pid;
}

// The answer to a stop of `name`: its result and words.
struct StopAnswer {
  int rc = -1;  // of nucleus_stop_process
  int32_t result = 0;
  Message words{};
};
StopAnswer stop(Nucleus &n, const std::string &name) {
  StopAnswer out;
  auto b = n.stop_process(name);
  out.rc = b ? 0 : b.error();
  if (!b) return out;
  auto a = n.wait_answer(b.value(), kDeadline);
  if (!a) return out;
  out.result = a->result;
  out.words = a->message;
  return out;
}

// Every program leads its own session, so a program of uid 65534 can join
// neither nucleusd's process group (its stop would then report "stopped"
// while it ran on, and nucleusd's shutdown would wait for it) nor the group
// of another uid's program (whose stops it could then hold up).
TEST(SignalStop, AProgramCannotJoinAnotherGroupAndItsStopMeansStateT) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  Daemon d(R"({"attach": {"uids": [65534]},
               "default_claims": {"buffers": 16, "processes": 4},
               "processes": {"control": "signals"}})");
  ASSERT_TRUE(d.ready()) << d.log();
  d.let_others_in();
  Nucleus t = attach("t");
  pid_t victim = make(t, "victim");
  ASSERT_GT(victim, 0);
  pid_t nucleusd_group = getpgid(d.pid());
  ASSERT_GT(nucleusd_group, 0);
  std::string program = for_others(kProgram);
  pid_t attacker = spawn([&]() {
    if (!become()) return 10;
    auto n = nucleus::Nucleus::attach("mallory");
    if (!n) return 11;
    pid_t m = make(n.value(), "m", program);
    if (m <= 0) return 12;
    for (pid_t group : {nucleusd_group, victim}) {
      Message r = ask(n.value(), "m", command(Command::kSetpgid, "", group));
      if (rc_of(r) != -EPERM) return 13;
      // Still the leader of its own session and group.
      if (r.word[1] != static_cast<uint64_t>(m) || r.word[2] != static_cast<uint64_t>(m)) {
        return 14;
      }
    }
    StopAnswer s = stop(n.value(), "m");
    if (s.rc != 0 || s.result != NUCLEUS_RESULT_NORMAL) return 15;
    if (state_of(m) != 'T') return 16;  // answered stopped: it is
    nucleus_process_t info{};
    if (nucleus_get_process(n->c_handle(), "m", &info) != 0 ||
        info.state != NUCLEUS_PROCESS_STOPPED) {
      return 17;
    }
    return 0;
  });
  EXPECT_EQ(exit_code(wait_exit(attacker)), 0);
  // The victim was not touched: it answers.
  Message e = ask(t, "victim", command(Command::kEcho));
  EXPECT_EQ(e.word[3], static_cast<uint64_t>(victim));
  // nucleusd ends every program at exit, stopped ones too.
  EXPECT_NE(d.stop(SIGTERM), -1);
  EXPECT_TRUE(gone(victim));
  if (HasFailure()) std::cerr << d.log();
}

// A program no signal can stop (a helper outside its group traces it and
// drops every SIGSTOP): its stop is answered MALFUNCTION with ETIMEDOUT and
// its pid after limits.stop_timeout_ms, it runs on (state running), the
// next stop is taken and fails the same way, and it can still be removed.
TEST(SignalStop, AStopThatCannotCompleteFailsAtItsDeadlineAndTheProgramRunsOn) {
  Daemon d(R"({"default_claims": {"buffers": 16, "processes": 4},
               "limits": {"stop_timeout_ms": 200},
               "processes": {"control": "signals"}})");
  ASSERT_TRUE(d.ready()) << d.log();
  Nucleus t = attach("t");
  pid_t s = make(t, "s");
  ASSERT_GT(s, 0);
  Message shielded = ask(t, "s", command(Command::kShield));
  ASSERT_EQ(rc_of(shielded), 0);
  auto helper = static_cast<pid_t>(shielded.word[1]);
  for (int round = 0; round < 2; ++round) {
    StopAnswer a = stop(t, "s");
    ASSERT_EQ(a.rc, 0) << round;  // not -EBUSY: the failed stop is over
    EXPECT_EQ(a.result, NUCLEUS_RESULT_MALFUNCTION) << round;
    EXPECT_EQ(a.words.word[0], static_cast<uint64_t>(ETIMEDOUT)) << round;
    EXPECT_EQ(a.words.word[1], static_cast<uint64_t>(s)) << round;
    nucleus_process_t info{};
    ASSERT_EQ(nucleus_get_process(t.c_handle(), "s", &info), 0);
    EXPECT_EQ(info.state, NUCLEUS_PROCESS_RUNNING) << round;
    // It runs: it answers.
    EXPECT_EQ(ask(t, "s", command(Command::kEcho)).word[3], static_cast<uint64_t>(s)) << round;
  }
  EXPECT_NE(d.log().find("stop not complete"), std::string::npos);
  EXPECT_EQ(nucleus_remove_process(t.c_handle(), "s"), 0);
  EXPECT_TRUE(gone(s));
  EXPECT_TRUE(gone(helper));  // it ends with the program it traced
  // nucleusd is alive and answers.
  EXPECT_TRUE(t.get_stats());
  if (HasFailure()) std::cerr << d.log();
}

// A program that asks to be traced makes nucleusd its tracer: its next
// signal is reported to nucleusd as a stop, which is not an exit. nucleusd
// lets it go on (untraced), and it stays alive, attached and stoppable.
TEST(SignalStop, AProgramThatMakesNucleusdItsTracerIsNotTakenForDead) {
  Daemon d(R"({"default_claims": {"buffers": 16, "processes": 4},
               "processes": {"control": "signals"}})");
  ASSERT_TRUE(d.ready()) << d.log();
  Nucleus t = attach("t");
  pid_t s = make(t, "s");
  ASSERT_GT(s, 0);
  EXPECT_EQ(rc_of(ask(t, "s", command(Command::kTraceMe))), 0);
  EXPECT_EQ(ask(t, "s", command(Command::kEcho)).word[3], static_cast<uint64_t>(s));
  nucleus_process_t info{};
  ASSERT_EQ(nucleus_get_process(t.c_handle(), "s", &info), 0);
  EXPECT_EQ(info.state, NUCLEUS_PROCESS_RUNNING);
  StopAnswer a = stop(t, "s");
  EXPECT_EQ(a.result, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(state_of(s), 'T');
  EXPECT_NE(d.stop(SIGTERM), -1);
  EXPECT_TRUE(gone(s));
  if (HasFailure()) std::cerr << d.log();
}

}  // namespace
}  // namespace nucleus::test
