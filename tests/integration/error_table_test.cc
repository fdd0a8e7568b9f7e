// The error table (issue 21, docs/errors.md): each situation a user meets
// through the library, provoked against a real nucleusd, and the exact text
// nucleus_last_error (and Result::message) gives for it, with its errno.
// As root, and as uid 65534 for the refusals of authority and bounds.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "harness.h"

namespace nucleus::test {
namespace {

// What a failed call must have said: its errno and its per-call text. In
// `text`, "{n}" stands for a number the test cannot know beforehand.
bool matches(const std::string &text, const std::string &want) {
  size_t hole = want.find("{n}");
  if (hole == std::string::npos) return text == want;
  std::string head = want.substr(0, hole);
  std::string tail = want.substr(hole + 3);
  if (text.size() < head.size() + tail.size() + 1 || text.compare(0, head.size(), head) != 0 ||
      text.compare(text.size() - tail.size(), tail.size(), tail) != 0) {
    return false;
  }
  std::string digits = text.substr(head.size(), text.size() - head.size() - tail.size());
  return digits.find_first_not_of("0123456789") == std::string::npos;
}

// "" when `r` failed with `code` and said `want`, both through
// nucleus_last_error and through the Result; else what differed.
template <typename R>
std::string check(const std::string &situation, const R &r, int code, const std::string &want) {
  std::ostringstream out;
  if (r.ok()) {
    out << situation << ": succeeded\n";
    return out.str();
  }
  if (r.error() != code) out << situation << ": code " << r.error() << ", want " << code << "\n";
  std::string last = nucleus_last_error();
  if (!matches(last, want)) out << situation << ": last error \"" << last << "\"\n";
  if (!matches(std::string(r.message()), want)) {
    out << situation << ": message \"" << r.message() << "\"\n";
  }
  return out.str();
}

class ErrorTable : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to attack as uid 65534";
    daemon_ = std::make_unique<Daemon>(R"({"attach": {"uids": [65534]},
        "pool": {"buffers": 512},
        "default_claims": {"buffers": 4, "processes": 8, "devices": 1},
        "limits": {"per_uid": {"processes": 2},
                   "per_connection": {"staged_bytes": 4096}},
        "names": [{"own": "db", "uids": [1234]}]})");
    ASSERT_TRUE(daemon_->ready()) << daemon_->log();
    daemon_->let_others_in();
    // A short directory: a start's reply carries up to 55 bytes of the path.
    char dir[] = "/tmp/nerrXXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    files_ = dir;
    ASSERT_EQ(chmod(files_.c_str(), 0755), 0);
  }
  void TearDown() override {
    if (!files_.empty()) std::filesystem::remove_all(files_);
  }

  std::unique_ptr<Daemon> daemon_;
  std::string files_;
};

Program program(const std::string &path) {
  return Program{path, {path.substr(path.rfind('/') + 1)}, {}, "", "", ""};
}

