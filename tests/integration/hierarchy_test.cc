// Process control against a real nucleusd: trees of real programs
// (nucleus-test-program) driven by messages, in both subtree modes
// (cgroup, signals).
#include <dirent.h>
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

std::string config_for(const std::string &mode) {
  return R"({"default_claims": {"buffers": 64, "processes": 64},
             "processes": {"control": ")" +
         mode + R"("}})";
}

int rc_of(const Message &m) {
  return static_cast<int>(static_cast<int64_t>(m.word[0]));
}

nucleus_program_t serve_program() {
  static const char *argv[] = {kProgram, "serve", nullptr};
  return {kProgram, argv, nullptr, nullptr};
}

std::string read_text(const std::string &path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Stopped as the mode means it: state T (signals) or a frozen cgroup.
bool really_stopped(pid_t pid, const std::string &mode) {
  if (mode == "signals") {
    std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
    size_t close = stat.rfind(')');
    return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'T';
  }
  std::string cg = read_text("/proc/" + std::to_string(pid) + "/cgroup");
  size_t at = cg.find("0::");
  if (at == std::string::npos) return false;
  std::string path = cg.substr(at + 3, cg.find('\n', at) - at - 3);
  std::istringstream mounts(read_text("/proc/self/mounts"));
  std::string line;
  while (std::getline(mounts, line)) {
    std::istringstream f(line);
    std::string dev, dir, type;
    f >> dev >> dir >> type;
    if (type == "cgroup2") {
      return read_text(dir + path + "/cgroup.events").find("frozen 1") != std::string::npos;
    }
  }
  return false;
}

size_t fd_count(pid_t pid) {
  size_t n = 0;
  DIR *d = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  while (dirent *e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

nucleus_exit_notice_t wait_notice(Nucleus &n) {
  nucleus_exit_notice_t notice{};
  auto m = n.wait_message(kDeadline);
  EXPECT_TRUE(m) << m.message();
  if (!m) return notice;
  EXPECT_EQ(m->sender, "nucleus");
  EXPECT_EQ(nucleus_parse_exit_notice(m->sender.c_str(), &m->message, &notice), 0);
  EXPECT_TRUE(n.send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, Message{}));
  return notice;
}

class Hierarchy : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    daemon = std::make_unique<Daemon>(config_for(GetParam()));
    ASSERT_TRUE(daemon->ready()) << daemon->log();
    if (GetParam() == "cgroup" && daemon->log().find("cgroup v2 at") == std::string::npos) {
      GTEST_SKIP() << "no usable cgroup v2 here";
    }
    t = attach("t");
  }
  void TearDown() override {
    if (HasFailure() && daemon) std::cerr << daemon->log();
  }
  // Creates and starts a serving child of `parent` (the test itself when
  // parent is empty).
  void make(const std::string &parent, const std::string &name, uint64_t buffers,
            uint64_t processes) {
    if (parent.empty()) {
      nucleus_program_t p = serve_program();
      nucleus_claims_t c{buffers, processes, 0};
      ASSERT_EQ(nucleus_create_process(t.c_handle(), name.c_str(), &p, &c), 0);
      ASSERT_EQ(nucleus_start_process(t.c_handle(), name.c_str()), 0);
    } else {
      ASSERT_EQ(rc_of(ask(t, parent, command(Command::kCreate, name, buffers, processes))), 0);
      ASSERT_EQ(rc_of(ask(t, parent, command(Command::kStart, name))), 0);
    }
  }
  pid_t pid_of(const std::string &parent, const std::string &name) {
    Message m = ask(t, parent, command(Command::kGet, name));
    EXPECT_EQ(rc_of(m), 0);
    return static_cast<pid_t>(m.word[2]);
  }
  nucleus_process_t info(const std::string &name) {
    nucleus_process_t p{};
    EXPECT_EQ(nucleus_get_process(t.c_handle(), name.c_str(), &p), 0);
    return p;
  }
  Stats stats() {
    auto s = t.get_stats();
    EXPECT_TRUE(s);
    return s.value();
  }

  std::unique_ptr<Daemon> daemon;
  Nucleus t;
};

