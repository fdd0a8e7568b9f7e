// Hot swap against a real nucleusd: an OS (nucleus-test-program serve) with
// running children is swapped to another program under continuous traffic,
// and every way a swap can fail leaves the old OS serving. The count of
// messages the OS served travels in its handed-over state, so "every message
// answered exactly once" is checked as: the count the new OS reports equals
// the messages sent to it, every answer came back normal, none dummy.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <deque>
#include <vector>

#include "commands.h"
#include "harness.h"
#include "test_program.h"

namespace nucleus::test {
namespace {

using ::test::Command;

const char *kProgram = NUCLEUS_TEST_PROGRAM;

std::string config_for(const std::string &mode) {
  return R"({"default_claims": {"buffers": 256, "processes": 128},
             "processes": {"control": ")" +
         mode + R"("},
             "swap": {"handover_timeout_ms": 300, "ready_timeout_ms": 1500}})";
}

Program os_program(const std::string &tag, const std::string &behaviour = "") {
  Program p{kProgram, {kProgram, "serve", tag}, {}, {}};
  if (!behaviour.empty()) p.argv.push_back(behaviour);
  return p;
}

// The process has ended (it may be a zombie, or gone), waiting up to the
// deadline on its pidfd.
bool ended(pid_t pid) {
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;
  pollfd p{fd, POLLIN, 0};
  bool done = poll(&p, 1, static_cast<int>(kDeadline.count() * 1000)) == 1;
  close(fd);
  return done;
}

// The parent ("top", attached through the socket) and its child "os", which
// has `children` children of its own, all running.
class SwapTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<Daemon>(config_for(GetParam()));
    ASSERT_TRUE(daemon_->ready());
    top_ = attach("top");
  }

  void make_os(const std::string &behaviour, int children) {
    Claims claims{160, 64, 0, 0, 0};
    ASSERT_TRUE(top_.create_process("os", os_program("1", behaviour), claims));
    ASSERT_TRUE(top_.start_process("os"));
    for (int i = 0; i < children; ++i) {
      std::string name = "c" + std::to_string(i);
      ASSERT_EQ(ask_os(command(Command::kCreate, name, 2, 0, 0)).word[0], 0U) << name;
      ASSERT_EQ(ask_os(command(Command::kStart, name)).word[0], 0U) << name;
    }
  }

  Message ask_os(const Message &m) {
    ++to_os_;
    return ask(top_, "os", m);
  }

  // Swaps "os" to `program` and returns the swap's answer.
  Answer swap(const Program &program) {
    auto b = top_.swap_process("os", program);
    EXPECT_TRUE(b) << b.message();
    if (!b) return Answer{};
    auto a = top_.wait_answer(b.value(), kDeadline);
    EXPECT_TRUE(a) << a.message();
    return a ? a.value() : Answer{};
  }

  // The pids of the OS's first children, as the OS lists them.
  std::vector<uint64_t> child_pids() {
    Message m = ask_os(command(Command::kList));
    std::vector<uint64_t> pids;
    for (uint64_t i = 0; i < m.word[1] && i < 6; ++i) pids.push_back(m.word[2 + i] & UINT32_MAX);
    return pids;
  }

  std::unique_ptr<Daemon> daemon_;
  Nucleus top_;
  uint64_t to_os_ = 0;  // messages top sent to the OS
};

