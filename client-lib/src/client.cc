// libnucleus: the process side of a channel.
//
// The pool, the queues and the process table live in nucleusd. This side
// keeps only what it needs to answer at once without a round trip: which of
// its own buffers are free (the claim), which buffers it received and owes an
// answer on, and the events the nucleus has published to it so far, in queue
// order. nucleusd checks every request again; these checks only give the
// caller its error without waiting.
//
// Threading: one thread at a time per nucleus_t (see nucleus.h).
#include "client.h"

#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include <nucleus_internal/sys.h>

#include "causes.h"

namespace nucleus::client {

namespace {

// A waiter looks for a vanished nucleus (nothing wakes a futex when its
// waker dies) after 1 s of sleep, then after 2, 4, 8 and every 16 s, each
// slice a little longer by a fraction of its own, from the pid, so that many
// processes that began to wait together do not wake together (a thousand
// idle processes waking in the same millisecond every second showed as the
// p99 of everyone else's round trips).
constexpr int64_t kSleepSliceNs = 1000000000;
constexpr int kSleepSliceDoublings = 4;
// Spinning before the futex sleep only pays with a spare core: on two CPUs
// or fewer a spinning waiter takes the CPU its peer (nucleusd, or the
// process nucleusd woke) needs, so it does not spin at all. With more CPUs it
// spins long enough to catch a reply that nucleusd, polling, relays at once
// (docs/performance.md, "The client's wait"). $NUCLEUS_SPIN_NS overrides.
constexpr int64_t kSpareCoreSpinNs = 20000;
constexpr int kAttachTimeoutMs = 10000;

int64_t default_spin_ns() {
  cpu_set_t set;
  CPU_ZERO(&set);
  int cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
  return cpus <= 2 ? 0 : kSpareCoreSpinNs;
}

int64_t spin_ns_from_env() {
  const char *s = std::getenv("NUCLEUS_SPIN_NS");
  if (s == nullptr || *s == '\0') return default_spin_ns();
  char *end = nullptr;
  long long v = std::strtoll(s, &end, 10);
  if (*end != '\0' || v < 0) return default_spin_ns();
  return v;
}

std::string default_socket_path() {
  if (const char *p = std::getenv("NUCLEUS_SOCKET"); p != nullptr && *p != '\0') return p;
  if (geteuid() == 0) return "/run/nucleus/nucleus.sock";
  if (const char *x = std::getenv("XDG_RUNTIME_DIR"); x != nullptr && *x != '\0') {
    return std::string(x) + "/nucleus/nucleus.sock";
  }
  return "/run/nucleus/nucleus.sock";
}

int connect_socket(sys::UniqueFd *out) {
  std::string path = default_socket_path();
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) return -ENAMETOOLONG;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  sys::UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) return -errno;
  if (::connect(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) < 0) {
    int err = errno;
    note_cause(-err, wire::kCauseNoSocket, 0, err, path);
    return -err;
  }
  *out = std::move(fd);
  return 0;
}

int inherited_socket(sys::UniqueFd *out) {
  const char *s = std::getenv("NUCLEUS_FD");
  if (s == nullptr || *s == '\0') {
    note_cause(-EINVAL, wire::kCauseNoNucleusFd);
    return -EINVAL;
  }
  char *end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (*end != '\0' || v < 0 || v > 1 << 20) return -EINVAL;
  int type = 0;
  socklen_t len = sizeof(type);
  if (getsockopt(static_cast<int>(v), SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
      type != SOCK_SEQPACKET) {
    return -EBADF;
  }
  *out = sys::UniqueFd(static_cast<int>(v));
  unsetenv("NUCLEUS_FD");  // the connection is ours now; children must not reuse it
  return 0;
}

// A message or answer event as the public API shows it.
nucleus_event_t to_public(const wire::Event &e, int kind) {
  nucleus_event_t q{};
  q.kind = kind;
  q.result = e.result;
  q.buffer = e.handle;
  std::memcpy(q.sender, e.sender, sizeof(q.sender));
  q.sender[sizeof(q.sender) - 1] = '\0';
  std::memcpy(&q.message, &e.message, sizeof(q.message));
  q.principal =
      nucleus_principal_t{e.principal.uid, e.principal.gid, e.principal.pid, e.principal.kind};
  // A message's lend: bytes and rights (wire::lend_extra); the receiver
  // addresses it from 0.
  if (kind == NUCLEUS_EVENT_MESSAGE && e.extra != 0) {
    q.lend.bytes = e.extra & 0xffffffffU;
    q.lend.rights = static_cast<uint32_t>(e.extra >> 32);
  }
  // A message's bytes in the receive window; an answer's in the lent range.
  q.lend.copied = e.copied;
  return q;
}

// Receives the AttachReply and up to two fds.
int receive_reply(int sock, wire::AttachReply *reply, sys::UniqueFd fds[2]) {
  pollfd p{sock, POLLIN, 0};
  int pr = ::poll(&p, 1, kAttachTimeoutMs);
  if (pr == 0) return -ETIMEDOUT;
  if (pr < 0) return -errno;
  ssize_t n = sys::receive_record(sock, reply, sizeof(*reply), fds, 2, 0);
  if (n < 0) return static_cast<int>(n);
  if (n == 0) return -ECONNRESET;
  if (static_cast<size_t>(n) != sizeof(*reply) || reply->magic != wire::kMagic) return -EPROTO;
  return 0;
}

}  // namespace

