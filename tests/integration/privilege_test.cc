// Least privilege (DESIGN.md, "Principals, privilege and bounds"): programs
// run as their owner and never as more, nucleusd opens what a client names
// with that client's rights and never through a magic link, and client text
// that is not UTF-8 is refused where it enters. Each test attacks a root
// nucleusd as uid 65534 (kNobody) and asserts on what the kernel shows
// (/proc/PID/status), not on what nucleusd says. They need root to make
// another uid and skip without it.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"
#include "run_program.h"

namespace nucleus::test {
namespace {

using json = nlohmann::json;

const char *kCtl = NUCLEUSCTL_PATH;
const char *kSleep = "/bin/sleep";

// /proc/PID/status as field -> value (tabs and spaces trimmed at the ends).
std::map<std::string, std::string> status_of(pid_t pid) {
  std::map<std::string, std::string> out;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t") + 1);
    out[line.substr(0, colon)] = value;
  }
  return out;
}

std::set<uint32_t> numbers(const std::string &text) {
  std::set<uint32_t> out;
  std::istringstream in(text);
  uint32_t n = 0;
  while (in >> n) out.insert(n);
  return out;
}

// Its process group and session, from /proc/PID/stat (fields 5 and 6).
std::pair<pid_t, pid_t> group_and_session(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream rest(all.substr(all.rfind(')') + 2));
  std::string state;
  pid_t ppid = 0, pgrp = 0, session = 0;
  rest >> state >> ppid >> pgrp >> session;
  return {pgrp, session};
}

// The supplementary groups the user database gives `user`.
std::set<uint32_t> groups_of(const char *user, gid_t gid) {
  int count = 64;
  std::vector<gid_t> groups(static_cast<size_t>(count));
  if (getgrouplist(user, gid, groups.data(), &count) < 0) return {};
  return {groups.begin(), groups.begin() + count};
}

void expect_unprivileged(pid_t pid, uint32_t uid, uint32_t gid, const char *user) {
  auto s = status_of(pid);
  std::string u = std::to_string(uid), g = std::to_string(gid);
  EXPECT_EQ(s["Uid"], u + "\t" + u + "\t" + u + "\t" + u);
  EXPECT_EQ(s["Gid"], g + "\t" + g + "\t" + g + "\t" + g);
  EXPECT_EQ(numbers(s["Groups"]), groups_of(user, gid));
  for (const char *set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_EQ(s[set], "0000000000000000") << set;
  }
  EXPECT_EQ(s["NoNewPrivs"], "1");
  auto [pgrp, session] = group_and_session(pid);
  EXPECT_EQ(pgrp, pid);     // its own process group ...
  EXPECT_EQ(session, pid);  // ... in its own session
}

// A pipe that carries one number from a forked child.
class Channel {
 public:
  Channel() { EXPECT_EQ(pipe2(fds_, O_CLOEXEC), 0); }
  ~Channel() {
    close(fds_[0]);
    close(fds_[1]);
  }
  void put(int64_t v) { EXPECT_EQ(write(fds_[1], &v, sizeof(v)), static_cast<ssize_t>(sizeof(v))); }
  int64_t get() {
    int64_t v = 0;
    return read(fds_[0], &v, sizeof(v)) == sizeof(v) ? v : -1;
  }

