#include "launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace nucleus::daemon {

namespace {

// The kernel's struct clone_args (version 2, with cgroup), spelt out so
// that <linux/sched.h> and <sched.h> need not meet.
struct CloneArgs {
  uint64_t flags;
  uint64_t pidfd;
  uint64_t child_tid;
  uint64_t parent_tid;
  uint64_t exit_signal;
  uint64_t stack;
  uint64_t stack_size;
  uint64_t tls;
  uint64_t set_tid;
  uint64_t set_tid_size;
  uint64_t cgroup;
};
static_assert(sizeof(CloneArgs) == 88);
constexpr uint64_t kClonePidfd = 0x1000;
constexpr uint64_t kCloneIntoCgroup = 0x200000000ULL;
constexpr unsigned kCloseRangeCloexec = 1U << 2;
constexpr int kHighFd = 100;

pid_t clone3(CloneArgs *args) {
  return static_cast<pid_t>(syscall(SYS_clone3, args, sizeof(*args)));
}

// In the child: only system calls from here to exec.
[[noreturn]] void child(const LaunchSpec &spec, char *const *argv, char *const *envp, int err_fd) {
  auto fail = [err_fd]() {
    int e = errno;
    ssize_t n = write(err_fd, &e, sizeof(e));
    (void)n;
    _exit(127);
  };
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  setpgid(0, 0);  // its own process group: the signal mode reaches what it forks
  int err = fcntl(err_fd, F_DUPFD_CLOEXEC, kHighFd);
  if (err < 0) fail();
  err_fd = err;
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  int nfd = fcntl(spec.nucleus_fd, F_DUPFD_CLOEXEC, kHighFd);
  int out = spec.output_fd >= 0 ? fcntl(spec.output_fd, F_DUPFD_CLOEXEC, kHighFd) : -1;
  if (devnull < 0 || nfd < 0 || (spec.output_fd >= 0 && out < 0)) fail();
  if (dup2(devnull, 0) < 0) fail();
  if (out >= 0 && (dup2(out, 1) < 0 || dup2(out, 2) < 0)) fail();
  if (dup2(nfd, 3) < 0) fail();
  // Nothing else of nucleusd's crosses exec.
  if (syscall(SYS_close_range, 4U, ~0U, kCloseRangeCloexec) < 0) {
    for (int fd = 4; fd < 1024; ++fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  if (!spec.program->cwd.empty() && chdir(spec.program->cwd.c_str()) < 0) fail();
  if (spec.memory_limit != 0) {
    rlimit rl{spec.memory_limit, spec.memory_limit};
    if (setrlimit(RLIMIT_AS, &rl) < 0) fail();
  }
  execvpe(spec.program->path.c_str(), argv, envp);
  fail();
  _exit(127);
}

}  // namespace

int launch(const LaunchSpec &spec, Launched *out) {
  const Program &program = *spec.program;
  std::vector<std::string> env = program.env;
  if (env.empty()) env.emplace_back("PATH=/usr/local/bin:/usr/bin:/bin");
  std::erase_if(env, [](const std::string &e) {
    return e.rfind("NUCLEUS_FD=", 0) == 0 || e.rfind("NUCLEUS_SOCKET=", 0) == 0;
  });
  env.emplace_back("NUCLEUS_FD=3");
  env.emplace_back("NUCLEUS_SOCKET=" + spec.socket_path);
  std::vector<char *> envp;
  for (std::string &e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = program.argv;
  if (args.empty()) args.push_back(program.path);
  std::vector<char *> argv;
  for (std::string &a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) < 0) return -errno;
  sys::UniqueFd err_read(pipe_fds[0]);
  sys::UniqueFd err_write(pipe_fds[1]);

  int pidfd = -1;
  CloneArgs ca{};
  ca.flags = kClonePidfd;
  ca.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  ca.exit_signal = SIGCHLD;
  if (spec.cgroup_fd >= 0) {
    ca.flags |= kCloneIntoCgroup;
    ca.cgroup = static_cast<uint64_t>(spec.cgroup_fd);
  }
  pid_t pid = clone3(&ca);
  if (pid < 0 && errno == ENOSYS && spec.cgroup_fd < 0) {
    pid = fork();  // a kernel before clone3: pidfd_open after
    if (pid > 0) pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  }
  if (pid < 0) return -errno;
  if (pid == 0) child(spec, argv.data(), envp.data(), err_write.get());
  err_write.reset();
  int child_errno = 0;
  ssize_t n = 0;
  do {
    n = read(err_read.get(), &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  if (n == sizeof(child_errno)) {
    waitpid(pid, nullptr, 0);  // it exited with 127; reap it here
    if (pidfd >= 0) close(pidfd);
    return -child_errno;
  }
  if (pidfd < 0) return -ESRCH;
  out->pid = pid;
  out->pidfd.reset(pidfd);
  return 0;
}

}  // namespace nucleus::daemon
