#include "notices.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace nucleus::daemon {

Notices::Notices(Pool &pool, ProcessTable &processes, Messages &messages, Trace &trace,
                 uint32_t buffers)
    : pool_(pool), processes_(processes), messages_(messages), trace_(trace) {
  buffers = std::min(buffers, pool_.size());
  bool taken = pool_.take(buffers, kNoticeOwner, &free_);
  assert(taken);
  (void)taken;
  handover_reserve_ = buffers / 16;
}

void Notices::set_limit(uint32_t per_parent) {
  bool raised = per_parent > limit_;
  limit_ = per_parent;
  if (!raised) return;  // a lower limit holds back later notices only
  for (uint32_t id = 0; id < processes_.capacity(); ++id) {
    if (processes_.live(id) && !processes_.at(id).notices_waiting.empty()) pump(id);
  }
}

void Notices::child_exited(uint32_t parent, const ExitNotice &n) {
  processes_.at(parent).notices_waiting.push_back(n);
  pump(parent);
}

void Notices::pump(uint32_t parent) {
  Process &p = processes_.at(parent);
  while (!p.notices_waiting.empty() && p.attached && p.notices_out < limit_) {
    const ExitNotice &n = p.notices_waiting.front();
    // A child removed since (by its parent): nothing to tell any more.
    if (!processes_.live(n.child) || processes_.at(n.child).generation != n.generation) {
      p.notices_waiting.pop_front();
      continue;
    }
    if (free_.size() <= handover_reserve_) {
      if (!p.notice_starved) {
        p.notice_starved = true;
        starved_.emplace_back(parent, p.generation);
      }
      return;
    }
    ExitNotice next = n;
    p.notices_waiting.pop_front();
    send_notice(parent, next);
  }
}

void Notices::pump_starved() {
  // Each turn either drops a stale entry, sends at least one notice, or
  // leaves a parent that cannot take one now (it is pumped again when it
  // answers one or runs again); a parent re-queues itself only when the
  // reserve ran out, which ends the loop.
  while (free_.size() > handover_reserve_ && !starved_.empty()) {
    auto [id, generation] = starved_.front();
    starved_.pop_front();
    if (!processes_.live(id) || processes_.at(id).generation != generation) continue;
    processes_.at(id).notice_starved = false;
    pump(id);
  }
}

void Notices::answered(uint32_t index) {
  pool_.apply(index, BufferEvent::kSenderGone);
  pool_.at(index).receiver = kNone;
  free_.push_back(index);
  uint32_t parent = kNone;
  if (auto it = out_.find(index); it != out_.end()) {
    parent = it->second.first;  // a handover's buffer is not in out_
    out_.erase(it);
  }
  if (parent != kNone && processes_.live(parent)) {
    Process &p = processes_.at(parent);
    assert(p.notices_out > 0);
    --p.notices_out;
  }
  // Parents that waited for a buffer first, then the one that answered (it
  // joins them when none is left): no parent keeps the reserve to itself by
  // answering quickly.
  pump_starved();
  if (parent != kNone && processes_.live(parent)) pump(parent);
}

void Notices::withdraw(uint32_t parent) {
  Process &p = processes_.at(parent);
  std::vector<ExitNotice> back;
  for (uint32_t i = p.inbox_head; i != kNone;) {
    uint32_t index = i;
    i = pool_.at(i).inbox_next;
    auto it = out_.find(index);
    if (it == out_.end() || pool_.at(index).state != BufferState::kQueued) continue;
    back.push_back(it->second.second);
    out_.erase(it);
    messages_.inbox_remove(p, index);
    // queued -> answered (its receiver is gone) -> free: back to the reserve.
    pool_.apply(index, BufferEvent::kReceiverGone);
    pool_.apply(index, BufferEvent::kSenderGone);
    Buffer &b = pool_.at(index);
    b.receiver = kNone;
    b.published = false;
    --p.notices_out;
    free_.push_back(index);
  }
  p.notices_waiting.insert(p.notices_waiting.begin(), back.begin(), back.end());
  if (!back.empty()) pump_starved();
}

void Notices::send_notice(uint32_t parent, const ExitNotice &n) {
  const Process &c = processes_.at(n.child);
  wire::Message words{};
  words.word[wire::kNoticeKind] = wire::kNoticeChildExited;
  words.word[wire::kNoticeExitKind] = static_cast<uint64_t>(n.kind);
  words.word[wire::kNoticeExitValue] = static_cast<uint32_t>(n.value);
  words.word[wire::kNoticePid] = static_cast<uint32_t>(c.pid);
  std::memcpy(&words.word[wire::kNoticeName], c.name.c_str(), c.name.size() + 1);
  uint32_t index = send(parent, words, false);
  out_[index] = {parent, n};
  ++processes_.at(parent).notices_out;
  if (trace_.on()) {
    trace_.record(TraceKind::kMessage, index, wire::kNucleusName, processes_.at(parent).name);
  }
}

uint32_t Notices::send_handover(uint32_t id, uint64_t data_bytes) {
  if (free_.empty()) return kNone;
  wire::Message words{};
  words.word[wire::kNoticeKind] = wire::kNoticeHandover;
  words.word[wire::kHandoverDataBytes] = data_bytes;
  return send(id, words, true);
}

uint32_t Notices::send(uint32_t to, const wire::Message &words, bool first) {
  uint32_t index = free_.back();
  free_.pop_back();
  Buffer &b = pool_.at(index);
  b.generation = wire::handle_generation(wire::next_handle(pool_.handle(index)));
  b.words = words;
  messages_.stamp(b, kNone);
  b.published = false;
  b.sender_gone = false;
  pool_.apply(index, BufferEvent::kSend);
  b.receiver = to;
  if (first) {
    messages_.inbox_prepend(processes_.at(to), index);
  } else {
    messages_.inbox_append(processes_.at(to), index);
  }
  messages_.fifo_push(to, index);
  return index;
}

}  // namespace nucleus::daemon