 private:
  int fds_[2] = {-1, -1};
};

TEST(Privilege, AProgramRunsAsItsOwnerWithNoCapabilitiesAndCannotNameAnother) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  Daemon d(R"({"attach": {"uids": [65534]}, "default_claims": {"processes": 3}})");
  ASSERT_TRUE(d.ready());
  d.let_others_in();
  Channel pid_of;
  pid_t attacker = spawn([&]() {
    if (!become()) return 10;
    auto n = nucleus::Nucleus::attach("attacker");
    if (!n.ok()) return 11;
    nucleus::Claims claims{};
    claims.buffers = 1;
    // Chosen by the creator, and harmless now that it runs as the creator.
    nucleus::Program program{kSleep, {"sleep", "600"}, {"LD_PRELOAD=/nonexistent.so"}, "", "", ""};
    nucleus::Program as_root = program;
    as_root.user = "root";
    if (n.value().create_process("root", as_root, claims).error() != -EPERM) return 12;
    nucleus::Program root_group = program;
    root_group.group = "0";
    if (n.value().create_process("wheel", root_group, claims).error() != -EPERM) return 13;
    // Its working directory is entered with its rights.
    nucleus::Program in_root = program;
    in_root.cwd = "/root";
    if (!n.value().create_process("nocwd", in_root, claims).ok()) return 14;
    if (n.value().start_process("nocwd").error() != -EACCES) return 15;
    if (!n.value().create_process("payload", program, claims).ok()) return 16;
    if (!n.value().start_process("payload").ok()) return 17;
    auto info = n.value().get_process("payload");
    if (!info.ok() || info.value().uid != kNobody || info.value().gid != kNobody) return 18;
    pid_of.put(info.value().pid);
    return 0;
  });
  EXPECT_EQ(exit_code(wait_exit(attacker)), 0);
  pid_t pid = static_cast<pid_t>(pid_of.get());
  ASSERT_GT(pid, 0);
  expect_unprivileged(pid, kNobody, kNobody, "nobody");
  // nucleusctl shows the owner.
  Ran ps = run_program(kCtl, {"--socket", d.socket_path(), "--json", "ps"});
  ASSERT_EQ(ps.code, 0) << ps.err;
  bool seen = false;
  json list = json::parse(ps.out);
  for (const json &p : list["processes"]) {
    if (p["name"] != "payload") continue;
    seen = true;
    EXPECT_EQ(p["uid"], kNobody);
    EXPECT_EQ(p["gid"], kNobody);
    EXPECT_EQ(p["user"], "nobody");
  }
  EXPECT_TRUE(seen) << ps.out;
  Ran tree = run_program(kCtl, {"--socket", d.socket_path(), "tree"});
  EXPECT_NE(tree.out.find("payload  running  pid " + std::to_string(pid) + "  as nobody"),
            std::string::npos)
      << tree.out;
}

TEST(Privilege, OnlyARootOwnedCreatorNamesTheUserAndTheBootSectionNamesIts) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to start programs as another uid";
  Daemon d(std::string(R"({"boot": [{"name": "os", "program": ")") + kSleep +
           R"(", "args": ["600"], "user": "nobody"}]})");
  ASSERT_TRUE(d.ready()) << d.log();
  auto n = attach("operator");
  ASSERT_TRUE(n.act_for(std::string()).ok());  // the root's children
  nucleus::Claims claims{};
  claims.buffers = 1;
  nucleus::Program program{kSleep, {"sleep", "600"}, {}, "", "nobody", ""};
  ASSERT_TRUE(n.create_process("theirs", program, claims).ok());
  ASSERT_TRUE(n.start_process("theirs").ok());
  program.user.clear();
  ASSERT_TRUE(n.create_process("mine", program, claims).ok());
  ASSERT_TRUE(n.start_process("mine").ok());
  // A swap keeps the OS's owner: its new program cannot name another.
  EXPECT_EQ(n.swap_process("theirs", nucleus::Program{kSleep, {}, {}, "", "root", ""}).error(),
            -EPERM);
  program.user = "no-such-user-here";
  EXPECT_EQ(n.create_process("ghost", program, claims).error(), -EINVAL);
  for (const char *name : {"os", "theirs"}) {
    auto info = n.get_process(name);
    ASSERT_TRUE(info.ok()) << name;
    EXPECT_EQ(info.value().uid, kNobody) << name;
    expect_unprivileged(static_cast<pid_t>(info.value().pid), kNobody, kNobody, "nobody");
  }
  // A root-owned program keeps root's rights, but never gains more.
  auto mine = n.get_process("mine");
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(mine.value().uid, 0U);
  auto s = status_of(static_cast<pid_t>(mine.value().pid));
  EXPECT_EQ(s["Uid"], "0\t0\t0\t0");
  EXPECT_EQ(s["NoNewPrivs"], "1");
}

