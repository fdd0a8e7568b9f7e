#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "programs.h"

#include "launcher.h"
#include "log.h"
#include "principal.h"

namespace nucleus::daemon {

namespace {

// How often stops and cgroups in progress are looked at: 1 ms after
// something new, doubling to 100 ms (in signal mode SIGCHLD says when a
// program stops; the timer only catches what no signal reports).
constexpr int64_t kTickNs = 1000000;
constexpr int64_t kMaxTickNs = 100000000;
constexpr int64_t kReapDeadlineNs = 5000000000;  // programs killed at exit, to end

// Where a started program's stdout and stderr go: <dir>/<uid>/<name>.log, a
// directory per owner that only it (and root) may read, the file created
// and opened with the owner's rights beneath it. Each step walks one name,
// follows no symbolic link and crosses no mount point (open_beneath_as): the
// owner may put anything in its directory, or mount a file system on it or
// on the file (fusermount), but nothing there leads nucleusd elsewhere or
// makes the open wait (decision 62). -errno when it cannot be made.
int open_output(const std::string &dir, const std::string &name, const Principal &owner) {
  mkdir(dir.c_str(), 0755);
  sys::UniqueFd top(open(dir.c_str(), O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!top) return -errno;
  std::string mine = std::to_string(owner.uid);
  int made = mkdirat(top.get(), mine.c_str(), 0700);
  if (made < 0 && errno != EEXIST) return -errno;
  if (made == 0 && geteuid() == 0 &&
      fchownat(top.get(), mine.c_str(), owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW) < 0) {
    return -errno;
  }
  // The owner's directory as nucleusd (which may search <dir>; the owner
  // need not), as a handle only (O_PATH: nothing of it is opened).
  Principal self{geteuid(), getegid(), {}};
  int own = open_beneath_as(self, top.get(), mine, O_PATH | O_DIRECTORY, 0);
  if (own < 0) return own;
  sys::UniqueFd own_fd(own);
  return open_beneath_as(owner, own_fd.get(), name + ".log", O_WRONLY | O_CREAT | O_APPEND, 0600);
}

}  // namespace

Programs::Programs(const Config &config, Core &core, Loop &loop, PrincipalCache &principals,
                   Reactions &reactions)
    : config_(config), core_(core), loop_(loop), principals_(principals), reactions_(reactions) {
  loop_.route(Kind::kLaunched, [this](const Completion &) { on_launched(); });
  loop_.route(Kind::kProgress, [this](const Completion &) { on_progress_tick(); });
  loop_.route(Kind::kBound, [this](const Completion &c) {
    if (c.index < runs_.size() && runs_[c.index].generation == c.generation &&
        core_.processes().live(c.index) &&
        core_.processes().at(c.index).generation == c.generation && c.result > 0) {
      on_bound(c.index);
    }
  });
}

bool Programs::init(std::string *error) {
  std::string summary;
  if (!subtree_.init(config_.subtree_mode, config_.cgroup_root, &summary)) {
    *error = "processes.control: \"cgroup\" configured, but " + summary;
    return false;
  }
  log::info("subtree control: {}", summary);
  return true;
}

bool Programs::start_launcher(std::string *error) {
  if (!launcher_.start(error)) return false;
  arm_launcher();
  return true;
}

void Programs::serve() {
  serving_ = true;
}

bool Programs::launching(uint32_t id) const {
  return id < runs_.size() && runs_[id].generation == core_.processes().at(id).generation &&
         runs_[id].launching;
}

pid_t Programs::pid_of(uint32_t id) {
  return run_of(id).pid;
}

void Programs::share_group(uint32_t os, uint32_t cand) {
  if (subtree_.mode() != Subtree::Mode::kCgroup) return;
  run_of(cand);  // sizes runs_ for both
  Run &os_run = run_of(os);
  if (os_run.group.empty()) os_run.group = group_of(os);
  run_of(cand).group = os_run.group;
}

pid_t Programs::take_over(uint32_t os, uint32_t cand, uint32_t cand_generation, pid_t *new_pid) {
  run_of(cand);  // sizes runs_ for both
  Run &os_run = run_of(os);
  Run &new_run = run_of(cand);
  pid_t old_pid = os_run.pid;
  *new_pid = new_run.pid;
  // The old program ends, and anything it forked.
  if (old_pid != 0) {
    by_pid_.erase(old_pid);  // reaped without a notice: the entry lives on
    pidfd_kill(os_run.pidfd.get());
    kill(-old_pid, SIGKILL);
  }
  os_run.pid = *new_pid;
  os_run.pidfd = std::move(new_run.pidfd);
  new_run = Run{};
  new_run.generation = cand_generation;
  by_pid_[*new_pid] = os;
  return old_pid;
}

pid_t Programs::end_candidate(uint32_t cand, uint32_t cand_generation) {
  Run &run = run_of(cand);
  pid_t pid = run.pid;
  if (pid != 0) {
    by_pid_.erase(pid);
    pidfd_kill(run.pidfd.get());
    kill(-pid, SIGKILL);
  }
  run = Run{};
  run.generation = cand_generation;
  return pid;
}

void Programs::shutdown() {
  stopped_ = true;
  // One deadline for all of it: SIGTERM ends nucleusd within
  // limits.stop_timeout_ms (at most 5 s), whatever its programs do.
  int64_t wait_ns = std::min(
      static_cast<int64_t>(std::min<uint64_t>(config_.limits.stop_timeout_ms, 3600000)) * 1000000,
      kReapDeadlineNs);
  int64_t deadline = sys::monotonic_ns() + wait_ns;
  // Launches in flight end with the rest: none starts after this, a child
  // before its exec is killed at once.
  launcher_.stop(deadline);
  for (std::unique_ptr<LaunchJob> &job : launcher_.take_done()) {
    if (job->result == 0) pidfd_kill(job->launched.pidfd.get());
  }
  // The programs nucleusd started end with it.
  if (subtree_.mode() == Subtree::Mode::kCgroup) subtree_.kill("");
  end_programs(deadline);
  subtree_.cleanup();
}

Programs::Run &Programs::run_of(uint32_t id) {
  if (runs_.size() < core_.processes().capacity()) runs_.resize(core_.processes().capacity());
  Run &r = runs_[id];
  uint32_t generation = core_.processes().at(id).generation;
  if (r.generation != generation) {
    r = Run{};
    r.generation = generation;
  }
  return r;
}

std::string Programs::group_of(uint32_t id) {
  std::vector<std::string> names;
  for (uint32_t i = id; i != kNone; i = core_.processes().at(i).parent) {
    const Process &p = core_.processes().at(i);
    // id and generation make the directory of each use of a name unique, so
    // a name removed and created again never meets its old, dying group.
    names.push_back(p.name + "." + std::to_string(i) + "." + std::to_string(p.generation));
  }
  std::reverse(names.begin(), names.end());
  return Subtree::group_path(names);
}

int Programs::spawn(uint32_t id, const Waiter &waiter, uint64_t *step) {
  const Process &p = core_.processes().at(id);
  Run &run = run_of(id);
  int sv[2];
  // Not SOCK_NONBLOCK: it would make the program's end non-blocking too,
  // which is the program's to choose. Ours never blocks (MSG_DONTWAIT).
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    *step = wire::kStartStepConnection;
    int rc = -errno;
    log::info("process {}: {}: {}", p.name, start_failure_text(*step, p.program, p.uid, p.gid),
              std::strerror(-rc));
    return rc;
  }
  sys::UniqueFd ours(sv[0]);
  // Whatever is sent to our end carries its sender's credentials, from
  // before the program exists: only a sender with the owner's attaches the
  // entry (Attach::attach_bound). SO_PEERCRED would name nucleusd.
  int on = 1;
  if (setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0) {
    int err = errno;
    close(sv[1]);
    *step = wire::kStartStepConnection;
    log::info("process {}: {}: {}", p.name, start_failure_text(*step, p.program, p.uid, p.gid),
              std::strerror(err));
    return -err;
  }
  auto job = std::make_unique<LaunchJob>();
  job->nucleus_fd.reset(sv[1]);
  // It runs as its owner; a nucleusd that is not root can give it no other
  // uid than its own.
  if (geteuid() != 0 && p.uid != geteuid()) {
    log::info("process {}: cannot run as uid {}: nucleusd (uid {}) is not root", p.name, p.uid,
              geteuid());
    *step = wire::kStartStepSetIds;
    return -EPERM;
  }
  job->owner = principals_.get(p.uid, p.gid);
  if (config_.output == OutputMode::kDiscard) {
    job->output_fd.reset(open("/dev/null", O_WRONLY | O_CLOEXEC));
  } else {
    int fd = open_output(config_.output_dir.empty() ? runtime_dir_ + "/output" : config_.output_dir,
                         p.name, job->owner);
    if (fd < 0) {
      log::warn("process {}: cannot open its output file: {}", p.name, std::strerror(-fd));
      *step = wire::kStartStepOutput;
      return fd;
    }
    job->output_fd.reset(fd);
  }
  job->set_ids = geteuid() == 0;
  job->program = p.program;
  job->socket_path = socket_path_;
  job->timeout_ns = static_cast<int64_t>(config_.limits.launch_timeout_ms) * 1000000;
  if (subtree_.mode() == Subtree::Mode::kCgroup) {
    if (run.group.empty()) run.group = group_of(id);
    if (int rc = subtree_.make_group(run.group, p.account.given().memory, &job->cgroup_fd);
        rc < 0) {
      log::warn("process {}: cannot create cgroup {}: {}", p.name, run.group, std::strerror(-rc));
      *step = wire::kStartStepProcess;
      return rc;
    }
  }
  if (subtree_.mode() != Subtree::Mode::kCgroup || !subtree_.memory_controller()) {
    // The nearest memory claim up the tree bounds this program.
    for (uint32_t i = id; i != kNone && job->memory_limit == 0;
         i = core_.processes().at(i).parent) {
      job->memory_limit = core_.processes().at(i).account.given().memory;
    }
  }
  job->id = id;
  job->generation = p.generation;
  job->requester = waiter.id;
  job->requester_serial = waiter.serial;
  job->seq = waiter.seq;
  run.bound = std::move(ours);
  run.launching = true;
  if (!serving_) {  // the boot section, before nucleusd serves: wait for it here
    job = launcher_.run_now(std::move(job));
    *step = job->launched.failed_step;
    return launched(*job);
  }
  // The launcher's thread waits for the exec; the loop goes on serving and
  // answers the start when the launch comes back (on_launched).
  launcher_.submit(std::move(job));
  return kAnswerLater;
}

void Programs::arm_launcher() {
  io_uring_sqe *sqe = loop_.sqe();
  io_uring_prep_read(sqe, launcher_.done_fd(), &launcher_count_, sizeof(launcher_count_), 0);
  Loop::set_tag(sqe, Kind::kLaunched, 0, 0);
}

void Programs::on_launched() {
  for (std::unique_ptr<LaunchJob> &job : launcher_.take_done()) {
    if (job->chore) {  // a cgroup removed, or not yet (still populated)
      removing_groups_.erase(job->chore_name);
      if (job->chore_ok) std::erase(dead_groups_, job->chore_name);
      continue;
    }
    int rc = launched(*job);
    if (job->requester != kNone) {
      uint64_t step = rc < 0 ? job->launched.failed_step : wire::kStartStepNone;
      reactions_.answer(Waiter{job->requester, job->requester_serial, job->seq}, rc, step,
                        start_step_subject(step, job->program));
    }
  }
  if (!stopped_) arm_launcher();
}

int Programs::launched(LaunchJob &job) {
  uint32_t id = job.id;
  bool current = core_.processes().live(id) &&
                 core_.processes().at(id).generation == job.generation && id < runs_.size() &&
                 runs_[id].generation == job.generation && runs_[id].launching;
  if (!current) {
    // Removed while it started: what it started ends now (reaped as a
    // stranger), and the start is answered for an entry that is gone.
    if (job.result == 0) pidfd_kill(job.launched.pidfd.get());
    return -ESRCH;
  }
  const Process &p = core_.processes().at(id);
  Run &run = runs_[id];
  run.launching = false;
  if (job.result < 0) {
    run.bound.reset();
    log_failed_launch(p, job);
    if (p.swap_of != kNone) {
      reactions_.tell_swap(p.swap_of, SwapEvent::kStartFailed,
                           start_failed_detail(-job.result, job.launched.failed_step));
    }
    return job.result;
  }
  pid_t pid = job.launched.pid;
  if (subtree_.mode() == Subtree::Mode::kCgroup && !start_mode_logged_) {
    start_mode_logged_ = true;
    log::info("programs start in their cgroup {}",
              starts_into_cgroup() ? "as they are created (clone3 CLONE_INTO_CGROUP)"
                                   : "by writing cgroup.procs before exec (no CLONE_INTO_CGROUP)");
  }
  run.pid = pid;
  run.pidfd = std::move(job.launched.pidfd);
  by_pid_[pid] = id;
  core_.program_started(id, pid);
  arm_bound(id);
  log::info("process {} started {} (pid {})", p.name, p.program.path, pid);
  // A stop of its subtree that came while it started: in signal mode
  // nothing stopped it yet (a frozen cgroup stops it as it is born).
  if (subtree_.mode() != Subtree::Mode::kCgroup) {
    for (uint32_t i = id; i != kNone; i = core_.processes().at(i).parent) {
      if (core_.processes().at(i).stop != StopState::kNone) {
        Subtree::signal_groups({pid}, SIGSTOP);
        break;
      }
    }
  }
  // It may have ended, and been reaped, before the loop took its launch:
  // its status was kept, or (when the keeping was full) its pidfd says
  // there is nothing left to wait for, and the status is lost.
  int status = 0;
  bool ended = false;
  if (auto it = early_exits_.find(pid); it != early_exits_.end()) {
    status = it->second;
    early_exits_.erase(it);
    ended = true;
  } else {
    siginfo_t info{};
    constexpr auto kPidfd = static_cast<idtype_t>(3);  // P_PIDFD, Linux 5.4
    ended = waitid(kPidfd, static_cast<id_t>(run.pidfd.get()), &info, WEXITED | WNOHANG | WNOWAIT) <
                0 &&
            errno == ECHILD;
    if (ended) {
      log::warn("process {} (pid {}) ended before its start was taken; its exit status is lost",
                p.name, pid);
      status = W_EXITCODE(255, 0);
    }
  }
  if (ended) {
    by_pid_.erase(pid);
    program_ended(id, pid, status);
    check_progress();
  }
  return 0;
}

void Programs::arm_bound(uint32_t id) {
  Run &run = runs_[id];
  loop_.poll(run.bound.get(), POLLIN | POLLRDHUP, Kind::kBound, id, run.generation);
}

void Programs::on_bound(uint32_t id) {
  Run &run = runs_[id];
  sys::UniqueFd socket = std::move(run.bound);
  if (!socket) return;
  reactions_.bound(id, std::move(socket), run.pid, run.pidfd.get());
}

void Programs::reap() {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    if (WIFSTOPPED(status)) {
      // Without WUNTRACED only a tracee reports a stop: a program that made
      // nucleusd its tracer (PTRACE_TRACEME). It has not ended; nucleusd
      // traces nothing, so it goes on with its signal as if untraced. Its
      // tracer is the thread that started it (this one for the boot
      // section, else the launcher's): only that thread may detach.
      if (ptrace(PTRACE_DETACH, pid, nullptr, WSTOPSIG(status)) < 0 && errno == ESRCH &&
          launcher_.running()) {
        launcher_.detach_tracee(pid, WSTOPSIG(status));
      }
      continue;
    }
    auto it = by_pid_.find(pid);
    if (it == by_pid_.end()) {
      // Something a program forked, or a removed one; or a program whose
      // launch the loop has not taken yet, which may end first: kept
      // until the launches in flight are taken.
      // Bounded: programs can make nucleusd reap any number of strangers
      // while a launch hangs; past the bound launched() asks the pidfd.
      if (launcher_.in_flight() > 0 && early_exits_.size() < kMaxEarlyExits) {
        early_exits_[pid] = status;
      }
      continue;
    }
    uint32_t id = it->second;
    by_pid_.erase(it);
    program_ended(id, pid, status);
  }
  if (launcher_.in_flight() == 0) early_exits_.clear();
  check_progress();
}

