#include "launch.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace nucleus::daemon {

namespace {

constexpr uint64_t kClonePidfd = 0x1000;               // CLONE_PIDFD, Linux 5.2
constexpr uint64_t kCloneIntoCgroup = 0x200000000ULL;  // CLONE_INTO_CGROUP, Linux 5.7
constexpr unsigned kCloseRangeCloexec = 1U << 2;
constexpr int kHighFd = 100;
constexpr size_t kChildStackBytes = size_t{256} * 1024;
constexpr int kMaxCapability = 63;  // every bit of the 64-bit sets
constexpr long kKernelSigsetBytes = 8;

// ---- The child: from the clone to the exec ----
//
// It shares our memory and, with no TLS of its own, our thread's: glibc's
// wrappers would set our errno and reach "every thread" through state that
// is ours (set*id), and a sanitizer's interceptors and instrumentation would
// run on our thread's sanitizer state, which confuses ThreadSanitizer into
// failing starts. So the child runs raw system calls in uninstrumented
// functions, on data laid out before the clone (ChildArgs), and calls
// nothing else.
#define NUCLEUS_CHILD_CODE __attribute__((no_sanitize("address", "thread", "undefined")))

NUCLEUS_CHILD_CODE inline long raw_syscall(long n, long a = 0, long b = 0, long c = 0, long d = 0,
                                           long e = 0, long f = 0) {
#if defined(__x86_64__)
  register long r10 asm("r10") = d;
  register long r8 asm("r8") = e;
  register long r9 asm("r9") = f;
  long ret = 0;
  asm volatile("syscall"
               : "=a"(ret)
               : "0"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
               : "rcx", "r11", "memory");
  return ret;
#else
  // Elsewhere glibc's syscall(), which only sets errno (ours, harmless).
  long ret = ::syscall(n, a, b, c, d, e, f);
  return ret < 0 ? -errno : ret;
#endif
}

// The kernel's struct sigaction for rt_sigaction (not glibc's).
struct KernelSigaction {
  unsigned long handler;
  unsigned long flags;
  unsigned long restorer;
  uint64_t mask;
};

// Everything the child needs, as plain data (no C++ object is touched in
// the child). The child reports a failed step in child_errno: we are
// suspended until it execs or exits, and read it after.
struct ChildArgs {
  int procs_fd = -1;  // cgroup.procs to write itself into; -1: born in its cgroup (or none)
  int nucleus_fd = -1;
  int output_fd = -1;
  bool limit_memory = false;
  rlimit memory{};
  bool set_ids = false;
  bool unprivileged = false;  // a non-root owner: no capabilities at all
  uint32_t uid = 0;
  uint32_t gid = 0;
  long group_count = 0;
  const gid_t *groups = nullptr;
  __user_cap_header_struct cap_header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct no_caps[2]{};
  const char *cwd = nullptr;           // nullptr: stay where nucleusd is
  KernelSigaction default_action{};    // SIG_DFL for SIGPIPE, which nucleusd ignores
  uint64_t no_signals = 0;             // the empty mask
  const char *const *paths = nullptr;  // exec_candidates()
  size_t path_count = 0;
  char *const *argv = nullptr;
  char *const *envp = nullptr;
  // /bin/sh, the candidate, argv[1..]: execvp's way with a file the kernel
  // cannot execute (ENOEXEC), as a shell script.
  char **script_argv = nullptr;
  int child_errno = 0;
  // The wire::StartStep that failed, so that its errno is read against
  // what failed (exec's EACCES is not an authority refusal).
  uint64_t child_step = wire::kStartStepNone;
};

[[noreturn]] NUCLEUS_CHILD_CODE void child_fail(ChildArgs *args, long rc, uint64_t step) {
  args->child_errno = rc < 0 ? static_cast<int>(-rc) : EINVAL;
  args->child_step = step;
  for (;;) raw_syscall(SYS_exit_group, 127);
}

// dup2 without its oddity: a descriptor "duplicated" onto itself keeps its
// close-on-exec flag, so there it is cleared instead.
NUCLEUS_CHILD_CODE long dup_to(int from, int to) {
  if (from == to) return raw_syscall(SYS_fcntl, to, F_SETFD, 0);
  return raw_syscall(SYS_dup3, from, to, 0);
}

// Takes the owner's rights for good.
NUCLEUS_CHILD_CODE long become_owner(const ChildArgs *args) {
  long rc = 0;
  if (args->set_ids) {
    // The bounding set needs CAP_SETPCAP to shrink: before the uid changes.
    for (long cap = 0; args->unprivileged && cap <= kMaxCapability; ++cap) {
      rc = raw_syscall(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0);
      if (rc < 0 && rc != -EINVAL) return rc;
    }
    if ((rc = raw_syscall(SYS_setgroups, args->group_count, reinterpret_cast<long>(args->groups))) <
            0 ||
        (rc = raw_syscall(SYS_setresgid, args->gid, args->gid, args->gid)) < 0 ||
        (rc = raw_syscall(SYS_setresuid, args->uid, args->uid, args->uid)) < 0) {
      return rc;
    }
  }
  if (args->unprivileged) {
    rc = raw_syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    if (rc < 0 && rc != -EINVAL) return rc;
    if ((rc = raw_syscall(SYS_capset, reinterpret_cast<long>(&args->cap_header),
                          reinterpret_cast<long>(args->no_caps))) < 0) {
      return rc;
    }
  }
  return raw_syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

// execvp's search over the candidates laid out before the clone, with its
// rules: EACCES is remembered and the search goes on; a missing or odd
// file (ENOENT, ESTALE, ENOTDIR, ENODEV, ETIMEDOUT) goes on to the next;
// anything else is the answer. A file the kernel does not recognise
// (ENOEXEC) is run as a shell script. Returns only on failure.
NUCLEUS_CHILD_CODE long exec_program(ChildArgs *args) {
  bool denied = false;
  long rc = -ENOENT;
  for (size_t i = 0; i < args->path_count; ++i) {
    const char *file = args->paths[i];
    rc = raw_syscall(SYS_execve, reinterpret_cast<long>(file), reinterpret_cast<long>(args->argv),
                     reinterpret_cast<long>(args->envp));
    if (rc == -ENOEXEC) {
      args->script_argv[1] = const_cast<char *>(file);
      rc = raw_syscall(SYS_execve, reinterpret_cast<long>(args->script_argv[0]),
                       reinterpret_cast<long>(args->script_argv),
                       reinterpret_cast<long>(args->envp));
    }
    switch (-rc) {
      case EACCES: denied = true; break;
      case ENOENT:
      case ESTALE:
      case ENOTDIR:
      case ENODEV:
      case ETIMEDOUT: break;
      default: return rc;
    }
  }
  return denied ? -EACCES : rc;
}

NUCLEUS_CHILD_CODE int child(void *raw) {
  auto *args = static_cast<ChildArgs *>(raw);
  long rc = 0;
  // Into its cgroup before it can fork anything: what it forks stays there.
  if (args->procs_fd >= 0 &&
      (rc = raw_syscall(SYS_write, args->procs_fd, reinterpret_cast<long>("0"), 1)) != 1) {
    child_fail(args, rc, wire::kStartStepProcess);
  }
  // Its own session and process group: the signal mode reaches what it
  // forks, and it can join no group of nucleusd's or of another program's
  // (setpgid across sessions is EPERM).
  if ((rc = raw_syscall(SYS_setsid)) < 0) child_fail(args, rc, wire::kStartStepProcess);
  long devnull =
      raw_syscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/dev/null"), O_RDWR | O_CLOEXEC);
  if (devnull < 0) child_fail(args, devnull, wire::kStartStepConnection);
  long nfd = raw_syscall(SYS_fcntl, args->nucleus_fd, F_DUPFD_CLOEXEC, kHighFd);
  if (nfd < 0) child_fail(args, nfd, wire::kStartStepConnection);
  long out = -1;
  if (args->output_fd >= 0) {
    out = raw_syscall(SYS_fcntl, args->output_fd, F_DUPFD_CLOEXEC, kHighFd);
    if (out < 0) child_fail(args, out, wire::kStartStepConnection);
  }
  if ((rc = dup_to(static_cast<int>(devnull), 0)) < 0) {
    child_fail(args, rc, wire::kStartStepConnection);
  }
  if (out >= 0 && ((rc = dup_to(static_cast<int>(out), 1)) < 0 ||
                   (rc = dup_to(static_cast<int>(out), 2)) < 0)) {
    child_fail(args, rc, wire::kStartStepConnection);
  }
  if ((rc = dup_to(static_cast<int>(nfd), 3)) < 0) child_fail(args, rc, wire::kStartStepConnection);
  // Nothing else of nucleusd's crosses exec.
  if (raw_syscall(SYS_close_range, 4, ~0U, kCloseRangeCloexec) < 0) {
    for (long fd = 4; fd < 1024; ++fd) raw_syscall(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
  }
  if (args->limit_memory && (rc = raw_syscall(SYS_prlimit64, 0, RLIMIT_AS,
                                              reinterpret_cast<long>(&args->memory), 0)) < 0) {
    child_fail(args, rc, wire::kStartStepProcess);
  }
  if ((rc = become_owner(args)) < 0) child_fail(args, rc, wire::kStartStepSetIds);
  // With the owner's rights: a directory it may not enter is refused.
  if (args->cwd != nullptr &&
      (rc = raw_syscall(SYS_chdir, reinterpret_cast<long>(args->cwd))) < 0) {
    child_fail(args, rc, wire::kStartStepChdir);
  }
  // The program gets the default SIGPIPE and an empty signal mask.
  if ((rc = raw_syscall(SYS_rt_sigaction, SIGPIPE, reinterpret_cast<long>(&args->default_action), 0,
                        kKernelSigsetBytes)) < 0 ||
      (rc = raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&args->no_signals),
                        0, kKernelSigsetBytes)) < 0) {
    child_fail(args, rc, wire::kStartStepProcess);
  }
  child_fail(args, exec_program(args), wire::kStartStepExec);
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
  // registers of the syscall: r12 and r13 survive it. It runs only `fn`
  // and the exit system call, nothing of this (instrumented) function.
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

// The old clone with the same flags (a kernel without clone3): the child
// starts on `stack_top` and runs `fn(arg)`. Not glibc's clone(), which a
// sanitizer intercepts to run its fork handling in the child. -ENOSYS where
// it is not written for this architecture.
pid_t clone_run(uint64_t flags, char *stack_top, int *parent_tid, int (*fn)(void *), void *arg) {
#if defined(__x86_64__)
  long ret = 0;
  register long child_tid asm("r10") = 0;
  register long tls asm("r8") = 0;
  register long fn_reg asm("r12") = reinterpret_cast<long>(fn);
  register long arg_reg asm("r13") = reinterpret_cast<long>(arg);
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
      : "0"(SYS_clone), "D"(flags), "S"(stack_top), "d"(parent_tid), "r"(child_tid), "r"(tls),
        "r"(fn_reg), "r"(arg_reg)
      : "rcx", "r11", "memory");
  return static_cast<pid_t>(ret);
#else
  int pid = ::clone(fn, stack_top, static_cast<int>(flags), arg, parent_tid, nullptr, nullptr);
  return pid < 0 ? -errno : pid;
#endif
}

// What clone3 can do here, learnt at the first launch that tries and kept:
// with CLONE_INTO_CGROUP (cgroup mode), and at all (signal mode). Launcher
// threads learn it while the loop asks (starts_into_cgroup): atomics, with
// relaxed order, as each value stands alone and only picks a way to clone.
enum class Learnt : uint8_t { kUnknown, kYes, kNo };
std::atomic<Learnt> into_cgroup{Learnt::kUnknown};
std::atomic<Learnt> has_clone3{Learnt::kUnknown};

}  // namespace

