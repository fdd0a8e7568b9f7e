#include "server.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "dispatch.h"
#include "log.h"
#include "sd_notify.h"

namespace nucleus::daemon {

namespace {

// Debian 12's liburing (2.3) predates the futex operations: our own names
// for the kernel's opcode and flags (see shared/notes/linux-facts.md).
constexpr uint8_t kOpFutexWait = 51;
constexpr int kFutex2SizeU32 = 0x02;
constexpr uint64_t kFutexMaskAny = 0xffffffffULL;
// The most replies one request makes (list_children: a page of children).
constexpr size_t kMaxRepliesPerRequest = wire::kListPage;

bool make_dirs(const std::string &path) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos == path.size() || path[pos] == '/') {
      std::string part = path.substr(0, pos);
      if (mkdir(part.c_str(), 0755) < 0 && errno != EEXIST) return false;
    }
  }
  return true;
}

}  // namespace

Server::Server(Config config)
    : config_(std::move(config)),
      core_(config_.pool_buffers, config_.notice_buffers, config_.max_processes),
      policy_(config_, core_),
      inspector_(loop_, core_, config_, policy_,
                 Inspector::View{
                     .socket_path = socket_path_,
                     .socket_activated = socket_activated_,
                     .started_ns = started_ns_,
                     .futex_doorbell = futex_doorbell_,
                     .subtree = subtree_,
                     .poll = poll_,
                     .polled_channels = [this] { return active_.size(); },
                     .attached =
                         [this] {
                           uint64_t attached = 0;
                           for (const Connection &conn : connections_) {
                             attached += conn.live ? 1 : 0;
                           }
                           return attached;
                         },
                     .attached_pid = [this](uint32_t id) -> std::optional<pid_t> {
                       if (id >= connections_.size() || !connections_[id].live) return std::nullopt;
                       return connections_[id].pid;
                     },
                     .block_size = [this](uint32_t id) -> std::optional<uint32_t> {
                       if (id >= device_states_.size() || !device_states_[id].live) {
                         return std::nullopt;
                       }
                       return device_states_[id].geometry.block_size;
                     },
                 }) {
  core_.set_notice_limit(config_.limits.parent_exit_notices);
  poll_.configure(config_.poll);
}

Server::~Server() = default;

bool Server::start(const std::string &runtime_dir, std::string *error) {
  if (!make_dirs(runtime_dir)) {
    *error = "cannot create runtime directory " + runtime_dir + ": " + std::strerror(errno);
    return false;
  }
  runtime_dir_ = runtime_dir;
  started_ns_ = sys::monotonic_ns();
  if (!take_listen_fd(error)) return false;
  if (!socket_activated_ && !listen_socket(runtime_dir, error)) return false;
  return start_loop(error);
}