void Programs::program_ended(uint32_t id, pid_t pid, int status) {
  if (!core_.processes().live(id) || runs_[id].pid != pid) return;
  if (uint32_t os = core_.processes().at(id).swap_of; os != kNone) {
    // A swap's new program ended before it took over.
    runs_[id].pid = 0;
    reactions_.tell_swap(os, SwapEvent::kNewExited,
                         WIFSIGNALED(status)
                             ? new_exited_detail(wire::ExitKind::kSignal, WTERMSIG(status))
                             : new_exited_detail(wire::ExitKind::kCode, WEXITSTATUS(status)));
    return;
  }
  Run &run = runs_[id];
  run.pid = 0;
  run.pidfd.reset();
  run.bound.reset();  // the poll on it ends with -ECANCELED or POLLHUP
  reactions_.program_ended(id);
  wire::ExitKind kind = WIFSIGNALED(status) ? wire::ExitKind::kSignal : wire::ExitKind::kCode;
  int value = WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status);
  log::info("process {} (pid {}) {} {}", core_.processes().at(id).name, pid,
            kind == wire::ExitKind::kSignal ? "killed by signal" : "exited with", value);
  core_.program_exited(id, kind, value);
}

std::vector<pid_t> Programs::subtree_groups(uint32_t id, bool only_free) {
  std::vector<pid_t> groups;
  for (uint32_t i : core_.subtree(id)) {
    if (i >= runs_.size() || runs_[i].generation != core_.processes().at(i).generation) continue;
    if (runs_[i].pid == 0 || (only_free && core_.held_stopped(i))) continue;
    groups.push_back(runs_[i].pid);
  }
  return groups;
}

