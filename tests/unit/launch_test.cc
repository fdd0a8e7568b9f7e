// launch() (daemon/launch.h): the child runs raw system calls only, so it
// does execvp's search itself, from candidates laid out before the clone.
// These run real children and decide from what they wrote and the errno
// the start gave: execvp's rules (EACCES remembered while the search goes
// on, ENOEXEC run as a shell script), and a watchdog that kills a child
// before its exec (one born frozen in a cgroup v2) turns the start into
// -ETIMEDOUT.
#include "launch.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <nucleus_internal/sys.h>

namespace nucleus::daemon {
namespace {

namespace fs = std::filesystem;

TEST(ExecCandidates, ASlashMeansThatFileAlone) {
  std::vector<std::string> out;
  EXPECT_EQ(exec_candidates("./run", "/a:/b", &out), 0);
  EXPECT_EQ(out, std::vector<std::string>{"./run"});
  EXPECT_EQ(exec_candidates("/bin/x", nullptr, &out), 0);
  EXPECT_EQ(out, std::vector<std::string>{"/bin/x"});
}

TEST(ExecCandidates, ANameIsLookedForInEachDirectoryInOrder) {
  std::vector<std::string> out;
  EXPECT_EQ(exec_candidates("sh", "/usr/local/bin::/bin", &out), 0);
  // An empty directory is the working directory, as for execvp.
  EXPECT_EQ(out, (std::vector<std::string>{"/usr/local/bin/sh", "sh", "/bin/sh"}));
  EXPECT_EQ(exec_candidates("sh", nullptr, &out), 0);
  EXPECT_EQ(out, (std::vector<std::string>{"/bin/sh", "/usr/bin/sh"}));  // glibc's default
}

TEST(ExecCandidates, WhatExecvpRefusesBeforeTryingAny) {
  std::vector<std::string> out;
  EXPECT_EQ(exec_candidates("", "/bin", &out), ENOENT);
  EXPECT_EQ(exec_candidates(std::string(300, 'x'), "/bin", &out), ENAMETOOLONG);
  // A directory too long for any file is skipped.
  EXPECT_EQ(exec_candidates("sh", (std::string(5000, 'd') + ":/bin").c_str(), &out), 0);
  EXPECT_EQ(out, std::vector<std::string>{"/bin/sh"});
}

// A directory of files to start, removed at the end.
class Launch : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/nucleus-launch-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    ASSERT_EQ(pipe2(out_, O_CLOEXEC), 0);
    nucleus_fd_.reset(open("/dev/null", O_RDWR | O_CLOEXEC));
  }
  void TearDown() override {
    close(out_[0]);
    if (out_[1] >= 0) close(out_[1]);
    fs::remove_all(dir_);
  }
  std::string file(const std::string &name, const std::string &text, mode_t mode) {
    std::string path = dir_ + "/" + name;
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path) << text;
    EXPECT_EQ(chmod(path.c_str(), mode), 0);
    return path;
  }
  // Starts `program`; its exit status in *status when it ran. Returns
  // launch()'s result.
  int run(Program program, const std::string &search_path, int *status = nullptr,
          LaunchWatch *watch = nullptr, int cgroup_fd = -1) {
    LaunchSpec spec;
    spec.program = &program;
    spec.nucleus_fd = nucleus_fd_.get();
    spec.output_fd = out_[1];
    spec.cgroup_fd = cgroup_fd;
    spec.socket_path = "/nonexistent";
    spec.search_path = search_path.c_str();
    spec.watch = watch;
    Launched launched;
    int rc = launch(spec, &launched);
    if (rc == 0) {
      int st = 0;
      EXPECT_EQ(waitpid(launched.pid, &st, 0), launched.pid);
      if (status != nullptr) *status = st;
    } else {
      // A child that did not exec is left to nucleusd's loop to reap; here,
      // the only children this process has.
      while (waitpid(-1, nullptr, 0) > 0) {
      }
    }
    return rc;
  }
  // What the programs wrote so far.
  std::string output() {
    close(out_[1]);
    out_[1] = -1;
    std::string text;
    char buf[256];
    for (ssize_t n; (n = read(out_[0], buf, sizeof(buf))) > 0;) {
      text.append(buf, static_cast<size_t>(n));
    }
    return text;
  }

  std::string dir_;
  int out_[2] = {-1, -1};
  sys::UniqueFd nucleus_fd_;
};