Channel::~Channel() {
  if (base_ != nullptr) ::munmap(base_, bytes_);
}

int Channel::attach(const char *name, std::unique_ptr<Channel> *out) {
  if (out == nullptr) return -EINVAL;
  wire::AttachRequest req{};
  req.magic = wire::kMagic;
  req.abi_version = wire::kAbiVersion;
  sys::UniqueFd sock;
  if (name != nullptr) {
    if (wire::name_length(name, std::strlen(name) + 1) < 0) {
      note_cause(-EINVAL, wire::kCauseBadName);
      return -EINVAL;
    }
    std::strncpy(req.name, name, sizeof(req.name) - 1);
    if (int rc = connect_socket(&sock); rc < 0) return rc;
  } else if (int rc = inherited_socket(&sock); rc < 0) {
    return rc;
  }
  if (::send(sock.get(), &req, sizeof(req), MSG_NOSIGNAL) != sizeof(req)) {
    // nucleusd refuses some connections at accept (a uid that may not
    // attach, or one with too many attaches waiting): it leaves its reply
    // saying why and shuts the connection, so our send fails with EPIPE.
    // The reply is still ours to read.
    int err = errno;
    if (err != EPIPE) return -err;
  }

  wire::AttachReply reply{};
  sys::UniqueFd fds[2];
  if (int rc = receive_reply(sock.get(), &reply, fds); rc < 0) return rc;
  if (reply.status < 0) {
    // Why, where nucleusd said (its value travels in channel_bytes).
    note_cause(reply.status, reply.reserved, reply.channel_bytes);
    return reply.status;
  }
  if (!fds[0] || reply.channel_bytes < wire::kHeaderBytes) return -EPROTO;

  std::unique_ptr<Channel> ch;
  if (int rc = map_channel(fds[0].get(), reply.channel_bytes, std::move(fds[1]), &ch); rc < 0)
    return rc;
  ch->socket_ = std::move(sock);
  reply.name[sizeof(reply.name) - 1] = '\0';
  ch->name_ = reply.name;
  ch->successor_ = (reply.flags & wire::kAttachSuccessor) != 0;
  *out = std::move(ch);
  return 0;
}

int Channel::map_channel(int channel_fd, uint64_t bytes, sys::UniqueFd doorbell,
                         std::unique_ptr<Channel> *out) {
  auto ch = std::unique_ptr<Channel>(new Channel());
  void *base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, channel_fd, 0);
  if (base == MAP_FAILED) return -errno;
  ch->base_ = static_cast<uint8_t *>(base);
  ch->bytes_ = bytes;
  ch->doorbell_fd_ = std::move(doorbell);
  if (int rc = ch->map_layout(); rc < 0) return rc;
  *out = std::move(ch);
  return 0;
}

int Channel::map_layout() {
  hdr_ = reinterpret_cast<wire::ChannelHeader *>(base_);
  const wire::ChannelHeader &h = *hdr_;
  if (h.magic != wire::kMagic || h.abi_version != wire::kAbiVersion) return -EPROTO;
  if (!wire::is_power_of_two(h.request_entries) || !wire::is_power_of_two(h.event_entries)) {
    return -EPROTO;
  }
  wire::Layout l =
      wire::compute_layout(h.slot_count, h.request_entries, h.event_entries, h.data_bytes);
  if (l.channel_bytes != bytes_ || l.slots_offset != h.slots_offset ||
      l.requests_offset != h.requests_offset || l.events_offset != h.events_offset ||
      l.data_offset != h.data_offset) {
    return -EPROTO;
  }
  if (h.doorbell == static_cast<uint32_t>(wire::Doorbell::kEventfd) && !doorbell_fd_) {
    return -EPROTO;
  }
  eventfd_doorbell_ = h.doorbell == static_cast<uint32_t>(wire::Doorbell::kEventfd);
  requests_ = reinterpret_cast<wire::Request *>(base_ + h.requests_offset);
  events_ = reinterpret_cast<wire::Event *>(base_ + h.events_offset);
  request_mask_ = h.request_entries - 1;
  event_mask_ = h.event_entries - 1;
  // Our indices start where the nucleus says the rings are (both 0 at attach).
  request_tail_ = h.requests_tail.load(std::memory_order_relaxed);
  event_head_ = h.events_head.load(std::memory_order_relaxed);

  slot_table_ = reinterpret_cast<const uint64_t *>(base_ + h.slots_offset);
  slots_version_ = ~h.slots_version.load(std::memory_order_relaxed);  // forces the first scan
  rescan_slots();
  spin_ns_ = spin_ns_from_env();
  return 0;
}

