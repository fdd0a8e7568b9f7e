// nucleusd as a service, without systemd: --check-config and every class of
// configuration error, SIGHUP reload, and the sd_notify and socket
// activation protocols, given to nucleusd by the test as systemd would
// (a NOTIFY_SOCKET the test reads; LISTEN_PID/LISTEN_FDS with a listening
// socket on fd 3; WATCHDOG_USEC).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "run_program.h"

namespace nucleus::test {
namespace {

using nlohmann::json;

const char *kNucleusd = NUCLEUSD_PATH;
const char *kCtl = NUCLEUSCTL_PATH;
const char *kWorker = NUCLEUS_WORKER_PATH;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/nucleus-svc-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string &name, const std::string &text) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  const std::string &path() const { return path_; }

 private:
  std::string path_;
};

TEST(CheckConfig, AValidFileAndTheDefault) {
  TempDir dir;
  Ran r = run_program(kNucleusd, {"--check-config", dir.file("ok.json", R"({"pool": {"buffers": 64},
      "default_claims": {"buffers": 8}, "processes": {"notice_buffers": 16},
      "operators": {"uids": [1000], "gids": [27]}, "log": {"level": "debug"}})")});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("ok.json: valid"), std::string::npos);
  // The names section is explained, one line a rule.
  Ran names = run_program(kNucleusd, {"--check-config", dir.file("names.json", R"({"names": [
      {"own": "web", "uids": [0]}, {"own_prefix": "sup.", "uids": [0], "gids": [27]}]})")});
  EXPECT_EQ(names.code, 0) << names.err;
  EXPECT_NE(names.out.find("names.json: valid\n"
                           "names[0]: \"web\" may be taken only by uids 0\n"
                           "names[1]: names beginning \"sup.\" may be taken only by uids 0 or "
                           "primary gids 27\n"),
            std::string::npos)
      << names.out;
  Ran builtin = run_program(kNucleusd, {"--check-config"});
  EXPECT_EQ(builtin.code, 0) << builtin.err;
  EXPECT_NE(builtin.out.find("built-in default configuration: valid"), std::string::npos);
  Ran shipped =
      run_program(kNucleusd, {"--check-config", NUCLEUS_SOURCE_DIR "/config/nucleus.json"});
  EXPECT_EQ(shipped.code, 0) << shipped.err;
}

TEST(CheckConfig, EveryClassOfErrorNamesTheFieldTheValueAndWhatIsAllowed) {
  TempDir dir;
  struct Case {
    const char *text;
    const char *message;
  } cases[] = {
      {R"({"pool": )", "not valid JSON"},
      {R"([1])", "(top level): expected an object, got [1]"},
      {R"({"pools": {}})", "pools: unknown field"},
      {R"({"attach": {"uid": []}})", "attach.uid: unknown field"},
      {R"({"pool": {"buffers": "many"}})",
       "pool.buffers: expected an integer in [1, 16777216], got \"many\""},
      {R"({"pool": {"buffers": 0}})", "pool.buffers: expected an integer in [1, 16777216], got 0"},
      {R"({"channel": {"request_entries": 100}})",
       "channel.request_entries: expected a power of two, got 100"},
      {R"({"doorbell": "bell"})",
       R"(doorbell: expected one of "auto", "futex", "eventfd", got "bell")"},
      {R"({"log": {"level": "loud"}})", "log.level: expected one of \"trace\""},
      {R"({"operators": {"uids": [-1]}})",
       "operators.uids[0]: expected a numeric id in [0, 4294967295], got -1"},
      {R"({"operators": {"allow_own_uid": "yes"}})",
       "operators.allow_own_uid: expected true or false, got \"yes\""},
      {R"({"devices": [{"name": "bad name", "kind": "null"}]})",
       "devices[0].name: expected 1 to 31 characters of [A-Za-z0-9._-], got \"bad name\""},
      {R"({"devices": [{"name": "d", "kind": "disk"}]})",
       "devices[0].path: expected the backing file of the disk"},
      {R"({"devices": [{"name": "a", "kind": "null"}, {"name": "a", "kind": "null"}]})",
       "devices[1].name: expected a name not used before, got \"a\""},
      {R"({"pool": {"buffers": 16}, "default_claims": {"buffers": 32}})",
       "default_claims.buffers: expected at most pool.buffers (16), got 32"},
      {R"({"boot": [{"name": "os", "program": "bin/os"}]})",
       "boot[0].program: expected an absolute path, got \"bin/os\""},
      {R"({"boot": [{"name": "clock", "program": "/bin/os"}]})",
       "boot[0].name: expected a name no device has, got \"clock\""},
      {R"({"boot": [{"name": "os", "program": "/bin/os", "claims": {"buffers": 70000}}]})",
       "boot[0].claims.buffers: expected an integer in [0, 65536], got 70000"},
      {R"({"boot": [{"name": "os", "program": "/bin/os", "args": [1]}]})",
       "boot[0].args[0]: expected a string, got 1"},
      {R"({"names": [{"own": "web"}, {"uids": [0]}]})",
       R"(names[1]: expected exactly one of "own" (a name) and "own_prefix" (the start of names), got {"uids":[0]})"},
      {R"({"names": [{"own_prefix": "sup/"}]})",
       R"(names[0].own_prefix: expected the start of names: 1 to 31 characters of [A-Za-z0-9._-], got "sup/")"},
  };
  for (const Case &c : cases) {
    Ran r = run_program(kNucleusd, {"--check-config", dir.file("bad.json", c.text)});
    EXPECT_EQ(r.code, 2) << c.text;
    EXPECT_NE(r.err.find(std::string("bad.json: ") + c.message), std::string::npos)
        << c.text << "\n"
        << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  Ran missing = run_program(kNucleusd, {"--check-config", "/nonexistent.json"});
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("/nonexistent.json: cannot read"), std::string::npos);
  // Starting with a bad file is refused the same way, before anything runs.
  Ran start = run_program(kNucleusd, {"--config", dir.file("bad.json", R"({"pool": 1})"),
                                      "--runtime-dir", dir.path() + "/run"});
  EXPECT_EQ(start.code, 2);
  EXPECT_NE(start.err.find("pool: expected an object, got 1"), std::string::npos) << start.err;
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/run/nucleus.sock"));
}

TEST(Boot, StartsTheBootSectionAsChildrenOfTheRoot) {
  Daemon d(std::string(R"({"boot": [
      {"name": "os", "program": ")") +
           kWorker + R"(", "user": "root", "claims": {"buffers": 16, "processes": 2}},
      {"name": "later", "program": ")" +
           kWorker + R"(", "args": ["--ready-when-told"],
       "start": false, "user": "root"}]})");
  ASSERT_TRUE(d.ready()) << d.log();
  Ran ps = run_program(kCtl, {"--socket", d.socket_path(), "--json", "ps"});
  ASSERT_EQ(ps.code, 0) << ps.err;
  std::map<std::string, json> by_name;
  json list = json::parse(ps.out);
  for (const json &p : list["processes"]) by_name[p["name"]] = p;
  ASSERT_EQ(by_name.size(), 2U) << ps.out;
  EXPECT_EQ(by_name["os"]["parent"], "");
  EXPECT_EQ(by_name["os"]["origin"], "nucleus");
  EXPECT_EQ(by_name["os"]["state"], "running");
  EXPECT_GT(by_name["os"]["pid"].get<int>(), 0);
  EXPECT_EQ(by_name["os"]["claims"]["given"]["buffers"], 16);
  EXPECT_EQ(by_name["os"]["claims"]["given"]["processes"], 2);
  EXPECT_EQ(by_name["later"]["state"], "created");
  EXPECT_EQ(by_name["later"]["program"]["argv"], json({"nucleus-worker", "--ready-when-told"}));
  // It serves (kPing: its pid), and the operator controls it like any
  // child of the root.
  Ran send = run_program(kCtl, {"--socket", d.socket_path(), "--json", "send", "os", "1"});
  ASSERT_EQ(send.code, 0) << send.err;
  EXPECT_EQ(json::parse(send.out)["answer"][0], by_name["os"]["pid"]);
  EXPECT_EQ(run_program(kCtl, {"--socket", d.socket_path(), "start", "later"}).code, 0);
  EXPECT_EQ(run_program(kCtl, {"--socket", d.socket_path(), "stop", "os"}).code, 0);
}