TEST_P(Hierarchy, TreeOfDepthThreeStopsResumesAndIsRemoved) {
  make("", "os1", 16, 4);
  EXPECT_EQ(stats().claim_buffers, 64U - 16U);
  make("os1", "os2", 8, 2);
  make("os2", "leaf", 2, 0);
  // Each level's claims, from each parent.
  nucleus_process_t os1 = info("os1");
  EXPECT_EQ(os1.state, NUCLEUS_PROCESS_RUNNING);
  EXPECT_EQ(os1.given.buffers, 16U);
  EXPECT_EQ(os1.used.buffers, 8U);    // given to os2
  EXPECT_EQ(os1.used.processes, 3U);  // os2 and its claim of 2
  EXPECT_EQ(ask(t, "os1", command(Command::kStats)).word[1], 8U);
  EXPECT_EQ(ask(t, "os2", command(Command::kStats)).word[1], 6U);
  EXPECT_EQ(ask(t, "leaf", command(Command::kStats)).word[1], 2U);
  Message os2 = ask(t, "os1", command(Command::kGet, "os2"));
  EXPECT_EQ(os2.word[5], 2U);  // processes given
  EXPECT_EQ(os2.word[6], 1U);  // leaf with a claim of 0
  // Short claims are refused and change nothing.
  EXPECT_EQ(rc_of(ask(t, "os2", command(Command::kCreate, "big", 7, 0))), -ENOBUFS);
  EXPECT_EQ(rc_of(ask(t, "os2", command(Command::kCreate, "deep", 1, 1))), -ENOBUFS);
  EXPECT_EQ(ask(t, "os2", command(Command::kStats)).word[1], 6U);

  pid_t p1 = os1.pid;
  pid_t p2 = pid_of("os1", "os2");
  pid_t p3 = pid_of("os2", "leaf");
  Message forked = ask(t, "leaf", command(Command::kFork));
  pid_t p4 = static_cast<pid_t>(forked.word[1]);
  ASSERT_GT(p4, 0);

  // Stop: answered only when every process of the subtree is stopped.
  Buffer b = 0;
  ASSERT_EQ(nucleus_stop_process(t.c_handle(), "os1", &b), 0);
  auto a = t.wait_answer(b, kDeadline);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result, NUCLEUS_RESULT_NORMAL);
  for (pid_t p : {p1, p2, p3, p4}) EXPECT_TRUE(really_stopped(p, GetParam())) << p;
  EXPECT_EQ(info("os1").state, NUCLEUS_PROCESS_STOPPED);
  EXPECT_EQ(stats().claim_used, 0U);  // the stop's buffer came back
  // A message to a stopped process waits; resume and it is answered.
  auto pending = t.send_message("leaf", command(Command::kStats));
  ASSERT_TRUE(pending);
  EXPECT_EQ(nucleus_start_process(t.c_handle(), "os1"), 0);
  auto late = t.wait_answer(pending.value(), kDeadline);
  ASSERT_TRUE(late);
  EXPECT_EQ(late->message.word[1], 2U);
  EXPECT_EQ(info("os1").state, NUCLEUS_PROCESS_RUNNING);
  EXPECT_EQ(nucleus_start_process(t.c_handle(), "os1"), -EALREADY);

  // Remove: every Linux process ends, forked ones too; claims come back.
  EXPECT_EQ(nucleus_remove_process(t.c_handle(), "os1"), 0);
  for (pid_t p : {p1, p2, p3, p4}) EXPECT_TRUE(gone(p)) << p;
  Stats s = stats();
  EXPECT_EQ(s.claim_buffers, 64U);
  EXPECT_EQ(s.processes, 1U);
  EXPECT_EQ(s.pool_free, s.pool_buffers - 64U);
  nucleus_process_t none{};
  EXPECT_EQ(nucleus_get_process(t.c_handle(), "os1", &none), -ESRCH);
}