void Channel::rescan_slots() {
  // Acquire pairs with nucleusd's release store of slots_version after it
  // wrote the entries.
  uint32_t version = hdr_->slots_version.load(std::memory_order_acquire);
  if (version == slots_version_) return;
  slots_version_ = version;
  uint32_t high = std::min(hdr_->slot_high.load(std::memory_order_acquire), hdr_->slot_count);
  if (slots_.size() < high) slots_.resize(high);
  free_slots_.clear();
  for (uint32_t p = 0; p < high; ++p) {
    uint64_t e = __atomic_load_n(&slot_table_[p], __ATOMIC_ACQUIRE);
    Slot &s = slots_[p];
    if (s.present && (e == 0 || wire::handle_index(e) != wire::handle_index(s.handle))) {
      // Taken away. Only free buffers are; one we had just sent on raced
      // with it, and nucleusd refuses that send (see drain()).
      slot_of_index_.erase(wire::handle_index(s.handle));
      if (s.out) withdrawn_out_.insert(s.handle);
      s = Slot{};
    }
    if (e != 0 && !s.present) {
      s = Slot{e, false, true};
      slot_of_index_[wire::handle_index(e)] = p;
    }
    if (s.present && !s.out) free_slots_.push_back(p);
  }
  std::reverse(free_slots_.begin(), free_slots_.end());
}

int Channel::find_free_slot(uint32_t *slot) {
  rescan_slots();
  if (free_slots_.empty()) {
    auto claim =
        std::count_if(slots_.begin(), slots_.end(), [](const Slot &s) { return s.present; });
    note_cause(-ENOBUFS, wire::kCauseBuffersOut, static_cast<uint64_t>(claim));
    return -ENOBUFS;
  }
  *slot = free_slots_.back();
  return 0;
}

int Channel::closed_error() const {
  auto st = static_cast<wire::ChannelState>(hdr_->state.load(std::memory_order_acquire));
  if (st == wire::ChannelState::kAttached && !lost_) return 0;
  return lost_ ? -ECONNRESET : -ESHUTDOWN;
}

void Channel::ring_doorbell() {
  // Pairs with the fence in nucleusd's arm step: either it sees our new tail
  // when it re-checks, or we see daemon_armed here and wake it.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (hdr_->daemon_armed.load(std::memory_order_relaxed) == 0) return;
  if (eventfd_doorbell_) {
    uint64_t one = 1;
    ssize_t n = ::write(doorbell_fd_.get(), &one, sizeof(one));
    (void)n;  // a full eventfd counter already means "ring"
  } else {
    sys::futex_wake(&hdr_->requests_tail, 1);
  }
}

int Channel::push_request(const wire::Request &r, bool doorbell) {
  uint32_t capacity = request_mask_ + 1;
  for (;;) {
    // Acquire pairs with nucleusd's release store of requests_head after it
    // copied the entries out: the slots before head are free to overwrite.
    uint32_t head = hdr_->requests_head.load(std::memory_order_acquire);
    if (request_tail_ - head < capacity) break;
    ring_doorbell();
    if (int rc = wait_progress(-1, head); rc < 0) return rc;
    drain();
  }
  requests_[request_tail_ & request_mask_] = r;
  ++request_tail_;
  // Release pairs with nucleusd's acquire load of requests_tail: the entry is
  // written before the tail that covers it.
  hdr_->requests_tail.store(request_tail_, std::memory_order_release);
  uint32_t head = hdr_->requests_head.load(std::memory_order_relaxed);
  if (doorbell || request_tail_ - head > capacity / 2) ring_doorbell();
  return 0;
}

void Channel::drain() {
  // Acquire pairs with nucleusd's release store of events_tail after it wrote
  // the entries.
  uint32_t tail = hdr_->events_tail.load(std::memory_order_acquire);
  if (tail == event_head_) return;
  while (event_head_ != tail) {
    wire::Event e = events_[event_head_ & event_mask_];
    ++event_head_;
    switch (static_cast<wire::EventKind>(e.kind)) {
      case wire::EventKind::kMessage: queue_.push_back(to_public(e, NUCLEUS_EVENT_MESSAGE)); break;
      case wire::EventKind::kAnswer: queue_.push_back(to_public(e, NUCLEUS_EVENT_ANSWER)); break;
      case wire::EventKind::kError:
        // A send on a buffer nucleusd had just taken from the claim (a
        // parent modified it while it was stopped): the message never left,
        // and the sender gets a dummy answer for it. Other refusals are of
        // requests libnucleus never sends; nucleusd counts them
        // (nucleus_get_stats) and detaches a process that keeps on.
        rescan_slots();
        if (out_slot(e.handle) != nullptr) {
          nucleus_event_t q{};
          q.kind = NUCLEUS_EVENT_ANSWER;
          q.result = NUCLEUS_RESULT_DUMMY;
          q.buffer = e.handle;
          queue_.push_back(q);
        }
        break;
      case wire::EventKind::kReply: replies_.push_back(e); break;
      case wire::EventKind::kInherit: inherit(e); break;
      case wire::EventKind::kWithdrawn: withdrawn(e.handle); break;
      case wire::EventKind::kHandover:
        handover_bytes_ = std::min<uint64_t>(e.extra, hdr_->data_bytes);
        have_state_ = true;
        break;
      case wire::EventKind::kClosed:
      default: break;
    }
  }
  // Release pairs with nucleusd's acquire load of events_head: we are done
  // reading the entries before it may overwrite them.
  hdr_->events_head.store(event_head_, std::memory_order_release);
  // Pairs with the fence after nucleusd sets backlog: either it sees our new
  // head, or we see backlog and ring.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (hdr_->backlog.load(std::memory_order_relaxed) != 0) ring_doorbell();
}

