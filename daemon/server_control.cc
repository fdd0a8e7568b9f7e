// Process control in nucleusd's Server: the requests, starting programs,
// their bound NUCLEUS_FD connections, reaping, and stopping, resuming and
// ending subtrees with cgroups or signals. (Split from server.cc; same
// class.) The rules themselves are in Core (core_tree.cc).
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

#include "launcher.h"
#include "log.h"
#include "principal.h"
#include "program.h"
#include "server.h"

namespace nucleus::daemon {

namespace {

Claims claims_from(const wire::Message &m) {
  return Claims{m.word[wire::kClaimBuffers], m.word[wire::kClaimProcesses],
                m.word[wire::kClaimMemory], m.word[wire::kClaimDevices],
                m.word[wire::kClaimDataBytes]};
}

// How often stops and cgroups in progress are looked at: 1 ms after
// something new, doubling to 100 ms (in signal mode SIGCHLD says when a
// program stops; the timer only catches what no signal reports).
constexpr int64_t kTickNs = 1000000;
constexpr int64_t kMaxTickNs = 100000000;
constexpr int64_t kReapDeadlineNs = 5000000000;  // programs killed at exit, to end

// The owner a staged program names, checked against the principal that
// asks (DESIGN.md: only a root-owned creator may name another user or
// group), with a named user's primary group filled in. 0 or -errno.
int settle_owner(const Process &requester, Program *program) {
  if (program->uid == kNone && program->gid == kNone) return 0;
  if (requester.uid != 0 && ((program->uid != kNone && program->uid != requester.uid) ||
                             (program->gid != kNone && program->gid != requester.gid))) {
    return -EPERM;
  }
  if (program->uid != kNone && program->gid == kNone) {
    uint32_t uid = program->uid;
    uint32_t gid = kNoGroup;
    if (lookup_user(std::to_string(uid), &uid, &gid) < 0) return -EINVAL;  // no such user
    program->gid = gid;
  }
  return 0;
}

// Where a started program's stdout and stderr go: <dir>/<uid>/<name>.log, a
// directory per owner that only it (and root) may read, the
// file created and opened with the owner's rights beneath it (so no name in
// it leads nucleusd elsewhere). -errno when it cannot be made.
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
  sys::UniqueFd own(openat(top.get(), mine.c_str(), O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!own) return -errno;
  return open_beneath_as(owner, own.get(), name + ".log", O_WRONLY | O_CREAT | O_APPEND, 0600);
}

}  // namespace

Server::Run &Server::run_of(uint32_t id) {
  if (runs_.size() < core_.processes().capacity()) runs_.resize(core_.processes().capacity());
  Run &r = runs_[id];
  uint32_t generation = core_.processes().at(id).generation;
  if (r.generation != generation) {
    r = Run{};
    r.generation = generation;
  }
  return r;
}

std::string Server::group_of(uint32_t id) {
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

void Server::control(uint32_t id, const wire::Request &request) {
  Connection &c = connections_[id];
  if (request.op == static_cast<uint32_t>(wire::Op::kStageProgram)) {
    // At most limits.per_connection.staged_bytes (<= kMaxProgramBytes); past
    // it the next create, modify or swap is -E2BIG and nothing more is kept.
    if (request.arg <= 0 || request.arg > static_cast<int64_t>(wire::kStageChunkBytes) ||
        c.staged.size() + static_cast<size_t>(request.arg) >
            config_.limits.connection_staged_bytes) {
      c.staged_overflow = true;
      return;
    }
    // The chunk is the name field followed by the message field.
    char chunk[wire::kStageChunkBytes];
    std::memcpy(chunk, request.name, sizeof(request.name));
    std::memcpy(chunk + sizeof(request.name), &request.message, sizeof(request.message));
    c.staged.append(chunk, static_cast<size_t>(request.arg));
    return;
  }
  if (request.op == static_cast<uint32_t>(wire::Op::kListChildren)) {
    Result<uint32_t> caller = authority(id);
    if (!caller.ok()) {
      reply_failed(id, request.seq, -to_errno(caller.error()));
      return;
    }
    list_children(id, caller.value(), request);
    return;
  }
  if (request.op == static_cast<uint32_t>(wire::Op::kSwapReady)) {
    // Replied when it has taken over (commit_swap), or now when it may not.
    if (int rc = swap_ready(id, request.seq); rc < 0) reply_failed(id, request.seq, rc);
    return;
  }
  wire::Event reply{};
  reply.kind = static_cast<uint32_t>(wire::EventKind::kReply);
  reply.seq = request.seq;
  reply.result = control_op(id, request, &reply);
  if (reply.result == kAnswerLater) return;  // a start: answered when launched
  if (connections_[id].live) connections_[id].replies.push_back(reply);
}

void Server::reply_failed(uint32_t id, uint32_t seq, int rc) {
  wire::Event reply{};
  reply.kind = static_cast<uint32_t>(wire::EventKind::kReply);
  reply.seq = seq;
  reply.result = rc;
  connections_[id].replies.push_back(reply);
}

int Server::control_op(uint32_t id, const wire::Request &r, wire::Event *reply) {
  Connection &c = connections_[id];
  std::string staged = std::move(c.staged);
  bool overflow = c.staged_overflow;
  c.staged.clear();
  c.staged_overflow = false;
  auto op = static_cast<wire::Op>(r.op);
  int len = wire::name_length(r.name, sizeof(r.name));
  if (op == wire::Op::kActFor && r.arg != wire::kActForProcess) return act_for(id, r.arg, {});
  if (len < 0) return -EINVAL;
  std::string_view name(r.name, static_cast<size_t>(len));
  if (op == wire::Op::kActFor) return act_for(id, r.arg, name);
  switch (op) {
    case wire::Op::kCreateExternal:
      if (overflow) return -E2BIG;
      return create_external(id, name, r, staged);
    case wire::Op::kRemoveExternal: {
      Result<uint32_t> device = core_.own_device(id, name);
      if (!device.ok()) return -to_errno(device.error());
      log::info("process {} removes device {}", core_.processes().at(id).name, name);
      return -to_errno(core_.remove_device(id, device.value()));
    }
    case wire::Op::kReserveProcess:
    case wire::Op::kReleaseProcess: {
      Result<uint32_t> device = core_.find_device(name);
      if (!device.ok()) return -to_errno(device.error());
      const Process &self = core_.processes().at(id);
      Error e = op == wire::Op::kReserveProcess
                    ? core_.reserve(id, device.value(), policy_.is_operator(self.uid, self.gid))
                    : core_.release(id, device.value());
      if (op == wire::Op::kReserveProcess && e == Error::kNotPermitted) {
        policy_.log_uid_refusal(e, self.uid, "reserve", name);
      }
      return -to_errno(e);
    }
    default: break;
  }
  // Process control: for the caller's children, or for whoever it acts for.
  Result<uint32_t> authority_id = authority(id);
  if (!authority_id.ok()) return -to_errno(authority_id.error());
  uint32_t caller = authority_id.value();
  if (op == wire::Op::kCreateProcess) {
    if (overflow) return -E2BIG;
    Result<Program> program = parse_program(staged);
    if (!program.ok()) return -to_errno(program.error());
    if (int rc = settle_owner(core_.processes().at(id), &program.value()); rc < 0) return rc;
    // A child of the root is owned by the uid of whoever acts for the root.
    // The bound is the requester's: an operator acting for another is not
    // bounded (acting for the root must always work).
    uint32_t uid = core_.processes().at(id).uid;
    uint32_t gid = core_.processes().at(id).gid;
    Result<uint32_t> child =
        core_.create(caller, name, std::move(program.value()), claims_from(r.message), uid, gid,
                     policy_.uid_budget(uid, gid));
    if (!child.ok()) {
      policy_.log_uid_refusal(child.error(), uid, "create", name);
      return -to_errno(child.error());
    }
    log::info("process {} created {}{}", core_.processes().at(id).name, name, acting_note(id));
    return 0;
  }
  Result<uint32_t> child = core_.child(caller, name);
  if (!child.ok()) return -to_errno(child.error());
  uint32_t ch = child.value();
  // The root's children that attached through the socket are programs the
  // nucleus did not start: nobody controls them but themselves.
  if (caller == kNone && core_.processes().at(ch).origin == Origin::kSocket &&
      op != wire::Op::kGetProcess) {
    return -EPERM;
  }
  bool swapping = core_.processes().at(ch).swap_candidate != kNone;
  // Starting on the launcher's thread: only get and remove until it is in.
  bool launching = ch < runs_.size() &&
                   runs_[ch].generation == core_.processes().at(ch).generation &&
                   runs_[ch].launching;
  if (launching && op != wire::Op::kGetProcess && op != wire::Op::kRemoveProcess) return -EBUSY;
  switch (op) {
    case wire::Op::kSwapProcess:
      if (overflow) return -E2BIG;
      return begin_swap(id, ch, r, staged);
    case wire::Op::kStartProcess: return start_child(caller, ch, Waiter{id, c.serial, r.seq});
    case wire::Op::kStopProcess: {
      if (swapping) return -EBUSY;
      Error e = core_.begin_stop(id, ch, r.handle);
      if (e != Error::kNone) return -to_errno(e);
      stop_subtree(ch);
      return 0;
    }
    case wire::Op::kModifyProcess: {
      if (swapping) return -EBUSY;
      if ((r.arg & ~int64_t{wire::kModifyProgram | wire::kModifyClaims}) != 0) return -EINVAL;
      if (overflow) return -E2BIG;
      Program program;
      if ((r.arg & wire::kModifyProgram) != 0) {
        Result<Program> parsed = parse_program(staged);
        if (!parsed.ok()) return -to_errno(parsed.error());
        program = std::move(parsed.value());
        if (int rc = settle_owner(core_.processes().at(id), &program); rc < 0) return rc;
      }
      Claims claims = claims_from(r.message);
      Error e = core_.modify(caller, ch, (r.arg & wire::kModifyProgram) != 0 ? &program : nullptr,
                             (r.arg & wire::kModifyClaims) != 0 ? &claims : nullptr);
      return -to_errno(e);
    }
    case wire::Op::kRemoveProcess:
      log::info("process {} removes {}{}", core_.processes().at(id).name, name, acting_note(id));
      end_subtree(ch);
      return -to_errno(core_.remove(caller, ch));
    case wire::Op::kGetProcess: {
      reply->message = core_.info(ch);
      reply->extra = data_bytes_of(ch) | uint64_t{core_.processes().at(ch).gid} << 32;
      std::memcpy(reply->sender, name.data(), name.size());
      return 0;
    }
    default: return -EPROTO;
  }
}

Result<uint32_t> Server::authority(uint32_t id) const {
  const Connection &c = connections_[id];
  if (c.acting == kActSelf) return id;
  if (c.acting == kNone) {  // the root: only while its uid is an operator's (a reload may end it)
    const Process &p = core_.processes().at(id);
    if (!policy_.is_operator(p.uid, p.gid)) return Error::kDenied;
    return kNone;
  }
  if (!core_.processes().live(c.acting) ||
      core_.processes().at(c.acting).generation != c.acting_generation) {
    return Error::kNoChild;  // the process it acted for is gone
  }
  return c.acting;
}

std::string Server::acting_note(uint32_t id) const {
  const Connection &c = connections_[id];
  if (c.acting == kActSelf) return {};
  if (c.acting == kNone) return " for the root";
  return " for " + core_.processes().at(c.acting).name;
}

int Server::act_for(uint32_t id, int64_t how, std::string_view name) {
  Connection &c = connections_[id];
  const Process &self = core_.processes().at(id);
  if (how == wire::kActForSelf) {
    c.acting = kActSelf;
    return 0;
  }
  // The uid that counts is the one SO_PEERCRED gave: only processes that
  // attached through the socket have one of their own.
  if (self.origin != Origin::kSocket) return -EACCES;
  bool op = policy_.is_operator(self.uid, self.gid);
  if (how == wire::kActForRoot) {
    if (!op) {
      log::info("process {} (uid {}) may not act for the root: not an operator", self.name,
                self.uid);
      return -EACCES;
    }
    c.acting = kNone;
    return 0;
  }
  if (how != wire::kActForProcess) return -EINVAL;
  uint32_t target = core_.processes().find(name);
  if (target == kNone || core_.processes().at(target).is_device()) return -ESRCH;
  const Process &t = core_.processes().at(target);
  if (!op && t.uid != self.uid) return -EACCES;
  c.acting = target;
  c.acting_generation = t.generation;
  return 0;
}

void Server::list_children(uint32_t id, uint32_t caller, const wire::Request &r) {
  const std::vector<uint32_t> &kids = core_.children_of(caller);
  uint64_t first = r.arg < 0 ? 0 : static_cast<uint64_t>(r.arg);
  Connection &c = connections_[id];
  wire::Event reply{};
  reply.kind = static_cast<uint32_t>(wire::EventKind::kReply);
  reply.seq = r.seq;
  reply.handle = kids.size();
  if (first >= kids.size()) {  // one reply that says how many there are
    reply.reserved0 = UINT32_MAX;
    c.replies.push_back(reply);
    return;
  }
  for (uint64_t i = first; i < kids.size() && i < first + wire::kListPage; ++i) {
    const Process &p = core_.processes().at(kids[i]);
    reply.reserved0 = static_cast<uint32_t>(i);
    reply.message = core_.info(kids[i]);
    reply.extra = data_bytes_of(kids[i]) | uint64_t{p.gid} << 32;
    std::memset(reply.sender, 0, sizeof(reply.sender));
    std::memcpy(reply.sender, p.name.c_str(), p.name.size());
    c.replies.push_back(reply);
  }
}

int Server::start_child(uint32_t caller, uint32_t child, const Waiter &waiter) {
  // One start at a time: the entry is not running until its launch is taken.
  if (child < runs_.size() && runs_[child].generation == core_.processes().at(child).generation &&
      runs_[child].launching) {
    return -EBUSY;
  }
  StartPlan plan;
  Error e = core_.start(caller, child, &plan);
  if (e != Error::kNone) return -to_errno(e);
  if (plan.resume) resume_subtree(child);
  if (!plan.spawn) return 0;
  return spawn(child, waiter);
}

int Server::spawn(uint32_t id, const Waiter &waiter) {
  const Process &p = core_.processes().at(id);
  Run &run = run_of(id);
  int sv[2];
  // Not SOCK_NONBLOCK: it would make the program's end non-blocking too,
  // which is the program's to choose. Ours never blocks (MSG_DONTWAIT).
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return -errno;
  sys::UniqueFd ours(sv[0]);
  auto job = std::make_unique<LaunchJob>();
  job->nucleus_fd.reset(sv[1]);
  // It runs as its owner; a nucleusd that is not root can give it no other
  // uid than its own.
  if (geteuid() != 0 && p.uid != geteuid()) {
    log::info("process {}: cannot run as uid {}: nucleusd (uid {}) is not root", p.name, p.uid,
              geteuid());
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
      return fd;
    }
    job->output_fd.reset(fd);
  }
  job->set_ids = geteuid() == 0;
  job->program = p.program;
  job->socket_path = socket_path_;
  if (subtree_.mode() == Subtree::Mode::kCgroup) {
    if (run.group.empty()) run.group = group_of(id);
    if (int rc = subtree_.make_group(run.group, p.account.given().memory, &job->cgroup_fd);
        rc < 0) {
      log::warn("process {}: cannot create cgroup {}: {}", p.name, run.group, std::strerror(-rc));
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
  if (!launcher_.running()) {  // the boot section, before nucleusd serves
    run_launch(job.get());
    return launched(*job);
  }
  // The launcher's thread waits for the exec; the loop goes on serving and
  // answers the start when the launch comes back (on_launched).
  launcher_.submit(std::move(job));
  return kAnswerLater;
}

void Server::arm_launcher() {
  io_uring_sqe *sqe = loop_.sqe();
  io_uring_prep_read(sqe, launcher_.done_fd(), &launcher_count_, sizeof(launcher_count_), 0);
  Loop::set_tag(sqe, Kind::kLaunched, 0, 0);
}

void Server::on_launched() {
  for (std::unique_ptr<LaunchJob> &job : launcher_.take_done()) {
    if (job->chore) {  // a cgroup removed, or not yet (still populated)
      removing_groups_.erase(job->chore_name);
      if (job->chore_ok) std::erase(dead_groups_, job->chore_name);
      continue;
    }
    int rc = launched(*job);
    if (job->requester == kNone) continue;
    // Answered only to the connection that asked, if it is still there.
    if (job->requester < connections_.size() && connections_[job->requester].live &&
        connections_[job->requester].serial == job->requester_serial) {
      reply_failed(job->requester, job->seq, rc);
      flush(job->requester);
    }
  }
  if (!stopping_) arm_launcher();
}

int Server::launched(LaunchJob &job) {
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
    log::info("process {}: cannot run {}: {}", p.name, p.program.path, std::strerror(-job.result));
    if (p.swap_of != kNone) {
      swap_event(p.swap_of, SwapEvent::kStartFailed, static_cast<uint64_t>(-job.result));
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
    constexpr idtype_t kPidfd = static_cast<idtype_t>(3);  // P_PIDFD, Linux 5.4
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

void Server::arm_bound(uint32_t id) {
  Run &run = runs_[id];
  io_uring_sqe *sqe = loop_.sqe();
  io_uring_prep_poll_add(sqe, run.bound.get(), POLLIN | POLLRDHUP);
  Loop::set_tag(sqe, Kind::kBound, id, run.generation);
}

void Server::on_bound(uint32_t id) {
  Run &run = runs_[id];
  sys::UniqueFd socket = std::move(run.bound);
  if (!socket) return;
  const Process &p = core_.processes().at(id);
  wire::AttachRequest request{};
  ssize_t n = recv(socket.get(), &request, sizeof(request), MSG_DONTWAIT | MSG_TRUNC);
  if (n <= 0) return;  // closed without attaching
  wire::AttachReply reply{};
  int len = wire::name_length(request.name, sizeof(request.name));
  if (static_cast<size_t>(n) != sizeof(request) || request.magic != wire::kMagic ||
      request.abi_version != wire::kAbiVersion) {
    reply.status = -EPROTO;
  } else if (request.name[0] != '\0' &&
             (len < 0 || p.name != std::string_view(request.name, static_cast<size_t>(len)))) {
    reply.status = -EINVAL;  // only the name its parent gave
  } else if (p.attached) {
    reply.status = -EEXIST;
  } else {
    int pidfd = fcntl(run.pidfd.get(), F_DUPFD_CLOEXEC, 0);
    core_.attach_run(id);
    reply.status = pidfd < 0 ? -errno : open_channel(id, pidfd, run.pid);
    if (reply.status < 0) core_.detach(id);
  }
  if (reply.status == 0 && p.swap_of != kNone) {
    swap_attached(id, std::move(socket));  // its reply waits for the old OS's state
    return;
  }
  bool sent = send_attach_reply(socket.get(), &reply, id);
  if (reply.status != 0) {
    log::info("process {} (pid {}): attach refused: {}", p.name, run.pid,
              std::strerror(-reply.status));
    return;
  }
  if (!begin_serving(id, std::move(socket), sent)) return;
  flush(id);  // messages that waited for it
  log::info("process {} attached (pid {}, claim {} buffers)", p.name, run.pid, p.slots.size());
}

void Server::reap_children() {
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

void Server::program_ended(uint32_t id, pid_t pid, int status) {
  if (!core_.processes().live(id) || runs_[id].pid != pid) return;
  if (uint32_t os = core_.processes().at(id).swap_of; os != kNone) {
    // A swap's new program ended before it took over.
    runs_[id].pid = 0;
    swap_event(os, SwapEvent::kNewExited,
               WIFSIGNALED(status) ? 0x100U | static_cast<unsigned>(WTERMSIG(status))
                                   : static_cast<unsigned>(WEXITSTATUS(status)));
    return;
  }
  Run &run = runs_[id];
  run.pid = 0;
  run.pidfd.reset();
  run.bound.reset();  // the poll on it ends with -ECANCELED or POLLHUP
  if (id < connections_.size() && connections_[id].live) {
    service(id, true);  // requests it wrote before it died still count
    if (connections_[id].live) detach(id, "program exited", false);
  }
  wire::ExitKind kind = WIFSIGNALED(status) ? wire::ExitKind::kSignal : wire::ExitKind::kCode;
  int value = WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status);
  log::info("process {} (pid {}) {} {}", core_.processes().at(id).name, pid,
            kind == wire::ExitKind::kSignal ? "killed by signal" : "exited with", value);
  core_.program_exited(id, kind, value);
}

std::vector<pid_t> Server::subtree_groups(uint32_t id, bool only_free) {
  std::vector<pid_t> groups;
  for (uint32_t i : core_.subtree(id)) {
    if (i >= runs_.size() || runs_[i].generation != core_.processes().at(i).generation) continue;
    if (runs_[i].pid == 0 || (only_free && core_.held_stopped(i))) continue;
    groups.push_back(runs_[i].pid);
  }
  return groups;
}

void Server::stop_subtree(uint32_t id) {
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

void Server::resume_subtree(uint32_t id) {
  if (subtree_.mode() == Subtree::Mode::kCgroup) {
    subtree_.freeze(group_of(id), false);  // groups stopped by their own parents stay frozen
  } else {
    Subtree::signal_groups(subtree_groups(id, true), SIGCONT);
  }
}

bool Server::subtree_stopped(uint32_t id, pid_t *running) {
  *running = 0;
  if (subtree_.mode() == Subtree::Mode::kCgroup) return subtree_.frozen(group_of(id));
  // The programs nucleusd started, each by its pid, and what they forked
  // in their groups (docs/process-control.md, "When a stop is complete").
  *running = Subtree::first_running(subtree_groups(id, false));
  return *running == 0;
}

void Server::end_subtree(uint32_t id) {
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
    if (core_.processes().at(i).swap_candidate != kNone) swap_event(i, SwapEvent::kRemoved);
  }
  for (uint32_t i : ids) {
    if (i < connections_.size() && connections_[i].live) detach(i, "removed", false);
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

void Server::end_programs() {
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
  int64_t deadline = sys::monotonic_ns() + kReapDeadlineNs;
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
    log::warn("{} programs had not ended {} ms after SIGKILL", left, kReapDeadlineNs / 1000000);
}

void Server::check_progress() {
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
  if (!stops_.empty() || !dead_groups_.empty() || !swaps_.empty()) {
    arm_timer();
  } else {
    tick_ns_ = kTickNs;
  }
}

void Server::remove_dead_groups() {
  if (!launcher_.running()) {  // before serving, or at the end
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

void Server::fail_stop(uint32_t id, pid_t running) {
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

void Server::on_progress_tick() {
  timer_armed_ = false;
  tick_ns_ = std::min(tick_ns_ * 2, kMaxTickNs);
  reap_children();  // a stop that no SIGCHLD reports, and cgroups to remove
}

void Server::arm_timer() {
  int64_t now = sys::monotonic_ns();
  if (tick_ns_ == 0) tick_ns_ = kTickNs;
  int64_t due = now + tick_ns_;
  // Never later than a deadline: a stop's or a swap's fails on time.
  for (const Watch &w : stops_) due = std::min(due, w.deadline_ns);
  for (const auto &sw : swaps_) due = std::min(due, sw->deadline_ns);
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