bool Server::start_loop(std::string *error) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  // Programs it starts, and what they fork and leave behind, come back to
  // nucleusd rather than to PID 1.
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
    *error = std::string("PR_SET_CHILD_SUBREAPER: ") + std::strerror(errno);
    return false;
  }
  std::string control;
  if (!subtree_.init(config_.control, config_.cgroup_root, &control)) {
    *error = "processes.control: \"cgroup\" configured, but " + control;
    return false;
  }
  log::info("subtree control: {}", control);
  signal(SIGPIPE, SIG_IGN);
  signal_fd_.reset(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd_) {
    *error = std::string("signalfd: ") + std::strerror(errno);
    return false;
  }

  if (!loop_.setup(config_.defer_taskrun, error)) return false;
  log_polling();
  route_completions();

  bool have_futex = loop_.has_futex_wait();
  switch (config_.doorbell) {
    case DoorbellMode::kFutex:
      if (!have_futex) {
        *error = "doorbell: \"futex\" configured but this kernel's io_uring has no FUTEX_WAIT";
        return false;
      }
      futex_doorbell_ = true;
      break;
    case DoorbellMode::kEventfd: futex_doorbell_ = false; break;
    case DoorbellMode::kAuto: futex_doorbell_ = have_futex; break;
  }
  log::info("doorbells: {} (io_uring FUTEX_WAIT {})",
            futex_doorbell_ ? "futex words in the channel" : "eventfd per process",
            have_futex ? "available" : "not available");
  log::info(
      "pool of {} message buffers; default claim {} buffers; channel rings {}/{} entries, "
      "data area {} bytes",
      config_.pool_buffers, config_.default_claim_buffers, config_.request_entries,
      config_.event_entries, config_.data_bytes);

  if (!create_configured_devices(error)) return false;
  if (!boot(error)) return false;
  // From here programs start on the launcher's thread (the boot section
  // started its own on this one, before serving).
  if (!launcher_.start(error)) {
    shutdown();
    return false;
  }

  attach_timeout_.tv_sec = static_cast<int64_t>(config_.attach_timeout_ms / 1000);
  attach_timeout_.tv_nsec = static_cast<int64_t>(config_.attach_timeout_ms % 1000) * 1000000;
  arm_accept();
  arm_signal();
  arm_watchdog();
  arm_launcher();
  loop_.submit();
  log::info("listening on {}{}", socket_path_, socket_activated_ ? " (socket activation)" : "");
  return true;
}

void Server::log_polling() const {
  const PollSettings &poll = config_.poll;
  log::info(
      "polling: {}",
      poll.mode == PollMode::kOff ? std::string("off")
      : poll.mode == PollMode::kFixed
          ? fmt::format("a fixed window of {} µs, at most {}% of a CPU", poll.window_ns / 1000,
                        poll.cpu_percent)
          : fmt::format("a window derived from turnarounds, up to {} µs, at most {}% of a CPU",
                        poll.window_ns / 1000, poll.cpu_percent));
}