void Programs::stop_subtree(uint32_t id) {
  if (subtree_.mode() == Subtree::Mode::kCgroup) {
    subtree_.freeze(group_of(id), true);
  } else {
    Subtree::signal_groups(subtree_groups(id, false), SIGSTOP);
  }
  int64_t timeout_ns = static_cast<int64_t>(config_.limits.stop_timeout_ms) * 1000000;
  stops_.push_back({id, core_.processes().at(id).generation, sys::monotonic_ns() + timeout_ns});
  tick_ns_ = kTickNs;
  check_progress();
}

void Programs::resume_subtree(uint32_t id) {
  if (subtree_.mode() == Subtree::Mode::kCgroup) {
    subtree_.freeze(group_of(id), false);  // groups stopped by their own parents stay frozen
  } else {
    Subtree::signal_groups(subtree_groups(id, true), SIGCONT);
  }
}

bool Programs::subtree_stopped(uint32_t id, pid_t *running) {
  *running = 0;
  if (subtree_.mode() == Subtree::Mode::kCgroup) return subtree_.frozen(group_of(id));
  // The programs nucleusd started, each by its pid, and what they forked
  // in their groups (docs/process-control.md, "When a stop is complete").
  *running = Subtree::first_running(subtree_groups(id, false));
  return *running == 0;
}

