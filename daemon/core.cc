#include "core.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <string>

namespace nucleus::daemon {

Core::Core(uint32_t pool_buffers, uint32_t notice_buffers, uint64_t root_processes)
    : pool_(pool_buffers) {
  notice_buffers = std::min(notice_buffers, pool_buffers);
  bool taken = pool_.take(notice_buffers, kNoticeOwner, &notice_free_);
  assert(taken);
  (void)taken;
  root_ = ClaimsAccount(Claims{pool_.free_count(), root_processes, 0, UINT64_MAX, 0});
  // A sixteenth of the reserve is for swaps' handovers only: parents that
  // never answer their notices cannot make every swap fail.
  handover_reserve_ = notice_buffers / 16;
}

Error Core::check_claims(const Claims &claims) {
  if (claims.buffers > wire::kMaxBufferClaim || claims.processes > wire::kMaxProcessClaim ||
      claims.devices > wire::kMaxDeviceClaim || claims.data_bytes > wire::kMaxDataAreaBytes) {
    return Error::kInvalid;
  }
  return Error::kNone;
}

Error Core::may_take_name(std::string_view name, int32_t peer_pid) {
  // nucleusctl attaches as nucleusctl-<its pid>: a name anyone could take
  // first would lock it out (or let a squatter receive what is sent to it).
  constexpr std::string_view kCtl = "nucleusctl-";
  if (!name.starts_with(kCtl)) return Error::kNone;
  if (peer_pid > 0 && name.substr(kCtl.size()) == std::to_string(peer_pid)) return Error::kNone;
  return Error::kNotPermitted;
}

void Core::set_notice_limit(uint32_t per_parent) {
  bool raised = per_parent > notice_limit_;
  notice_limit_ = per_parent;
  if (!raised) return;  // a lower limit holds back later notices only
  for (uint32_t id = 0; id < processes_.capacity(); ++id) {
    if (processes_.live(id) && !processes_.at(id).notices_waiting.empty()) pump_notices(id);
  }
}

Result<uint32_t> Core::attach(std::string_view name, const Claims &claims, uint32_t uid,
                              uint32_t gid, int32_t pid, const UidBudget &budget) {
  if (Error e = check_claims(claims); e != Error::kNone) return e;
  if (Error e = may_take_name(name, pid); e != Error::kNone) return e;
  uint32_t existing = processes_.find(name);
  if (existing != kNone) {
    // A socket-born entry that died with children: its new run.
    Process &p = processes_.at(existing);
    if (p.origin != Origin::kSocket || p.attached || p.run != RunState::kExited || p.uid != uid) {
      return Error::kNameTaken;
    }
    attach_run(existing);
    return existing;
  }
  if (Error e = uid_accounts_.fits(uid, UidUsage{1, 1, claims.buffers}, budget);
      e != Error::kNone) {
    return e;
  }
  // The root lends it its claims; undone unless the entry is made.
  ClaimsAccount::Loan loan = root_.try_lend(child_cost(claims), free_held(kNone));
  if (!loan) return Error::kNoBuffers;
  Result<uint32_t> id = processes_.add(name);
  if (!id.ok()) return id;
  uid_accounts_.add_entry(uid, true);
  uid_accounts_.move_buffers(uid, static_cast<int64_t>(claims.buffers));
  Process &p = processes_.at(id.value());
  p.slots.reserve(claims.buffers);
  bool taken = pool_.take(static_cast<uint32_t>(claims.buffers), id.value(), &p.slots);
  assert(taken);
  (void)taken;
  p.account = ClaimsAccount(claims);
  p.uid = uid;
  p.gid = gid;
  p.origin = Origin::kSocket;
  p.run = RunState::kRunning;
  p.attached = true;
  root_children_.push_back(id.value());
  loan.commit();
  return id;
}

void Core::attach_run(uint32_t id) {
  Process &p = processes_.at(id);
  p.attached = true;
  p.run = RunState::kRunning;
  // Messages that waited for this run are published to it in queue order.
  for (uint32_t i = p.inbox_head; i != kNone; i = pool_.at(i).inbox_next) {
    pool_.at(i).published = false;
    fifo_push(id, i);
  }
  // Its children's exits that waited for a run of it.
  pump_notices(id);
}

void Core::fifo_clear(Process &p) {
  for (uint32_t i = p.fifo_head; i != kNone;) {
    Buffer &b = pool_.at(i);
    i = b.fifo_next;
    b.fifo_next = kNone;
    b.in_fifo = false;
  }
  p.fifo_head = p.fifo_tail = kNone;
}

void Core::end_attachment(uint32_t id) {
  Process &p = processes_.at(id);
  if (!p.attached) return;
  p.attached = false;
  fifo_clear(p);
  release_all(id);  // a device it reserved is free again
  // Its own buffers: answers it did not take are dropped; ones out at a
  // receiver (or at the nucleus, a stop) come back when answered.
  for (uint32_t index : p.slots) {
    Buffer &b = pool_.at(index);
    if (b.state == BufferState::kAnswered) {
      pool_.apply(index, BufferEvent::kSenderGone);
      b.receiver = kNone;
    } else if (b.state != BufferState::kFree) {
      b.sender_gone = true;
    }
  }
  // Exit notices it has not received go back to the reserve (a parent that
  // is not running holds none) and wait for its next run.
  withdraw_notices(id);
  // Messages it received and did not answer: nobody will. Messages still
  // queued wait for the next run.
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

void Core::detach(uint32_t id) {
  if (!processes_.live(id)) return;
  end_attachment(id);
  Process &p = processes_.at(id);
  if (p.origin != Origin::kSocket) return;  // its program's exit is reported on its own
  if (!p.children.empty() || !p.devices.empty()) {
    p.run = RunState::kExited;  // its children and devices stay; a new run owns them
    return;
  }
  root_.repay(child_cost(p.account.given()));
  std::erase(root_children_, id);
  drop_entry(id, kNone);
}

void Core::dummy_answer(uint32_t index) {
  Buffer &b = pool_.at(index);
  bool ok = pool_.apply(index, BufferEvent::kReceiverGone);
  assert(ok);
  (void)ok;
  b.result = wire::kResultDummy;
  b.words = wire::Message{};
  deliver_answer(index);
}

void Core::adopt_buffer(uint32_t heir, uint32_t index) {
  Buffer &b = pool_.at(index);
  b.owner = heir;
  if (b.state == BufferState::kAnswered) {
    pool_.apply(index, BufferEvent::kSenderGone);
    b.receiver = kNone;
  } else if (b.state != BufferState::kFree) {
    b.sender_gone = true;
  }
  if (heir == kNone) {
    if (b.state == BufferState::kFree) pool_.give_back(index);
    return;
  }
  uid_accounts_.move_buffers(processes_.at(heir).uid, 1);
  processes_.at(heir).slots.push_back(index);
  if (b.state == BufferState::kFree) mark_slots(heir);
}

void Core::drop_entry(uint32_t id, uint32_t heir) {
  if (processes_.at(id).swap_candidate != kNone) {
    // Removed during a swap (the server ends the swap first; this keeps the
    // core whole on its own): the request is answered, the new one dropped.
    wire::Message why{};
    why.word[wire::kSwapOutcome] = wire::kSwapCancelled;
    end_swap(id, wire::kResultRejected, why);
  }
  std::vector<uint32_t> devices;
  devices.swap(processes_.at(id).devices);
  for (uint32_t d : devices) drop_device(d);
  if (!processes_.at(id).is_device()) release_all(id);
  Process &p = processes_.at(id);
  fifo_clear(p);
  p.attached = false;
  enter(id, cell_of(id, ProcessEvent::kRemove));  // a stop in progress: a dummy answer
  // Messages queued to it or received by it: dummy answers to their senders
  // (orphans among them are simply freed).
  while (p.inbox_head != kNone) {
    uint32_t index = p.inbox_head;
    inbox_remove(p, index);
    dummy_answer(index);
  }
  std::vector<uint32_t> slots;
  slots.swap(p.slots);
  if (charged(p)) {
    uid_accounts_.move_buffers(p.uid, -static_cast<int64_t>(slots.size()));
    uid_accounts_.remove_entry(p.uid, !p.is_device());
  }
  for (uint32_t index : slots) adopt_buffer(heir, index);
  processes_.remove(id);
}

Error Core::send_message(uint32_t id, uint64_t handle, std::string_view receiver,
                         const wire::Message &message) {
  auto index = pool_.resolve_next(handle);
  if (!index) return Error::kBadHandle;
  Buffer &b = pool_.at(*index);
  if (b.owner != id || b.state != BufferState::kFree) return Error::kBadHandle;
  uint32_t to = processes_.find(receiver);
  Process &sender = processes_.at(id);
  b.generation = wire::handle_generation(handle);
  b.words = message;
  std::memcpy(b.sender_name, sender.name.c_str(), sender.name.size() + 1);
  b.published = false;
  b.sender_gone = false;
  if (to == kNone) {
    pool_.apply(*index, BufferEvent::kSendUndeliverable);
    b.receiver = kNone;
    b.result = wire::kResultDummy;
    b.words = wire::Message{};
    fifo_push(id, *index);
    if (tracing_) {
      record(TraceKind::kMessage, *index, sender.name, receiver);
      record(TraceKind::kAnswer, *index, wire::kNucleusName, sender.name);
    }
    return Error::kNone;
  }
  pool_.apply(*index, BufferEvent::kSend);
  b.receiver = to;
  inbox_append(processes_.at(to), *index);
  fifo_push(to, *index);
  if (tracing_) record(TraceKind::kMessage, *index, sender.name, processes_.at(to).name);
  return Error::kNone;
}

void Core::set_tracing(bool on) {
  tracing_ = on;
  if (!on) trace_.clear();
}

Core::TraceBatch Core::take_trace() {
  TraceBatch batch{std::exchange(trace_, {}), std::exchange(trace_dropped_, 0)};
  return batch;
}

void Core::record(TraceKind kind, uint32_t index, std::string_view from, std::string_view to) {
  if (trace_.size() >= kMaxTrace) {
    ++trace_dropped_;
    return;
  }
  TraceEvent &e = trace_.emplace_back();
  e.kind = kind;
  e.handle = pool_.handle(index);
  e.result = kind == TraceKind::kAnswer ? pool_.at(index).result : 0;
  std::memcpy(e.from, from.data(), std::min(from.size(), sizeof(e.from) - 1));
  std::memcpy(e.to, to.data(), std::min(to.size(), sizeof(e.to) - 1));
}

Error Core::get_event(uint32_t id, uint64_t handle) {
  auto index = pool_.resolve(handle);
  if (!index) return Error::kBadHandle;
  Buffer &b = pool_.at(*index);
  if (b.receiver != id || b.state != BufferState::kQueued || !b.published) {
    return Error::kBadHandle;
  }
  pool_.apply(*index, BufferEvent::kTake);
  return Error::kNone;
}

Error Core::send_answer(uint32_t id, uint64_t handle, int32_t result, const wire::Message &answer) {
  if (result < wire::kResultNormal || result > wire::kResultMalfunction) return Error::kInvalid;
  auto index = pool_.resolve(handle);
  if (!index) return Error::kBadHandle;
  Buffer &b = pool_.at(*index);
  if (b.receiver != id || b.state != BufferState::kReceived) return Error::kBadHandle;
  pool_.apply(*index, BufferEvent::kAnswer);
  inbox_remove(processes_.at(id), *index);
  b.result = result;
  b.words = answer;
  deliver_answer(*index);
  return Error::kNone;
}

Error Core::release_answer(uint32_t id, uint64_t handle) {
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

void Core::deliver_answer(uint32_t index) {
  Buffer &b = pool_.at(index);
  b.published = false;
  if (tracing_) {
    // A dummy answer (5) is the nucleus's; stop and swap requests are
    // answered by the nucleus too (receiver none).
    bool by_nucleus =
        b.result == wire::kResultDummy || b.receiver == kNone || !processes_.live(b.receiver);
    record(TraceKind::kAnswer, index,
           by_nucleus ? std::string_view(wire::kNucleusName) : processes_.at(b.receiver).name,
           b.sender_name);
  }
  if (b.owner == kNoticeOwner) {
    uint32_t from = b.receiver;
    if (from != kNone && processes_.live(from) && processes_.at(from).handover_buffer == index) {
      // The OS being swapped answered the handover: from here its requests
      // wait (the server serves no more of them) until the swap ends.
      Process &os = processes_.at(from);
      os.handover_buffer = kNone;
      os.handed_over = b.result == wire::kResultNormal;
      handovers_.push_back({from, os.generation, b.result, b.words});
    }
    // A notice answered: the buffer serves the next notice.
    pool_.apply(index, BufferEvent::kSenderGone);
    b.receiver = kNone;
    notice_freed(index);
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

void Core::mark_slots(uint32_t id) {
  Process &p = processes_.at(id);
  if (!p.attached || p.slots_changed) return;
  p.slots_changed = true;
  slot_changes_.push_back(id);
}

std::vector<uint32_t> Core::take_slot_changes() {
  for (uint32_t id : slot_changes_) {
    if (processes_.live(id)) processes_.at(id).slots_changed = false;
  }
  return std::exchange(slot_changes_, {});
}

std::vector<uint32_t> Core::take_dirty() {
  for (uint32_t id : dirty_) {
    if (processes_.live(id)) processes_.at(id).dirty = false;
  }
  return std::exchange(dirty_, {});
}

bool Core::next_event(uint32_t id, wire::Event *out) const {
  const Process &p = processes_.at(id);
  if (p.fifo_head == kNone) return false;
  const Buffer &b = pool_.at(p.fifo_head);
  *out = wire::Event{};
  out->handle = pool_.handle(p.fifo_head);
  out->message = b.words;
  if (b.state == BufferState::kAnswered) {
    out->kind = static_cast<uint32_t>(wire::EventKind::kAnswer);
    out->result = b.result;
  } else {
    out->kind = static_cast<uint32_t>(wire::EventKind::kMessage);
    std::memcpy(out->sender, b.sender_name, sizeof(out->sender));
  }
  return true;
}

void Core::pop_event(uint32_t id) {
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

ProcessStats Core::stats(uint32_t id) const {
  ProcessStats s;
  const Process &p = processes_.at(id);
  s.claim_buffers = static_cast<uint32_t>(p.slots.size());
  for (uint32_t index : p.slots) {
    if (pool_.at(index).state != BufferState::kFree) ++s.claim_used;
  }
  s.queue_length = p.inbox_count;
  return s;
}

void Core::inbox_append(Process &p, uint32_t index) {
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

void Core::inbox_prepend(Process &p, uint32_t index) {
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

void Core::inbox_remove(Process &p, uint32_t index) {
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

void Core::fifo_push(uint32_t id, uint32_t index) {
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

}  // namespace nucleus::daemon
