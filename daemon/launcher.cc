#include "launcher.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

namespace nucleus::daemon {

namespace {

constexpr int kClonePidfd = 0x1000;                    // CLONE_PIDFD, Linux 5.2
constexpr uint64_t kCloneIntoCgroup = 0x200000000ULL;  // CLONE_INTO_CGROUP, Linux 5.7
constexpr unsigned kCloseRangeCloexec = 1U << 2;
constexpr int kHighFd = 100;
constexpr size_t kChildStackBytes = size_t{256} * 1024;
constexpr int kMaxCapability = 63;  // every bit of the 64-bit sets

// Takes the owner's rights for good. Raw system calls: the child shares our
// memory, and glibc's set*id wrappers would try to reach "every thread"
// through state that is ours. Returns false when a step failed.
bool become_owner(const LaunchSpec &spec) {
  const Principal &who = *spec.owner;
  bool unprivileged = who.uid != 0;
  if (spec.set_ids) {
    // The bounding set needs CAP_SETPCAP to shrink: before the uid changes.
    for (int cap = 0; unprivileged && cap <= kMaxCapability; ++cap) {
      if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) return false;
    }
    if (syscall(SYS_setgroups, who.groups.size(), who.groups.data()) < 0 ||
        syscall(SYS_setresgid, who.gid, who.gid, who.gid) < 0 ||
        syscall(SYS_setresuid, who.uid, who.uid, who.uid) < 0) {
      return false;
    }
  }
  if (unprivileged) {
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
      return false;
    }
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct none[2] = {};
    if (syscall(SYS_capset, &header, none) < 0) return false;
  }
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0;
}

// What the child needs; it shares our memory (CLONE_VM) and we are
// suspended (CLONE_VFORK) until it execs or exits, so it reports a failure
// by writing child_errno here.
struct ChildArgs {
  const LaunchSpec *spec;
  char *const *argv;
  char *const *envp;
  int procs_fd;  // cgroup.procs to write itself into; -1: clone3 put it in its cgroup
  int child_errno;
  uint64_t child_step;  // wire::StartStep of the step that failed
};