void Server::arm_accept() {
  io_uring_sqe *sqe = loop_.sqe();
  io_uring_prep_accept(sqe, listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  Loop::set_tag(sqe, Kind::kAccept, 0, 0);
}

void Server::arm_signal() {
  io_uring_sqe *sqe = loop_.sqe();
  io_uring_prep_read(sqe, signal_fd_.get(), signal_buffer_, sizeof(signal_buffer_), 0);
  Loop::set_tag(sqe, Kind::kSignal, 0, 0);
}

void Server::arm_socket(uint32_t id) {
  Connection &c = connections_[id];
  io_uring_sqe *sqe = loop_.sqe();
  io_uring_prep_poll_add(sqe, c.socket.get(), POLLIN | POLLRDHUP);
  Loop::set_tag(sqe, Kind::kSocket, id, c.serial);
}

void Server::arm_pidfd(uint32_t id) {
  Connection &c = connections_[id];
  io_uring_sqe *sqe = loop_.sqe();
  io_uring_prep_poll_add(sqe, c.pidfd.get(), POLLIN);
  Loop::set_tag(sqe, Kind::kPidfd, id, c.serial);
}

void Server::arm_doorbell(uint32_t id) {
  Connection &c = connections_[id];
  c.active = false;
  // An OS that handed over waits, unserved, for its swap to end
  // (swap_failed activates it again).
  if (core_.processes().at(id).handed_over) return;
  c.channel->set_armed(true);
  // Re-check after the fence in set_armed: requests added, or events
  // drained, before the process could see daemon_armed=1 would otherwise
  // wait for no doorbell. Requests of a connection whose replies are at
  // their bound wait until it drains its event ring (it rings then: it sees
  // backlog), so they do not keep it active.
  int64_t pending = c.channel->pending_requests();
  bool blocked = replies_full(c);
  if ((pending != 0 && !blocked) || (has_output(id) && c.channel->event_space() != 0)) {
    activate(id);
    return;
  }
  if (c.armed) return;
  io_uring_sqe *sqe = loop_.sqe();
  if (futex_doorbell_) {
    // Blocked, it waits on the tail as it is now (the requests it has not
    // taken are below it), so that only a ring or a new request wakes it.
    uint32_t expected = c.channel->requests_tail_seen() + static_cast<uint32_t>(pending);
    io_uring_prep_rw(kOpFutexWait, sqe, kFutex2SizeU32, c.channel->doorbell_word(), 0, expected);
    sqe->addr3 = kFutexMaskAny;
  } else {
    io_uring_prep_read(sqe, c.doorbell_fd.get(), &c.eventfd_value, sizeof(c.eventfd_value), 0);
  }
  Loop::set_tag(sqe, Kind::kDoorbell, id, c.serial);
  c.armed = true;
}

void Server::activate(uint32_t id) {
  Connection &c = connections_[id];
  if (c.active) return;
  c.active = true;
  c.last_request_ns = sys::monotonic_ns();
  // No fence: a process that still sees daemon_armed=1 only rings once more.
  c.channel->set_armed(false);
  active_.push_back(id);
}

int Server::run() {
  log::info("ready");
  notify_status();
  sd_notify("READY=1");
  while (!stopping_) {
    int64_t turn_start = active_.empty() ? 0 : sys::monotonic_ns();
    unsigned seen = loop_.turn(active_.empty());

    int64_t now = sys::monotonic_ns();
    now_ns_ = now;
    scratch_.assign(active_.begin(), active_.end());
    bool worked = seen > 0;
    // Each active channel gets at most requests_per_turn requests a turn, so
    // a flood on one does not starve the others; one with more left stays
    // active (arm_doorbell sees its requests) and is served next turn.
    for (uint32_t id : scratch_) {
      Connection &c = connections_[id];
      if (c.live && c.active && service(id) > 0) {
        // A request after an event we gave it: how long it took to turn
        // around, which is what polling has to cover.
        if (c.live && c.awaiting_turnaround) poll_.turnaround(now - c.last_event_ns);
        c.awaiting_turnaround = false;
        c.last_request_ns = now;
        worked = true;
      }
    }
    flush_dirty();
    if (!swaps_.empty()) advance_swaps();
    if (core_.tracing()) inspector_.publish_trace();
    // Channels with a request within the window stay polled, while this
    // second's polling share lasts; the others sleep until they ring.
    int64_t window = poll_.may_poll(now) ? poll_.window_ns() : 0;
    // Polling with nothing to do: give the CPU to a process we may just
    // have woken on it (on a small machine it is often this CPU).
    if (!worked && !active_.empty() && window > 0) {
      int64_t before = sys::monotonic_ns();
      sched_yield();
      int64_t after = sys::monotonic_ns();
      // What sched_yield took beyond a bare system call, another task ran
      // on this CPU: not nucleusd's polling.
      int64_t others = std::max<int64_t>(after - before - kBareYieldNs, 0);
      poll_.polled(turn_start, after - others);
    }
    scratch_.assign(active_.begin(), active_.end());
    active_.clear();
    for (uint32_t id : scratch_) {
      Connection &c = connections_[id];
      if (!c.live || !c.active) continue;
      if (now - c.last_request_ns < window) {
        active_.push_back(id);  // keep polling it
      } else {
        arm_doorbell(id);
      }
    }
  }
  shutdown();
  return 0;
}

void Server::route_completions() {
  loop_.route(Kind::kAccept, [this](const Completion &c) {
    if (c.index == kAcceptRetry) {
      if (!stopping_) arm_accept();
    } else {
      on_accept(c.result);
    }
  });
  loop_.route(Kind::kSignal, [this](const Completion &c) { on_signal(c.result); });
  loop_.route(Kind::kProgress, [this](const Completion &) { on_progress_tick(); });
  loop_.route(Kind::kBound, [this](const Completion &c) {
    if (c.index < runs_.size() && runs_[c.index].generation == c.generation &&
        core_.processes().live(c.index) &&
        core_.processes().at(c.index).generation == c.generation && c.result > 0) {
      on_bound(c.index);
    }
  });
  loop_.route(Kind::kHandshake, [this](const Completion &c) {
    if (c.index >= pending_.size() || !pending_[c.index].live ||
        pending_[c.index].generation != c.generation) {
      return;
    }
    if (c.result == -ECANCELED) {
      log::info("a connection (pid {} uid {}) sent no attach request in {} ms; closed",
                pending_[c.index].cred.pid, pending_[c.index].cred.uid, config_.attach_timeout_ms);
      release_pending(c.index);
    } else {
      on_handshake(c.index);
    }
  });
  loop_.route(Kind::kDevice, [this](const Completion &c) {
    if (c.index < device_ops_.size() && device_ops_[c.index]->live &&
        device_ops_[c.index]->generation == c.generation) {
      on_device_op(c.index, c.result);
    }
  });
  loop_.route(Kind::kWatchdog, [this](const Completion &) { on_watchdog(); });
  loop_.route(Kind::kLaunched, [this](const Completion &) { on_launched(); });
  for (Kind kind : {Kind::kSocket, Kind::kPidfd, Kind::kDoorbell}) {
    loop_.route(kind, [this, kind](const Completion &c) { on_connection(kind, c); });
  }
}

void Server::on_signal(int result) {
  if (result <= 0) {
    arm_signal();
    return;
  }
  signalfd_siginfo info{};
  std::memcpy(&info, signal_buffer_, sizeof(info));
  if (info.ssi_signo == SIGCHLD) {
    reap_children();
    arm_signal();
    return;
  }
  if (info.ssi_signo == SIGHUP) {
    reload();
    arm_signal();
    return;
  }
  log::info("signal {}: shutting down", strsignal(static_cast<int>(info.ssi_signo)));
  stopping_ = true;
}

void Server::on_connection(Kind kind, const Completion &done) {
  uint32_t index = done.index;
  if (index >= connections_.size()) return;
  Connection &c = connections_[index];
  if (!c.live || c.serial != done.generation) return;  // an old connection at this index
  switch (kind) {
    case Kind::kSocket: on_socket(index, done.result); break;
    case Kind::kPidfd:
      service(index, true);  // requests it wrote before it died still count
      if (c.live) detach(index, "process exited", false);
      break;
    case Kind::kDoorbell:
      c.armed = false;
      if (done.result < 0 && done.result != -EAGAIN && done.result != -EINTR) {
        log::warn("process {}: doorbell wait failed: {}", core_.processes().at(index).name,
                  std::strerror(-done.result));
      }
      activate(index);
      break;
    default: break;
  }
}

void Server::on_socket(uint32_t id, int result) {
  Connection &c = connections_[id];
  if (result < 0) {
    if (result != -ECANCELED) detach(id, "socket poll failed", false);
    return;
  }
  char byte = 0;
  ssize_t n = recv(c.socket.get(), &byte, 1, MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) || (result & (POLLHUP | POLLERR))) {
    service(id, true);  // requests it wrote before it hung up still count
    if (c.live) detach(id, "socket closed", false);
    return;
  }
  if (n > 0) {
    wire::Request none{};
    protocol_error(id, none, Error::kProtocol);
    if (!c.live) return;
  }
  arm_socket(id);
}

