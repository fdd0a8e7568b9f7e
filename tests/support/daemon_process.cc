#include "daemon_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace nucleus::support {

int remaining_ms(std::chrono::steady_clock::time_point until) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - std::chrono::steady_clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

bool DaemonProcess::start(const std::string &nucleusd_path, const std::string &config_json,
                          const std::string &log_level, std::chrono::milliseconds deadline) {
  char tmpl[] = "/tmp/nucleus-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return false;
  dir_ = tmpl;
  std::string config_path;
  if (!config_json.empty()) {
    config_path = dir_ + "/config.json";
    std::ofstream(config_path) << config_json;
  }
  std::string notify_path = dir_ + "/notify";
  int notify = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, notify_path.c_str(), sizeof(addr.sun_path) - 1);
  if (bind(notify, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) < 0) {
    close(notify);
    return false;
  }
  socket_ = dir_ + "/run/nucleus.sock";
  std::string run = dir_ + "/run";
  std::vector<std::string> args = {"nucleusd", "--runtime-dir", run, "--log-level", log_level};
  if (!config_path.empty()) {
    args.emplace_back("--config");
    args.push_back(config_path);
  }
  pid_ = fork();
  if (pid_ == 0) {
    setenv("NOTIFY_SOCKET", notify_path.c_str(), 1);
    int log = open((dir_ + "/nucleusd.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(log, 2);
    std::vector<char *> argv;
    for (auto &a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(nucleusd_path.c_str(), argv.data());
    _exit(127);
  }
  pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  auto until = std::chrono::steady_clock::now() + deadline;
  bool ready = false;
  for (;;) {
    pollfd p[2] = {{notify, POLLIN, 0}, {pidfd_, POLLIN, 0}};
    if (poll(p, 2, remaining_ms(until)) <= 0) break;
    if (p[1].revents != 0) break;  // exited before it was ready
    char buf[256] = {};
    ssize_t n = recv(notify, buf, sizeof(buf) - 1, 0);
    if (n > 0 && std::strstr(buf, "READY=1") != nullptr) {
      ready = true;
      break;
    }
  }
  close(notify);
  setenv("NUCLEUS_SOCKET", socket_.c_str(), 1);
  return ready;
}

DaemonProcess::~DaemonProcess() {
  // SIGTERM first, so that it ends the programs it started and removes its
  // cgroups; SIGKILL if it does not go in time.
  if (pid_ > 0 && stop(SIGTERM, std::chrono::seconds(10)) < 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (pidfd_ >= 0) close(pidfd_);
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

int DaemonProcess::stop(int signal, std::chrono::milliseconds deadline) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  pollfd p{pidfd_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(deadline.count())) <= 0) return -1;
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

std::string DaemonProcess::log() const {
  std::ifstream in(dir_ + "/nucleusd.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace nucleus::support
