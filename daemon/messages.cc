#include "messages.h"

#include <cassert>
#include <cstring>
#include <utility>

namespace nucleus::daemon {

Error Messages::send_message(uint32_t id, uint64_t handle, std::string_view receiver,
                             const wire::Message &message, const Lend &lend) {
  auto index = pool_.resolve_next(handle);
  if (!index) return Error::kBadHandle;
  Buffer &b = pool_.at(*index);
  if (b.owner != id || b.state != BufferState::kFree) return Error::kBadHandle;
  uint32_t to = processes_.find(receiver);
  Process &sender = processes_.at(id);
  b.generation = wire::handle_generation(handle);
  b.words = message;
  stamp(b, id);
  b.published = false;
  b.sender_gone = false;
  b.lend_offset = lend.offset;
  b.lend_bytes = lend.bytes;
  b.lend_rights = lend.rights;
  b.copied = 0;
  if (to == kNone) {
    // Traced with its words, before the dummy answer's replace them.
    if (trace_.on()) trace_.record(TraceKind::kMessage, *index, sender.name, receiver);
    pool_.apply(*index, BufferEvent::kSendUndeliverable);
    b.lend_bytes = 0;
    b.lend_rights = 0;
    b.receiver = kNone;
    b.result = wire::kResultDummy;
    b.words = wire::Message{};
    stamp(b, kNone);
    fifo_push(id, *index);
    if (trace_.on()) trace_.record(TraceKind::kAnswer, *index, wire::kNucleusName, sender.name);
    return Error::kNone;
  }
  pool_.apply(*index, BufferEvent::kSend);
  b.receiver = to;
  inbox_append(processes_.at(to), *index);
  fifo_push(to, *index);
  if (trace_.on()) {
    trace_.record(TraceKind::kMessage, *index, sender.name, processes_.at(to).name);
  }
  return Error::kNone;
}

bool Messages::withdrawn_use(uint32_t id, uint64_t handle) const {
  uint32_t i = wire::handle_index(handle);
  if (handle == 0 || i >= pool_.size()) return false;
  const Buffer &b = pool_.at(i);
  // Only the receiver a message on this buffer was last withdrawn from
  // after it was published to it: its take or answer of that use (or, as it
  // may come after the sender sent on the buffer again, of a use that has
  // passed) is void. Anyone else's stale, forged or foreign handle is
  // refused, as DESIGN says.
  if (b.withdrawn_from != id) return false;
  // Free at that use: withdrawn. A use that has passed (generations only
  // grow; a wrapped one is 2^40 sends away): withdrawn and sent again since.
  uint64_t generation = wire::handle_generation(handle);
  return generation < b.generation || (generation == b.generation && b.state == BufferState::kFree);
}

Error Messages::get_event(uint32_t id, uint64_t handle) {
  // Withdrawn before this take came: the receiver's library drops it on
  // kWithdrawn. Void.
  if (withdrawn_use(id, handle)) return Error::kNone;
  auto index = pool_.resolve(handle);
  if (!index) return Error::kBadHandle;
  Buffer &b = pool_.at(*index);
  if (b.receiver != id || b.state != BufferState::kQueued || !b.published) {
    return Error::kBadHandle;
  }
  pool_.apply(*index, BufferEvent::kTake);
  return Error::kNone;
}

Result<uint32_t> Messages::regret_message(uint32_t id, uint64_t handle) {
  auto index = pool_.resolve(handle);
  if (!index) return Error::kBadHandle;
  Buffer &b = pool_.at(*index);
  if (b.owner != id) return Error::kBadHandle;
  switch (b.state) {
    case BufferState::kFree: return Error::kBadHandle;  // never sent, or regretted already
    case BufferState::kReceived: return Error::kBusy;   // taken: its answer comes
    case BufferState::kAnswered: return Error::kAlready;
    case BufferState::kQueued: break;
  }
  uint32_t to = b.receiver;
  Process &r = processes_.at(to);
  inbox_remove(r, *index);
  // Not yet in its event ring: gone from its fifo, nobody need know. In its
  // ring (or read from it): its library must drop it.
  uint32_t tell = kNone;
  if (b.in_fifo) {
    fifo_remove(r, *index);
  } else if (b.published && r.attached && !r.is_device()) {
    tell = to;
    // Its kWithdrawn goes with this turn's events: the receiver may be
    // asleep with the message in its library's queue.
    if (!r.dirty) {
      r.dirty = true;
      dirty_.push_back(to);
    }
  }
  bool ok = pool_.apply(*index, BufferEvent::kRegret);
  assert(ok);
  (void)ok;
  if (trace_.on()) {
    trace_.record(TraceKind::kRegret, *index, processes_.at(id).name, r.name);
  }
  b.receiver = kNone;
  if (tell != kNone) b.withdrawn_from = tell;
  b.published = false;
  b.lend_bytes = 0;
  b.lend_rights = 0;
  if (b.sender_gone) {
    // A buffer of an earlier run of `id` (its handle guessed): back in the
    // claim, which this run's slot table must now show.
    b.sender_gone = false;
    mark_slots(id);
  }
  return tell;
}

Result<LentRange> Messages::lent_range(uint32_t id, uint64_t handle,
                                       wire::CopyDirection direction) const {
  auto index = pool_.resolve(handle);
  if (!index) return Error::kBadHandle;
  const Buffer &b = pool_.at(*index);
  if (b.receiver != id || b.state != BufferState::kReceived) return Error::kBadHandle;
  if (b.lend_bytes == 0) return Error::kNoLend;
  if (!lend_lasts(b)) return Error::kLendEnded;
  auto need =
      static_cast<uint8_t>(direction == wire::kCopyFrom ? wire::kLendRead : wire::kLendWrite);
  if ((b.lend_rights & need) == 0) return Error::kDenied;
  return LentRange{b.owner, b.lend_offset, b.lend_bytes};
}

bool Messages::lend_lasts(const Buffer &b) const {
  return !b.sender_gone && b.lend_rights != 0 && b.owner != kNoticeOwner && b.owner != kNone &&
         processes_.live(b.owner) && processes_.at(b.owner).attached;
}

std::optional<LentRange> Messages::head_read_lend(uint32_t id, uint64_t *handle) const {
  uint32_t index = processes_.at(id).fifo_head;
  if (index == kNone) return std::nullopt;
  const Buffer &b = pool_.at(index);
  if (b.state != BufferState::kQueued || b.receiver != id || b.lend_bytes == 0 ||
      (b.lend_rights & wire::kLendRead) == 0 || !lend_lasts(b)) {
    return std::nullopt;
  }
  *handle = pool_.handle(index);
  return LentRange{b.owner, b.lend_offset, b.lend_bytes};
}

bool Messages::holds(uint32_t id, uint64_t handle) const {
  auto index = pool_.resolve(handle);
  if (!index) return false;
  const Buffer &b = pool_.at(*index);
  return b.receiver == id && (b.state == BufferState::kQueued || b.state == BufferState::kReceived);
}

void Messages::end_lends(uint32_t id) {
  for (uint32_t index : processes_.at(id).slots) {
    Buffer &b = pool_.at(index);
    if (b.state == BufferState::kQueued || b.state == BufferState::kReceived) b.lend_rights = 0;
  }
}

Error Messages::send_answer(uint32_t id, uint64_t handle, int32_t result,
                            const wire::Message &words, uint32_t copied) {
  if (result < wire::kResultNormal || result > wire::kResultMalfunction) return Error::kInvalid;
  // An answer to a message withdrawn as its library took it (the receiver
  // answered before it read kWithdrawn): void, nobody waits for it.
  if (withdrawn_use(id, handle)) return Error::kNone;
  auto index = pool_.resolve(handle);
  if (!index) return Error::kBadHandle;
  Buffer &b = pool_.at(*index);
  if (b.receiver != id || b.state != BufferState::kReceived) return Error::kBadHandle;
  inbox_remove(processes_.at(id), *index);
  answer(*index, result, words, id, copied);
  return Error::kNone;
}

Error Messages::release_answer(uint32_t id, uint64_t handle) {
  auto index = pool_.resolve(handle);
  if (!index) return Error::kBadHandle;
  Buffer &b = pool_.at(*index);
  if (b.owner != id || b.state != BufferState::kAnswered || !b.published) {
    return Error::kBadHandle;
  }
  pool_.apply(*index, BufferEvent::kRelease);
  b.receiver = kNone;
  return Error::kNone;
}

Result<uint32_t> Messages::request_buffer(uint32_t caller, uint64_t handle) const {
  auto index = pool_.resolve_next(handle);
  if (!index) return Error::kBadHandle;
  const Buffer &b = pool_.at(*index);
  if (b.owner != caller || b.state != BufferState::kFree) return Error::kBadHandle;
  return *index;
}

void Messages::send_to_nucleus(uint32_t caller, uint32_t index, uint64_t handle) {
  Buffer &b = pool_.at(index);
  b.generation = wire::handle_generation(handle);
  b.words = wire::Message{};
  stamp(b, caller);
  b.published = false;
  b.sender_gone = false;
  b.lend_bytes = 0;
  b.lend_rights = 0;
  b.copied = 0;
  b.receiver = kNone;  // the nucleus
  pool_.apply(index, BufferEvent::kSend);
  pool_.apply(index, BufferEvent::kTake);
  if (trace_.on()) trace_.record(TraceKind::kMessage, index, b.from_name, wire::kNucleusName);
}

void Messages::answer(uint32_t index, int32_t result, const wire::Message &words, uint32_t by,
                      uint32_t copied) {
  Buffer &b = pool_.at(index);
  pool_.apply(index, BufferEvent::kAnswer);
  b.result = result;
  b.words = words;
  b.copied = copied;
  // Traced while the buffer still names the message's sender.
  if (trace_.on()) {
    trace_.record(TraceKind::kAnswer, index,
                  by == kNone ? std::string_view(wire::kNucleusName) : processes_.at(by).name,
                  b.from_name);
  }
  stamp(b, by);
  deliver_answer(index);
}

void Messages::dummy_answer(uint32_t index) {
  Buffer &b = pool_.at(index);
  bool ok = pool_.apply(index, BufferEvent::kReceiverGone);
  assert(ok);
  (void)ok;
  b.result = wire::kResultDummy;
  b.words = wire::Message{};
  b.copied = 0;
  if (trace_.on()) trace_.record(TraceKind::kAnswer, index, wire::kNucleusName, b.from_name);
  stamp(b, kNone);
  deliver_answer(index);
}

wire::Principal Messages::principal_of(uint32_t id) const {
  if (id == kNone) return nucleus_;
  const Process &p = processes_.at(id);
  if (p.is_device()) {
    // The configuration's devices are nucleusd's own.
    bool root_own = p.parent == kNone;
    return wire::Principal{root_own ? nucleus_.uid : p.uid, root_own ? nucleus_.gid : p.gid,
                           nucleus_.pid, static_cast<uint32_t>(wire::PrincipalKind::kDevice)};
  }
  return wire::Principal{p.uid, p.gid, p.pid, static_cast<uint32_t>(wire::PrincipalKind::kProcess)};
}

void Messages::stamp(Buffer &b, uint32_t id) const {
  b.from = principal_of(id);
  if (id == kNone) {
    static constexpr char kName[wire::kNameBytes] = "nucleus";
    static_assert(sizeof(wire::kNucleusName) <= sizeof(kName));
    std::memcpy(b.from_name, kName, sizeof(b.from_name));
  } else {
    // A fixed-size copy: on every send and answer.
    std::memcpy(b.from_name, processes_.at(id).wire_name, sizeof(b.from_name));
  }
}

void Messages::disown(uint32_t index) {
  Buffer &b = pool_.at(index);
  if (b.state == BufferState::kAnswered) {
    pool_.apply(index, BufferEvent::kSenderGone);
    b.receiver = kNone;
  } else if (b.state != BufferState::kFree) {
    b.sender_gone = true;
  }
}

void Messages::deliver_answer(uint32_t index) {
  Buffer &b = pool_.at(index);
  b.published = false;
  if (b.owner == kNoticeOwner) {
    reactions_.nucleus_buffer_answered(index);
    return;
  }
  if (b.sender_gone) {
    pool_.apply(index, BufferEvent::kSenderGone);
    b.receiver = kNone;
    b.sender_gone = false;
    if (b.owner == kNone) {
      pool_.give_back(index);
    } else {
      mark_slots(b.owner);  // back in its owner's claim
    }
    return;
  }
  fifo_push(b.owner, index);
}

void Messages::inbox_append(Process &p, uint32_t index) {
  Buffer &b = pool_.at(index);
  b.inbox_prev = p.inbox_tail;
  b.inbox_next = kNone;
  if (p.inbox_tail != kNone) {
    pool_.at(p.inbox_tail).inbox_next = index;
  } else {
    p.inbox_head = index;
  }
  p.inbox_tail = index;
  ++p.inbox_count;
}

void Messages::inbox_prepend(Process &p, uint32_t index) {
  Buffer &b = pool_.at(index);
  b.inbox_prev = kNone;
  b.inbox_next = p.inbox_head;
  if (p.inbox_head != kNone) {
    pool_.at(p.inbox_head).inbox_prev = index;
  } else {
    p.inbox_tail = index;
  }
  p.inbox_head = index;
  ++p.inbox_count;
}

void Messages::inbox_remove(Process &p, uint32_t index) {
  Buffer &b = pool_.at(index);
  if (b.inbox_prev != kNone) {
    pool_.at(b.inbox_prev).inbox_next = b.inbox_next;
  } else {
    p.inbox_head = b.inbox_next;
  }
  if (b.inbox_next != kNone) {
    pool_.at(b.inbox_next).inbox_prev = b.inbox_prev;
  } else {
    p.inbox_tail = b.inbox_prev;
  }
  b.inbox_prev = b.inbox_next = kNone;
  --p.inbox_count;
}

void Messages::fifo_push(uint32_t id, uint32_t index) {
  Process &p = processes_.at(id);
  if (!p.attached) return;  // published when a run of it attaches
  Buffer &b = pool_.at(index);
  assert(!b.in_fifo);
  b.in_fifo = true;
  b.fifo_next = kNone;
  if (p.fifo_tail != kNone) {
    pool_.at(p.fifo_tail).fifo_next = index;
  } else {
    p.fifo_head = index;
  }
  p.fifo_tail = index;
  if (!p.dirty) {
    p.dirty = true;
    dirty_.push_back(id);
  }
}

void Messages::fifo_remove(Process &p, uint32_t index) {
  uint32_t prev = kNone;
  for (uint32_t i = p.fifo_head; i != kNone; prev = i, i = pool_.at(i).fifo_next) {
    if (i != index) continue;
    Buffer &b = pool_.at(i);
    if (prev == kNone) {
      p.fifo_head = b.fifo_next;
    } else {
      pool_.at(prev).fifo_next = b.fifo_next;
    }
    if (p.fifo_tail == index) p.fifo_tail = prev;
    b.fifo_next = kNone;
    b.in_fifo = false;
    return;
  }
}

void Messages::fifo_clear(Process &p) {
  for (uint32_t i = p.fifo_head; i != kNone;) {
    Buffer &b = pool_.at(i);
    i = b.fifo_next;
    b.fifo_next = kNone;
    b.in_fifo = false;
  }
  p.fifo_head = p.fifo_tail = kNone;
}

void Messages::publish_inbox(uint32_t id) {
  for (uint32_t i = processes_.at(id).inbox_head; i != kNone; i = pool_.at(i).inbox_next) {
    pool_.at(i).published = false;
    fifo_push(id, i);
  }
}

void Messages::dummy_answer_received(uint32_t id) {
  Process &p = processes_.at(id);
  for (uint32_t i = p.inbox_head; i != kNone;) {
    uint32_t index = i;
    i = pool_.at(i).inbox_next;
    if (pool_.at(index).state == BufferState::kReceived) {
      inbox_remove(p, index);
      dummy_answer(index);
    } else {
      pool_.at(index).published = false;
    }
  }
}

void Messages::dummy_answer_inbox(uint32_t id) {
  Process &p = processes_.at(id);
  while (p.inbox_head != kNone) {
    uint32_t index = p.inbox_head;
    inbox_remove(p, index);
    dummy_answer(index);
  }
}

bool Messages::next_event(uint32_t id, wire::Event *out) const {
  const Process &p = processes_.at(id);
  if (p.fifo_head == kNone) return false;
  const Buffer &b = pool_.at(p.fifo_head);
  // Every field written once (`out` may be an entry of the event ring,
  // holding an old event): no zeroing first, on the message path.
  bool answer = b.state == BufferState::kAnswered;
  out->kind = static_cast<uint32_t>(answer ? wire::EventKind::kAnswer : wire::EventKind::kMessage);
  out->seq = 0;
  out->handle = pool_.handle(p.fifo_head);
  out->result = answer ? b.result : 0;
  out->copied = answer ? b.copied : 0;  // a message's: Connections::flush
  std::memcpy(out->sender, b.from_name, sizeof(out->sender));
  out->message = b.words;
  out->extra = answer ? 0 : wire::lend_extra(b.lend_bytes, b.lend_rights);
  out->principal = b.from;
  out->cause = 0;
  out->cause_errno = 0;
  out->cause_value = 0;
  std::memset(out->reserved1, 0, sizeof(out->reserved1));
  return true;
}

void Messages::pop_event(uint32_t id) {
  Process &p = processes_.at(id);
  uint32_t index = p.fifo_head;
  if (index == kNone) return;
  Buffer &b = pool_.at(index);
  p.fifo_head = b.fifo_next;
  if (p.fifo_head == kNone) p.fifo_tail = kNone;
  b.fifo_next = kNone;
  b.in_fifo = false;
  b.published = true;
}

std::vector<uint32_t> Messages::take_dirty() {
  for (uint32_t id : dirty_) {
    if (processes_.live(id)) processes_.at(id).dirty = false;
  }
  return std::exchange(dirty_, {});
}

void Messages::mark_slots(uint32_t id) {
  Process &p = processes_.at(id);
  if (!p.attached || p.slots_changed) return;
  p.slots_changed = true;
  slot_changes_.push_back(id);
}

std::vector<uint32_t> Messages::take_slot_changes() {
  for (uint32_t id : slot_changes_) {
    if (processes_.live(id)) processes_.at(id).slots_changed = false;
  }
  return std::exchange(slot_changes_, {});
}

ProcessStats Messages::stats(uint32_t id) const {
  ProcessStats s;
  const Process &p = processes_.at(id);
  s.claim_buffers = static_cast<uint32_t>(p.slots.size());
  for (uint32_t index : p.slots) {
    if (pool_.at(index).state != BufferState::kFree) ++s.claim_used;
  }
  s.queue_length = p.inbox_count;
  return s;
}

}  // namespace nucleus::daemon