TEST(Privilege, DevicePathsAreOpenedWithTheRequestersRightsAndNeverThroughMagicLinks) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  Daemon d(R"({"attach": {"uids": [65534]}, "default_claims": {"devices": 4}})");
  ASSERT_TRUE(d.ready());
  d.let_others_in();
  // A victim whose channel is in nucleusd's descriptor table.
  auto victim = attach("victim");
  // Its channel is mode 0600 in nucleusd (memfds are born 0777).
  int memfds = 0;
  std::string fds = "/proc/" + std::to_string(d.pid()) + "/fd";
  for (const auto &entry : std::filesystem::directory_iterator(fds)) {
    char link[256] = {};
    ssize_t len = readlink(entry.path().c_str(), link, sizeof(link) - 1);
    if (len <= 0 || std::string(link).find("memfd:nucleus:victim") == std::string::npos) continue;
    struct stat st {};
    ASSERT_EQ(stat(entry.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600U);
    ++memfds;
  }
  EXPECT_EQ(memfds, 1);
  // A place the attacker may write, to show that what it may open it can.
  char dir[] = "/tmp/nucleus-privilege-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  ASSERT_EQ(chown(dir, kNobody, kNobody), 0);
  std::string theirs = std::string(dir) + "/console";
  std::string secret = std::string(dir) + "/secret";
  ASSERT_EQ(close(open(secret.c_str(), O_CREAT | O_WRONLY, 0600)), 0);  // root's
  pid_t daemon_pid = d.pid();
  pid_t attacker = spawn([&]() {
    if (!become()) return 10;
    auto n = nucleus::Nucleus::attach("attacker");
    if (!n.ok()) return 11;
    std::vector<std::string> refused{"/proc/self/mem", "/proc/self/environ", "/etc/shadow", secret,
                                     "/proc/" + std::to_string(daemon_pid) + "/mem"};
    for (int fd = 0; fd < 64; ++fd) {
      refused.push_back("/proc/self/fd/" + std::to_string(fd));
      refused.push_back("/proc/" + std::to_string(daemon_pid) + "/fd/" + std::to_string(fd));
    }
    refused.emplace_back("/proc/thread-self/fd/3");
    int opened = 0;
    for (const std::string &path : refused) {
      for (auto kind : {nucleus::DeviceKind::kConsole, nucleus::DeviceKind::kDisk}) {
        nucleus::DeviceParameters p;
        p.path = path;
        if (n.value().create_external_process("stolen", kind, p).ok()) {
          std::fprintf(stderr, "opened %s\n", path.c_str());
          ++opened;
          (void)n.value().remove_external_process("stolen");
        }
      }
    }
    if (opened != 0) return 20 + std::min(opened, 50);
    nucleus::DeviceParameters own;
    own.path = theirs;
    return n.value().create_external_process("mine", nucleus::DeviceKind::kConsole, own).ok() ? 0
                                                                                              : 12;
  });
  EXPECT_EQ(exit_code(wait_exit(attacker)), 0);
  // The file it named was created with its rights, not nucleusd's.
  struct stat st {};
  EXPECT_EQ(stat(theirs.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kNobody);
  // The victim still works.
  auto b = victim.send_message("victim", words(7));
  ASSERT_TRUE(b.ok());
  std::filesystem::remove_all(dir);
}

TEST(Privilege, ProgramTextThatIsNotUtf8IsRefusedAndEveryQueryStillAnswers) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  auto n = attach("operator");
  ASSERT_TRUE(n.act_for(std::string()).ok());
  nucleus::Claims claims{};
  for (int byte = 0x80; byte <= 0xff; ++byte) {
    std::string bad(1, static_cast<char>(byte));
    nucleus::Program in_path{"/bin/x" + bad, {}, {}, "", "", ""};
    EXPECT_EQ(n.create_process("p", in_path, claims).error(), -EINVAL) << byte;
    nucleus::Program in_args{kSleep, {"sleep", "1" + bad}, {}, "", "", ""};
    EXPECT_EQ(n.create_process("a", in_args, claims).error(), -EINVAL) << byte;
    nucleus::Program in_env{kSleep, {}, {"X=" + bad}, "", "", ""};
    EXPECT_EQ(n.create_process("e", in_env, claims).error(), -EINVAL) << byte;
    nucleus::Program in_cwd{kSleep, {}, {}, "/" + bad, "", ""};
    EXPECT_EQ(n.create_process("c", in_cwd, claims).error(), -EINVAL) << byte;
  }
  // Overlong forms and surrogates are not UTF-8 either; real UTF-8 is text.
  for (std::string bad : {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}) {
    nucleus::Program p{"/bin/" + bad, {}, {}, "", "", ""};
    EXPECT_EQ(n.create_process("p", p, claims).error(), -EINVAL);
  }
  nucleus::Program text{
      "/bin/\xc3\xa9t\xc3\xa9", {"\xe2\x82\xac", "\xf0\x9f\x98\x80"}, {}, "", "", ""};
  ASSERT_TRUE(n.create_process("utf8", text, claims).ok());
  for (const std::vector<std::string> &query : std::vector<std::vector<std::string>>{
           {"status"}, {"ps"}, {"tree"}, {"stats"}, {"devices"}}) {
    for (bool as_json : {false, true}) {
      std::vector<std::string> args{"--socket", d.socket_path()};
      if (as_json) args.emplace_back("--json");
      args.insert(args.end(), query.begin(), query.end());
      Ran r = run_program(kCtl, args);
      EXPECT_EQ(r.code, 0) << query[0] << " " << r.err;
      if (as_json && query[0] == "ps") {
        EXPECT_NE(r.out.find("\"/bin/\xc3\xa9t\xc3\xa9\""), std::string::npos) << r.out;
      }
    }
  }
  EXPECT_EQ(kill(d.pid(), 0), 0);
  EXPECT_TRUE(n.get_stats().ok());
}

}  // namespace
}  // namespace nucleus::test