// A client that keeps `depth` messages in flight to the OS and to a child of
// it until told to stop, then reports (sent to os, answered, dummy, other).
class Load {
 public:
  explicit Load(const std::string &child) {
    EXPECT_EQ(pipe2(stop_, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(report_, O_CLOEXEC), 0);
    pid_ = spawn([this, child]() { return run(child); });
  }
  ~Load() {
    for (int fd : {stop_[0], stop_[1], report_[0], report_[1]}) close(fd);
  }
  Load(const Load &) = delete;
  Load &operator=(const Load &) = delete;

  // Waits until it has had answers from both the old OS's tag and `count` more.
  struct Report {
    uint64_t sent = 0, to_os = 0, answered = 0, dummy = 0, other = 0, tags_seen = 0;
  };
  Report finish() {
    char x = 'x';
    EXPECT_EQ(write(stop_[1], &x, 1), 1);
    Report r{};
    pollfd p{report_[0], POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, static_cast<int>(kDeadline.count() * 1000)), 1);
    EXPECT_EQ(read(report_[0], &r, sizeof(r)), static_cast<ssize_t>(sizeof(r)));
    EXPECT_EQ(exit_code(wait_exit(pid_)), 0);
    return r;
  }
  // Blocks until the load has had 50 answers.
  bool started() { return next_byte() == 's'; }
  // Blocks until the load has had an answer from a new OS.
  bool saw_new_tag() { return next_byte() == 't'; }

 private:
  char next_byte() {
    pollfd p{report_[0], POLLIN, 0};
    char c = 0;
    if (poll(&p, 1, static_cast<int>(kDeadline.count() * 1000)) != 1 ||
        read(report_[0], &c, 1) != 1) {
      return 0;
    }
    return c;
  }

  int run(const std::string &child) {
    auto n = Nucleus::attach("load");
    if (!n) return 10;
    Report r{};
    std::deque<std::pair<Buffer, bool>> inflight;  // buffer, to the OS
    uint64_t last_tag = 0;
    bool said = false;
    constexpr size_t kDepth = 4;
    for (uint64_t i = 0;; ++i) {
      pollfd p{stop_[0], POLLIN, 0};
      bool stopping = poll(&p, 1, 0) == 1;
      while (!stopping && inflight.size() < kDepth) {
        bool to_os = (i + inflight.size()) % 2 == 0;
        Message m = command(Command::kEcho);
        auto b = n->send_message(to_os ? "os" : child, m);
        if (!b) return 11;
        inflight.emplace_back(b.value(), to_os);
        ++r.sent;
        if (to_os) ++r.to_os;
      }
      if (inflight.empty()) break;
      auto [buffer, to_os] = inflight.front();
      inflight.pop_front();
      auto a = n->wait_answer(buffer, kDeadline);
      if (!a) return 12;
      if (a->result == NUCLEUS_RESULT_DUMMY) {
        ++r.dummy;
      } else if (a->result != NUCLEUS_RESULT_NORMAL || a->message.word[0] != 0) {
        ++r.other;
      } else {
        ++r.answered;
        if (to_os && a->message.word[1] != last_tag) {
          if (a->message.word[1] < last_tag) ++r.other;  // an old OS after the new one
          if (last_tag != 0) {
            char c = 't';
            if (write(report_[1], &c, 1) != 1) return 15;
          }
          last_tag = a->message.word[1];
          ++r.tags_seen;
        }
      }
      if (!said && r.answered >= 50) {
        said = true;
        char c = 's';
        if (write(report_[1], &c, 1) != 1) return 13;
      }
    }
    return write(report_[1], &r, sizeof(r)) == static_cast<ssize_t>(sizeof(r)) ? 0 : 14;
  }

  int stop_[2] = {-1, -1};
  int report_[2] = {-1, -1};
  pid_t pid_ = -1;
};