// In the child: only system calls from here to exec.
int child(void *raw) {
  auto *args = static_cast<ChildArgs *>(raw);
  const LaunchSpec &spec = *args->spec;
  // Each failure says its step, so that its errno is read against what
  // failed (exec's EACCES is not an authority refusal).
  auto fail = [args](uint64_t step) {
    args->child_errno = errno != 0 ? errno : EINVAL;
    args->child_step = step;
    _exit(127);
  };
  // Into its cgroup before it can fork anything: what it forks stays there.
  if (args->procs_fd >= 0 && write(args->procs_fd, "0", 1) != 1) fail(wire::kStartStepProcess);
  // Its own session and process group: the signal mode reaches what it
  // forks, and it can join no group of nucleusd's or of another program's
  // (setpgid across sessions is EPERM).
  if (setsid() < 0) fail(wire::kStartStepProcess);
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  int nfd = fcntl(spec.nucleus_fd, F_DUPFD_CLOEXEC, kHighFd);
  int out = spec.output_fd >= 0 ? fcntl(spec.output_fd, F_DUPFD_CLOEXEC, kHighFd) : -1;
  if (devnull < 0 || nfd < 0 || (spec.output_fd >= 0 && out < 0)) fail(wire::kStartStepConnection);
  if (dup2(devnull, 0) < 0) fail(wire::kStartStepConnection);
  if (out >= 0 && (dup2(out, 1) < 0 || dup2(out, 2) < 0)) fail(wire::kStartStepConnection);
  if (dup2(nfd, 3) < 0) fail(wire::kStartStepConnection);
  // Nothing else of nucleusd's crosses exec.
  if (syscall(SYS_close_range, 4U, ~0U, kCloseRangeCloexec) < 0) {
    for (int fd = 4; fd < 1024; ++fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  if (spec.memory_limit != 0) {
    rlimit rl{spec.memory_limit, spec.memory_limit};
    if (setrlimit(RLIMIT_AS, &rl) < 0) fail(wire::kStartStepProcess);
  }
  if (spec.owner != nullptr && !become_owner(spec)) fail(wire::kStartStepSetIds);
  // With the owner's rights: a directory it may not enter is refused.
  if (!spec.program->cwd.empty() && chdir(spec.program->cwd.c_str()) < 0) {
    fail(wire::kStartStepChdir);
  }
  signal(SIGPIPE, SIG_DFL);  // nucleusd ignores it; the program gets the default
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execvpe(spec.program->path.c_str(), args->argv, args->envp);
  fail(wire::kStartStepExec);
  return 127;
}

// clone3 with CLONE_VM | CLONE_VFORK runs `fn(arg)` in the child on the
// stack in `args` (glibc has no clone3 wrapper that does: the child must not
// return into the caller's frame). Returns the pid, or -errno; -ENOSYS where
// it is not written for this architecture.
pid_t clone3_run(clone_args *args, int (*fn)(void *), void *arg) {
#if defined(__x86_64__)
  long ret = 0;
  register long fn_reg asm("r12") = reinterpret_cast<long>(fn);
  register long arg_reg asm("r13") = reinterpret_cast<long>(arg);
  // The child starts on its new stack (16-byte aligned at its top) with the
  // registers of the syscall: r12 and r13 survive it.
  asm volatile(
      "syscall\n\t"
      "test %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      "xor %%ebp, %%ebp\n\t"
      "mov %%r13, %%rdi\n\t"
      "call *%%r12\n\t"
      "mov %%eax, %%edi\n\t"
      "mov $60, %%eax\n\t"  // exit
      "syscall\n\t"
      "hlt\n\t"
      "1:\n\t"
      : "=a"(ret)
      : "0"(SYS_clone3), "D"(args), "S"(sizeof(*args)), "r"(fn_reg), "r"(arg_reg)
      : "rcx", "r11", "memory");
  return static_cast<pid_t>(ret);
#else
  (void)args;
  (void)fn;
  (void)arg;
  return -ENOSYS;
#endif
}

// Whether clone3 can start a child straight in a cgroup here; learnt at the
// first launch in a cgroup and kept.
enum class IntoCgroup { kUnknown, kYes, kNo };
IntoCgroup into_cgroup = IntoCgroup::kUnknown;

}  // namespace

bool starts_into_cgroup() {
  return into_cgroup != IntoCgroup::kNo;
}

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
  // One stack per launching thread: it is suspended while its child uses it.
  thread_local std::vector<char> stack(kChildStackBytes);
  ChildArgs child_args{&spec, argv.data(), envp.data(), -1, 0, wire::kStartStepNone};
  // Until the child runs, a failure is the process's own: clone or its cgroup.
  out->failed_step = wire::kStartStepProcess;
  int pidfd = -1;
  pid_t pid = -1;
  // In cgroup mode the kernel puts the child in its cgroup as it creates it
  // (CLONE_INTO_CGROUP): no migration, which costs nucleusd about 5 ms per
  // start when the child writes cgroup.procs while we wait for its exec.
  if (spec.cgroup_fd >= 0 && into_cgroup != IntoCgroup::kNo) {
    clone_args ca{};
    ca.flags = CLONE_VM | CLONE_VFORK | kClonePidfd | kCloneIntoCgroup;
    ca.pidfd = reinterpret_cast<uint64_t>(&pidfd);
    ca.exit_signal = SIGCHLD;
    ca.stack = reinterpret_cast<uint64_t>(stack.data());
    ca.stack_size = stack.size();
    ca.cgroup = static_cast<uint64_t>(spec.cgroup_fd);
    pid = clone3_run(&ca, child, &child_args);
    if (pid >= 0) {
      into_cgroup = IntoCgroup::kYes;
    } else if (into_cgroup == IntoCgroup::kUnknown &&
               (pid == -ENOSYS || pid == -EINVAL || pid == -E2BIG)) {
      into_cgroup = IntoCgroup::kNo;  // an older kernel: the child joins by itself
    } else {
      return pid;
    }
  }
  sys::UniqueFd procs;
  if (pid < 0) {
    if (spec.cgroup_fd >= 0) {
      procs.reset(openat(spec.cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC));
      if (!procs) return -errno;
      child_args.procs_fd = procs.get();
    }
    pid = clone(child, stack.data() + stack.size(), CLONE_VM | CLONE_VFORK | kClonePidfd | SIGCHLD,
                &child_args, &pidfd, nullptr, nullptr);
    if (pid < 0) return -errno;
  }
  if (child_args.child_errno != 0) {
    waitpid(pid, nullptr, 0);  // it exited with 127; reap it here
    if (pidfd >= 0) close(pidfd);
    out->failed_step = child_args.child_step;
    return -child_args.child_errno;
  }
  if (pidfd < 0) return -ESRCH;
  out->failed_step = wire::kStartStepNone;
  out->pid = pid;
  out->pidfd.reset(pidfd);
  return 0;
}

void pidfd_kill(int pidfd) {
  if (pidfd >= 0) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
}