namespace nucleus::test {
namespace {

TEST(Privilege, ANucleusdThatIsNotRootRunsProgramsOnlyAsItsOwnUid) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run nucleusd as another uid";
  char dir[] = "/tmp/nucleus-unprivileged-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  ASSERT_EQ(chown(dir, kNobody, kNobody), 0);
  std::string config = std::string(dir) + "/config.json";
  std::string log = std::string(dir) + "/log";
  std::ofstream(config) << R"({"devices": [], "boot": [{"name": "os", "program": ")" << kSleep
                        << R"(", "args": ["600"], "user": "root"}]})";
  std::string nucleusd = for_others(NUCLEUSD_PATH);
  pid_t daemon = spawn([&]() {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || dup2(fd, 2) < 0 || !become()) return 126;
    execl(nucleusd.c_str(), nucleusd.c_str(), "--config", config.c_str(), "--runtime-dir",
          (std::string(dir) + "/run").c_str(), nullptr);
    return 127;
  });
  EXPECT_EQ(exit_code(wait_exit(daemon)), 1);
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("boot[0] (os): nucleusd is not root: it runs programs only as its own uid "
                      "65534, not as root"),
            std::string::npos)
      << text;
  std::filesystem::remove_all(dir);
}

TEST(Privilege, AProgramsOutputGoesToItsOwnersFileNotToNucleusdsLog) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  char logs[] = "/tmp/nucleus-logs-XXXXXX";  // processes.output_dir: a disk, not the runtime tmpfs
  ASSERT_NE(mkdtemp(logs), nullptr);
  Daemon d(std::string(R"({"attach": {"uids": [65534]}, "default_claims": {"processes": 1},
               "processes": {"output_dir": ")") +
           logs + R"("}})");
  ASSERT_TRUE(d.ready());
  d.let_others_in();
  const char *forged = "2026-01-01 00:00:00.000 nucleusd[1] info: process root attached";
  pid_t attacker = spawn([&]() {
    if (!become()) return 10;
    auto n = nucleus::Nucleus::attach("attacker");
    if (!n.ok()) return 11;
    nucleus::Claims claims{};
    std::string script = std::string("echo '") + forged + "'; echo '" + forged + "' >&2";
    nucleus::Program program{"/bin/sh", {"sh", "-c", script}, {}, "", "", ""};
    if (!n.value().create_process("writer", program, claims).ok()) return 12;
    if (!n.value().start_process("writer").ok()) return 13;
    auto notice = n.value().wait_message(kDeadline);  // its exit
    if (!notice.ok() || !nucleus::Nucleus::exit_notice(notice.value()).has_value()) return 14;
    return 0;
  });
  ASSERT_EQ(exit_code(wait_exit(attacker)), 0);
  EXPECT_EQ(d.log().find(forged), std::string::npos) << d.log();
  std::string dir = std::string(logs) + "/65534";
  std::string file = dir + "/writer.log";
  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, std::string(forged) + "\n" + forged + "\n");
  struct stat st {};
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kNobody);
  EXPECT_EQ(st.st_mode & 0777, 0700U);
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kNobody);  // created with its owner's rights
  EXPECT_EQ(st.st_mode & 0777, 0600U);
  std::filesystem::remove_all(logs);
}

}  // namespace
}  // namespace nucleus::test