bool Server::replies_full(const Connection &c) const {
  return c.replies.size() + kMaxRepliesPerRequest > config_.limits.connection_replies;
}

bool Server::has_output(uint32_t id) const {
  return !connections_[id].replies.empty() || core_.processes().at(id).fifo_head != kNone;
}

int64_t Server::service(uint32_t id, bool final) {
  Connection &c = connections_[id];
  // An OS that handed its state over is not served until its swap ends.
  if (core_.processes().at(id).handed_over) return 0;
  int64_t count = c.channel->pending_requests();
  if (count < 0) {
    detach(id, "wrote a request ring tail out of range", true);
    return 0;
  }
  // A process that is gone has its last requests (at most a ring) served
  // whole; their replies end with it.
  int64_t budget = final ? count : config_.limits.connection_requests_per_turn;
  int64_t taken = 0;
  while (taken < count && taken < budget) {
    // Back-pressure: a process that does not drain its event ring has its
    // requests wait in its request ring (none is dropped) until the
    // replies queued for it fit again.
    if (!final && replies_full(c)) {
      replies_log_.warn(sys::monotonic_ns(),
                        static_cast<int64_t>(config_.limits.log_interval_ms) * 1000000,
                        "process {}: {} replies wait for room in its event ring "
                        "(limits.per_connection.replies); its requests wait until it drains it",
                        core_.processes().at(id).name, c.replies.size());
      break;
    }
    wire::Request request = c.channel->take_request();
    ++taken;
    if (request.op >= static_cast<uint32_t>(wire::Op::kStageProgram) &&
        request.op < wire::kOpCount) {
      control(id, request);
      if (!c.live) return 0;
      continue;
    }
    wire::Event reply;
    DispatchResult r = dispatch_request(core_, id, request, &reply);
    if (r.error != Error::kNone) {
      protocol_error(id, request, r.error);
      if (!c.live) return 0;
    } else if (r.has_reply) {
      c.replies.push_back(reply);
    }
    if (core_.processes().at(id).handed_over)
      break;  // that answer was its handover: the rest waits
  }
  if (taken > 0) {
    c.channel->commit_requests();
    sync_slots();
  }
  // Also with nothing taken: the process may have drained its event ring
  // and rung for the replies and events that wait (backlog).
  flush(id);
  if (!c.live) return 0;
  // A process blocked on a full request ring waits for this head; one that
  // waits for an answer must not be woken for nothing.
  if (taken > 0 && c.channel->process_waiting() == wire::kWaitingForRequestSpace) {
    c.channel->wake_process();
  }
  return taken;
}