TEST(Boot, AnEntryThatCannotRunStopsTheStartAndEndsWhatItStarted) {
  TempDir dir;
  std::string config = dir.file("boot.json", std::string(R"({"boot": [
      {"name": "first", "program": ")") + kWorker +
                                                 R"(", "user": "root"},
      {"name": "broken", "program": "/nonexistent/program", "user": "root"}]})");
  Ran r = run_program(kNucleusd, {"--config", config, "--runtime-dir", dir.path() + "/run"});
  EXPECT_EQ(r.code, 1);
  // The step that failed (exec), the path and its errno.
  EXPECT_NE(r.err.find("boot[1] (broken): cannot execute /nonexistent/program: No such file or "
                       "directory"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("boot: started first"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/run/nucleus.sock"));
  config = dir.file("big.json", R"({"boot": [{"name": "big", "program": "/bin/true", "user": "root",
      "claims": {"processes": 1048576}}]})");
  r = run_program(kNucleusd, {"--config", config, "--runtime-dir", dir.path() + "/run"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("boot[0] (big): cannot create: No buffer space available (its claims "
                       "exceed pool.buffers or processes.max)"),
            std::string::npos)
      << r.err;
}

// Reads the log until `needle` appears (nucleusd logs as it goes).
bool log_shows(const Daemon &d, const std::string &needle) {
  bool unreachable = false;
  bool shown = eventually([&] {
    if (d.log().find(needle) != std::string::npos) return true;
    // Wait on nucleusd itself: a round trip through it orders us after the
    // reload it did before serving this.
    Ran r = run_program(kCtl, {"--socket", d.socket_path(), "status"});
    unreachable = r.code != 0;
    return unreachable;  // no use trying on
  });
  return shown && !unreachable;
}