// Issue 20: every way a program comes to run under an owner follows the
// owner rule, the bound connection attaches only its owner, and acting for
// an entry needs its whole principal (docs/security.md, "The owner rule").
namespace nucleus::test {
namespace {

const char *kTestProgram = NUCLEUS_TEST_PROGRAM;

// /proc/PID/cmdline with its NULs as spaces.
std::string cmdline_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::replace(all.begin(), all.end(), '\0', ' ');
  return all;
}

// Finding 3: root gives uid 65534 an entry ("given") and creates two of its
// children as root. 65534 acts for its entry and replaces the first one's
// program without naming a user: refused, and so is starting it; what root
// then starts there is root's own program. Naming itself for the second,
// 65534 may: that child becomes its own and runs as 65534.
TEST(Privilege, AModifyNeverRunsTheRequestersProgramAsTheChildsOtherOwner) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  Daemon d(R"({"attach": {"uids": [65534]}})");
  ASSERT_TRUE(d.ready()) << d.log();
  d.let_others_in();
  char dir[] = "/tmp/nucleus-modify-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  ASSERT_EQ(chmod(dir, 0777), 0);
  std::string as_root = std::string(dir) + "/ran-as-root";
  std::string as_self = std::string(dir) + "/ran-as-self";
  auto op = attach("operator");
  ASSERT_TRUE(op.act_for(std::string()).ok());
  nucleus::Claims claims{};
  claims.buffers = 2;
  claims.processes = 4;
  ASSERT_TRUE(op.create_process("given",
                                nucleus::Program{kSleep, {"sleep", "600"}, {}, "", "nobody", ""},
                                claims)
                  .ok());
  ASSERT_TRUE(op.act_for(std::string("given")).ok());
  nucleus::Claims none{};
  for (const char *name : {"rootchild", "rootchild2"}) {
    ASSERT_TRUE(op.create_process(
                      name, nucleus::Program{kSleep, {"sleep", "601"}, {}, "", "root", ""}, none)
                    .ok());
    auto info = op.get_process(name);
    ASSERT_TRUE(info.ok());
    ASSERT_EQ(info.value().uid, 0U);
  }
  Channel pid_of;
  pid_t attacker = spawn([&]() {
    if (!become()) return 10;
    auto n = nucleus::Nucleus::attach("attacker");
    if (!n.ok()) return 11;
    if (!n.value().act_for(std::string("given")).ok()) return 12;  // its own entry
    nucleus::Program payload{"/bin/sh", {"sh", "-c", "id > " + as_root}, {}, "", "", ""};
    if (n.value().modify_process("rootchild", payload, std::nullopt).error() != -EPERM) return 13;
    if (n.value().start_process("rootchild").error() != -EPERM) return 14;
    nucleus::Program mine{
        "/bin/sh", {"sh", "-c", "id > " + as_self + "; exec sleep 600"}, {}, "", "nobody", ""};
    if (!n.value().modify_process("rootchild2", mine, std::nullopt).ok()) return 15;
    if (!n.value().start_process("rootchild2").ok()) return 16;
    auto info = n.value().get_process("rootchild2");
    if (!info.ok() || info.value().uid != kNobody) return 17;
    pid_of.put(info.value().pid);
    return 0;
  });
  ASSERT_EQ(exit_code(wait_exit(attacker)), 0);
  // The second child runs as 65534, not as root.
  pid_t mine = static_cast<pid_t>(pid_of.get());
  ASSERT_GT(mine, 0);
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(as_self); }));
  expect_unprivileged(mine, kNobody, kNobody, "nobody");
  // The first still has root's program: started by root, it runs that.
  ASSERT_TRUE(op.start_process("rootchild").ok());
  auto first = op.get_process("rootchild");
  ASSERT_TRUE(first.ok());
  // (Its start is answered once exec has begun: /proc may show the new
  // command line a moment later.)
  auto pid = static_cast<pid_t>(first.value().pid);
  EXPECT_TRUE(eventually([&] { return cmdline_of(pid) == "sleep 601 "; })) << cmdline_of(pid);
  EXPECT_EQ(status_of(pid)["Uid"], "0\t0\t0\t0");
  EXPECT_FALSE(std::filesystem::exists(as_root));
  EXPECT_NE(d.log().find("the owner rule"), std::string::npos) << d.log();
  std::filesystem::remove_all(dir);
}