void Programs::end_subtree(uint32_t id) {
  std::vector<uint32_t> ids = core_.subtree(id);
  std::vector<pid_t> groups = subtree_groups(id, false);
  if (subtree_.mode() == Subtree::Mode::kCgroup) {
    std::string group = group_of(id);
    subtree_.kill(group);
    dead_groups_.push_back(group);
  }
  // Signals as well in cgroup mode: a program not yet in its group (none
  // here, but cheap) and the process groups in signal mode.
  Subtree::signal_groups(groups, SIGKILL);
  for (uint32_t i : ids) {
    if (core_.processes().at(i).swap_candidate != kNone) {
      reactions_.tell_swap(i, SwapEvent::kRemoved, 0);
    }
  }
  for (uint32_t i : ids) {
    reactions_.removed(i);
    if (i >= runs_.size() || runs_[i].generation != core_.processes().at(i).generation) continue;
    Run &run = runs_[i];
    if (run.pid != 0) {
      by_pid_.erase(run.pid);  // reaped without a notice: its entry is gone
      if (run.pidfd) pidfd_kill(run.pidfd.get());
    }
    run = Run{};
  }
  tick_ns_ = kTickNs;  // for the groups to empty
  check_progress();
}

void Programs::log_failed_launch(const Process &p, const LaunchJob &job) {
  int64_t now = sys::monotonic_ns();
  int64_t interval = static_cast<int64_t>(config_.limits.log_interval_ms) * 1000000;
  if (job.abandoned) {
    launch_timeouts_.warn(now, interval,
                          "process {}: {} (uid {}) did not exec within {} ms and SIGKILL has not "
                          "ended it (a wait the kernel cannot interrupt): start answered "
                          "ETIMEDOUT; its launcher thread is left behind ({} now)",
                          p.name, p.program.path, p.uid, config_.limits.launch_timeout_ms,
                          job.stuck);
  } else if (job.result == -ETIMEDOUT) {
    launch_timeouts_.warn(now, interval,
                          "process {}: {} (uid {}) did not exec within {} ms (stopped, frozen, "
                          "or its path or working directory hangs): killed, start answered "
                          "ETIMEDOUT",
                          p.name, p.program.path, p.uid, config_.limits.launch_timeout_ms);
  } else if (job.result == -EAGAIN) {
    launch_timeouts_.warn(now, interval,
                          "process {}: cannot start {}: an earlier launch of uid {} is still held "
                          "by the kernel",
                          p.name, p.program.path, p.uid);
  } else {
    // The step and its errno: "cannot execute PATH: Permission denied".
    log::info("process {}: {}: {}", p.name,
              start_failure_text(job.launched.failed_step, p.program, p.uid, p.gid),
              std::strerror(-job.result));
  }
}