TEST(Reload, SighupAppliesWhatItCanAndSaysWhatNeedsARestart) {
  Daemon d(R"({"operators": {"allow_own_uid": false}, "default_claims": {"buffers": 16}})");
  ASSERT_TRUE(d.ready()) << d.log();
  std::string config = d.dir() + "/config.json";
  Ran m = run_program(kCtl, {"--socket", d.socket_path(), "monitor", "--count", "0"});
  EXPECT_EQ(m.code, 1);
  {
    auto before = attach("before");
    EXPECT_EQ(before.get_stats()->claim_buffers, 16U);
  }

  std::ofstream(config) << R"({"operators": {"allow_own_uid": true},
      "default_claims": {"buffers": 24}, "log": {"level": "debug"}, "pool": {"buffers": 4096}})";
  ASSERT_EQ(kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(log_shows(d, "reloaded " + config)) << d.log();
  EXPECT_NE(d.log().find("changed operators.allow_own_uid, default_claims.buffers"),
            std::string::npos)
      << d.log();
  // The harness gives --log-level, which wins over the file's.
  EXPECT_NE(d.log().find("log.level changed; --log-level keeps"), std::string::npos) << d.log();
  EXPECT_NE(d.log().find("pool.buffers changed; kept as they were until nucleusd restarts"),
            std::string::npos)
      << d.log();
  Ran status = run_program(kCtl, {"--socket", d.socket_path(), "--json", "status"});
  json s = json::parse(status.out);
  EXPECT_EQ(s["you"]["operator"], true);
  EXPECT_EQ(s["pool"]["buffers"], 16384);  // not changed at run time
  auto after = attach("after");
  EXPECT_EQ(after.get_stats()->claim_buffers, 24U);

  // A bad file is refused whole; what was in force stays.
  std::ofstream(config) << R"({"operators": {"allow_own_uid": false}, "pool": {"buffers": -1}})";
  ASSERT_EQ(kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(log_shows(d, "configuration unchanged")) << d.log();
  EXPECT_NE(d.log().find("pool.buffers: expected an integer in [1, 16777216], got -1"),
            std::string::npos);
  status = run_program(kCtl, {"--socket", d.socket_path(), "--json", "status"});
  EXPECT_EQ(json::parse(status.out)["you"]["operator"], true);
}

TEST(Reload, AnOperatorRemovedByAReloadLosesTheRootAtOnce) {
  Daemon d(R"({"log": {"level": "info"}})");
  ASSERT_TRUE(d.ready()) << d.log();
  auto op = attach("op");
  ASSERT_TRUE(op.act_for(""));  // nucleusd's own uid: an operator by default
  Program program{NUCLEUS_WORKER_PATH, {"nucleus-worker"}, {}, ""};
  ASSERT_TRUE(op.create_process("kid", program, Claims{4, 0, 0, 0, 0}));
  Running monitor(kCtl, {"--socket", d.socket_path(), "monitor"});
  ASSERT_TRUE(monitor.wait_for("monitoring messages"));

  std::ofstream(d.dir() + "/config.json") << R"({"operators": {"allow_own_uid": false}})";
  ASSERT_EQ(kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(log_shows(d, "reloaded ")) << d.log();
  // The connection that acted for the root may no longer; the monitor is closed.
  auto refused = op.create_process("kid2", program, Claims{4, 0, 0, 0, 0});
  EXPECT_EQ(refused.error(), -EACCES);
  EXPECT_EQ(op.remove_process("kid").error(), -EACCES);
  Ran m = monitor.finish();
  EXPECT_EQ(m.code, 1);
  EXPECT_NE(m.err.find("nucleusd closed the connection"), std::string::npos) << m.err;
  EXPECT_NE(d.log().find("no longer an operator: monitor closed"), std::string::npos);
}

// nucleusd started the way systemd starts nucleusd.service from
// nucleusd.socket: the listening socket on fd 3, LISTEN_PID/LISTEN_FDS,
// NOTIFY_SOCKET and WATCHDOG_USEC.
class Activated {
 public:
  explicit Activated(const TempDir &dir, bool with_listen_fd = true) {
    notify_path_ = dir.path() + "/notify";
    socket_path_ = dir.path() + "/activated.sock";
    notify_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, notify_path_.c_str(), sizeof(addr.sun_path) - 1);
    ok_ = bind(notify_, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) == 0;
    int listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    std::strncpy(addr.sun_path, socket_path_.c_str(), sizeof(addr.sun_path) - 1);
    ok_ = ok_ && bind(listener, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) == 0 &&
          listen(listener, 16) == 0;
    std::string run = dir.path() + "/run";
    std::string log = dir.path() + "/nucleusd.log";
    log_path_ = log;
    pid_ = fork();
    if (pid_ == 0) {
      if (with_listen_fd) {
        dup2(listener, 3);  // not close-on-exec: it is the one passed
        setenv("LISTEN_FDS", "1", 1);
        setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
      }
      setenv("NOTIFY_SOCKET", notify_path_.c_str(), 1);
      setenv("WATCHDOG_USEC", "200000", 1);
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 2);
      execl(kNucleusd, "nucleusd", "--runtime-dir", run.c_str(), nullptr);
      _exit(127);
    }
    close(listener);
    pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  }
  ~Activated() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(notify_);
    close(pidfd_);
  }
  // The next notification datagram ("" at the deadline or its exit).
  std::string next() {
    auto until = std::chrono::steady_clock::now() + kDeadline;
    pollfd p{notify_, POLLIN, 0};
    if (poll(&p, 1, support::remaining_ms(until)) <= 0) return "";
    char buf[512] = {};
    ssize_t n = recv(notify_, buf, sizeof(buf) - 1, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
  // Reads notifications until one contains `needle`; all seen so far.
  bool expect(const std::string &needle, std::string *seen) {
    for (;;) {
      std::string m = next();
      if (m.empty()) return false;
      *seen += m + "\n";
      if (m.find(needle) != std::string::npos) return true;
    }
  }
  int wait_exit() {
    pollfd p{pidfd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kDeadline).count())) <= 0) {
      return -1;
    }
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  std::string log() const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  pid_t pid() const { return pid_; }
  bool ok() const { return ok_; }
  const std::string &socket_path() const { return socket_path_; }

 private:
  bool ok_ = false;
  std::string notify_path_, socket_path_, log_path_;
  int notify_ = -1;
  int pidfd_ = -1;
  pid_t pid_ = -1;
};