bool starts_into_cgroup() {
  return into_cgroup.load(std::memory_order_relaxed) != Learnt::kNo;
}

int exec_candidates(const std::string &file, const char *search_path,
                    std::vector<std::string> *out) {
  out->clear();
  if (file.empty()) return ENOENT;
  if (file.find('/') != std::string::npos) {
    out->push_back(file);
    return 0;
  }
  if (file.size() > NAME_MAX) return ENAMETOOLONG;
  std::string path = search_path != nullptr ? search_path : "/bin:/usr/bin";  // glibc's CS_PATH
  for (size_t start = 0;;) {
    size_t end = path.find(':', start);
    std::string dir = path.substr(start, end == std::string::npos ? end : end - start);
    // A directory too long to hold a file is skipped, as execvp does.
    if (dir.size() < PATH_MAX) {
      if (!dir.empty()) dir += '/';
      out->push_back(dir.append(file));
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return 0;
}

int launch(const LaunchSpec &spec, Launched *out) {
  const Program &program = *spec.program;
  // Until the child runs, a failure is the process's own: clone or its cgroup.
  out->failed_step = wire::kStartStepProcess;
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
  static char shell[] = "/bin/sh";  // execvp's _PATH_BSHELL
  std::vector<char *> script_argv{shell, nullptr};
  script_argv.insert(script_argv.end(), argv.begin() + 1, argv.end());  // argv[1..] and its null
  std::vector<std::string> candidates;
  if (int rc = exec_candidates(program.path, spec.search_path, &candidates); rc != 0) {
    out->failed_step = wire::kStartStepExec;  // execvp's own errno (ENAMETOOLONG, ENOENT)
    return -rc;
  }
  std::vector<const char *> paths;
  paths.reserve(candidates.size());
  for (const std::string &c : candidates) paths.push_back(c.c_str());

  ChildArgs a;
  a.nucleus_fd = spec.nucleus_fd;
  a.output_fd = spec.output_fd;
  if (spec.memory_limit != 0) {
    a.limit_memory = true;
    a.memory = rlimit{spec.memory_limit, spec.memory_limit};
  }
  if (spec.owner != nullptr) {
    a.set_ids = spec.set_ids;
    a.unprivileged = spec.owner->uid != 0;
    a.uid = spec.owner->uid;
    a.gid = spec.owner->gid;
    a.group_count = static_cast<long>(spec.owner->groups.size());
    a.groups = spec.owner->groups.data();
  }
  if (!program.cwd.empty()) a.cwd = program.cwd.c_str();
  a.default_action.handler = reinterpret_cast<unsigned long>(SIG_DFL);
  a.paths = paths.data();
  a.path_count = paths.size();
  a.argv = argv.data();
  a.envp = envp.data();
  a.script_argv = script_argv.data();

  // posix_spawn's way: the child shares our memory and we wait until it has
  // exec'd, so no page tables are copied (measured in docs/performance.md).
  // One stack per launching thread: it is suspended while its child uses it.
  thread_local std::vector<char> stack(kChildStackBytes);
  ChildSlot own;
  ChildSlot &slot = spec.watch != nullptr ? spec.watch->slot() : own;
  pid_t pid = -1;
  // clone3, which reports the pid as soon as the child exists for good
  // (CLONE_PARENT_SETTID), so a watchdog kills nothing else; in cgroup mode
  // the kernel also puts the child in its cgroup as it creates it
  // (CLONE_INTO_CGROUP): no migration, which costs nucleusd about 5 ms per
  // start when the child writes cgroup.procs while we wait for its exec.
  std::atomic<Learnt> &learnt = spec.cgroup_fd >= 0 ? into_cgroup : has_clone3;
  if (learnt.load(std::memory_order_relaxed) != Learnt::kNo) {
    clone_args ca{};
    ca.flags = CLONE_VM | CLONE_VFORK | kClonePidfd | CLONE_PARENT_SETTID;
    ca.pidfd = reinterpret_cast<uint64_t>(&slot.pidfd);
    ca.parent_tid = reinterpret_cast<uint64_t>(&slot.pid);
    ca.exit_signal = SIGCHLD;
    ca.stack = reinterpret_cast<uint64_t>(stack.data());
    ca.stack_size = stack.size();
    if (spec.cgroup_fd >= 0) {
      ca.flags |= kCloneIntoCgroup;
      ca.cgroup = static_cast<uint64_t>(spec.cgroup_fd);
    }
    pid = clone3_run(&ca, child, &a);
    if (pid >= 0) {
      learnt.store(Learnt::kYes, std::memory_order_relaxed);
    } else if (learnt.load(std::memory_order_relaxed) == Learnt::kUnknown &&
               (pid == -ENOSYS || pid == -EINVAL || pid == -E2BIG)) {
      // An older kernel: clone, and in cgroup mode the child joins by itself.
      learnt.store(Learnt::kNo, std::memory_order_relaxed);
    } else if (spec.watch != nullptr) {
      spec.watch->finish();
      return pid;
    } else {
      return pid;
    }
  }
  sys::UniqueFd procs;
  if (pid < 0) {
    if (spec.cgroup_fd >= 0) {
      procs.reset(openat(spec.cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC));
      if (!procs) {
        int err = errno;
        if (spec.watch != nullptr) spec.watch->finish();
        return -err;
      }
      a.procs_fd = procs.get();
    }
    // The old clone writes the pidfd where CLONE_PARENT_SETTID would write
    // the pid: the watchdog has the pidfd alone to go by.
    slot.pidfd.store(-1);
    slot.pid.store(-1);
    pid = clone_run(CLONE_VM | CLONE_VFORK | kClonePidfd | SIGCHLD, stack.data() + stack.size(),
                    reinterpret_cast<int *>(&slot.pidfd), child, &a);
  }
  LaunchWatch::Taken taken;
  if (spec.watch != nullptr) {
    taken = spec.watch->finish();
  } else {
    taken.pidfd = own.pidfd.load(std::memory_order_relaxed);
  }
  if (pid < 0) return pid;  // no child: the slot held no descriptor of ours
  sys::UniqueFd pidfd(taken.pidfd);
  // A child that did not exec has exited (or was killed): nucleusd's loop
  // reaps it with whatever else it reaps, so this thread never waits on
  // what the child's exit may still do.
  if (taken.killed) {
    out->failed_step = wire::kStartStepDeadline;
    return -ETIMEDOUT;
  }
  if (a.child_errno != 0) {
    out->failed_step = a.child_step;
    return -a.child_errno;
  }
  if (!pidfd) return -ESRCH;
  out->failed_step = wire::kStartStepNone;
  out->pid = pid;
  out->pidfd = std::move(pidfd);
  return 0;
}

std::string start_failure_text(uint64_t step, const Program &program, uint32_t uid, uint32_t gid) {
  std::string text = wire::start_step_text(step);
  switch (step) {
    case wire::kStartStepExec: return text + " " + program.path;
    case wire::kStartStepChdir: return text + " " + program.cwd;
    case wire::kStartStepSetIds:
      return text + " (uid " + std::to_string(uid) + ", gid " + std::to_string(gid) + ")";
    case wire::kStartStepDeadline:
      return text + " " + program.path +
             " (not within limits.launch_timeout_ms: stopped, frozen or slowed before its exec)";
    case wire::kStartStepNone: return "cannot start " + program.path;
    default: return text;
  }
}

std::string_view start_step_subject(uint64_t step, const Program &program) {
  switch (step) {
    case wire::kStartStepExec:
    case wire::kStartStepDeadline: return program.path;
    case wire::kStartStepChdir: return program.cwd;
    default: return {};
  }
}

void pidfd_kill(int pidfd) {
  if (pidfd >= 0) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
}

}  // namespace nucleus::daemon