TEST_P(SwapTest, SwapWithFiftyChildrenUnderTrafficLosesNothing) {
  make_os("", 50);
  std::vector<uint64_t> before = child_pids();
  ASSERT_EQ(before.size(), 6U);
  auto old_info = top_.get_process("os");
  ASSERT_TRUE(old_info);
  // A message the old OS holds unanswered across the swap (a notice waiter).
  auto waiter = top_.send_message("os", command(Command::kNotice));
  ASSERT_TRUE(waiter);
  ++to_os_;

  Load load("c7");
  ASSERT_TRUE(load.started());
  Answer a = swap(os_program("2"));
  ASSERT_EQ(a.result, NUCLEUS_RESULT_NORMAL) << "outcome " << a.message.word[0];
  EXPECT_EQ(a.message.word[0], static_cast<uint64_t>(NUCLEUS_SWAP_DONE));
  EXPECT_EQ(a.message.word[3], static_cast<uint64_t>(old_info->pid));
  EXPECT_NE(a.message.word[2], a.message.word[3]);
  EXPECT_EQ(a.message.word[4], 8U);  // the state: its count
  EXPECT_TRUE(load.saw_new_tag());
  Load::Report r = load.finish();
  EXPECT_EQ(r.dummy, 0U);
  EXPECT_EQ(r.other, 0U);
  EXPECT_EQ(r.answered, r.sent);
  EXPECT_EQ(r.tags_seen, 2U) << "the load saw the old and then the new OS";

  // The new program bears the name, with the count carried over: every
  // message sent to the OS was served exactly once by one of the two.
  Message echo = ask_os(command(Command::kEcho));
  EXPECT_EQ(echo.word[1], 2U);
  EXPECT_EQ(echo.word[2], to_os_ - 1 + r.to_os);
  EXPECT_EQ(echo.word[3], a.message.word[2]);
  auto info = top_.get_process("os");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->pid, static_cast<int64_t>(a.message.word[2]));
  EXPECT_EQ(info->state, NUCLEUS_PROCESS_RUNNING);
  EXPECT_TRUE(ended(static_cast<pid_t>(a.message.word[3]))) << "the old program ended";

  // No child stopped, restarted or changed pid, and the new OS controls them.
  EXPECT_EQ(child_pids(), before);
  for (uint64_t pid : before) EXPECT_EQ(kill(static_cast<pid_t>(pid), 0), 0);
  // The message the old OS received is the new one's to answer: a child's
  // exit makes it answer the inherited notice waiter.
  EXPECT_EQ(ask(top_, "c3", command(Command::kExit, "", 7)).word[0], 0U);
  auto notice = top_.wait_answer(waiter.value(), kDeadline);
  ASSERT_TRUE(notice) << notice.message();
  EXPECT_EQ(notice->result, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(notice->message.word[2], 7U);
  EXPECT_EQ(std::string(reinterpret_cast<const char *>(&notice->message.word[4])), "c3");
  EXPECT_EQ(ask_os(command(Command::kRemove, "c3")).word[0], 0U);

  // A second swap, back to the first program: the same again.
  Answer again = swap(os_program("3"));
  EXPECT_EQ(again.result, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(ask_os(command(Command::kEcho)).word[1], 3U);
  std::vector<uint64_t> after = child_pids();
  EXPECT_EQ(after.size(), 6U);
  EXPECT_EQ(after[0], before[0]);

  // Nothing leaked: removing the OS gives every buffer back.
  ASSERT_TRUE(top_.remove_process("os"));
  Stats s{};
  EXPECT_TRUE(wait_stats(
      top_, [](const Stats &st) { return st.claim_used == 0; }, &s));
}

INSTANTIATE_TEST_SUITE_P(Modes, SwapTest, ::testing::Values("cgroup", "signals"),
                         [](const auto &info) { return info.param; });

// Every way a swap can fail: the answer says which, and the old OS serves
// on with its state, its pid and its children, every message answered.
struct Rollback {
  const char *name;
  const char *old_behaviour;
  Program program;
  uint64_t outcome;
  // NEW_EXITED: how the new program ended (word NUCLEUS_SWAP_WORD_EXIT_KIND)
  // and the detail (exit code, or 0x100 + signal).
  uint64_t exit_kind = NUCLEUS_EXIT_NONE;
  uint64_t detail = 0;
};

void PrintTo(const Rollback &rb, std::ostream *os) {
  *os << rb.name << " (old OS '" << rb.old_behaviour << "', expected outcome " << rb.outcome << ")";
}

class SwapRollbackTest : public ::testing::TestWithParam<Rollback> {};

TEST_P(SwapRollbackTest, OldOsServesOn) {
  const Rollback &rb = GetParam();
  Daemon daemon(config_for("auto"));
  ASSERT_TRUE(daemon.ready());
  Nucleus top = attach("top");
  Claims claims{32, 64, 0, 0, 0};
  Program old_program = os_program("1", rb.old_behaviour);
  ASSERT_TRUE(top.create_process("os", old_program, claims));
  ASSERT_TRUE(top.start_process("os"));
  uint64_t sent = 0;
  for (int i = 0; i < 3; ++i) {
    std::string name = "c" + std::to_string(i);
    ASSERT_EQ(ask(top, "os", command(Command::kCreate, name, 4, 0, 0)).word[0], 0U);
    ASSERT_EQ(ask(top, "os", command(Command::kStart, name)).word[0], 0U);
    sent += 2;
  }
  auto old_info = top.get_process("os");
  ASSERT_TRUE(old_info);

  Load load("c1");
  ASSERT_TRUE(load.started());
  auto b = top.swap_process("os", rb.program);
  ASSERT_TRUE(b) << b.message();
  auto a = top.wait_answer(b.value(), kDeadline);
  ASSERT_TRUE(a) << a.message();
  EXPECT_EQ(a->result, NUCLEUS_RESULT_REJECTED);
  EXPECT_EQ(a->message.word[0], rb.outcome) << "detail " << a->message.word[1];
  if (rb.outcome == NUCLEUS_SWAP_NEW_EXITED) {
    // Its status, whether its hang-up or its reaping came first.
    EXPECT_EQ(a->message.word[NUCLEUS_SWAP_WORD_EXIT_KIND], rb.exit_kind);
    EXPECT_EQ(a->message.word[1], rb.detail);
    EXPECT_NE(a->message.word[2], 0U) << "the new pid";
  }
  Load::Report r = load.finish();
  EXPECT_EQ(r.dummy, 0U);
  EXPECT_EQ(r.other, 0U);
  EXPECT_EQ(r.tags_seen, 1U);

  Message echo = ask(top, "os", command(Command::kEcho));
  EXPECT_EQ(echo.word[1], 1U) << "the old program serves";
  EXPECT_EQ(echo.word[2], sent + r.to_os) << "every message served once";
  EXPECT_EQ(echo.word[3], static_cast<uint64_t>(old_info->pid));
  EXPECT_EQ(r.answered, r.sent);
  if (a->message.word[2] != 0) {
    EXPECT_TRUE(ended(static_cast<pid_t>(a->message.word[2]))) << "the new program ended";
  }
  // And a swap now (to a good program) still works.
  if (std::string(rb.old_behaviour).empty()) {
    auto b2 = top.swap_process("os", os_program("2"));
    ASSERT_TRUE(b2);
    auto a2 = top.wait_answer(b2.value(), kDeadline);
    ASSERT_TRUE(a2);
    EXPECT_EQ(a2->result, NUCLEUS_RESULT_NORMAL) << a2->message.word[0];
  }
}

INSTANTIATE_TEST_SUITE_P(
    Paths, SwapRollbackTest,
    ::testing::Values(
        Rollback{"NoHandover", "no-handover", os_program("2"), NUCLEUS_SWAP_NO_HANDOVER},
        Rollback{"Refused", "refuse", os_program("2"), NUCLEUS_SWAP_REFUSED},
        Rollback{"BadOffset", "bad-offset", os_program("2"), NUCLEUS_SWAP_REFUSED},
        Rollback{"NewCrashes", "", os_program("2", "crash"), NUCLEUS_SWAP_NEW_EXITED,
                 NUCLEUS_EXIT_SIGNAL, 0x100 + SIGSEGV},
        // Issue 21: it was answered with detail 0 (its hang-up came first).
        Rollback{"NewKilledAfterAttach", "", os_program("2", "sigkill"), NUCLEUS_SWAP_NEW_EXITED,
                 NUCLEUS_EXIT_SIGNAL, 0x100 + SIGKILL},
        Rollback{"NeverReady", "", os_program("2", "never-ready"), NUCLEUS_SWAP_NOT_READY},
        Rollback{"ExitsAtOnce", "", Program{kProgram, {kProgram, "exit", "3"}, {}, {}},
                 NUCLEUS_SWAP_NEW_EXITED, NUCLEUS_EXIT_CODE, 3},
        Rollback{"NeverAttaches", "", Program{kProgram, {kProgram, "noattach"}, {}, {}},
                 NUCLEUS_SWAP_NOT_READY},
        Rollback{"CannotStart", "", Program{"/nonexistent/os", {}, {}, {}},
                 NUCLEUS_SWAP_START_FAILED}),
    [](const auto &info) { return std::string(info.param.name); });

// Requests a swap refuses outright, and calls only a swap's programs may make.
TEST(SwapInput, RefusalsAndMisuse) {
  Daemon daemon(config_for("auto"));
  ASSERT_TRUE(daemon.ready());
  Nucleus top = attach("top");
  Claims claims{16, 8, 0, 0, 0};
  // Not a child of the caller (a device, the nucleus, an unknown name).
  for (const char *name : {"clock", "nucleus", "nobody"}) {
    auto b = top.swap_process(name, os_program("2"));
    EXPECT_EQ(b.error(), -ESRCH) << name;
  }
  EXPECT_EQ(top.swap_process("bad/name", os_program("2")).error(), -EINVAL);
  // Created but not running; then stopped.
  ASSERT_TRUE(top.create_process("os", os_program("1"), claims));
  EXPECT_EQ(top.swap_process("os", os_program("2")).error(), -EINVAL);
  ASSERT_TRUE(top.start_process("os"));
  auto stop = top.stop_process("os");
  ASSERT_TRUE(stop);
  ASSERT_TRUE(top.wait_answer(stop.value(), kDeadline));
  EXPECT_EQ(top.swap_process("os", os_program("2")).error(), -EINVAL);
  ASSERT_TRUE(top.start_process("os"));
  EXPECT_EQ(ask(top, "os", command(Command::kEcho)).word[1], 1U);  // attached and serving
  // A swap in progress: a second one, a stop and a modify are refused.
  auto slow = top.swap_process("os", os_program("2", "never-ready"));
  ASSERT_TRUE(slow) << slow.message();
  EXPECT_EQ(top.swap_process("os", os_program("3")).error(), -EBUSY);
  EXPECT_EQ(top.stop_process("os").error(), -EBUSY);
  EXPECT_EQ(top.modify_process("os", os_program("3"), std::nullopt).error(), -EBUSY);
  auto a = top.wait_answer(slow.value(), kDeadline);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->message.word[0], static_cast<uint64_t>(NUCLEUS_SWAP_NOT_READY));
  // Removing the OS during a swap cancels it; the request is answered.
  auto doomed = top.swap_process("os", os_program("2", "never-ready"));
  ASSERT_TRUE(doomed);
  ASSERT_TRUE(top.remove_process("os"));
  auto c = top.wait_answer(doomed.value(), kDeadline);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->result, NUCLEUS_RESULT_REJECTED);
  EXPECT_EQ(c->message.word[0], static_cast<uint64_t>(NUCLEUS_SWAP_CANCELLED));
  // Only a swap's new program may say ready or has a state; a buffer that
  // is not a received handover cannot be handed over on.
  EXPECT_EQ(top.swap_ready().error(), -EINVAL);
  EXPECT_FALSE(top.handover_state().has_value());
  uint8_t byte = 0;
  EXPECT_EQ(top.hand_over(12345, std::span<const uint8_t>(&byte, 1)).error(), -EBADF);
  Stats s{};
  EXPECT_TRUE(wait_stats(
      top, [](const Stats &st) { return st.claim_used == 0; }, &s));
  EXPECT_EQ(s.protocol_errors, 0U);
}

}  // namespace
}  // namespace nucleus::test