// Waits until the event ring's tail moves past what we drained, the request
// ring's head moves past `request_head` (when not -1), the channel closes, or
// the deadline passes. Returns 0 when something may have changed.
int Channel::wait_progress(int64_t deadline_ns, int64_t request_head) {
  auto progressed = [&] {
    return hdr_->events_tail.load(std::memory_order_acquire) != event_head_ ||
           (request_head >= 0 && hdr_->requests_head.load(std::memory_order_acquire) !=
                                     static_cast<uint32_t>(request_head)) ||
           hdr_->state.load(std::memory_order_acquire) !=
               static_cast<uint32_t>(wire::ChannelState::kAttached);
  };
  if (progressed()) return 0;
  if (spin_ns_ > 0) {  // a spin of 0 does not spin at all
    int64_t spin_until = sys::monotonic_ns() + spin_ns_;
    if (deadline_ns >= 0) spin_until = std::min(spin_until, deadline_ns);
    for (unsigned i = 1;; ++i) {
      sys::cpu_relax();
      if (progressed()) return 0;
      if ((i & 63) == 0 && sys::monotonic_ns() >= spin_until) break;
    }
  }
  for (int slept = 0;; ++slept) {
    int64_t now = sys::monotonic_ns();
    if (deadline_ns >= 0 && now >= deadline_ns) return -ETIMEDOUT;
    int64_t slice = kSleepSliceNs << std::min(slept, kSleepSliceDoublings);
    slice += slice / 4 * ((static_cast<uint32_t>(getpid()) * 2654435761U) >> 24) / 256;
    if (deadline_ns >= 0) slice = std::min(slice, deadline_ns - now);
    // The descriptor bit stays as it was: nucleusd may write to the
    // descriptor while we sleep here too (arm_descriptor takes it after).
    hdr_->process_waiting.store(
        (request_head >= 0 ? wire::kWaitingForRequestSpace : wire::kWaitingForEvents) |
            descriptor_bits(),
        std::memory_order_relaxed);
    // Pairs with nucleusd's fence between publishing and reading
    // process_waiting: either it sees us waiting and wakes us, or we see the
    // new tail here and do not sleep.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    uint32_t tail = hdr_->events_tail.load(std::memory_order_relaxed);
    int rc = 0;
    if (tail == event_head_ && !progressed()) {
      rc = sys::futex_wait(&hdr_->events_tail, tail, slice);
    }
    hdr_->process_waiting.store(descriptor_bits(), std::memory_order_relaxed);
    if (progressed()) return 0;
    if (rc == -ETIMEDOUT) {
      pollfd p{socket_.get(), POLLRDHUP, 0};
      if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR)) != 0) {
        lost_ = true;
        return -ECONNRESET;
      }
    } else if (rc == 0 || rc == -EAGAIN || rc == -EINTR) {
      // Woken, the word moved, or a signal: let the caller look.
      return 0;
    }
  }
}

int64_t Channel::deadline(int64_t timeout_ns) {
  if (timeout_ns < 0) return -1;
  return sys::monotonic_ns() + timeout_ns;
}

int Channel::send_message(const char *receiver, const nucleus_message_t *message,
                          nucleus_buffer_t *out, const nucleus_lend_t *lend) {
  if (receiver == nullptr || message == nullptr || out == nullptr) return -EINVAL;
  if (int rc = closed_error(); rc < 0) return rc;
  int len = wire::name_length(receiver, std::strlen(receiver) + 1);
  if (len < 0) {
    note_cause(-EINVAL, wire::kCauseBadName);
    return -EINVAL;
  }
  // nucleusd checks the lend again; these checks give the caller its error
  // rather than a dummy answer (a refused send's).
  if (lend != nullptr && lend->bytes != 0) {
    if (lend->rights == 0 || (lend->rights & ~uint32_t{NUCLEUS_LEND_READ | NUCLEUS_LEND_WRITE}) ||
        lend->reserved != 0) {
      return -EINVAL;
    }
    uint64_t area = hdr_->data_bytes;
    if (lend->offset > area || lend->bytes > area - lend->offset) return -EFAULT;
  }
  uint32_t slot = 0;
  if (int rc = find_free_slot(&slot); rc < 0) return rc;
  wire::Request r{};
  r.op = static_cast<uint32_t>(wire::Op::kSendMessage);
  r.handle = wire::next_handle(slots_[slot].handle);
  std::memcpy(r.name, receiver, static_cast<size_t>(len));
  std::memcpy(&r.message, message, sizeof(r.message));
  if (lend != nullptr && lend->bytes != 0) {
    r.arg = lend->rights;
    r.lend_offset = static_cast<uint32_t>(lend->offset);  // < kMaxDataAreaBytes
    r.lend_bytes = static_cast<uint32_t>(lend->bytes);
  }
  if (int rc = push_request(r, true); rc < 0) return rc;
  free_slots_.pop_back();
  slots_[slot].handle = r.handle;
  slots_[slot].out = true;
  *out = r.handle;
  return 0;
}