void run_launch(LaunchJob *job) {
  LaunchSpec spec;
  spec.program = &job->program;
  spec.owner = &job->owner;
  spec.set_ids = job->set_ids;
  spec.nucleus_fd = job->nucleus_fd.get();
  spec.output_fd = job->output_fd ? job->output_fd.get() : -1;
  spec.cgroup_fd = job->cgroup_fd ? job->cgroup_fd.get() : -1;
  spec.memory_limit = job->memory_limit;
  spec.socket_path = job->socket_path;
  job->result = launch(spec, &job->launched);
  // Its end of the connection is the program's now; ours must not keep it.
  job->nucleus_fd.reset();
  job->output_fd.reset();
  job->cgroup_fd.reset();
}

bool Launcher::start(std::string *error) {
  done_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!done_) {
    *error = std::string("launcher eventfd: ") + std::strerror(errno);
    return false;
  }
  // No signal is for these threads: nucleusd reads them from its signalfd.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  try {
    for (int i = 0; i < kThreads; ++i) threads_.emplace_back([this, i] { work(i); });
  } catch (const std::system_error &e) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    *error = std::string("launcher thread: ") + e.what();
    stop();
    return false;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return true;
}

void Launcher::stop() {
  if (threads_.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread &t : threads_) t.join();
  threads_.clear();
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto &job : todo_) {
    job->result = -ECANCELED;
    done_list_.push_back(std::move(job));
  }
  todo_.clear();
}

void Launcher::submit(std::unique_ptr<LaunchJob> job) {
  ++in_flight_;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    todo_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void Launcher::detach_tracee(pid_t pid, int signal) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    detaches_.push_back({pid, signal, 0});
  }
  wake_.notify_all();
}

std::vector<std::unique_ptr<LaunchJob>> Launcher::take_done() {
  std::vector<std::unique_ptr<LaunchJob>> out;
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto &job : done_list_) out.push_back(std::move(job));
  done_list_.clear();
  in_flight_ -= std::min(in_flight_, out.size());
  return out;
}

void Launcher::work(int index) {
  const unsigned me = 1U << index;
  const unsigned everyone = (1U << kThreads) - 1;
  for (;;) {
    std::unique_ptr<LaunchJob> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // The first job whose owner has no launch in progress: a start that
      // hangs (its program on a file system that never answers) holds its
      // owner's later starts, and one thread, not everyone's.
      auto next = todo_.end();
      auto mine = [&] {
        return std::any_of(detaches_.begin(), detaches_.end(),
                           [&](const Detach &d) { return (d.tried & me) == 0; });
      };
      wake_.wait(lock, [&] {
        if (stopping_ || mine()) return true;
        next = std::find_if(todo_.begin(), todo_.end(), [&](const auto &j) {
          return std::find(busy_uids_.begin(), busy_uids_.end(), j->owner.uid) == busy_uids_.end();
        });
        return next != todo_.end();
      });
      if (stopping_) return;
      // A tracee is detached by its tracer, the thread that started it:
      // each thread tries until one succeeds or all have tried.
      for (auto d = detaches_.begin(); d != detaches_.end();) {
        if ((d->tried & me) != 0) {
          ++d;
          continue;
        }
        d->tried |= me;
        bool done = ptrace(PTRACE_DETACH, d->pid, nullptr, d->signal) == 0 || errno != ESRCH;
        d = done || d->tried == everyone ? detaches_.erase(d) : d + 1;
      }
      if (next == todo_.end()) continue;
      job = std::move(*next);
      todo_.erase(next);
      busy_uids_.push_back(job->owner.uid);
    }
    if (job->chore) {
      job->chore_ok = job->chore();
    } else {
      run_launch(job.get());
    }
    uint32_t uid = job->owner.uid;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_list_.push_back(std::move(job));
      busy_uids_.erase(std::find(busy_uids_.begin(), busy_uids_.end(), uid));
    }
    wake_.notify_all();  // that owner's next start may go
    uint64_t one = 1;
    (void)!write(done_.get(), &one, sizeof(one));
  }
}

std::string start_failure_text(uint64_t step, const Program &program, uint32_t uid, uint32_t gid) {
  switch (step) {
    case wire::kStartStepExec: return "cannot execute " + program.path;
    case wire::kStartStepChdir: return "cannot enter its working directory " + program.cwd;
    case wire::kStartStepSetIds:
      return "cannot take its owner's ids (uid " + std::to_string(uid) + ", gid " +
             std::to_string(gid) + ")";
    case wire::kStartStepConnection: return "cannot set up its connection to the nucleus";
    case wire::kStartStepOutput: return "cannot open its output file";
    case wire::kStartStepProcess: return "cannot create its process (clone, cgroup or limits)";
    default: return "cannot start " + program.path;
  }
}

}  // namespace nucleus::daemon