TEST(Service, SocketActivationAndTheNotifyProtocol) {
  TempDir dir;
  Activated d(dir);
  ASSERT_TRUE(d.ok());
  std::string seen;
  ASSERT_TRUE(d.expect("READY=1", &seen)) << seen << d.log();
  EXPECT_NE(seen.find("STATUS=3 processes, 3 devices;"), std::string::npos) << seen;
  EXPECT_NE(d.log().find("(socket activation)"), std::string::npos) << d.log();
  // It serves on the socket it was given, not one of its own.
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/run/nucleus.sock"));
  setenv("NUCLEUS_SOCKET", d.socket_path().c_str(), 1);
  {
    auto n = attach("through-activation");
    auto b = n.send_message("null", words(1));
    ASSERT_TRUE(b);
    auto a = n.wait_answer(b.value(), kDeadline);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->result, NUCLEUS_RESULT_NORMAL);
  }
  Ran status = run_program(kCtl, {"--socket", d.socket_path(), "--json", "status"});
  ASSERT_EQ(status.code, 0) << status.err;
  EXPECT_EQ(json::parse(status.out)["socket_activated"], true);
  EXPECT_EQ(json::parse(status.out)["socket"], d.socket_path());
  // The watchdog: WATCHDOG_USEC=200 ms, so a ping every 100 ms from the loop.
  ASSERT_TRUE(d.expect("WATCHDOG=1", &seen)) << seen;
  ASSERT_TRUE(d.expect("WATCHDOG=1", &seen)) << seen;
  // SIGHUP: RELOADING=1 then READY=1 again.
  ASSERT_EQ(kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(d.expect("RELOADING=1", &seen)) << seen;
  EXPECT_NE(seen.substr(seen.rfind("RELOADING=1")).find("MONOTONIC_USEC="), std::string::npos);
  ASSERT_TRUE(d.expect("READY=1", &seen)) << seen;
  ASSERT_EQ(kill(d.pid(), SIGTERM), 0);
  ASSERT_TRUE(d.expect("STOPPING=1", &seen)) << seen;
  int status_code = d.wait_exit();
  EXPECT_TRUE(WIFEXITED(status_code) && WEXITSTATUS(status_code) == 0) << status_code;
  // The socket belongs to the service manager: nucleusd leaves it.
  EXPECT_TRUE(std::filesystem::exists(d.socket_path()));
}

TEST(Service, ListenFdsForAnotherPidAreNotTaken) {
  TempDir dir;
  // LISTEN_PID names another process: nucleusd makes its own socket.
  setenv("LISTEN_PID", "1", 1);
  setenv("LISTEN_FDS", "1", 1);
  Activated d(dir, /*with_listen_fd=*/false);
  ASSERT_TRUE(d.ok());
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  std::string seen;
  ASSERT_TRUE(d.expect("READY=1", &seen)) << seen << d.log();
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/run/nucleus.sock"));
  EXPECT_EQ(d.log().find("(socket activation)"), std::string::npos);
}

}  // namespace
}  // namespace nucleus::test
