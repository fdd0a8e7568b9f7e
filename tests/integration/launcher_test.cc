// Programs start on nucleusd's launcher threads (daemon/launcher.h): a start
// is answered when its launch comes back, and the loop goes on serving
// meanwhile. What may meet a start in flight, asserted on what nucleusd
// answers and on the Linux processes left; and what an owner can do to a
// start by holding its own program before the exec (decision 62): stop it
// (signal mode) or have it born frozen (cgroup mode), as uid 65534 against a
// root nucleusd.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
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

// A small file of /proc, read with plain system calls: a process may end
// while it is read (ESRCH), which an ifstream reports by throwing. Empty
// when it cannot be read.
std::string read_proc(const std::string &path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) text.append(buf, static_cast<size_t>(n));
  close(fd);
  return text;
}

// The processes whose parent is `parent`.
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  DIR *d = opendir("/proc");
  while (dirent *e = readdir(d)) {
    char *end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::string stat = read_proc("/proc/" + std::string(e->d_name) + "/stat");
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

// ---- An owner that holds its own program before the exec ----

// What /proc says of a process: its state letter, parent and real uid;
// false when it is gone.
struct ProcInfo {
  char state = 0;
  pid_t ppid = 0;
  uid_t uid = 0;
};
bool proc_info(pid_t pid, ProcInfo *out) {
  std::string stat = read_proc("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(stat.substr(close + 2));
  rest >> out->state >> out->ppid;
  std::istringstream status(read_proc("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Uid:", 0) == 0) {
      out->uid = static_cast<uid_t>(std::stoul(line.substr(4)));
      return true;
    }
  }
  return false;
}

// The children of nucleusd that are still nucleusd: started, not yet
// exec'd (their executable is nucleusd's). Only root may read that link.
std::vector<pid_t> before_exec(pid_t daemon) {
  std::vector<pid_t> out;
  std::error_code ec;
  std::string self = std::filesystem::canonical(NUCLEUSD_PATH, ec).string();
  for (pid_t pid : children_of(daemon)) {
    char link[4096] = {};
    ssize_t n = readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), link, sizeof(link) - 1);
    if (n > 0 && std::string(link, static_cast<size_t>(n)) == self) out.push_back(pid);
  }
  return out;
}

// A long chain of symbolic links, each up to 4000 bytes of "d/.." before
// the next: every walk through it (to a directory, or to nothing) is about
// as slow as a path walk can be made. Made by the attacker in `dir`.
bool make_chain(const std::string &dir, const std::string &prefix, const std::string &end) {
  if (mkdir((dir + "/d").c_str(), 0755) < 0 && errno != EEXIST) return false;
  std::string pad = "d/..";
  while (pad.size() < 3900) pad += "/d/..";
  constexpr int kLinks = 39;  // the kernel follows 40 in one walk
  for (int i = 0; i < kLinks; ++i) {
    std::string next = i + 1 < kLinks ? prefix + std::to_string(i + 1) : end;
    std::string link = dir + "/" + prefix + std::to_string(i);
    if (symlink((pad + "/" + next).c_str(), link.c_str()) < 0) return false;
  }
  return true;
}

// Run as the attacker (a process of uid 65534 forked for it): stops the
// first of nucleusd's children it may signal before that one has exec'd,
// so the launcher thread waiting for that exec is held; writes its pid to
// `report`. It watches nucleusd's threads' children lists (readable by
// anyone) and signals whatever of its own uid appears there: it runs no
// other program. Returns 0, or 1 if none appeared by the deadline.
int stop_the_next_start(pid_t daemon, int report) {
  auto until = std::chrono::steady_clock::now() + kDeadline;
  std::string tasks = "/proc/" + std::to_string(daemon) + "/task";
  while (std::chrono::steady_clock::now() < until) {
    DIR *d = opendir(tasks.c_str());
    if (d == nullptr) return 1;
    std::vector<pid_t> kids;
    while (dirent *e = readdir(d)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      std::istringstream in(read_proc(tasks + "/" + e->d_name + "/children"));
      for (pid_t pid = 0; in >> pid;) kids.push_back(pid);
    }
    closedir(d);
    for (pid_t pid : kids) {
      ProcInfo info;
      if (!proc_info(pid, &info) || info.uid != kNobody || info.state == 'T') continue;
      if (kill(pid, SIGSTOP) < 0) continue;  // still root: not yet its owner's
      // It stops on its way back from the exec that fails, or it was gone.
      while (proc_info(pid, &info) && info.state != 'T' && info.state != 'Z') {
      }
      if (info.state != 'T') continue;
      return write(report, &pid, sizeof(pid)) == sizeof(pid) ? 0 : 1;
    }
  }
  return 1;
}