TEST_P(Hierarchy, OnlyChildrenCanBeControlled) {
  make("", "a", 8, 4);
  make("", "b", 4, 0);
  make("a", "a1", 2, 0);
  const char *others[] = {"a1", "nope", "t", "nucleus"};
  for (const char *name : others) {
    EXPECT_EQ(nucleus_start_process(t.c_handle(), name), -ESRCH) << name;
    EXPECT_EQ(nucleus_remove_process(t.c_handle(), name), -ESRCH) << name;
    nucleus_process_t p{};
    EXPECT_EQ(nucleus_get_process(t.c_handle(), name, &p), -ESRCH) << name;
    Buffer b = 0;
    EXPECT_EQ(nucleus_stop_process(t.c_handle(), name, &b), -ESRCH) << name;
    nucleus_claims_t c{};
    EXPECT_EQ(nucleus_modify_process(t.c_handle(), name, nullptr, &c), -ESRCH) << name;
  }
  // A sibling, an ancestor, a parent's sibling.
  EXPECT_EQ(rc_of(ask(t, "a", command(Command::kRemove, "b"))), -ESRCH);
  EXPECT_EQ(rc_of(ask(t, "a1", command(Command::kStop, "a"))), -ESRCH);
  EXPECT_EQ(rc_of(ask(t, "a1", command(Command::kGet, "t"))), -ESRCH);
  EXPECT_EQ(rc_of(ask(t, "b", command(Command::kStart, "a1"))), -ESRCH);
  EXPECT_EQ(stats().claim_used, 0U);  // refused stops left no buffer out
  EXPECT_EQ(info("a").state, NUCLEUS_PROCESS_RUNNING);
  size_t count = 0;
  nucleus_process_t kids[4];
  ASSERT_EQ(nucleus_list_children(t.c_handle(), kids, 4, &count), 0);
  ASSERT_EQ(count, 2U);
  EXPECT_STREQ(kids[0].name, "a");
  EXPECT_STREQ(kids[1].name, "b");
}

TEST_P(Hierarchy, ExitNoticesSayHowTheProgramEnded) {
  const char *argv[] = {kProgram, "exit", "3", nullptr};
  nucleus_program_t exit3{kProgram, argv, nullptr, nullptr};
  nucleus_claims_t c{1, 0, 0};
  ASSERT_EQ(nucleus_create_process(t.c_handle(), "e3", &exit3, &c), 0);
  EXPECT_EQ(info("e3").state, NUCLEUS_PROCESS_CREATED);
  ASSERT_EQ(nucleus_start_process(t.c_handle(), "e3"), 0);
  nucleus_exit_notice_t n = wait_notice(t);
  EXPECT_STREQ(n.name, "e3");
  EXPECT_EQ(n.exit_kind, NUCLEUS_EXIT_CODE);
  EXPECT_EQ(n.exit_value, 3);
  nucleus_process_t p = info("e3");
  EXPECT_EQ(p.state, NUCLEUS_PROCESS_EXITED);
  EXPECT_EQ(p.exit_value, 3);
  // Started again: a new run, a new notice.
  ASSERT_EQ(nucleus_start_process(t.c_handle(), "e3"), 0);
  EXPECT_EQ(wait_notice(t).exit_value, 3);

  make("", "k", 1, 0);
  pid_t pid = info("k").pid;
  ASSERT_EQ(ask(t, "k", command(Command::kStats)).word[1], 1U);  // it is attached
  kill(pid, SIGKILL);
  n = wait_notice(t);
  EXPECT_STREQ(n.name, "k");
  EXPECT_EQ(n.exit_kind, NUCLEUS_EXIT_SIGNAL);
  EXPECT_EQ(n.exit_value, SIGKILL);
  EXPECT_EQ(n.pid, pid);

  ASSERT_EQ(nucleus_start_process(t.c_handle(), "k"), 0);
  ask(t, "k", command(Command::kCrash));
  n = wait_notice(t);
  EXPECT_EQ(n.exit_kind, NUCLEUS_EXIT_SIGNAL);
  EXPECT_EQ(n.exit_value, SIGSEGV);

  // A program that cannot be run is refused at start, not reported later.
  nucleus_program_t missing{"/nonexistent/program", nullptr, nullptr, nullptr};
  ASSERT_EQ(nucleus_create_process(t.c_handle(), "m", &missing, &c), 0);
  EXPECT_EQ(nucleus_start_process(t.c_handle(), "m"), -ENOENT);
  EXPECT_EQ(info("m").state, NUCLEUS_PROCESS_CREATED);
}