TEST_F(ErrorTable, EachSituationSaysItsCause) {
  Nucleus t = attach("t");
  Nucleus sink = attach("sink");
  std::string bad;
  const Claims none{0, 0, 0, 0, 0};

  // Programs that cannot run: exec's errno and the path.
  ASSERT_TRUE(t.create_process("missing", program("/nonexistent/prog"), none));
  bad += check("missing program", t.start_process("missing"), -ENOENT,
               "start_process \"missing\": cannot execute /nonexistent/prog: No such file or "
               "directory");
  std::string plain = files_ + "/plain";
  std::ofstream(plain) << "#!/bin/sh\nexit 0\n";
  ASSERT_EQ(chmod(plain.c_str(), 0644), 0);
  ASSERT_TRUE(t.create_process("plain", program(plain), none));
  bad += check("not executable", t.start_process("plain"), -EACCES,
               "start_process \"plain\": cannot execute " + plain + ": Permission denied");

  // Claims: of the parent, of the caller, of the nucleus (the pool).
  ASSERT_TRUE(t.create_process("zero", program("/bin/true"), none));
  ASSERT_TRUE(t.act_for("zero"));
  bad += check("no processes claim", t.create_process("gc", program("/bin/true"), none), -ENOBUFS,
               "create_process \"gc\": the processes claim of the parent is 0 "
               "(claims.processes)");
  ASSERT_TRUE(t.act_for(std::nullopt));
  ASSERT_TRUE(t.create_external_process("nul1", DeviceKind::kNull, {}));
  bad += check("devices claim used up", t.create_external_process("nul2", DeviceKind::kNull, {}),
               -ENOBUFS,
               "create_external_process \"nul2\": the devices claim of this process is 1, and "
               "every one is in use by a device it named (claims.devices)");
  ASSERT_TRUE(t.act_for(""));  // root is an operator: the root pays
  bad += check("empty pool",
               t.create_process("big", program("/bin/true"), Claims{60000, 0, 0, 0, 0}), -ENOBUFS,
               "create_process \"big\": the nucleus's pool has {n} unowned free buffers, fewer "
               "than the claim asks (pool.buffers)");
  ASSERT_TRUE(t.act_for(std::nullopt));
  // States.
  Program sleeper = program("/bin/sleep");
  sleeper.argv.push_back("1000");
  ASSERT_TRUE(t.create_process("twice", sleeper, none));
  ASSERT_TRUE(t.start_process("twice"));
  bad += check("start of a running child", t.start_process("twice"), -EALREADY,
               "start_process \"twice\": it is running already");
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(t.send_message("sink", words(i)));
  bad += check("buffer claim out", t.send_message("sink", words(9)), -ENOBUFS,
               "send_message \"sink\": every buffer of this process's claim (4) is out");

  // Names.
  bad += check("bad name", t.create_process("bad name", program("/bin/true"), none), -EINVAL,
               "create_process \"bad name\": a name is 1 to 31 bytes of [A-Za-z0-9._-]");
  bad += check("name taken", t.create_process("zero", program("/bin/true"), none), -EEXIST,
               "create_process \"zero\": the name is taken by another process or device");
  bad += check("reserved name", Nucleus::attach("db"), -EPERM,
               "attach \"db\": the name is reserved by the configuration's names section for "
               "other uids");
  bad += check("not a child", t.start_process("ghost"), -ESRCH,
               "start_process \"ghost\": no child of that name (of this process, or of the one "
               "it acts for)");

  // Programs too big: the daemon's bound, and the wire's.
  Program huge = program("/bin/true");
  huge.argv.push_back(std::string(5000, 'x'));
  bad += check("staged too big", t.create_process("huge", huge, none), -E2BIG,
               "create_process \"huge\": the program's strings are over "
               "limits.per_connection.staged_bytes (4096 bytes)");
  huge.argv.push_back(std::string(40000, 'x'));
  bad += check("program too big", t.create_process("huge", huge, none), -E2BIG,
               "create_process \"huge\": the program's strings are over the wire's bound (32768 "
               "bytes, 1024 arguments and environment entries)");

  // Devices.
  bad += check("release not reserved", t.release_process("nul1"), -EPERM,
               "release_process \"nul1\": the device is not reserved by this process");
  bad += check("no such device", t.reserve_process("nodev"), -ESRCH,
               "reserve_process \"nodev\": no device of that name (to remove: none this process "
               "named)");

  EXPECT_EQ(bad, "");
}

// The refusals of authority and of the per-uid bounds, met by uid 65534.
TEST_F(ErrorTable, AnUnprivilegedUidIsToldWhichRuleRefusedIt) {
  Nucleus t = attach("t");
  ASSERT_TRUE(t.create_external_process("nul1", DeviceKind::kNull, {}));
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = spawn([&] {
    close(fds[0]);
    std::string bad;
    if (!become()) {
      bad = "cannot become uid 65534\n";
    } else {
      auto nb = Nucleus::attach("nb");
      if (!nb) {
        bad = "attach: " + std::string(nb.message());
      } else {
        Nucleus &n = nb.value();
        const Claims none{0, 0, 0, 0, 0};
        bad += check("act for the root", n.act_for(""), -EACCES,
                     "act_for: only an operator (the configuration's operators) may act for the "
                     "root");
        bad += check("act for another's", n.act_for("t"), -EACCES,
                     "act_for \"t\": the process acted for is owned by uid 0, and this process's "
                     "uid is not an operator");
        Program as_root = program("/bin/true");
        as_root.user = "0";
        bad += check("owner rule", n.create_process("own", as_root, none), -EPERM,
                     "create_process \"own\": its program would run as uid 0, an owner only root "
                     "or that uid may name (the owner rule)");
        bad += check("unrelated device", n.reserve_process("nul1"), -EPERM,
                     "reserve_process \"nul1\": the device's namer is neither an ancestor nor a "
                     "descendant of this process (the root's devices are operators' only)");
        if (!n.create_process("c1", program("/bin/true"), none)) bad += "create c1 failed\n";
        bad +=
            check("per-uid processes", n.create_process("c2", program("/bin/true"), none), -EDQUOT,
                  "create_process \"c2\": uid 65534 owns as many processes as "
                  "limits.per_uid.processes (2) allows");
      }
    }
    ssize_t w = write(fds[1], bad.data(), bad.size());
    (void)w;
    close(fds[1]);
    return 0;
  });
  close(fds[1]);
  std::string bad;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;)
    bad.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  EXPECT_EQ(exit_code(wait_exit(pid)), 0);
  EXPECT_EQ(bad, "");
}

}  // namespace
}  // namespace nucleus::test