TEST_F(Launch, TheSearchGoesOnPastADeniedFileAndRunsAScriptWithoutAnInterpreterLine) {
  file("a/tool", "echo denied\n", 0644);  // not executable: EACCES, remembered
  std::string script = file("b/tool", "echo \"ran $0 with $1\"\n", 0755);  // no #!: ENOEXEC
  int status = -1;
  EXPECT_EQ(run(Program{"tool", "", {"tool", "word"}, {}},
                dir_ + "/none:" + dir_ + "/a:" + dir_ + "/b", &status),
            0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(output(), "ran " + script + " with word\n");
}

TEST_F(Launch, EveryCandidateDeniedIsEaccesAndNoneFoundIsEnoent) {
  file("a/tool", "echo denied\n", 0644);
  EXPECT_EQ(run(Program{"tool", "", {}, {}}, dir_ + "/a:" + dir_ + "/none"), -EACCES);
  EXPECT_EQ(run(Program{"tool", "", {}, {}}, dir_ + "/none:" + dir_ + "/other"), -ENOENT);
  EXPECT_EQ(run(Program{dir_ + "/none/tool", "", {}, {}}, ""), -ENOENT);
  EXPECT_EQ(run(Program{dir_, "", {}, {}}, ""), -EACCES);  // a directory
  EXPECT_EQ(output(), "");
}

TEST_F(Launch, AWorkingDirectoryThatIsNotThereIsTheStartsError) {
  std::string tool = file("tool", "#!/bin/sh\npwd\n", 0755);
  EXPECT_EQ(run(Program{tool, dir_ + "/none", {}, {}}, ""), -ENOENT);
  EXPECT_EQ(run(Program{tool, dir_ + "/tool", {}, {}}, ""), -ENOTDIR);
  int status = -1;
  EXPECT_EQ(run(Program{tool, dir_, {}, {}}, "", &status), 0);
  EXPECT_EQ(output(), dir_ + "\n");
}

// A stand-in for the Launcher's watchdog: another thread that kills the
// child through the slot the kernel filled, while launch() waits in clone.
class KillingWatch final : public LaunchWatch {
 public:
  ChildSlot &slot() override { return slot_; }
  Taken finish() override {
    Taken t;
    t.pidfd = slot_.pidfd.exchange(-1);
    t.killed = killed_.load();
    slot_.pid.store(0);
    return t;
  }
  // Kills the child once the kernel has shown it (pid and pidfd).
  void kill_when_seen() {
    for (int tries = 0; tries < 20000000; ++tries) {
      pid_t pid = slot_.pid.load();
      int pidfd = slot_.pidfd.load();
      if (pid > 0 && pidfd >= 0) {
        killed_ = syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0) == 0;
        return;
      }
      std::this_thread::yield();
    }
  }

 private:
  ChildSlot slot_;
  std::atomic<bool> killed_{false};
};

// The cgroup v2 hierarchy (type cgroup2 in /proc/self/mounts), or "".
std::string cgroup2_root() {
  std::ifstream mounts("/proc/self/mounts");
  std::string dev, dir, type, rest;
  while (mounts >> dev >> dir >> type && std::getline(mounts, rest)) {
    if (type == "cgroup2") return dir;
  }
  return "";
}

TEST_F(Launch, AChildBornFrozenIsKilledThroughItsPidfdAndTheStartTimesOut) {
  std::string root = cgroup2_root();
  std::string group = root + "/nucleus-launch-test-" + std::to_string(getpid());
  if (root.empty() || mkdir(group.c_str(), 0755) < 0) {
    GTEST_SKIP() << "no cgroup v2 hierarchy to make a group in";
  }
  std::ofstream(group + "/cgroup.freeze") << "1";
  sys::UniqueFd cgroup(open(group.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(cgroup);
  std::string tool = file("tool", "#!/bin/sh\necho ran\n", 0755);
  KillingWatch watch;
  std::thread watchdog([&] { watch.kill_when_seen(); });
  // CLONE_VFORK: this returns only once the frozen child is gone.
  EXPECT_EQ(run(Program{tool, "", {}, {}}, "", nullptr, &watch, cgroup.get()), -ETIMEDOUT);
  watchdog.join();
  EXPECT_EQ(output(), "") << "it never ran";
  rmdir(group.c_str());
}

}  // namespace
}  // namespace nucleus::daemon