// The C++ API end to end, with a program's environment and working
// directory passed through.
TEST_P(Hierarchy, CppApiRunsAProgramWithItsEnvironmentAndDirectory) {
  Program expect{
      kProgram, {kProgram, "expect", "GREETING", "hello", "/tmp"}, {"GREETING=hello"}, "/tmp"};
  ASSERT_TRUE(t.create_process("x", expect, Claims{2, 0, 0}));
  EXPECT_EQ(t.create_process("x", expect, Claims{2, 0, 0}).error(), -EEXIST);
  EXPECT_EQ(t.get_process("x")->state, NUCLEUS_PROCESS_CREATED);
  ASSERT_TRUE(t.start_process("x"));
  auto m = t.wait_message(kDeadline);
  ASSERT_TRUE(m) << m.message();
  std::optional<ExitNotice> notice = Nucleus::exit_notice(m.value());
  ASSERT_TRUE(notice);
  EXPECT_STREQ(notice->name, "x");
  EXPECT_EQ(notice->exit_kind, NUCLEUS_EXIT_CODE);
  EXPECT_EQ(notice->exit_value, 0);
  ASSERT_TRUE(t.send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, Message{}));

  // Another value: the same check now fails, so the pass above was real.
  Program other = expect;
  other.env = {"GREETING=bye"};
  EXPECT_EQ(t.modify_process("x", other, std::nullopt).error(), 0);
  EXPECT_EQ(t.modify_process("x", std::nullopt, Claims{5, 0, 0}).error(), 0);
  ASSERT_TRUE(t.start_process("x"));
  m = t.wait_message(kDeadline);
  ASSERT_TRUE(m) << m.message();
  notice = Nucleus::exit_notice(m.value());
  ASSERT_TRUE(notice);
  EXPECT_EQ(notice->exit_value, 1);
  ASSERT_TRUE(t.send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, Message{}));

  ASSERT_TRUE(
      t.create_process("y", Program{kProgram, {kProgram, "serve"}, {}, ""}, Claims{1, 0, 0}));
  // A child that never ran is stopped at once, and starting it runs it.
  auto created_stop = t.stop_process("y");
  ASSERT_TRUE(created_stop);
  auto created_answer = t.wait_answer(created_stop.value(), kDeadline);
  ASSERT_TRUE(created_answer) << created_answer.message();
  EXPECT_EQ(created_answer->result, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(t.get_process("y")->state, NUCLEUS_PROCESS_STOPPED);
  auto kids = t.list_children();
  ASSERT_TRUE(kids);
  ASSERT_EQ(kids->size(), 2U);
  EXPECT_STREQ(kids.value()[0].name, "x");
  EXPECT_EQ(kids.value()[0].given.buffers, 5U);
  EXPECT_EQ(kids.value()[0].state, NUCLEUS_PROCESS_EXITED);
  EXPECT_STREQ(kids.value()[1].name, "y");
  ASSERT_TRUE(t.start_process("y"));
  auto stop = t.stop_process("y");
  ASSERT_TRUE(stop);
  auto a = t.wait_answer(stop.value(), kDeadline);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(t.get_process("y")->state, NUCLEUS_PROCESS_STOPPED);
  EXPECT_TRUE(t.remove_process("y"));
  EXPECT_TRUE(t.remove_process("x"));
  EXPECT_EQ(t.get_process("x").error(), -ESRCH);
  EXPECT_EQ(stats().claim_buffers, 64U);
}

TEST_P(Hierarchy, ChildrenOfAKilledParentRunOnAndItsNextRunSeesThem) {
  make("", "os", 8, 4);
  make("os", "w1", 2, 0);
  make("os", "w2", 2, 0);
  pid_t w1 = pid_of("os", "w1");
  pid_t os = info("os").pid;
  kill(os, SIGKILL);
  nucleus_exit_notice_t n = wait_notice(t);
  EXPECT_EQ(n.exit_value, SIGKILL);
  // Its children still run and answer.
  EXPECT_EQ(ask(t, "w1", command(Command::kStats)).word[1], 2U);
  EXPECT_EQ(info("os").state, NUCLEUS_PROCESS_EXITED);
  // A message to the dead OS waits for its next run.
  auto queued = t.send_message("os", command(Command::kList));
  ASSERT_TRUE(queued);
  ASSERT_EQ(nucleus_start_process(t.c_handle(), "os"), 0);
  auto a = t.wait_answer(queued.value(), kDeadline);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(a->message.word[1], 2U);  // both children
  EXPECT_EQ(a->message.word[2] >> 32, static_cast<uint64_t>(NUCLEUS_PROCESS_RUNNING));
  EXPECT_EQ(static_cast<pid_t>(a->message.word[2] & 0xffffffffU), w1);
  // The new run controls them.
  EXPECT_EQ(rc_of(ask(t, "os", command(Command::kRemove, "w1"))), 0);
  EXPECT_TRUE(gone(w1));
  EXPECT_EQ(ask(t, "os", command(Command::kStats)).word[1], 6U);
}