void Programs::end_programs(int64_t deadline) {
  std::vector<pid_t> pids;
  std::vector<pollfd> fds;
  for (Run &run : runs_) {
    if (run.pid == 0) continue;
    pids.push_back(run.pid);
    // By pidfd: it reaches the program whatever group it is in.
    if (run.pidfd) {
      pidfd_kill(run.pidfd.get());
      fds.push_back({run.pidfd.get(), POLLIN, 0});
    }
  }
  Subtree::signal_groups(pids, SIGKILL);  // and what they forked
  // A pidfd is readable once its process has ended; a process in an
  // uninterruptible wait may take a while, but not for ever.
  while (!fds.empty()) {
    int64_t left_ms = (deadline - sys::monotonic_ns()) / 1000000;
    if (left_ms <= 0 || poll(fds.data(), fds.size(), static_cast<int>(left_ms)) < 0) break;
    std::erase_if(fds, [](const pollfd &p) { return p.revents != 0; });
  }
  size_t left = 0;
  for (pid_t pid : pids) left += waitpid(pid, nullptr, WNOHANG) == pid ? 0 : 1;
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
  if (left != 0)
    log::warn("{} programs had not ended by the shutdown deadline after SIGKILL", left);
}

void Programs::check_progress() {
  std::vector<Watch> still;
  int64_t now = sys::monotonic_ns();
  for (const Watch &w : stops_) {
    if (!core_.processes().live(w.id) || core_.processes().at(w.id).generation != w.generation ||
        core_.processes().at(w.id).stop != StopState::kStopping) {
      continue;
    }
    pid_t running = 0;
    if (subtree_stopped(w.id, &running)) {
      core_.finish_stop(w.id);
      log::debug("process {}: subtree stopped", core_.processes().at(w.id).name);
    } else if (now >= w.deadline_ns) {
      fail_stop(w.id, running);
    } else {
      still.push_back(w);
    }
  }
  stops_.swap(still);
  remove_dead_groups();
  if (!stops_.empty() || !dead_groups_.empty() || reactions_.swap_deadline() != 0) {
    arm_timer();
  } else {
    tick_ns_ = kTickNs;
  }
}

