// The OS personalities against a real nucleusd: a supervisor's strategies,
// restart types, intensity, ready ordering, adoption after a crash and hot
// swap; batch jobs across a swap; the console from a script.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <nucleus/personalities.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "harness.h"
#include "run_program.h"

namespace nucleus::test {
namespace {

const char *kSupervisor = NUCLEUS_SUPERVISOR_PATH;
const char *kBatch = NUCLEUS_BATCH_PATH;
const char *kConsole = NUCLEUS_CONSOLE_PATH;
const char *kWorker = NUCLEUS_WORKER_PATH;

const char *kConfig = R"({"default_claims": {"buffers": 512, "processes": 256},
                          "attach": {"uids": [65534]}, "processes": {"output": "discard"}})";

struct ChildStatus {
  int state = 0;
  uint64_t restarts = 0;
  uint64_t pid = 0;
  bool ready = false;
};

class PersonalityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<Daemon>(kConfig);
    ASSERT_TRUE(daemon_->ready());
    top_ = attach("top");
    // The OSes run unprivileged, as they should on a shared nucleus: when
    // the tests run as root, the test gives them to 'nobody', with the
    // programs placed where that uid can run them.
    if (geteuid() == 0) {
      daemon_->let_others_in();
      os_user_ = "nobody";
      supervisor_ = for_others(kSupervisor);
      batch_ = for_others(kBatch);
      console_ = for_others(kConsole);
      worker_ = for_others(kWorker);
    }
  }

  std::string write_file(const std::string &name, const std::string &text) {
    std::string path = daemon_->dir() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  // Starts "sup" from a spec of workers: {name, restart, argv extra, wait_ready}.
  void start_supervisor(const std::string &strategy, const std::string &children,
                        const std::string &extra = "") {
    std::string spec =
        R"({"strategy": ")" + strategy + "\"" + extra + R"(, "children": [)" + children + "]}";
    std::string path = write_file("spec.json", spec);
    Claims claims{400, 120, 0, 0, 1 << 20};
    ASSERT_TRUE(top_.create_process(
        "sup", Program{supervisor_, {supervisor_, path}, {}, {}, os_user_}, claims));
    ASSERT_TRUE(top_.start_process("sup"));
  }

  std::string worker(const std::string &name, const std::string &restart = "permanent",
                     const std::string &args = "", bool wait_ready = false) const {
    std::string argv = "\"" + worker_ + "\"";
    if (!args.empty()) argv += ", " + args;
    return R"({"name": ")" + name + R"(", "program": ")" + worker_ + R"(", "argv": [)" + argv +
           R"(], "restart": ")" + restart + R"(", "wait_ready": )" +
           (wait_ready ? "true" : "false") + "}";
  }

  Answer ask(const std::string &who, const Message &m) {
    auto b = top_.send_message(who, m);
    EXPECT_TRUE(b) << b.message();
    if (!b) return Answer{};
    auto a = top_.wait_answer(b.value(), kDeadline);
    EXPECT_TRUE(a) << a.message();
    return a ? a.value() : Answer{};
  }

  ChildStatus status(uint64_t index) {
    Answer a = ask("sup", Message{{os::kStatus, index}});
    return {static_cast<int>(a.message.word[1]), a.message.word[2], a.message.word[3],
            a.message.word[7] != 0};
  }

  // Asks the supervisor until `pred` holds for child `index`, or the deadline.
  bool until(uint64_t index, const std::function<bool(const ChildStatus &)> &pred,
             ChildStatus *out = nullptr) {
    return eventually([&] {
      ChildStatus s = status(index);
      if (out != nullptr) *out = s;
      return pred(s);
    });
  }

  // Running and ready (it told the supervisor so: it waits for nothing).
  bool running(uint64_t index, ChildStatus *out = nullptr) {
    return until(
        index, [](const ChildStatus &s) { return s.state == NUCLEUS_PROCESS_RUNNING && s.ready; },
        out);
  }

  // The next exit notice top gets (for "sup").
  ExitNotice next_notice() {
    auto r = top_.wait_message(kDeadline);
    EXPECT_TRUE(r) << r.message();
    auto n = r ? Nucleus::exit_notice(r.value()) : std::nullopt;
    EXPECT_TRUE(n.has_value());
    if (r) (void)top_.send_answer(r->buffer, NUCLEUS_RESULT_NORMAL, Message{});
    return n.value_or(ExitNotice{});
  }

  std::unique_ptr<Daemon> daemon_;
  Nucleus top_;
  std::string os_user_;  // whom the OSes run as ("": the test's own uid)
  // The programs the OSes run, where os_user_ can run them.
  std::string supervisor_ = kSupervisor;
  std::string batch_ = kBatch;
  std::string console_ = kConsole;
  std::string worker_ = kWorker;
};