Channel::Slot *Channel::out_slot(nucleus_buffer_t buffer) {
  if (withdrawn_out_.count(buffer) != 0) {
    withdrawn_slot_ = Slot{buffer, true, false};
    return &withdrawn_slot_;
  }
  auto it = slot_of_index_.find(wire::handle_index(buffer));
  if (it == slot_of_index_.end()) return nullptr;
  Slot &s = slots_[it->second];
  if (!s.out || s.handle != buffer) return nullptr;
  return &s;
}

int Channel::release_slot(nucleus_buffer_t buffer) {
  if (withdrawn_out_.erase(buffer) != 0) return 0;  // no longer ours: nothing to release
  auto it = slot_of_index_.find(wire::handle_index(buffer));
  slots_[it->second].out = false;
  free_slots_.push_back(it->second);
  wire::Request r{};
  r.op = static_cast<uint32_t>(wire::Op::kReleaseAnswer);
  r.handle = buffer;
  return push_request(r, false);
}

// After a swap: a buffer the old program held. Received: we owe its
// answer. Out: a buffer of our claim that is not free (its answer comes, or
// has come, as a kAnswer event).
void Channel::inherit(const wire::Event &e) {
  if (e.result == wire::kInheritReceived) {
    nucleus_event_t q = to_public(e, NUCLEUS_EVENT_MESSAGE);
    q.result = 0;  // e.result says what was inherited
    q.lend.copied = 0;
    received_[e.handle] = q.lend;
    inherited_.push_back(q);
    return;
  }
  if (e.result != wire::kInheritOut) return;
  rescan_slots();
  auto it = slot_of_index_.find(wire::handle_index(e.handle));
  if (it == slot_of_index_.end()) return;
  Slot &s = slots_[it->second];
  s.handle = e.handle;
  if (!s.out) {
    s.out = true;
    std::erase(free_slots_, it->second);
  }
}

int Channel::copy_data(nucleus_buffer_t received, wire::CopyDirection direction,
                       uint64_t lend_offset, uint64_t own_offset, uint64_t bytes) {
  if (int rc = closed_error(); rc < 0) return rc;
  if (received_.count(received) == 0) return -EBADF;
  // In parts of at most kMaxCopyBytes, each checked by nucleusd; the first
  // part goes even when bytes is 0, so that a copy of nothing is checked too.
  uint64_t done = 0;
  do {
    uint64_t part = std::min(bytes - done, wire::kMaxCopyBytes);
    wire::Request r{};
    r.op = static_cast<uint32_t>(wire::Op::kCopyData);
    r.handle = received;
    r.arg = direction;
    // Offsets that overflow when a part is added are refused by nucleusd
    // (-EFAULT / -ERANGE): they cannot lie in any area.
    r.message.word[wire::kCopyLendOffset] =
        lend_offset + done < lend_offset ? UINT64_MAX : lend_offset + done;
    r.message.word[wire::kCopyOwnOffset] =
        own_offset + done < own_offset ? UINT64_MAX : own_offset + done;
    r.message.word[wire::kCopyBytes] = part;
    if (int rc = call(r, nullptr); rc < 0) return rc;
    done += part;
  } while (done < bytes);
  return 0;
}

int Channel::set_receive_window(uint64_t offset, uint64_t bytes) {
  if (int rc = closed_error(); rc < 0) return rc;
  if (bytes > wire::kMaxCopyBytes) return -EMSGSIZE;
  uint64_t area = hdr_->data_bytes;
  if (bytes != 0 && (offset > area || bytes > area - offset)) return -ERANGE;
  wire::Request r{};
  r.op = static_cast<uint32_t>(wire::Op::kReceiveWindow);
  r.lend_offset = bytes == 0 ? 0 : static_cast<uint32_t>(offset);
  r.lend_bytes = static_cast<uint32_t>(bytes);
  return call(r, nullptr);
}

int Channel::regret_message(nucleus_buffer_t sent) {
  if (int rc = closed_error(); rc < 0) return rc;
  Slot *s = out_slot(sent);
  if (s == nullptr) return -EBADF;
  wire::Request r{};
  r.op = static_cast<uint32_t>(wire::Op::kRegretMessage);
  r.handle = sent;
  int rc = call(r, nullptr);
  if (rc != 0) return rc;
  // Withdrawn: the buffer is free in the claim again, with the same handle
  // (its next send moves the generation on).
  if (withdrawn_out_.erase(sent) != 0) return 0;
  auto it = slot_of_index_.find(wire::handle_index(sent));
  if (it != slot_of_index_.end() && slots_[it->second].handle == sent && slots_[it->second].out) {
    slots_[it->second].out = false;
    free_slots_.push_back(it->second);
  }
  return 0;
}