void Programs::remove_dead_groups() {
  if (!serving_ || !launcher_.running()) {  // before serving, or at the end
    std::erase_if(dead_groups_, [&](const std::string &g) { return subtree_.remove_group(g); });
    return;
  }
  // On a launcher thread: a remove is answered without waiting for the
  // rmdirs, and a group still populated is tried again on the next tick.
  for (const std::string &g : dead_groups_) {
    if (!removing_groups_.insert(g).second) continue;
    auto job = std::make_unique<LaunchJob>();
    job->owner.uid = kNone;  // chores go one at a time, apart from any owner's starts
    job->chore_name = g;
    Subtree *subtree = &subtree_;
    job->chore = [subtree, g] { return subtree->remove_group(g); };
    launcher_.submit(std::move(job));
  }
}

void Programs::fail_stop(uint32_t id, pid_t running) {
  const Process &p = core_.processes().at(id);
  int64_t now = sys::monotonic_ns();
  std::string what = running != 0 ? "pid " + std::to_string(running) + " did not stop"
                                  : std::string("its cgroup did not freeze");
  stop_timeouts_.warn(now, static_cast<int64_t>(config_.limits.log_interval_ms) * 1000000,
                      "process {}: stop not complete after {} ms ({}): answered failed, resumed",
                      p.name, config_.limits.stop_timeout_ms, what);
  wire::Message words{};
  words.word[0] = ETIMEDOUT;
  words.word[1] = static_cast<uint32_t>(running);
  core_.fail_stop(id, words);
  // The entry is running again as far as anyone is told: so is its subtree,
  // but for the parts held by a stop of their own or of an ancestor.
  resume_subtree(id);
}