void Server::flush(uint32_t id) {
  Connection &c = connections_[id];
  // Nothing new reaches an OS that handed over: the new program gets it all.
  if (core_.processes().at(id).handed_over) return;
  Channel &ch = *c.channel;
  bool pushed = false;
  for (;;) {
    int64_t space = ch.event_space();
    if (space < 0) {
      detach(id, "wrote an event ring head out of range", true);
      return;
    }
    bool wrote = false;
    for (; space > 0 && !c.replies.empty(); --space) {
      ch.push_event(c.replies.front());
      c.replies.pop_front();
      wrote = true;
    }
    wire::Event event;
    for (; space > 0 && core_.next_event(id, &event); --space) {
      ch.push_event(event);
      core_.pop_event(id);
      wrote = true;
    }
    if (wrote) ch.commit_events();
    pushed = pushed || wrote;
    bool more = !c.replies.empty() || core_.processes().at(id).fifo_head != kNone;
    if (!more) {
      if (ch.backlog()) ch.set_backlog(false);
      break;
    }
    if (ch.backlog()) break;  // the process rings when it has drained
    ch.set_backlog(true);     // then look once more after the fence
  }
  if (pushed) {
    c.last_event_ns = now_ns_;
    c.awaiting_turnaround = true;
    if (ch.process_waiting() != wire::kNotWaiting) ch.wake_process();
  }
}

void Server::sync_slots() {
  for (uint32_t id : core_.take_slot_changes()) {
    if (!core_.processes().live(id)) continue;
    const Process &p = core_.processes().at(id);
    if (id >= connections_.size() || !connections_[id].live) continue;
    Channel &ch = *connections_[id].channel;
    std::vector<SlotEntry> visible;
    for (uint32_t index : p.slots) {
      if (core_.pool().at(index).state == BufferState::kFree || ch.shows(index)) {
        visible.push_back({index, core_.pool().handle(index)});
      }
    }
    ch.sync_slots(visible);
  }
}

