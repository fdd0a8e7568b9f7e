// Hot swap in the Core: the parent's request, the hidden entry of the new
// program, the handover message, and the one step in which the new program
// takes over the entry. The Linux side (starting the new program, its
// channel, ending the old one, deadlines) is in server_swap.cc; the protocol
// is in docs/hot-swap.md.
//
// The entry itself never moves: its name, children, devices, claims, queue
// and every buffer it holds stay where they are, so "moving them to the new
// program" is rebinding the entry to the new program's channel and pid, and
// telling the new program what it inherits.
#include <cassert>
#include <cstring>

#include "core.h"

namespace nucleus::daemon {

Result<uint32_t> Core::begin_swap(uint32_t requester, uint32_t id, uint64_t handle,
                                  Program program) {
  Process &p = processes_.at(id);
  if (p.swap_buffer != kNone) return Error::kBusy;
  if (p.is_device() || p.run != RunState::kRunning || !p.attached || p.stop != StopState::kNone ||
      held_stopped(id)) {
    return Error::kInvalid;
  }
  Result<uint32_t> index = request_buffer(requester, handle);
  if (!index.ok()) return index.error();
  // The request is a message to the nucleus, received by it at once and
  // answered when the swap is done or not (like a stop).
  send_to_nucleus(requester, index.value(), handle);

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

Error Core::request_handover(uint32_t id, uint64_t data_bytes) {
  if (notice_free_.empty()) return Error::kBusy;
  uint32_t index = notice_free_.back();
  notice_free_.pop_back();
  Buffer &b = pool_.at(index);
  b.generation = wire::handle_generation(wire::next_handle(pool_.handle(index)));
  b.words = wire::Message{};
  b.words.word[wire::kNoticeKind] = wire::kNoticeHandover;
  b.words.word[wire::kHandoverDataBytes] = data_bytes;
  std::memcpy(b.sender_name, wire::kNucleusName, sizeof(wire::kNucleusName));
  b.published = false;
  b.sender_gone = false;
  pool_.apply(index, BufferEvent::kSend);
  b.receiver = id;
  Process &p = processes_.at(id);
  p.handover_buffer = index;
  // First in its queue: the pause a swap makes is the handover, not the
  // backlog before it (which the old OS serves first otherwise).
  inbox_prepend(p, index);
  fifo_push(id, index);
  return Error::kNone;
}

Inheritance Core::commit_swap(uint32_t id, int32_t pid) {
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
  fifo_clear(p);
  for (uint32_t i = p.inbox_head; i != kNone; i = pool_.at(i).inbox_next) {
    Buffer &b = pool_.at(i);
    if (b.state == BufferState::kReceived) {
      out.received.push_back(i);
    } else {
      b.published = false;
      fifo_push(id, i);
    }
  }
  for (uint32_t index : p.slots) {
    Buffer &b = pool_.at(index);
    if (b.state == BufferState::kFree) continue;
    out.out.push_back(index);
    if (b.state == BufferState::kAnswered) {
      b.published = false;
      fifo_push(id, index);
    }
  }
  // The candidate entry held nothing (it had no name, claims or buffers).
  Process &c = processes_.at(cand);
  c.attached = false;
  fifo_clear(c);
  processes_.remove(cand);
  processes_.at(id).swap_candidate = kNone;
  return out;
}

void Core::end_swap(uint32_t id, int32_t result, const wire::Message &words) {
  Process &p = processes_.at(id);
  if (p.swap_candidate != kNone && processes_.live(p.swap_candidate) &&
      processes_.at(p.swap_candidate).swap_of == id) {
    uint32_t cand = p.swap_candidate;
    end_attachment(cand);
    drop_entry(cand, kNone);
  }
  Process &os = processes_.at(id);
  os.swap_candidate = kNone;
  os.handed_over = false;
  // A handover message still out stays with the OS; its answer frees it.
  os.handover_buffer = kNone;
  if (os.swap_buffer == kNone) return;
  uint32_t index = os.swap_buffer;
  os.swap_buffer = kNone;
  answer_request(index, result, words);
}

wire::Event Core::inherit_event(uint32_t index, int32_t kind) const {
  const Buffer &b = pool_.at(index);
  wire::Event e{};
  e.kind = static_cast<uint32_t>(wire::EventKind::kInherit);
  e.result = kind;
  e.handle = pool_.handle(index);
  if (kind == wire::kInheritReceived) {
    std::memcpy(e.sender, b.sender_name, sizeof(e.sender));
    e.message = b.words;
  }
  return e;
}

}  // namespace nucleus::daemon