void Programs::on_progress_tick() {
  timer_armed_ = false;
  tick_ns_ = std::min(tick_ns_ * 2, kMaxTickNs);
  reap();  // a stop that no SIGCHLD reports, and cgroups to remove
}

void Programs::arm_timer() {
  int64_t now = sys::monotonic_ns();
  if (tick_ns_ == 0) tick_ns_ = kTickNs;
  int64_t due = now + tick_ns_;
  // Never later than a deadline: a stop's or a swap's fails on time.
  for (const Watch &w : stops_) due = std::min(due, w.deadline_ns);
  if (int64_t swap = reactions_.swap_deadline(); swap != 0) due = std::min(due, swap);
  due = std::max(due, now + kTickNs / 10);
  if (timer_armed_) {
    if (due >= timer_due_ns_) return;
    // A new stop while the timer backs off: bring it forward.
    timer_update_.tv_sec = (due - now) / 1000000000;
    timer_update_.tv_nsec = (due - now) % 1000000000;
    io_uring_sqe *sqe = loop_.sqe();
    io_uring_prep_timeout_update(sqe, &timer_update_, Loop::tag(Kind::kProgress, 0, 0), 0);
    Loop::set_tag(sqe, Kind::kIgnore, 0, 0);
    timer_due_ns_ = due;
    return;
  }
  tick_.tv_sec = (due - now) / 1000000000;
  tick_.tv_nsec = (due - now) % 1000000000;
  io_uring_sqe *sqe = loop_.sqe();
  io_uring_prep_timeout(sqe, &tick_, 0, 0);
  Loop::set_tag(sqe, Kind::kProgress, 0, 0);
  timer_armed_ = true;
  timer_due_ns_ = due;
}

}  // namespace nucleus::daemon
