#include "connections.h"

#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "refusal.h"

namespace nucleus::daemon {

namespace {

// Debian 12's liburing (2.3) predates the futex operations: our own names
// for the kernel's opcode and flags (see shared/notes/linux-facts.md).
constexpr uint8_t kOpFutexWait = 51;
constexpr int kFutex2SizeU32 = 0x02;
constexpr uint64_t kFutexMaskAny = 0xffffffffULL;
// The most replies one request makes (list_children: a page of children).
constexpr size_t kMaxRepliesPerRequest = wire::kListPage;

}  // namespace

Connections::Connections(const Config &config, Core &core, Loop &loop, Requests &requests,
                         Reactions &reactions)
    : config_(config), core_(core), loop_(loop), requests_(requests), reactions_(reactions) {
  poll_.configure(config_.poll);
  for (Kind kind : {Kind::kSocket, Kind::kPidfd, Kind::kDoorbell}) {
    loop_.route(kind, [this, kind](const Completion &c) { on_completion(kind, c); });
  }
}

bool Connections::setup(bool have_futex_wait, std::string *error) {
  switch (config_.doorbell) {
    case DoorbellMode::kFutex:
      if (!have_futex_wait) {
        *error = "doorbell: \"futex\" configured but this kernel's io_uring has no FUTEX_WAIT";
        return false;
      }
      futex_doorbell_ = true;
      break;
    case DoorbellMode::kEventfd: futex_doorbell_ = false; break;
    case DoorbellMode::kAuto: futex_doorbell_ = have_futex_wait; break;
  }
  log::info("doorbells: {} (io_uring FUTEX_WAIT {})",
            futex_doorbell_ ? "futex words in the channel" : "eventfd per process",
            have_futex_wait ? "available" : "not available");
  const PollSettings &poll = config_.poll;
  log::info(
      "polling: {}",
      poll.mode == PollMode::kOff ? std::string("off")
      : poll.mode == PollMode::kFixed
          ? fmt::format("a fixed window of {} µs, at most {}% of a CPU", poll.window_ns / 1000,
                        poll.cpu_percent)
          : fmt::format("a window derived from turnarounds, up to {} µs, at most {}% of a CPU",
                        poll.window_ns / 1000, poll.cpu_percent));
  return true;
}

size_t Connections::count() const {
  return static_cast<size_t>(std::count_if(connections_.begin(), connections_.end(),
                                           [](const Connection &c) { return c.live; }));
}

std::shared_ptr<Channel> Connections::channel(uint32_t id, uint32_t generation) const {
  if (!live(id) || connections_[id].generation != generation) return nullptr;
  return connections_[id].channel;
}

void Connections::push(uint32_t id, const wire::Event &event) {
  if (live(id)) connections_[id].replies.push_back(from_nucleus(event));
}

wire::Event Connections::from_nucleus(wire::Event event) const {
  // Events that carry a message's or an answer's principal (kInherit of a
  // received message) keep it; every other one is the nucleus's own.
  if (event.principal.kind == static_cast<uint32_t>(wire::PrincipalKind::kNone)) {
    event.principal = core_.nucleus_principal();
    if (event.sender[0] == '\0') {
      std::memcpy(event.sender, wire::kNucleusName, sizeof(wire::kNucleusName));
    }
  }
  return event;
}

void Connections::end(uint32_t id, const char *reason) {
  if (!live(id)) return;
  service(id, true);  // requests it wrote before it died still count
  if (live(id)) detach(id, reason, false);
}

void Connections::move(uint32_t from, uint32_t to) {
  cancel_sqes(from);
  Connection moved = std::move(connections_[from]);
  connections_[from] = Connection{};
  connections_[from].generation = moved.generation;
  std::erase(active_, from);
  moved.generation = core_.processes().at(to).generation;
  moved.serial = ++serial_;
  moved.armed = false;
  moved.active = false;
  connections_[to] = std::move(moved);
}

void Connections::resume(uint32_t id) {
  arm_socket(id);
  arm_pidfd(id);
  activate(id);
  flush(id);
}

bool Connections::serve_active(int64_t now) {
  now_ns_ = now;
  scratch_.assign(active_.begin(), active_.end());
  bool worked = false;
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
  return worked;
}

void Connections::poll_or_arm(int64_t turn_start, int64_t now, bool worked) {
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

void Connections::shutdown() {
  for (Connection &c : connections_) {
    if (!c.live) continue;
    c.channel->close(wire::ChannelState::kShutdown);
    c.socket.reset();
    // Its read end becomes readable (end of file): a process waiting on it
    // calls the library, which says the nucleus shut down.
    c.descriptor.close();
  }
}

void Connections::arm_socket(uint32_t id) {
  Connection &c = connections_[id];
  loop_.poll(c.socket.get(), POLLIN | POLLRDHUP, Kind::kSocket, id, c.serial);
}

void Connections::arm_pidfd(uint32_t id) {
  Connection &c = connections_[id];
  loop_.poll(c.pidfd.get(), POLLIN, Kind::kPidfd, id, c.serial);
}

void Connections::arm_doorbell(uint32_t id) {
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

void Connections::activate(uint32_t id) {
  Connection &c = connections_[id];
  if (c.active) return;
  c.active = true;
  c.last_request_ns = sys::monotonic_ns();
  // No fence: a process that still sees daemon_armed=1 only rings once more.
  c.channel->set_armed(false);
  active_.push_back(id);
}

void Connections::on_completion(Kind kind, const Completion &done) {
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

void Connections::on_socket(uint32_t id, int result) {
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

bool Connections::replies_full(const Connection &c) const {
  return c.replies.size() + kMaxRepliesPerRequest > config_.limits.connection_replies;
}

bool Connections::has_output(uint32_t id) const {
  return !connections_[id].replies.empty() || core_.processes().at(id).fifo_head != kNone;
}

int64_t Connections::service(uint32_t id, bool final) {
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
  c.session.copied_this_turn = 0;
  while (taken < count && taken < budget) {
    // Copies are bounded by bytes a turn as well: the rest waits for the
    // next turn, after the other connections had theirs.
    if (!final && c.session.copied_this_turn >= wire::kMaxCopyBytes) break;
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
    Error error = requests_.handle(id, c.serial, c.session, request);
    if (!c.live) return 0;
    if (error != Error::kNone) {
      protocol_error(id, request, error);
      if (!c.live) return 0;
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
  if (taken > 0 && (c.channel->process_waiting() & wire::kWaitingForRequestSpace) != 0) {
    c.channel->wake_process();
  }
  return taken;
}

void Connections::flush(uint32_t id) {
  if (!live(id)) return;
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
    // Written in place: the event ring's entry is the record (unpublished
    // until commit_events).
    for (; space > 0 && core_.next_event(id, ch.event_slot()); --space) {
      if (c.session.window_bytes != 0) fill_window(id, c, ch.event_slot());
      ch.event_written();
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
    uint32_t waiting = ch.process_waiting();
    if ((waiting & wire::kWaitingOnFutex) != 0) ch.wake_process();
    // After the fence in process_waiting(), as the futex wake: either the
    // process saw our tail when it set kWaitingOnDescriptor, or we see the
    // bit here and make its descriptor readable.
    if ((waiting & wire::kWaitingOnDescriptor) != 0 && c.descriptor.open()) c.descriptor.ring();
  }
}

void Connections::sync_slots() {
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

// The message about to be published to `id` (the head of its fifo, in
// `event`) lends with the read right and its receive window is free: its
// first bytes are copied into the window before the event is published, and
// the event says how many. One copy per message the process answers (the
// window is held until then), each at most kMaxCopyBytes.
void Connections::fill_window(uint32_t id, Connection &c, wire::Event *event) {
  Session &s = c.session;
  if (event->kind != static_cast<uint32_t>(wire::EventKind::kMessage)) return;
  if (s.window_holder != 0 && core_.holds(id, s.window_holder)) return;
  uint64_t handle = 0;
  std::optional<LentRange> lent = core_.head_read_lend(id, &handle);
  if (!lent) return;
  Channel *sender = channel(lent->sender);
  if (sender == nullptr || sender->data_bytes() < uint64_t{lent->offset} + lent->bytes ||
      c.channel->data_bytes() < uint64_t{s.window_offset} + s.window_bytes) {
    return;
  }
  uint32_t n = std::min(lent->bytes, s.window_bytes);
  // memmove: a process may send to itself, and the ranges may overlap.
  std::memmove(c.channel->data() + s.window_offset, sender->data() + lent->offset, n);
  event->copied = n;
  s.window_holder = handle;
}

void Connections::protocol_error(uint32_t id, const wire::Request &request, Error error) {
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
  c.replies.push_back(from_nucleus(e));
}

void Connections::detach(uint32_t id, const char *reason, bool violation) {
  if (!live(id)) return;
  Connection &c = connections_[id];
  const std::string &name = core_.processes().at(id).name;
  if (violation) {
    log::warn("process {} (pid {}) broke the channel protocol: {}; detached", name, c.pid, reason);
    c.channel->close(wire::ChannelState::kDetached);
  } else {
    log::info("process {} (pid {}) detached: {}", name, c.pid, reason);
  }
  cancel_sqes(id);
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
  reactions_.detached(id, generation, old_os, taken_over);
}

void Connections::cancel_sqes(uint32_t id) {
  const Connection &c = connections_[id];
  for (Kind kind : {Kind::kSocket, Kind::kPidfd, Kind::kDoorbell}) loop_.cancel(kind, id, c.serial);
}

int Connections::open(uint32_t id, int pidfd, pid_t pid) {
  sys::UniqueFd pidfd_owner(pidfd);
  const Process &proc = core_.processes().at(id);
  std::vector<SlotEntry> slots;
  for (uint32_t index : proc.slots) {
    if (core_.pool().at(index).state == BufferState::kFree) {
      slots.push_back({index, core_.pool().handle(index)});
    }
  }
  ChannelSizes sizes{config_.request_entries, config_.event_entries,
                     data_area_bytes(core_, config_, id)};
  auto channel = Channel::create(
      proc.name, sizes, futex_doorbell_ ? wire::Doorbell::kFutex : wire::Doorbell::kEventfd, slots);
  if (!channel.ok()) return -to_errno(channel.error());
  sys::UniqueFd doorbell;
  if (!futex_doorbell_) {
    doorbell.reset(eventfd(0, EFD_CLOEXEC));
    if (!doorbell) return -ENOMEM;
  }
  if (connections_.size() < core_.processes().capacity()) {
    connections_.resize(core_.processes().capacity());
  }
  Connection &c = connections_[id];
  c = Connection{};
  c.live = true;
  c.generation = proc.generation;
  c.serial = ++serial_;
  c.pidfd = std::move(pidfd_owner);
  c.doorbell_fd = std::move(doorbell);
  c.channel = std::move(channel.value());
  c.pid = pid;
  return 0;
}

bool Connections::serve(uint32_t id, sys::UniqueFd socket, bool reply_sent) {
  connections_[id].socket = std::move(socket);
  if (!reply_sent) {
    detach(id, "could not send the attach reply", false);
    return false;
  }
  arm_socket(id);
  arm_pidfd(id);
  arm_doorbell(id);
  return true;
}

void Connections::retire(uint32_t id) {
  // A swap's new program that never attached has no connection: its hidden
  // entry may even lie past every connection opened so far.
  if (!live(id)) return;
  Connection &c = connections_[id];
  cancel_sqes(id);
  c.channel->close(wire::ChannelState::kDetached);
  uint32_t generation = c.generation;
  std::deque<wire::Event>().swap(c.replies);  // its memory goes back now
  c = Connection{};
  c.generation = generation;
  std::erase(active_, id);
}

int Connections::open_poll_descriptor(uint32_t id) {
  if (!live(id)) return -ENOTCONN;
  Connection &c = connections_[id];
  // One per connection, for its life: a process asking again and again
  // makes nucleusd hold nothing more.
  if (c.descriptor.open()) return -EEXIST;
  PollDescriptor descriptor;
  sys::UniqueFd read_end;
  if (int rc = PollDescriptor::create(&descriptor, &read_end); rc < 0) return rc;
  // Sent before the reply is queued, so that the process finds it on its
  // socket when the reply comes. Our copy of the read end closes here: the
  // process's is the only one.
  if (int rc = PollDescriptor::send(c.socket.get(), read_end.get()); rc < 0) return rc;
  c.descriptor = std::move(descriptor);
  return 0;
}

void Connections::ring_poll_descriptor(uint32_t id) {
  if (live(id)) connections_[id].descriptor.ring();
}

void Connections::answer(const Waiter &waiter, int result, uint64_t step, std::string_view path) {
  // Answered only to the connection that asked, if it is still there.
  if (waiter.id >= connections_.size() || !connections_[waiter.id].live ||
      connections_[waiter.id].serial != waiter.serial) {
    return;
  }
  wire::Event reply{};
  reply.kind = static_cast<uint32_t>(wire::EventKind::kReply);
  reply.seq = waiter.seq;
  reply.result = result;
  set_start_failure(&reply, result, step, path);
  connections_[waiter.id].replies.push_back(from_nucleus(reply));
  flush(waiter.id);
}

}  // namespace nucleus::daemon