// What the attacker's held start was answered (written to a pipe).
constexpr int kNoAnswer = 1;

class HeldLaunch : public ::testing::TestWithParam<std::string> {
 protected:
  // nucleusd as root, uid 65534 allowed in, this mode, these limits.
  void start_daemon(const std::string &limits) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to run the attacker as another uid";
    daemon_ = std::make_unique<Daemon>(
        R"({"attach": {"uids": [65534]}, "default_claims": {"buffers": 16, "processes": 4},
            "processes": {"control": ")" +
        GetParam() + R"("}, "limits": {)" + limits + "}}");
    if (!daemon_->ready() && GetParam() == "cgroup" &&
        daemon_->log().find("cgroup") != std::string::npos) {
      GTEST_SKIP() << "no cgroup v2 subtree can be made here";
    }
    ASSERT_TRUE(daemon_->ready()) << daemon_->log();
    daemon_->let_others_in();
    char dir[] = "/tmp/nucleus-held-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    ASSERT_EQ(chown(dir, kNobody, kNobody), 0);
  }
  void TearDown() override {
    if (attacker_ > 0) {
      kill(attacker_, SIGKILL);
      wait_exit(attacker_);
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Forks the attacker: uid 65534 holds one start of its own program before
  // the exec, the signal mode's way (it stops the child during a slow path
  // walk, trying until it catches one) or the cgroup mode's (it starts a
  // grandchild into a subtree it stopped: born frozen). The held start's
  // answer goes to answers_. Returns the pid of the child held, which this
  // (root) process sees still before its exec.
  pid_t hold_a_start() {
    int fds[2];
    EXPECT_EQ(pipe2(answers_, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
    pid_t daemon = daemon_->pid();
    std::string dir = dir_;
    bool cgroup = GetParam() == "cgroup";
    int answers = answers_[1];
    int held_report = fds[1];
    attacker_ = spawn([=]() {
      if (!become()) return 10;
      auto n = nucleus::Nucleus::attach("attacker");
      if (!n) return 11;
      nucleus::Claims claims{};
      claims.buffers = 2;
      int32_t answer = 0;
      if (cgroup) {
        claims.processes = 1;
        nucleus::Program sleeper{"/bin/sleep", {"sleep", "600"}, {}, "", "", ""};
        if (!n->create_process("a", sleeper, claims).ok()) return 12;
        if (!n->start_process("a").ok()) return 13;
        auto stop = n->stop_process("a");
        if (!stop.ok() || !n->wait_answer(stop.value(), kDeadline).ok()) return 14;
        // Acting for its own stopped "a", it starts a child of a's.
        if (!n->act_for(std::string("a")).ok()) return 15;
        nucleus::Claims one{};
        one.buffers = 1;
        if (!n->create_process("g", sleeper, one).ok()) return 16;
        answer = n->start_process("g").error();
      } else {
        // Its working directory and its program are at the ends of long
        // chains of symbolic links: the child walks them, as its owner,
        // between taking its owner's uid and the exec that fails.
        if (!make_chain(dir, "c", "d") || !make_chain(dir, "p", "none")) return 17;
        pid_t stopper = spawn([=]() { return stop_the_next_start(daemon, held_report); });
        nucleus::Program slow{dir + "/p0", {"p0"}, {}, dir + "/c0", "", ""};
        if (!n->create_process("slow", slow, claims).ok()) return 18;
        for (int tries = 0; tries < 5000; ++tries) {
          answer = n->start_process("slow").error();
          if (answer != -ENOENT) break;  // -ENOENT: it exec'd and failed before the stop
        }
        kill(stopper, SIGKILL);
      }
      return write(answers, &answer, sizeof(answer)) == sizeof(answer) ? 0 : 19;
    });
    close(fds[1]);
    pid_t held = 0;
    if (cgroup) {
      // The grandchild's: in g's group (p_g.<id>.<generation>) of the v2
      // hierarchy, frozen before it ran a single instruction.
      EXPECT_TRUE(eventually([&] {
        for (pid_t pid : before_exec(daemon)) {
          std::istringstream in(read_proc("/proc/" + std::to_string(pid) + "/cgroup"));
          for (std::string line; std::getline(in, line);) {
            if (line.rfind("0::", 0) == 0 && line.find("/p_g.") != std::string::npos) held = pid;
          }
        }
        return held != 0;
      }));
    } else {
      pollfd p{fds[0], POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(kDeadline.count() * 1000)) == 1) {
        EXPECT_EQ(read(fds[0], &held, sizeof(held)), static_cast<ssize_t>(sizeof(held)));
      }
    }
    close(fds[0]);
    return held;
  }
  // The held start's answer (0 when none came by the deadline).
  int32_t held_answer() {
    close(answers_[1]);
    answers_[1] = -1;
    pollfd p{answers_[0], POLLIN, 0};
    int32_t answer = 0;
    if (poll(&p, 1, static_cast<int>(kDeadline.count() * 1000)) == 1 &&
        read(answers_[0], &answer, sizeof(answer)) == sizeof(answer)) {
      return answer;
    }
    return kNoAnswer;
  }
  bool still_held(pid_t pid) {
    std::vector<pid_t> kids = before_exec(daemon_->pid());
    return std::find(kids.begin(), kids.end(), pid) != kids.end();
  }

  std::unique_ptr<Daemon> daemon_;
  std::string dir_;
  pid_t attacker_ = -1;
  int answers_[2] = {-1, -1};
};

// Root starts programs of its own and of another owner while uid 65534
// holds one of its own starts; those are answered while the held child is
// still held; the held start fails at its deadline (-ETIMEDOUT), and root's
// start of a program of uid 65534, which waited behind it, then runs.
TEST_P(HeldLaunch, AnOwnerHoldsNoOtherStartAndItsOwnFailsAtTheDeadline) {
  start_daemon(R"("launch_timeout_ms": 4000)");
  if (IsSkipped()) return;
  pid_t held = hold_a_start();
  ASSERT_GT(held, 0) << "the attacker could not hold a start\n" << daemon_->log();
  ProcInfo info;
  ASSERT_TRUE(proc_info(held, &info));
  // Stopped by its owner, whose it already was (a child born frozen never
  // ran as far as that).
  if (GetParam() == "signals") {
    EXPECT_EQ(info.uid, kNobody);
  }
  EXPECT_TRUE(still_held(held));
  auto root = attach("root-client");
  ASSERT_TRUE(root.act_for(std::string()).ok());  // the root's children
  nucleus::Claims claims{};
  claims.buffers = 1;
  struct Owner {
    const char *name;
    const char *user;
    uid_t uid;
  };
  for (Owner o : {Owner{"mine", "", 0}, Owner{"daemons", "daemon", 1}}) {
    nucleus::Program sleeper{"/bin/sleep", {"sleep", "600"}, {}, "", o.user, ""};
    ASSERT_TRUE(root.create_process(o.name, sleeper, claims).ok()) << o.name;
    ASSERT_TRUE(root.start_process(o.name).ok()) << o.name << "\n" << daemon_->log();
    auto p = root.get_process(o.name);
    ASSERT_TRUE(p.ok());
    ASSERT_TRUE(proc_info(static_cast<pid_t>(p.value().pid), &info)) << o.name;
    EXPECT_EQ(info.uid, o.uid) << o.name;
  }
  // Answered while the attacker's child was still held before its exec.
  EXPECT_TRUE(still_held(held)) << "the other starts waited for the held one";
  // Root's start of a program the attacker owns comes after the attacker's
  // own (one owner's starts one at a time): it is answered once the held
  // one has failed. From another process, so that the test waits for it
  // with a deadline.
  pid_t late = spawn([&]() {
    auto n = nucleus::Nucleus::attach("root-late");
    if (!n || !n->act_for(std::string()).ok()) return 10;
    nucleus::Program theirs{"/bin/sleep", {"sleep", "600"}, {}, "", "nobody", ""};
    if (!n->create_process("theirs", theirs, claims).ok()) return 11;
    return n->start_process("theirs").ok() ? 0 : 12;
  });
  EXPECT_EQ(held_answer(), -ETIMEDOUT) << daemon_->log();
  EXPECT_EQ(exit_code(wait_exit(late)), 0) << daemon_->log();
  EXPECT_EQ(exit_code(wait_exit(attacker_)), 0);
  attacker_ = -1;
  EXPECT_TRUE(eventually([&] { return !still_held(held); })) << "the held child was killed";
  auto p = root.get_process("theirs");
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(proc_info(static_cast<pid_t>(p.value().pid), &info));
  EXPECT_EQ(info.uid, kNobody);
  EXPECT_NE(daemon_->log().find("did not exec within 4000 ms"), std::string::npos)
      << daemon_->log();
}

// SIGTERM while a launch is held (and its deadline far off): nucleusd kills
// the held child at once and is gone within limits.stop_timeout_ms and a
// margin.
TEST_P(HeldLaunch, SigtermEndsNucleusdWithinTheStopTimeoutWhileALaunchIsHeld) {
  constexpr int kStopTimeoutMs = 1000;
  constexpr int kMarginMs = 4000;  // exit work, slower under the sanitizers
  start_daemon(R"("launch_timeout_ms": 600000, "stop_timeout_ms": )" +
               std::to_string(kStopTimeoutMs));
  if (IsSkipped()) return;
  pid_t held = hold_a_start();
  ASSERT_GT(held, 0) << "the attacker could not hold a start\n" << daemon_->log();
  std::string log_before = daemon_->log();
  int status = daemon_->stop(SIGTERM, std::chrono::milliseconds(kStopTimeoutMs + kMarginMs));
  ASSERT_NE(status, -1) << "nucleusd still there\n" << log_before;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_TRUE(gone(held));
}

INSTANTIATE_TEST_SUITE_P(Launcher, HeldLaunch, ::testing::Values("signals", "cgroup"),
                         [](const auto &info) { return info.param; });

// A child that SIGKILL cannot end: the test, as root, puts the held child
// in a frozen group of the v1 freezer, where a kill waits for the thaw
// (docs/linux-facts.md), standing in for any wait the kernel does not
// interrupt. Its thread is left behind: the held start is answered
// -ETIMEDOUT anyway, that owner's next start -EAGAIN, another owner's start
// is answered, and SIGTERM still ends nucleusd in time.
class LeftBehind : public HeldLaunch {};

// Adds to ASAN_OPTIONS (for the processes started meanwhile) while it
// lives, in a build with ASan; nothing otherwise.
class ExtraAsanOptions {
 public:
  explicit ExtraAsanOptions([[maybe_unused]] const std::string &extra) {
#ifdef __SANITIZE_ADDRESS__
    const char *was = getenv("ASAN_OPTIONS");
    if (was != nullptr) saved_ = was;
    set_ = true;
    setenv("ASAN_OPTIONS", (saved_ + (saved_.empty() ? "" : ":") + extra).c_str(), 1);
#endif
  }
  ~ExtraAsanOptions() {
    if (!set_) return;
    if (saved_.empty()) {
      unsetenv("ASAN_OPTIONS");
    } else {
      setenv("ASAN_OPTIONS", saved_.c_str(), 1);
    }
  }
  ExtraAsanOptions(const ExtraAsanOptions &) = delete;
  ExtraAsanOptions &operator=(const ExtraAsanOptions &) = delete;

 private:
  std::string saved_;
  bool set_ = false;
};

TEST_P(LeftBehind, AChildSigkillCannotEndLeavesItsThreadBehindAndNucleusdStillStops) {
  std::string freezer = "/sys/fs/cgroup/freezer";
  std::string group = freezer + "/nucleus-left-behind-" + std::to_string(getpid());
  if (access((freezer + "/cgroup.procs").c_str(), W_OK) != 0 || mkdir(group.c_str(), 0755) < 0) {
    GTEST_SKIP() << "no cgroup v1 freezer to stand in for a wait SIGKILL cannot end";
  }
  auto write_to = [](const std::string &file, const std::string &value) {
    int fd = open(file.c_str(), O_WRONLY | O_CLOEXEC);
    bool ok = fd >= 0 && write(fd, value.data(), value.size()) == ssize_t(value.size());
    if (fd >= 0) close(fd);
    return ok;
  };
  constexpr int kStopTimeoutMs = 1000;
  // LeakSanitizer's check at exit stops every thread with ptrace; the thread
  // left behind never stops (it waits in the kernel for the frozen child),
  // so under ASan the check, not nucleusd, would hang the exit this test
  // waits for.
  ExtraAsanOptions no_leak_check("detect_leaks=0");
  start_daemon(R"("launch_timeout_ms": 500, "stop_timeout_ms": )" + std::to_string(kStopTimeoutMs));
  if (IsSkipped()) {
    rmdir(group.c_str());
    return;
  }
  pid_t held = hold_a_start();
  ASSERT_GT(held, 0) << "the attacker could not hold a start\n" << daemon_->log();
  ASSERT_TRUE(write_to(group + "/cgroup.procs", std::to_string(held)));
  ASSERT_TRUE(write_to(group + "/freezer.state", "FROZEN"));
  EXPECT_EQ(held_answer(), -ETIMEDOUT) << daemon_->log();
  EXPECT_EQ(exit_code(wait_exit(attacker_)), 0);
  attacker_ = -1;
  EXPECT_TRUE(still_held(held)) << "SIGKILL ended it: nothing was left behind";
  // Its owner's next start is refused at once; root's own is answered.
  pid_t again = spawn([&]() {
    if (!become()) return 10;
    auto n = nucleus::Nucleus::attach("attacker-again");
    if (!n) return 11;
    nucleus::Claims claims{};
    nucleus::Program program{"/bin/true", {"true"}, {}, "", "", ""};
    if (!n->create_process("next", program, claims).ok()) return 12;
    return n->start_process("next").error() == -EAGAIN ? 0 : 13;
  });
  EXPECT_EQ(exit_code(wait_exit(again)), 0) << daemon_->log();
  auto root = attach("root-client");
  ASSERT_TRUE(root.act_for(std::string()).ok());
  nucleus::Program sleeper{"/bin/sleep", {"sleep", "600"}, {}, "", "", ""};
  ASSERT_TRUE(root.create_process("mine", sleeper, nucleus::Claims{}).ok());
  EXPECT_TRUE(root.start_process("mine").ok()) << daemon_->log();
  std::string log = daemon_->log();
  EXPECT_NE(log.find("its launcher thread is left behind (1 now)"), std::string::npos) << log;
  int status = daemon_->stop(SIGTERM, std::chrono::milliseconds(kStopTimeoutMs + 4000));
  EXPECT_NE(status, -1) << "nucleusd still there";
  // The held child dies as soon as it thaws.
  EXPECT_TRUE(write_to(group + "/freezer.state", "THAWED"));
  EXPECT_TRUE(gone(held));
  EXPECT_TRUE(eventually([&] { return rmdir(group.c_str()) == 0 || errno == ENOENT; }));
}

INSTANTIATE_TEST_SUITE_P(Launcher, LeftBehind, ::testing::Values("signals"),
                         [](const auto &info) { return info.param; });

// The output file is opened on the loop's thread, beneath the output
// directory, in a directory its owner owns: a file system mounted there (an
// owner with fusermount could mount one that never answers; the test, as
// root, mounts a tmpfs in its place) is refused, never entered.
TEST(Launcher, AFileSystemMountedOnAnOwnersOutputDirectoryIsNeverEntered) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount, and to attack as another uid";
  Daemon d(R"({"attach": {"uids": [65534]}, "default_claims": {"buffers": 16, "processes": 2}})");
  ASSERT_TRUE(d.ready()) << d.log();
  d.let_others_in();
  std::string theirs = d.dir() + "/run/output/65534";
  Signal first, mounted;
  pid_t attacker = spawn([&]() {
    if (!become()) return 10;
    auto n = nucleus::Nucleus::attach("attacker");
    if (!n) return 11;
    nucleus::Claims claims{};
    nucleus::Program program{"/bin/true", {"true"}, {}, "", "", ""};
    if (!n->create_process("one", program, claims).ok()) return 12;
    if (!n->start_process("one").ok()) return 13;  // makes its output directory
    first.notify();
    if (mounted.wait() != 'x') return 14;
    if (!n->create_process("two", program, claims).ok()) return 15;
    return n->start_process("two").error() == -EXDEV ? 0 : 16;
  });
  ASSERT_EQ(first.wait(), 'x');
  ASSERT_EQ(mount("none", theirs.c_str(), "tmpfs", 0, "mode=0700,uid=65534"), 0)
      << theirs << ": " << std::strerror(errno);
  mounted.notify();
  EXPECT_EQ(exit_code(wait_exit(attacker)), 0) << d.log();
  DIR *dir = opendir(theirs.c_str());
  ASSERT_NE(dir, nullptr);
  int entries = 0;
  while (dirent *e = readdir(dir)) entries += e->d_name[0] != '.';
  closedir(dir);
  EXPECT_EQ(entries, 0) << "nothing was created in the mounted file system";
  EXPECT_EQ(umount(theirs.c_str()), 0);
  EXPECT_NE(d.log().find("process two: cannot open its output file: Invalid cross-device link"),
            std::string::npos)
      << d.log();
}

}  // namespace
}  // namespace nucleus::test