TEST_P(Hierarchy, ClaimsMoveOnCreateModifyAndRemove) {
  nucleus_program_t p = serve_program();
  nucleus_claims_t too_many{65, 0, 0};
  EXPECT_EQ(nucleus_create_process(t.c_handle(), "c", &p, &too_many), -ENOBUFS);
  nucleus_claims_t too_deep{1, 64, 0};
  EXPECT_EQ(nucleus_create_process(t.c_handle(), "c", &p, &too_deep), -ENOBUFS);
  EXPECT_EQ(stats().claim_buffers, 64U);
  EXPECT_EQ(stats().processes, 1U);
  nucleus_claims_t c{10, 5, 0};
  ASSERT_EQ(nucleus_create_process(t.c_handle(), "c", &p, &c), 0);
  EXPECT_EQ(stats().claim_buffers, 54U);
  // Up and down while created.
  nucleus_claims_t more{20, 5, 0};
  ASSERT_EQ(nucleus_modify_process(t.c_handle(), "c", nullptr, &more), 0);
  EXPECT_EQ(stats().claim_buffers, 44U);
  nucleus_claims_t less{4, 1, 0};
  ASSERT_EQ(nucleus_modify_process(t.c_handle(), "c", nullptr, &less), 0);
  EXPECT_EQ(stats().claim_buffers, 60U);
  EXPECT_EQ(info("c").given.buffers, 4U);
  // The library sends on the buffers it got back.
  std::vector<Buffer> out;
  for (int i = 0; i < 60; ++i) {
    auto b = t.send_message("nobody", Message{});
    ASSERT_TRUE(b) << i << ": " << b.message();
    out.push_back(b.value());
  }
  EXPECT_EQ(t.send_message("nobody", Message{}).error(), -ENOBUFS);
  for (Buffer b : out) ASSERT_TRUE(t.wait_answer(b, kDeadline));
  // Running: no modify.
  ASSERT_EQ(nucleus_start_process(t.c_handle(), "c"), 0);
  EXPECT_EQ(nucleus_modify_process(t.c_handle(), "c", nullptr, &more), -EBUSY);
  // Buffers it has out when removed come back when answered.
  make("", "sink", 1, 0);
  EXPECT_EQ(rc_of(ask(t, "c", command(Command::kSend, "sink"))), 0);
  EXPECT_EQ(rc_of(ask(t, "c", command(Command::kSend, "sink"))), 0);
  EXPECT_EQ(nucleus_remove_process(t.c_handle(), "c"), 0);
  EXPECT_EQ(stats().claim_buffers, 63U);
  EXPECT_EQ(nucleus_remove_process(t.c_handle(), "sink"), 0);  // answers them (dummy)
  Stats s{};
  EXPECT_TRUE(wait_stats(
      t, [](const Stats &x) { return x.claim_buffers == 64U && x.claim_used == 0; }, &s));
  EXPECT_EQ(s.pool_free, s.pool_buffers - 64U);
}

TEST_P(Hierarchy, AThousandProcessesLeaveNothingBehind) {
  const char *argv[] = {kProgram, "exit", "0", nullptr};
  nucleus_program_t quick{kProgram, argv, nullptr, nullptr};
  nucleus_claims_t c{1, 0, 0};
  // One round first, so that lazily made things exist before counting.
  auto round = [&](int i) {
    std::string name = "p" + std::to_string(i);
    ASSERT_EQ(nucleus_create_process(t.c_handle(), name.c_str(), &quick, &c), 0);
    ASSERT_EQ(nucleus_start_process(t.c_handle(), name.c_str()), 0);
    EXPECT_EQ(wait_notice(t).exit_value, 0);
    ASSERT_EQ(nucleus_remove_process(t.c_handle(), name.c_str()), 0);
  };
  round(0);
  size_t fds = fd_count(daemon->pid());
  Stats before = stats();
  for (int i = 1; i <= 1000; ++i) {
    round(i);
    if (HasFatalFailure()) return;
  }
  // No more than before: emptied cgroups are removed on a launcher thread,
  // whose open directory may be counted at either moment.
  EXPECT_TRUE(eventually([&] { return fd_count(daemon->pid()) <= fds; }))
      << fd_count(daemon->pid()) << " descriptors, " << fds << " before";
  Stats after = stats();
  EXPECT_EQ(after.pool_free, before.pool_free);
  EXPECT_EQ(after.pool_free, after.pool_buffers - 64U);
  EXPECT_EQ(after.processes, 1U);
}

INSTANTIATE_TEST_SUITE_P(Modes, Hierarchy, ::testing::Values("cgroup", "signals"),
                         [](const auto &info) { return info.param; });

}  // namespace
}  // namespace nucleus::test
