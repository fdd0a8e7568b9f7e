#include "launcher.h"

#include <fcntl.h>
#include <sched.h>
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

constexpr int kClonePidfd = 0x1000;  // CLONE_PIDFD, Linux 5.2
constexpr unsigned kCloseRangeCloexec = 1U << 2;
constexpr int kHighFd = 100;
constexpr size_t kChildStackBytes = size_t{256} * 1024;

// What the child needs; it shares our memory (CLONE_VM) and we are
// suspended (CLONE_VFORK) until it execs or exits, so it reports a failure
// by writing child_errno here.
struct ChildArgs {
  const LaunchSpec *spec;
  char *const *argv;
  char *const *envp;
  int child_errno;
};

// In the child: only system calls from here to exec.
int child(void *raw) {
  auto *args = static_cast<ChildArgs *>(raw);
  const LaunchSpec &spec = *args->spec;
  auto fail = [args]() {
    args->child_errno = errno != 0 ? errno : EINVAL;
    _exit(127);
  };
  // Into its cgroup before it can fork anything: what it forks stays there.
  if (spec.cgroup_procs_fd >= 0 && write(spec.cgroup_procs_fd, "0", 1) != 1) fail();
  setsid();  // its own session and group: signals reach what it forks; it joins no other group
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
  signal(SIGPIPE, SIG_DFL);  // nucleusd ignores it; the program gets the default
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execvpe(spec.program->path.c_str(), args->argv, args->envp);
  fail();
  return 127;
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
  envp.reserve(env.size() + 1);
  for (std::string &e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = program.argv;
  if (args.empty()) args.push_back(program.path);
  std::vector<char *> argv;
  argv.reserve(args.size() + 1);
  for (std::string &a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // posix_spawn's way: the child shares our memory and we wait until it has
  // exec'd, so no page tables are copied (measured in docs/performance.md).
  // One stack serves every launch: we are suspended while it is in use.
  static std::vector<char> stack(kChildStackBytes);
  ChildArgs child_args{&spec, argv.data(), envp.data(), 0};
  int pidfd = -1;
  pid_t pid =
      clone(child, stack.data() + stack.size(), CLONE_VM | CLONE_VFORK | kClonePidfd | SIGCHLD,
            &child_args, &pidfd, nullptr, nullptr);
  if (pid < 0) return -errno;
  if (child_args.child_errno != 0) {
    waitpid(pid, nullptr, 0);  // it exited with 127; reap it here
    if (pidfd >= 0) close(pidfd);
    return -child_args.child_errno;
  }
  if (pidfd < 0) return -ESRCH;
  out->pid = pid;
  out->pidfd.reset(pidfd);
  return 0;
}

}  // namespace nucleus::daemon
