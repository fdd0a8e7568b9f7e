#include "core_swaps.h"

#include <cassert>
#include <cstring>

namespace nucleus::daemon {

Result<uint32_t> CoreSwaps::begin_swap(uint32_t requester, uint32_t id, uint64_t handle,
                                       Program program) {
  Process &p = processes_.at(id);
  if (p.swap_buffer != kNone) return Error::kBusy;
  if (p.is_device() || p.run != RunState::kRunning || !p.attached || p.stop != StopState::kNone ||
      tree_.held_stopped(id)) {
    return Error::kInvalid;
  }
  Result<uint32_t> index = messages_.request_buffer(requester, handle);
  if (!index.ok()) return index.error();
  // The request is a message to the nucleus, received by it at once and
  // answered when the swap is done or not (like a stop).
  messages_.send_to_nucleus(requester, index.value(), handle);

  uint32_t cand = processes_.add_hidden(p.name);
  Process &os = processes_.at(id);  // add_hidden may have moved the table
  Process &c = processes_.at(cand);
  c.origin = Origin::kNucleus;
  c.uid = os.uid;
  c.gid = os.gid;
  // It holds no claims: the same data area (so the state fits), and the
  // nearest memory claim up the tree bounds the new program as it bounds
  // the old one.
  Claims given;
  given.data_bytes = os.account.given().data_bytes;
  for (uint32_t i = id; i != kNone && given.memory == 0; i = processes_.at(i).parent) {
    given.memory = processes_.at(i).account.given().memory;
  }
  c.account = ClaimsAccount(given);
  c.program = std::move(program);
  c.swap_of = id;
  os.swap_buffer = index.value();
  os.swap_candidate = cand;
  return cand;
}

Error CoreSwaps::request_handover(uint32_t id, uint64_t data_bytes) {
  uint32_t index = notices_.send_handover(id, data_bytes);
  if (index == kNone) return Error::kBusy;
  processes_.at(id).handover_buffer = index;
  return Error::kNone;
}

void CoreSwaps::handover_answered(uint32_t index) {
  const Buffer &b = pool_.at(index);
  uint32_t from = b.receiver;
  if (from == kNone || !processes_.live(from) || processes_.at(from).handover_buffer != index) {
    return;  // an exit notice, or a handover answered after its swap ended
  }
  // The OS being swapped answered the handover: when it handed over, its
  // requests wait from here (the server serves no more of them) until the
  // swap ends.
  Process &os = processes_.at(from);
  os.handover_buffer = kNone;
  os.handed_over = b.result == wire::kResultNormal;
  handovers_.push_back({from, os.generation, b.result, b.words});
}

Inheritance CoreSwaps::commit_swap(uint32_t id, int32_t pid) {
  Process &p = processes_.at(id);
  uint32_t cand = p.swap_candidate;
  assert(cand != kNone);
  p.program = std::move(processes_.at(cand).program);
  p.pid = pid;
  p.handed_over = false;
  p.handover_buffer = kNone;  // answered already (it handed over)
  Inheritance out;
  // Everything is published again to the new channel: messages queued (in
  // queue order) and answers not yet taken. What the old program took is
  // inherited instead.
  messages_.fifo_clear(p);
  for (uint32_t i = p.inbox_head; i != kNone; i = pool_.at(i).inbox_next) {
    Buffer &b = pool_.at(i);
    if (b.state == BufferState::kReceived) {
      out.received.push_back(i);
    } else {
      b.published = false;
      messages_.fifo_push(id, i);
    }
  }
  // What the old program lent is in its data area, which goes with it.
  messages_.end_lends(id);
  for (uint32_t index : p.slots) {
    Buffer &b = pool_.at(index);
    if (b.state == BufferState::kFree) continue;
    out.out.push_back(index);
    if (b.state == BufferState::kAnswered) {
      b.published = false;
      messages_.fifo_push(id, index);
    }
  }
  // The candidate entry held nothing (it had no name, claims or buffers).
  Process &c = processes_.at(cand);
  c.attached = false;
  messages_.fifo_clear(c);
  processes_.remove(cand);
  processes_.at(id).swap_candidate = kNone;
  return out;
}

void CoreSwaps::end_swap(uint32_t id, int32_t result, const wire::Message &words) {
  Process &p = processes_.at(id);
  if (p.swap_candidate != kNone && processes_.live(p.swap_candidate) &&
      processes_.at(p.swap_candidate).swap_of == id) {
    uint32_t cand = p.swap_candidate;
    tree_.end_attachment(cand);
    tree_.drop_entry(cand, kNone);
  }
  Process &os = processes_.at(id);
  os.swap_candidate = kNone;
  os.handed_over = false;
  // A handover message still out stays with the OS; its answer frees it.
  os.handover_buffer = kNone;
  if (os.swap_buffer == kNone) return;
  uint32_t index = os.swap_buffer;
  os.swap_buffer = kNone;
  messages_.answer(index, result, words, kNone);
}

void CoreSwaps::leaving(uint32_t id) {
  if (processes_.at(id).swap_candidate == kNone) return;
  // Removed during a swap (the server ends the swap first; this keeps the
  // core whole on its own): the request is answered, the new one dropped.
  wire::Message why{};
  why.word[wire::kSwapOutcome] = wire::kSwapCancelled;
  end_swap(id, wire::kResultRejected, why);
}

wire::Event CoreSwaps::inherit_event(uint32_t index, int32_t kind) const {
  const Buffer &b = pool_.at(index);
  wire::Event e{};
  e.kind = static_cast<uint32_t>(wire::EventKind::kInherit);
  e.result = kind;
  e.handle = pool_.handle(index);
  if (kind == wire::kInheritReceived) {
    // The message's sender, as when it was first published.
    std::memcpy(e.sender, b.from_name, sizeof(e.sender));
    e.principal = b.from;
    e.message = b.words;
    e.extra = wire::lend_extra(b.lend_bytes, b.lend_rights);  // the lend moves with it
  } else {
    std::memcpy(e.sender, wire::kNucleusName, sizeof(wire::kNucleusName));
    e.principal = messages_.nucleus_principal();
  }
  return e;
}

}  // namespace nucleus::daemon