void Channel::withdrawn(uint64_t handle) {
  // Not yet taken here: it was never ours. Taken already (our take was on
  // its way when nucleusd withdrew it): nucleusd voids that take, and the
  // handle is no longer ours to answer or copy with.
  auto it = std::find_if(queue_.begin(), queue_.end(), [&](const nucleus_event_t &e) {
    return e.kind == NUCLEUS_EVENT_MESSAGE && e.buffer == handle;
  });
  if (it != queue_.end()) queue_.erase(it);
  received_.erase(handle);
}

int Channel::take_message(nucleus_buffer_t buffer, const nucleus_lend_t &lend) {
  received_[buffer] = lend;
  wire::Request r{};
  r.op = static_cast<uint32_t>(wire::Op::kGetEvent);
  r.handle = buffer;
  return push_request(r, false);
}

int Channel::wait_message(int64_t timeout_ns, nucleus_sender_t *sender, nucleus_message_t *message,
                          nucleus_buffer_t *out) {
  if (out == nullptr) return -EINVAL;
  return wait_for(timeout_ns, [&]() -> int {
    auto it = std::find_if(queue_.begin(), queue_.end(), [](const nucleus_event_t &e) {
      return e.kind == NUCLEUS_EVENT_MESSAGE;
    });
    if (it == queue_.end()) return 1;
    nucleus_event_t e = *it;
    queue_.erase(it);
    if (sender != nullptr) {
      std::memcpy(sender->name, e.sender, sizeof(sender->name));
      sender->principal = e.principal;
      sender->lend = e.lend;
    }
    if (message != nullptr) *message = e.message;
    *out = e.buffer;
    return take_message(e.buffer, e.lend);
  });
}

int Channel::send_answer(nucleus_buffer_t buffer, int result, const nucleus_message_t *answer,
                         uint64_t own_offset, uint64_t bytes) {
  if (answer == nullptr) return -EINVAL;
  if (int rc = closed_error(); rc < 0) return rc;
  if (result < NUCLEUS_RESULT_NORMAL || result > NUCLEUS_RESULT_MALFUNCTION) return -EINVAL;
  auto held = received_.find(buffer);
  if (held == received_.end()) {
    note_cause(-EBADF, wire::kCauseStaleHandle);
    return -EBADF;
  }
  wire::Request r{};
  if (bytes != 0) {
    // The checks nucleusd makes, made here: the answer is pushed without
    // waiting, so its refusal would come after this call returned. Each
    // errno is nucleus_copy_to's.
    const nucleus_lend_t &lend = held->second;
    if (lend.bytes == 0) return -ENODATA;
    if ((lend.rights & NUCLEUS_LEND_WRITE) == 0) return -EACCES;
    if (bytes > wire::kMaxCopyBytes) return -EMSGSIZE;
    if (bytes > lend.bytes) return -EFAULT;
    uint64_t area = hdr_->data_bytes;
    if (own_offset > area || bytes > area - own_offset) return -ERANGE;
    r.lend_offset = static_cast<uint32_t>(own_offset);  // in the area: < kMaxDataAreaBytes
    r.lend_bytes = static_cast<uint32_t>(bytes);
  }
  r.op = static_cast<uint32_t>(wire::Op::kSendAnswer);
  r.handle = buffer;
  r.arg = result;
  std::memcpy(&r.message, answer, sizeof(r.message));
  if (int rc = push_request(r, true); rc < 0) return rc;
  received_.erase(buffer);
  return 0;
}

int Channel::wait_answer(nucleus_buffer_t buffer, int64_t timeout_ns, int *result,
                         nucleus_message_t *answer, nucleus_sender_t *from) {
  if (out_slot(buffer) == nullptr) {
    note_cause(-EBADF, wire::kCauseStaleHandle);
    return -EBADF;
  }
  return wait_for(timeout_ns, [&]() -> int {
    auto it = std::find_if(queue_.begin(), queue_.end(), [&](const nucleus_event_t &e) {
      return e.kind == NUCLEUS_EVENT_ANSWER && e.buffer == buffer;
    });
    if (it == queue_.end()) return 1;
    if (result != nullptr) *result = it->result;
    if (answer != nullptr) *answer = it->message;
    if (from != nullptr) {
      std::memcpy(from->name, it->sender, sizeof(from->name));
      from->principal = it->principal;
      from->lend = it->lend;  // bytes 0; copied: what the answer copied back
    }
    queue_.erase(it);
    return release_slot(buffer);
  });
}

