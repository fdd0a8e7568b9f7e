#include "core.h"

#include <cassert>
#include <cstring>

namespace nucleus::daemon {

Result<uint32_t> Core::attach(std::string_view name, uint32_t claim_buffers) {
  if (claim_buffers > wire::kMaxBufferClaim) return Error::kInvalid;
  if (claim_buffers > pool_.free_count()) return Error::kNoBuffers;
  Result<uint32_t> id = processes_.add(name);
  if (!id.ok()) return id;
  Process &p = processes_.at(id.value());
  p.slots.reserve(claim_buffers);
  bool taken = pool_.take(claim_buffers, id.value(), &p.slots);
  assert(taken);
  (void)taken;
  return id;
}

void Core::detach(uint32_t id) {
  if (!processes_.live(id)) return;
  Process &p = processes_.at(id);
  // Its unpublished events are dropped with it.
  for (uint32_t i = p.fifo_head; i != kNone;) {
    Buffer &b = pool_.at(i);
    i = b.fifo_next;
    b.fifo_next = kNone;
    b.in_fifo = false;
  }
  p.fifo_head = p.fifo_tail = kNone;
  // Its own buffers: free ones and answered ones go back to the pool; ones
  // out at a receiver are orphaned and freed when answered.
  for (uint32_t index : p.slots) {
    Buffer &b = pool_.at(index);
    bool ok = pool_.apply(index, BufferEvent::kSenderGone);
    assert(ok || b.state == BufferState::kFree);
    (void)ok;
    if (b.state == BufferState::kFree) {
      pool_.give_back(index);
    } else {
      b.sender_gone = true;
      b.owner = kNone;
    }
  }
  p.slots.clear();
  // Messages queued to it or received by it: dummy answers to their senders
  // (orphans among them, its own included, are simply freed).
  while (p.inbox_head != kNone) {
    uint32_t index = p.inbox_head;
    inbox_remove(p, index);
    Buffer &b = pool_.at(index);
    bool ok = pool_.apply(index, BufferEvent::kReceiverGone);
    assert(ok);
    (void)ok;
    b.result = wire::kResultDummy;
    b.words = wire::Message{};
    deliver_answer(index);
  }
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
    return Error::kNone;
  }
  pool_.apply(*index, BufferEvent::kSend);
  b.receiver = to;
  inbox_append(processes_.at(to), *index);
  fifo_push(to, *index);
  return Error::kNone;
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
  if (b.sender_gone) {
    pool_.apply(index, BufferEvent::kSenderGone);
    pool_.give_back(index);
    return;
  }
  fifo_push(b.owner, index);
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