void Server::flush_dirty() {
  drop_removed_devices();
  sync_slots();
  for (std::vector<uint32_t> dirty = core_.take_dirty(); !dirty.empty();
       dirty = core_.take_dirty()) {
    for (uint32_t id : dirty) {
      if (!core_.processes().live(id)) continue;
      const Process &p = core_.processes().at(id);
      if (p.is_device()) {
        if (device_state(id, p.generation) != nullptr) serve_device(id);
      } else if (id < connections_.size() && connections_[id].live) {
        flush(id);
      }
    }
  }
}

void Server::protocol_error(uint32_t id, const wire::Request &request, Error error) {
  Connection &c = connections_[id];
  uint64_t errors = core_.count_protocol_error(id);
  const Process &p = core_.processes().at(id);
  log::debug("process {}: request op {} buffer {:#x} refused: {}", p.name, request.op,
             request.handle, std::strerror(to_errno(error)));
  if (errors > config_.max_protocol_errors) {
    log::warn("process {}: {} malformed requests; detaching it", p.name, errors);
    detach(id, "too many malformed requests", true);
    return;
  }
  // Never dropped: service() takes a request only while its replies fit,
  // and stray socket bytes are bounded by max_protocol_errors.
  wire::Event e{};
  e.kind = static_cast<uint32_t>(wire::EventKind::kError);
  e.seq = request.seq;
  e.handle = request.handle;
  e.result = to_errno(error);
  c.replies.push_back(e);
}

void Server::detach(uint32_t id, const char *reason, bool violation) {
  Connection &c = connections_[id];
  if (!c.live) return;
  const std::string &name = core_.processes().at(id).name;
  if (violation) {
    log::warn("process {} (pid {}) broke the channel protocol: {}; detached", name, c.pid, reason);
    c.channel->close(wire::ChannelState::kDetached);
  } else {
    log::info("process {} (pid {}) detached: {}", name, c.pid, reason);
  }
  cancel_connection_sqes(id);
  // A swap of it, or the swap it was the new program of, cannot go on.
  bool old_os = core_.processes().at(id).swap_candidate != kNone;
  uint32_t taken_over = core_.processes().at(id).swap_of;
  core_.detach(id);
  uint32_t generation = c.generation;
  // Its queued replies' memory goes back now, not at the next attach here.
  std::deque<wire::Event>().swap(c.replies);
  c = Connection{};
  c.generation = generation;
  // What devices were doing for it ends; its data area stays mapped until
  // each operation's completion has come back.
  cancel_device_ops_of(id, generation);
  if (old_os) swap_event(id, SwapEvent::kOldExited);
  if (taken_over != kNone) swap_event(taken_over, SwapEvent::kNewExited);
}

void Server::cancel_connection_sqes(uint32_t id) {
  const Connection &c = connections_[id];
  for (Kind kind : {Kind::kSocket, Kind::kPidfd, Kind::kDoorbell}) loop_.cancel(kind, id, c.serial);
}

void Server::shutdown() {
  sd_notify("STOPPING=1");
  // Launches in flight end with the rest: none starts after this.
  launcher_.stop();
  for (std::unique_ptr<LaunchJob> &job : launcher_.take_done()) {
    if (job->result == 0) pidfd_kill(job->launched.pidfd.get());
  }
  // The programs nucleusd started end with it.
  if (subtree_.mode() == Subtree::Mode::kCgroup) subtree_.kill("");
  end_programs();
  subtree_.cleanup();
  // A socket from socket activation belongs to the service manager.
  if (!socket_activated_) unlink(socket_path_.c_str());
  listen_fd_.reset();
  inspector_.close_all();
  size_t count = 0;
  for (Connection &c : connections_) {
    if (!c.live) continue;
    c.channel->close(wire::ChannelState::kShutdown);
    c.socket.reset();
    ++count;
  }
  for (Pending &p : pending_) p.socket.reset();
  log::info("stopped; {} processes were attached", count);
}

}  // namespace nucleus::daemon