int Channel::wait_event(nucleus_buffer_t previous, int64_t timeout_ns, nucleus_event_t *out) {
  if (out == nullptr) return -EINVAL;
  return wait_for(timeout_ns, [&]() -> int {
    auto it = queue_.begin();
    if (previous != 0) {
      it = std::find_if(queue_.begin(), queue_.end(),
                        [&](const nucleus_event_t &e) { return e.buffer == previous; });
      if (it == queue_.end()) {
        note_cause(-ENOENT, wire::kCauseNoEvent);
        return -ENOENT;
      }
      ++it;
    }
    if (it == queue_.end()) return 1;
    *out = *it;
    return 0;
  });
}

int Channel::get_event(nucleus_buffer_t buffer) {
  if (int rc = closed_error(); rc < 0) return rc;
  drain();
  auto it = std::find_if(queue_.begin(), queue_.end(),
                         [&](const nucleus_event_t &e) { return e.buffer == buffer; });
  if (it == queue_.end()) {
    note_cause(-ENOENT, wire::kCauseNoEvent);
    return -ENOENT;
  }
  int kind = it->kind;
  nucleus_lend_t lend = it->lend;
  queue_.erase(it);
  int rc = kind == NUCLEUS_EVENT_MESSAGE ? take_message(buffer, lend) : release_slot(buffer);
  if (poll_fd_) arm_descriptor();
  return rc;
}

// ---- the descriptor to poll ---------------------------------------------------
//
// What the user sees: after any call that takes or waits for events
// (wait_message, wait_answer, wait_event, get_event and the calls that wait
// for a reply), the descriptor is readable if and only if an event (a
// message or an answer) waits in this handle's queue, the library's or the
// ring; an event that arrives later makes it readable when nucleusd
// publishes it.
//
// How: nucleusd writes a byte to the pipe when it publishes events while
// process_waiting has kWaitingOnDescriptor (armed); only we read the pipe.
// We empty it only when no event waits, and then arm and look at the ring
// once more after a full fence (Dekker with nucleusd's fence between
// publishing and reading process_waiting): an event we do not see there
// finds the bit set and gets its byte. An event we do see may have had its
// byte read by us already: then we ask nucleusd for one (kPollRing), since
// its write end is nobody else's. While events wait the pipe holds a byte
// (or one is owed) and we are not armed, so nucleusd writes nothing.
//
// It can be readable with nothing waiting only when a byte comes late: the
// process took an event without waiting on the descriptor just as nucleusd,
// having seen the bit, was writing that event's byte, or took the events a
// kPollRing was for before nucleusd served it. The next call that finds
// nothing (a wait with timeout 0 returns -ETIMEDOUT) empties it again.

int Channel::poll_descriptor() {
  if (poll_fd_) return poll_fd_.get();
  if (int rc = closed_error(); rc < 0) return rc;
  wire::Request r{};
  r.op = static_cast<uint32_t>(wire::Op::kPollDescriptor);
  r.arg = wire::kPollOpen;
  if (int rc = call(r, nullptr); rc < 0) return rc;
  // nucleusd sent it on our socket before it queued the reply.
  wire::PollDescriptorRecord record{};
  sys::UniqueFd fd;
  ssize_t n = sys::receive_record(socket_.get(), &record, sizeof(record), &fd, 1, MSG_DONTWAIT);
  if (n < 0) return static_cast<int>(n);
  if (n != static_cast<ssize_t>(sizeof(record)) || record.magic != wire::kMagic ||
      record.op != static_cast<uint32_t>(wire::Op::kPollDescriptor) || !fd) {
    return -EPROTO;
  }
  poll_fd_ = std::move(fd);
  poll_armed_ = false;
  poll_signalled_ = false;
  arm_descriptor();  // events may wait already
  return poll_fd_.get();
}

void Channel::arm_descriptor() {
  drain();
  if (!queue_.empty()) {
    // An event waits: a byte is in the pipe or owed (armed when it was
    // published), else we ask for one. nucleusd need not write any more.
    if (poll_armed_) {
      poll_armed_ = false;
      poll_signalled_ = true;
      hdr_->process_waiting.store(wire::kNotWaiting, std::memory_order_relaxed);
    }
    if (!poll_signalled_) ring_descriptor();
    return;
  }
  // Nothing waits: empty the pipe, then arm.
  if (poll_armed_ || poll_signalled_) {
    poll_signalled_ = false;
    // End of file: nucleusd closed its end without closing the channel
    // (it died); a channel it closed says so itself.
    if (!empty_descriptor() && closed_error() == 0) lost_ = true;
  }
  if (!poll_armed_) {
    poll_armed_ = true;
    hdr_->process_waiting.store(wire::kWaitingOnDescriptor, std::memory_order_relaxed);
  }
  // Pairs with nucleusd's fence between publishing events_tail and reading
  // process_waiting (Channel::process_waiting in daemon/channel.cc): either
  // it sees the bit and writes a byte, or we see its tail here.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (hdr_->events_tail.load(std::memory_order_acquire) == event_head_) return;
  drain();
  if (queue_.empty()) return;  // replies only: still nothing waits
  // Published after we emptied the pipe, or before with its byte read by
  // us: ask for one.
  poll_armed_ = false;
  hdr_->process_waiting.store(wire::kNotWaiting, std::memory_order_relaxed);
  ring_descriptor();
}