// Finding 4: the connection nucleusd binds for a root entry's program
// (NUCLEUS_FD) is used by uid 65534: the program drops to it before it
// attaches, or hands the descriptor to a child that does. Neither attaches
// the root entry, so nothing runs as root on its behalf.
TEST(Privilege, TheBoundConnectionAttachesOnlyAPeerWithTheEntrysOwnersCredentials) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a program as another uid";
  Daemon d;
  ASSERT_TRUE(d.ready()) << d.log();
  auto op = attach("operator");
  nucleus::Claims claims{};
  claims.buffers = 2;
  claims.processes = 2;
  for (std::string how : {"self", "child"}) {
    SCOPED_TRACE(how);
    std::string name = "victim-" + how;
    ASSERT_TRUE(op.act_for(std::string()).ok());
    // Root's: created by root with no user named.
    nucleus::Program program{
        kTestProgram, {"nucleus-test-program", "drop-attach", how}, {}, "", "", ""};
    ASSERT_TRUE(op.create_process(name, program, claims).ok());
    ASSERT_TRUE(op.start_process(name).ok());
    nucleus::ProcessInfo info{};
    ASSERT_TRUE(eventually([&] {
      auto i = op.get_process(name);
      if (i.ok()) info = i.value();
      return i.ok() && info.state == NUCLEUS_PROCESS_EXITED;
    }));
    EXPECT_EQ(info.uid, 0U);
    // The program's exit code is what its attach was answered.
    EXPECT_EQ(info.exit_kind, NUCLEUS_EXIT_CODE);
    EXPECT_EQ(info.exit_value, EACCES);
    // It created nothing: no payload ran as root.
    ASSERT_TRUE(op.act_for(name).ok());
    auto kids = op.list_children();
    ASSERT_TRUE(kids.ok());
    EXPECT_TRUE(kids.value().empty());
  }
  std::string log = d.log();
  EXPECT_NE(log.find("attach refused: the sender on its bound connection"), std::string::npos)
      << log;
  EXPECT_NE(log.find("uid 65534 gid 65534) is not its owner (uid 0 gid 0)"), std::string::npos)
      << log;
}

// Finding 5: root gives uid 65534 an entry with another group (shadow).
// 65534 may not act for it, so nothing runs with that group for it; an
// entry root gives it with its own group, it may, and what it starts there
// runs as 65534 with no group it does not have.
TEST(Privilege, ActingForAnEntryNeedsItsGroupTooAndNoChildGetsAGroupItsRequesterHasNot) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  Daemon d(R"({"attach": {"uids": [65534]}})");
  ASSERT_TRUE(d.ready()) << d.log();
  d.let_others_in();
  const group *shadow = getgrnam("shadow");
  std::string other_group = shadow != nullptr ? "shadow" : "42";
  auto op = attach("operator");
  ASSERT_TRUE(op.act_for(std::string()).ok());
  nucleus::Claims claims{};
  claims.buffers = 2;
  claims.processes = 2;
  nucleus::Program os{kSleep, {"sleep", "600"}, {}, "", "nobody", other_group};
  ASSERT_TRUE(op.create_process("shadowed", os, claims).ok());
  os.group.clear();
  ASSERT_TRUE(op.create_process("plain", os, claims).ok());
  Channel pid_of;
  pid_t attacker = spawn([&]() {
    if (!become()) return 10;
    auto n = nucleus::Nucleus::attach("attacker");
    if (!n.ok()) return 11;
    if (n.value().act_for(std::string("shadowed")).error() != -EACCES) return 12;
    nucleus::Program kid{kSleep, {"sleep", "600"}, {}, "", "", ""};
    if (!n.value().act_for(std::string("plain")).ok()) return 13;
    if (!n.value().create_process("kid", kid, nucleus::Claims{}).ok()) return 14;
    if (!n.value().start_process("kid").ok()) return 15;
    auto info = n.value().get_process("kid");
    if (!info.ok()) return 16;
    pid_of.put(info.value().pid);
    return 0;
  });
  ASSERT_EQ(exit_code(wait_exit(attacker)), 0);
  pid_t kid = static_cast<pid_t>(pid_of.get());
  ASSERT_GT(kid, 0);
  expect_unprivileged(kid, kNobody, kNobody, "nobody");
  // Nothing was created for the entry with the other group.
  ASSERT_TRUE(op.act_for(std::string("shadowed")).ok());
  auto kids = op.list_children();
  ASSERT_TRUE(kids.ok());
  EXPECT_TRUE(kids.value().empty());
  EXPECT_NE(d.log().find("may not act for shadowed"), std::string::npos) << d.log();
}

}  // namespace
}  // namespace nucleus::test