// The uid a process runs as, from /proc (-1: gone).
int64_t uid_of(uint64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Uid:", 0) == 0) return std::stoll(line.substr(4));
  }
  return -1;
}

// A restart strategy and which of the children a, b, c it restarts when b
// crashes ('x' restarted, '.' left running).
struct Strategy {
  const char *name;
  const char *restarted;
};

void PrintTo(const Strategy &s, std::ostream *os) {
  *os << s.name << " restarts " << s.restarted;
}

class StrategyTest : public PersonalityTest, public ::testing::WithParamInterface<Strategy> {};

TEST_P(StrategyTest, CrashOfTheMiddleChildRestarts) {
  auto [strategy, expect] = GetParam();
  start_supervisor(strategy, worker("a") + "," + worker("b") + "," + worker("c"));
  ChildStatus before[3];
  for (uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(running(i, &before[i]));
  ask("b", Message{{3}});  // it answers, then dies of SIGSEGV
  // Every child the strategy restarts is running again under a new pid
  // (the supervisor restarts them one after another).
  for (uint64_t i = 0; i < 3; ++i) {
    if (expect[i] != 'x') continue;
    ASSERT_TRUE(until(i,
                      [&](const ChildStatus &s) {
                        return s.state == NUCLEUS_PROCESS_RUNNING && s.pid != before[i].pid;
                      }))
        << "child " << i;
  }
  std::string changed;
  for (uint64_t i = 0; i < 3; ++i) {
    ChildStatus now;
    ASSERT_TRUE(running(i, &now));
    changed += now.pid != before[i].pid ? 'x' : '.';
    EXPECT_EQ(now.restarts, now.pid != before[i].pid ? 1U : 0U);
  }
  EXPECT_EQ(changed, expect) << strategy;
  // The restarted children serve: a message to each is answered by it.
  for (const char *name : {"a", "b", "c"}) {
    Answer a = ask(name, Message{{1}});
    EXPECT_EQ(a.result, NUCLEUS_RESULT_NORMAL) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Strategies, StrategyTest,
                         ::testing::Values(Strategy{"one_for_one", ".x."},
                                           Strategy{"one_for_all", "xxx"},
                                           Strategy{"rest_for_one", ".xx"}),
                         [](const auto &info) { return std::string(info.param.name); });

TEST_F(PersonalityTest, RestartTypes) {
  start_supervisor("one_for_one",
                   worker("perm", "permanent") + "," + worker("trans_ok", "transient") + "," +
                       worker("trans_bad", "transient") + "," + worker("temp", "temporary"));
  ChildStatus before[4];
  for (uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(running(i, &before[i]));
  ask("perm", Message{{2, 0}});       // exits 0: permanent comes back anyway
  ask("trans_ok", Message{{2, 0}});   // exits 0: transient stays ended
  ask("trans_bad", Message{{2, 9}});  // exits 9: transient comes back
  ask("temp", Message{{3}});          // crashes: temporary is removed
  ChildStatus s;
  ASSERT_TRUE(until(0, [&](const ChildStatus &x) { return x.restarts == 1 && x.state == 2; }));
  ASSERT_TRUE(until(2, [&](const ChildStatus &x) { return x.restarts == 1 && x.state == 2; }));
  ASSERT_TRUE(until(
      1, [](const ChildStatus &x) { return x.state == NUCLEUS_PROCESS_EXITED; }, &s));
  EXPECT_EQ(s.restarts, 0U);
  ASSERT_TRUE(until(
      3, [](const ChildStatus &x) { return x.state == 0; }, &s));  // removed
  EXPECT_EQ(s.restarts, 0U);
  Answer sum = ask("sup", Message{{os::kStatus, os::kSummary}});
  EXPECT_EQ(sum.message.word[1], 2U);  // restarts in all
}

TEST_F(PersonalityTest, TooManyRestartsEndTheChildrenAndEscalate) {
  start_supervisor("one_for_one", worker("a") + "," + worker("b"),
                   R"(, "intensity": 2, "period_ms": 60000)");
  ASSERT_TRUE(running(0));
  ASSERT_TRUE(running(1));
  ChildStatus b;
  for (uint64_t crash = 0; crash < 2; ++crash) {
    ask("b", Message{{3}});
    ASSERT_TRUE(until(
        1, [&](const ChildStatus &x) { return x.restarts == crash + 1 && x.state == 2; }, &b));
  }
  ask("b", Message{{3}});  // the third in the period: it gives up
  ExitNotice n = next_notice();
  EXPECT_STREQ(n.name, "sup");
  EXPECT_EQ(n.exit_kind, NUCLEUS_EXIT_CODE);
  EXPECT_EQ(n.exit_value, 1);
  auto info = top_.get_process("sup");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, NUCLEUS_PROCESS_EXITED);
  EXPECT_EQ(info->used.processes, 0U) << "its children were removed";
  // Its parent decides: here, a fresh start of the same supervisor.
  ASSERT_TRUE(top_.start_process("sup"));
  ASSERT_TRUE(running(0));
  ASSERT_TRUE(running(1));
}

TEST_F(PersonalityTest, WaitReadyStartsInOrder) {
  start_supervisor("one_for_one", worker("first", "permanent", R"("--ready-when-told")", true) +
                                      "," + worker("second"));
  ASSERT_TRUE(until(0, [](const ChildStatus &x) { return x.state == NUCLEUS_PROCESS_RUNNING; }));
  // "first" is running but has not said ready: "second" is not even created.
  EXPECT_EQ(status(1).state, 0);
  EXPECT_EQ(ask("first", Message{{1}}).result, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(status(1).state, 0);
  ask("first", Message{{4}});  // now it says ready
  ASSERT_TRUE(running(1));
}

TEST_F(PersonalityTest, RestartedSupervisorAdoptsItsRunningChildren) {
  start_supervisor("one_for_one", worker("a") + "," + worker("b") + "," + worker("c"));
  ChildStatus before[3];
  for (uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(running(i, &before[i]));
  Answer sum = ask("sup", Message{{os::kStatus, os::kSummary}});
  ASSERT_EQ(kill(static_cast<pid_t>(sum.message.word[3]), SIGKILL), 0);
  ExitNotice n = next_notice();
  EXPECT_EQ(n.exit_kind, NUCLEUS_EXIT_SIGNAL);
  ask("a", Message{{3}});  // a child ends while nobody supervises it
  ASSERT_TRUE(top_.start_process("sup"));
  ChildStatus now[3];
  for (uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(running(i, &now[i]));
  EXPECT_NE(now[0].pid, before[0].pid) << "a was started again";
  EXPECT_EQ(now[1].pid, before[1].pid) << "b was adopted, not started twice";
  EXPECT_EQ(now[2].pid, before[2].pid);
  auto info = top_.get_process("sup");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->used.processes, 3U) << "no duplicate children";
}

TEST_F(PersonalityTest, SupervisorSwapToVersionTwoKeepsChildrenAndRestarts) {
  std::string kids;
  for (int i = 0; i < 50; ++i) kids += (i ? "," : "") + worker("w" + std::to_string(i));
  start_supervisor("one_for_one", kids);
  for (uint64_t i = 0; i < 50; ++i) ASSERT_TRUE(running(i));
  ask("w5", Message{{3}});
  ChildStatus w5;
  ASSERT_TRUE(until(
      5, [](const ChildStatus &x) { return x.restarts == 1 && x.state == 2; }, &w5));
  std::vector<uint64_t> pids;
  for (uint64_t i = 0; i < 50; ++i) pids.push_back(status(i).pid);

  // Status queries to the supervisor and pings to one of its children keep
  // coming while it is swapped.
  Signal go;
  Signal stop_load;
  int report[2];
  ASSERT_EQ(pipe(report), 0);
  pid_t load = spawn([&]() {
    auto n = Nucleus::attach("load");
    if (!n) return 10;
    uint64_t sent = 0, normal = 0;
    for (;;) {
      for (int k = 0; k < 20; ++k) {
        auto b = k % 2 == 0 ? n->send_message("sup", Message{{os::kStatus, os::kSummary}})
                            : n->send_message("w3", Message{{1}});
        if (!b) return 11;
        ++sent;
        auto a = n->wait_answer(b.value(), kDeadline);
        if (!a) return 12;
        if (a->result == NUCLEUS_RESULT_NORMAL) ++normal;
        if (sent == 20) go.notify();
      }
      if (stop_load.wait(std::chrono::milliseconds(0)) != 0) break;
    }
    uint64_t out[2] = {sent, normal};
    return write(report[1], out, sizeof(out)) == sizeof(out) ? 0 : 13;
  });
  ASSERT_EQ(go.wait(), 'x');
  auto b = top_.swap_process("sup", Program{supervisor_, {supervisor_, "--version", "2"}, {}, {}});
  ASSERT_TRUE(b) << b.message();
  auto a = top_.wait_answer(b.value(), kDeadline);
  ASSERT_TRUE(a);
  ASSERT_EQ(a->result, NUCLEUS_RESULT_NORMAL) << a->message.word[0] << " " << a->message.word[1];
  stop_load.notify();
  uint64_t counts[2] = {};
  ASSERT_EQ(read(report[0], counts, sizeof(counts)), static_cast<ssize_t>(sizeof(counts)));
  EXPECT_EQ(exit_code(wait_exit(load)), 0);
  EXPECT_EQ(counts[1], counts[0]) << "every query and ping answered normal (none dummy)";
  close(report[0]);
  close(report[1]);

  Answer sum = ask("sup", Message{{os::kStatus, os::kSummary}});
  EXPECT_EQ(sum.message.word[2], 2U) << "version 2 serves";
  EXPECT_EQ(sum.message.word[1], 1U) << "the restart count came across";
  EXPECT_EQ(sum.message.word[3], a->message.word[2]);
  EXPECT_EQ(status(5).pid, w5.pid);
  for (uint64_t i = 0; i < 50; ++i) EXPECT_EQ(status(i).pid, pids[i]) << "no child changed pid";
  // The new supervisor gets the exit notices and restarts.
  ask("w9", Message{{3}});
  ASSERT_TRUE(until(9, [&](const ChildStatus &x) { return x.restarts == 1 && x.state == 2; }));
}

TEST_F(PersonalityTest, TheSupervisorAndItsChildrenRunAsTheirOwner) {
  if (os_user_.empty()) GTEST_SKIP() << "needs root to give the OS to another uid";
  start_supervisor("one_for_one", worker("a") + "," + worker("b"));
  ChildStatus a;
  ASSERT_TRUE(running(0, &a));
  auto sup = top_.get_process("sup");
  ASSERT_TRUE(sup);
  EXPECT_EQ(sup->uid, 65534U);
  EXPECT_EQ(uid_of(static_cast<uint64_t>(sup->pid)), 65534);
  EXPECT_EQ(uid_of(a.pid), 65534);
  // It restarts a child it lost, with no more rights than before.
  ASSERT_EQ(kill(static_cast<pid_t>(a.pid), SIGKILL), 0);
  ChildStatus again;
  ASSERT_TRUE(until(
      0, [&](const ChildStatus &s) { return s.restarts == 1 && s.ready; }, &again));
  EXPECT_EQ(uid_of(again.pid), 65534);
}

TEST_F(PersonalityTest, BatchJobsSurviveASwap) {
  Claims claims{64, 8, 0, 0, 0};
  ASSERT_TRUE(top_.create_process(
      "batch", Program{batch_, {batch_, "--slots", "1"}, {}, {}, os_user_}, claims));
  ASSERT_TRUE(top_.start_process("batch"));
  std::string job1 =
      write_file("job1.json", R"({"program": ")" + worker_ + R"(", "claims": {"buffers": 4}})");
  auto job = [](const std::string &text) {
    Message m{};
    m.word[0] = os::kJob;
    m.word[1] = 4;
    std::memcpy(&m.word[2], text.data(), std::min<size_t>(text.size(), 48));
    return m;
  };
  ASSERT_LT(job1.size(), 47U);
  std::vector<Buffer> jobs;
  for (const std::string &t :
       {"@" + job1, std::string("/bin/sh\0-c\0exit 3", 17), std::string("/nonexistent/job")}) {
    auto b = top_.send_message("batch", job(t));
    ASSERT_TRUE(b);
    jobs.push_back(b.value());
  }
  auto bad = top_.send_message("batch", job(""));
  ASSERT_TRUE(bad);
  auto bad_answer = top_.wait_answer(bad.value(), kDeadline);
  ASSERT_TRUE(bad_answer);
  EXPECT_EQ(bad_answer->result, NUCLEUS_RESULT_UNINTELLIGIBLE);
  // job-1 runs (a worker that waits to be told), the other two are queued.
  Answer st = ask("batch", Message{{os::kBatchStatus}});
  EXPECT_EQ(st.message.word[0], 2U);
  EXPECT_EQ(st.message.word[1], 1U);

  auto b = top_.swap_process(
      "batch", Program{batch_, {batch_, "--slots", "2", "--version", "2"}, {}, {}, os_user_});
  ASSERT_TRUE(b);
  auto a = top_.wait_answer(b.value(), kDeadline);
  ASSERT_TRUE(a);
  ASSERT_EQ(a->result, NUCLEUS_RESULT_NORMAL) << a->message.word[0];
  st = ask("batch", Message{{os::kBatchStatus}});
  EXPECT_EQ(st.message.word[4], 2U);
  EXPECT_EQ(st.message.word[0] + st.message.word[1] + st.message.word[2], 3U) << "no job was lost";

  if (!os_user_.empty()) {  // the batch OS runs as its owner
    auto os_info = top_.get_process("batch");
    ASSERT_TRUE(os_info);
    EXPECT_EQ(os_info->uid, 65534U);
    EXPECT_EQ(uid_of(static_cast<uint64_t>(os_info->pid)), 65534);
  }
  EXPECT_EQ(ask("job-1", Message{{2, 5}}).result, NUCLEUS_RESULT_NORMAL);  // job 1 exits 5
  auto r1 = top_.wait_answer(jobs[0], kDeadline);
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->result, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(r1->message.word[0], static_cast<uint64_t>(NUCLEUS_EXIT_CODE));
  EXPECT_EQ(r1->message.word[1], 5U);
  auto r2 = top_.wait_answer(jobs[1], kDeadline);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->result, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(r2->message.word[1], 3U);
  auto r3 = top_.wait_answer(jobs[2], kDeadline);
  ASSERT_TRUE(r3);
  EXPECT_EQ(r3->result, NUCLEUS_RESULT_MALFUNCTION);
  EXPECT_EQ(r3->message.word[0], static_cast<uint64_t>(ENOENT));
  st = ask("batch", Message{{os::kBatchStatus}});
  EXPECT_EQ(st.message.word[2], 3U);
}

TEST_F(PersonalityTest, ConsoleRunsAScript) {
  std::string script = write_file("script.txt", std::string("# a session\n") +
                                                    "create w buffers=4 " + worker_ + "\n" +
                                                    "start w\n"
                                                    "list\n"
                                                    "send w 7 8\n"
                                                    "stop w\n"
                                                    "list\n"
                                                    "load w " +
                                                    worker_ + "\n" +
                                                    "claims w buffers=6\n"
                                                    "start w\n"
                                                    "swap w " +
                                                    worker_ + "\n" +
                                                    "send w 2 4\n"
                                                    "wait w\n"
                                                    "remove w\n"
                                                    "send nobody 1\n"
                                                    "frobnicate\n"
                                                    "stop\n"
                                                    "list\n");
  std::string out = daemon_->dir() + "/console.out";
  pid_t pid = spawn([&]() {
    int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    if (!os_user_.empty() && !become()) return 126;  // an operator's console, unprivileged
    execl(console_.c_str(), console_.c_str(), "--script", script.c_str(), nullptr);
    return 127;
  });
  EXPECT_EQ(exit_code(wait_exit(pid)), 1) << "some commands failed";
  std::ifstream in(out);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  EXPECT_NE(text.find("w  running  pid "), std::string::npos) << text;
  EXPECT_NE(text.find("normal answer: 7 8 0 0 0 0 0 0"), std::string::npos) << text;
  EXPECT_NE(text.find("w stopped"), std::string::npos) << text;
  EXPECT_NE(text.find("w  stopped"), std::string::npos) << text;
  EXPECT_NE(text.find("w: buffers 0/6"), std::string::npos) << text;
  EXPECT_NE(text.find("w ended: status 4"), std::string::npos) << text;
  // A worker is no OS: it refuses the handover, and runs on.
  EXPECT_NE(text.find("error: swap w " + worker_ + ": not swapped: the OS refused"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("error: send nobody 1: no such process"), std::string::npos) << text;
  EXPECT_NE(text.find("error: frobnicate: unknown command"), std::string::npos) << text;
  EXPECT_NE(text.find("error: stop: needs a name"), std::string::npos) << text;
  EXPECT_NE(text.find("no children"), std::string::npos) << text;
}

// Their command lines go through CLI11: a number that is not one is an
// error named on stderr with exit status 64 (EX_USAGE), never taken as 0
// or 2^64-1, and nothing attaches.
TEST(PersonalityArgs, ABadNumberIsAnErrorWithItsOption) {
  struct Case {
    const char *program;
    std::vector<std::string> args;
    const char *message;
  } cases[] = {
      {kBatch, {"--slots", "two"}, "--slots: expected an integer in [0, "},
      {kBatch, {"--slots", "-1"}, "--slots: expected an integer in [0, "},
      {kBatch, {"--version", "99999999999999999999"}, "--version: expected an integer in [0, "},
      {kSupervisor, {"spec.json", "--version", "2x"}, "--version: expected an integer in [0, "},
      {kSupervisor, {"a.json", "b.json"}, "b.json"},
      {kConsole, {"--colour", "red"}, "--colour"},
  };
  for (const Case &c : cases) {
    Ran r = run_program(c.program, c.args);
    EXPECT_EQ(r.code, 64) << c.program << " " << c.args[1] << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("Usage: nucleus-"), std::string::npos) << r.err;
  }
  Ran help = run_program(kBatch, {"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("--slots UINT=2"), std::string::npos) << help.out;
}

}  // namespace
}  // namespace nucleus::test
