#include "run_program.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_process.h"

namespace nucleus::test {

Running::Running(const std::string &path, const std::vector<std::string> &args) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    std::vector<std::string> all{path};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char *> argv;
    argv.reserve(all.size() + 1);
    for (auto &a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(path.c_str(), argv.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  out_ = out[0];
  err_ = err[0];
  pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
}

Running::~Running() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  for (int fd : {out_, err_, pidfd_}) {
    if (fd >= 0) close(fd);
  }
}

bool Running::pump(int timeout_ms) {
  pollfd p[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
  int n = poll(p, 2, timeout_ms);
  if (n <= 0) return false;
  bool any = false;
  for (int i = 0; i < 2; ++i) {
    if (p[i].revents == 0 || p[i].fd < 0) continue;
    char buf[4096];
    ssize_t got = read(p[i].fd, buf, sizeof(buf));
    if (got > 0) {
      (i == 0 ? ran_.out : ran_.err).append(buf, static_cast<size_t>(got));
      any = true;
    } else {
      close(i == 0 ? out_ : err_);
      (i == 0 ? out_ : err_) = -1;
    }
  }
  return any || out_ >= 0 || err_ >= 0;
}

bool Running::wait_for(const std::string &needle, bool on_stdout,
                       std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if ((on_stdout ? ran_.out : ran_.err).find(needle) != std::string::npos) return true;
    if (out_ < 0 && err_ < 0) return false;
    int left = support::remaining_ms(until);
    if (left == 0 || !pump(left)) return false;
  }
}

Ran Running::finish(std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while ((out_ >= 0 || err_ >= 0) && support::remaining_ms(until) > 0) {
    if (!pump(support::remaining_ms(until))) break;
  }
  pollfd p{pidfd_, POLLIN, 0};
  if (poll(&p, 1, support::remaining_ms(until)) <= 0) {
    kill(pid_, SIGKILL);
  }
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  ran_.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return ran_;
}

Ran run_program(const std::string &path, const std::vector<std::string> &args,
                std::chrono::milliseconds deadline) {
  Running r(path, args);
  return r.finish(deadline);
}

}  // namespace nucleus::test