void Channel::ring_descriptor() {
  wire::Request r{};
  r.op = static_cast<uint32_t>(wire::Op::kPollDescriptor);
  r.arg = wire::kPollRing;
  if (push_request(r, true) == 0) poll_signalled_ = true;
}

bool Channel::empty_descriptor() {
  char bytes[64];
  for (;;) {
    iovec iov{bytes, sizeof(bytes)};
    // RWF_NOWAIT: never blocks, whatever the user made of O_NONBLOCK (the
    // read end's file description is shared with whoever polls it).
    ssize_t n = ::preadv2(poll_fd_.get(), &iov, 1, -1, RWF_NOWAIT);
    if (n > 0) continue;
    if (n == 0) return false;
    if (errno == EINTR) continue;
    if (errno != EOPNOTSUPP) return true;  // EAGAIN: empty
    // A kernel without RWF_NOWAIT on pipes: read what is there.
    int queued = 0;
    if (::ioctl(poll_fd_.get(), FIONREAD, &queued) < 0 || queued <= 0) {
      pollfd p{poll_fd_.get(), POLLIN, 0};
      return !(::poll(&p, 1, 0) > 0 && (p.revents & POLLHUP) != 0);
    }
    while (queued > 0) {
      n = ::read(poll_fd_.get(), bytes, std::min<size_t>(sizeof(bytes), queued));
      if (n <= 0) break;
      queued -= static_cast<int>(n);
    }
    return true;
  }
}

int Channel::get_stats(nucleus_stats_t *out) {
  if (out == nullptr) return -EINVAL;
  if (int rc = closed_error(); rc < 0) return rc;
  wire::Request r{};
  r.op = static_cast<uint32_t>(wire::Op::kGetStats);
  wire::Event reply{};
  if (int rc = call(r, &reply); rc < 0) return rc;
  const uint64_t *w = reply.message.word;
  out->pool_buffers = w[wire::kStatsPoolBuffers];
  out->pool_free = w[wire::kStatsPoolFree];
  out->processes = w[wire::kStatsProcesses];
  out->claim_buffers = w[wire::kStatsClaimBuffers];
  out->claim_used = w[wire::kStatsClaimUsed];
  out->protocol_errors = w[wire::kStatsProtocolErrors];
  out->queue_length = w[wire::kStatsQueueLength];
  out->devices = w[wire::kStatsDevices];
  return 0;
}

int Channel::call(wire::Request r, wire::Event *reply) {
  wire::Event got{};
  bool seen = false;
  int rc = call_each(
      r,
      [&](const wire::Event &e) {
        got = e;
        seen = true;
      },
      [&] { return seen; });
  if (rc < 0) return rc;
  if (reply != nullptr) *reply = got;
  if (got.result < 0) note_reply_cause(got);
  return got.result;
}

int Channel::call_on_slot(wire::Request r, uint32_t slot, nucleus_buffer_t *out) {
  r.handle = wire::next_handle(slots_[slot].handle);
  if (int rc = call(r, nullptr); rc < 0) return rc;
  // The answer comes on this buffer like any answer.
  std::erase(free_slots_, slot);
  slots_[slot].handle = r.handle;
  slots_[slot].out = true;
  *out = r.handle;
  return 0;
}

int Channel::hand_over(nucleus_buffer_t handover, const void *state, size_t size) {
  if (state == nullptr && size != 0) return -EINVAL;
  if (received_.count(handover) == 0) return -EBADF;
  if (size > hdr_->data_bytes) return -ENOSPC;
  if (size != 0) std::memmove(base_ + hdr_->data_offset, state, size);
  nucleus_message_t answer{};
  answer.word[wire::kHandoverOffset] = 0;
  answer.word[wire::kHandoverLength] = size;
  return send_answer(handover, NUCLEUS_RESULT_NORMAL, &answer);
}

const void *Channel::handover_state(size_t *size) {
  if (!successor_) return nullptr;
  // The old OS hands over while we wait (or the swap fails and we are ended).
  if (wait_for(-1, [&]() { return have_state_ ? 0 : 1; }) < 0) return nullptr;
  if (size != nullptr) *size = handover_bytes_;
  return base_ + hdr_->data_offset;
}

int Channel::swap_ready() {
  if (!successor_) return -EINVAL;
  if (handover_state(nullptr) == nullptr) return closed_error() < 0 ? closed_error() : -EPROTO;
  wire::Request r{};
  r.op = static_cast<uint32_t>(wire::Op::kSwapReady);
  if (int rc = call(r, nullptr); rc < 0) return rc;
  successor_ = false;  // it bears the name now; the kInherit events came first
  return 0;
}

void *Channel::data_area(size_t *size) {
  if (size != nullptr) *size = hdr_->data_bytes;
  return base_ + hdr_->data_offset;
}

}  // namespace nucleus::client
