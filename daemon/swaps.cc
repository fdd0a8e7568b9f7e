#include "swaps.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "log.h"
#include "program.h"

namespace nucleus::daemon {

namespace {

const char *outcome_name(uint64_t outcome) {
  switch (outcome) {
    case wire::kSwapDone: return "swapped";
    case wire::kSwapNoHandover: return "the OS did not hand over in time";
    case wire::kSwapRefused: return "the OS refused to hand over";
    case wire::kSwapStartFailed: return "the new program could not be started";
    case wire::kSwapNewExited: return "the new program ended before it was ready";
    case wire::kSwapNotReady: return "the new program was not ready in time";
    case wire::kSwapOldExited: return "the OS ended during the swap";
    case wire::kSwapCancelled: return "the OS was removed during the swap";
    default: return "?";
  }
}

int64_t deadline_after(const Config &config, SwapPhase phase, int64_t from_ns) {
  switch (swap_timer(phase)) {
    case SwapTimer::kReady:
      return from_ns + static_cast<int64_t>(config.swap_ready_timeout_ms) * 1000000;
    case SwapTimer::kHandover:
      return from_ns + static_cast<int64_t>(config.swap_handover_timeout_ms) * 1000000;
    case SwapTimer::kHungUp:
      return from_ns + static_cast<int64_t>(wire::kSwapHungUpGraceMs) * 1000000;
    case SwapTimer::kNone: break;
  }
  return INT64_MAX;
}

}  // namespace

Swaps::Swap *Swaps::swap_of(uint32_t id) {
  for (auto &s : swaps_) {
    if (s->id == id) return s.get();
  }
  return nullptr;
}

void Swaps::begin(uint32_t requester, uint32_t child, uint32_t cand) {
  auto s = std::make_unique<Swap>();
  s->id = child;
  s->generation = core_.processes().at(child).generation;
  s->cand = cand;
  s->cand_generation = core_.processes().at(cand).generation;
  s->began_ns = sys::monotonic_ns();
  s->deadline_ns = deadline_after(config_, s->phase, s->began_ns);
  s->old_pid = programs_.pid_of(child);
  const Process &os = core_.processes().at(child);
  log::info("process {} asks to swap {} (pid {}) to {}", core_.processes().at(requester).name,
            os.name, s->old_pid, core_.processes().at(cand).program.path);
  swaps_.push_back(std::move(s));
  programs_.share_group(child, cand);
  uint64_t step = wire::kStartStepNone;
  if (int rc = programs_.spawn(cand, Waiter{}, &step); rc < 0) {
    event(child, SwapEvent::kStartFailed, start_failed_detail(-rc, step));
  }
  programs_.tick_soon();
}

void Swaps::attached(uint32_t cand, sys::UniqueFd socket) {
  uint32_t id = core_.processes().at(cand).swap_of;
  Swap *s = swap_of(id);
  if (s == nullptr || s->cand != cand || !swap_expects(s->phase, SwapEvent::kAttached)) return;
  // It runs from here, bearing no name, and may prepare while the old OS
  // hands over; its state comes as a kHandover event.
  wire::AttachReply reply{};
  reply.flags = wire::kAttachSuccessor;
  bool sent = attach_.send_reply(socket.get(), &reply, cand);
  // It is detached when the reply could not be sent, which ends the swap
  // (Reactions::detached -> Swaps::event).
  if (!connections_.serve(cand, std::move(socket), sent)) return;
  event(id, SwapEvent::kAttached);
  if (core_.request_handover(id, data_area_bytes(core_, config_, id)) != Error::kNone) {
    event(id, SwapEvent::kNoNoticeBuffer, EBUSY);
    return;
  }
  log::debug("process {}: new program attached; handover asked", core_.processes().at(id).name);
}

int Swaps::ready(uint32_t cand, uint32_t seq) {
  uint32_t id = core_.processes().at(cand).swap_of;
  Swap *s = id == kNone ? nullptr : swap_of(id);
  if (s == nullptr || s->cand != cand) return -EINVAL;
  const SwapStep &step = swap_step(s->phase, SwapEvent::kReadyAsked);
  if (step.action == SwapAction::kRefuse) return -step.error;
  s->ready_seq = seq;
  event(id, SwapEvent::kReadyAsked);  // committed at the end of this turn
  return 0;
}

void Swaps::advance() {
  for (const HandoverAnswer &a : core_.take_handovers()) {
    Swap *s = swap_of(a.id);
    if (s == nullptr || s->generation != a.generation ||
        !swap_expects(s->phase, SwapEvent::kHandedOver)) {
      continue;  // a late answer to a swap that already ended
    }
    Channel *old = connections_.channel(a.id);
    Channel *fresh = connections_.channel(s->cand);
    uint64_t offset = a.words.word[wire::kHandoverOffset];
    uint64_t length = a.words.word[wire::kHandoverLength];
    if (a.result != wire::kResultNormal) {
      event(a.id, SwapEvent::kRefused, static_cast<uint64_t>(a.result));
      continue;
    }
    // The OS's words are untrusted: offset and length are checked against
    // nucleusd's own record of both data areas.
    uint64_t old_bytes = old != nullptr ? old->data_bytes() : 0;
    uint64_t new_bytes = fresh != nullptr ? fresh->data_bytes() : 0;
    if (old == nullptr || fresh == nullptr || offset > old_bytes || length > old_bytes - offset ||
        length > new_bytes) {
      event(a.id, SwapEvent::kRefused, EFAULT);
      continue;
    }
    if (length != 0) fresh->write_data(0, old->data() + offset, length);
    s->state_bytes = length;
    s->handed_ns = sys::monotonic_ns();
    event(a.id, SwapEvent::kHandedOver);
    wire::Event handover{};
    handover.kind = static_cast<uint32_t>(wire::EventKind::kHandover);
    handover.extra = length;
    connections_.push(s->cand, handover);
    connections_.flush(s->cand);
    log::debug("process {}: {} bytes of state handed over", core_.processes().at(a.id).name,
               length);
  }
  int64_t now = sys::monotonic_ns();
  for (size_t i = 0; i < swaps_.size();) {
    Swap &s = *swaps_[i];
    SwapAction done = event(s.id, now >= s.deadline_ns ? SwapEvent::kDeadline : SwapEvent::kTurn);
    // A commit or a rollback took it off swaps_: look at the same place.
    if (done != SwapAction::kCommit && done != SwapAction::kFail) ++i;
  }
}

SwapAction Swaps::event(uint32_t id, SwapEvent what, uint64_t detail) {
  Swap *s = swap_of(id);
  if (s == nullptr) return SwapAction::kNone;
  const SwapStep &step = swap_step(s->phase, what);
  switch (step.action) {
    case SwapAction::kNone:
    case SwapAction::kRefuse: break;
    case SwapAction::kAdvance:
      s->phase = step.next;
      if (swap_timer(step.next) != SwapTimer::kNone) {
        s->deadline_ns = deadline_after(config_, step.next, sys::monotonic_ns());
      }
      break;
    case SwapAction::kFail: fail(id, step.outcome, detail); break;
    case SwapAction::kCommit: commit(*s); break;
  }
  return step.action;
}

void Swaps::commit(Swap &s) {
  uint32_t id = s.id;
  uint32_t cand = s.cand;
  uint32_t seq = s.ready_seq;
  int64_t now = sys::monotonic_ns();
  // The old program ends: what it wrote after its handover is dropped (its
  // state said where it was), and so is anything it forked.
  pid_t new_pid = 0;
  pid_t old_pid = programs_.take_over(id, cand, s.cand_generation, &new_pid);
  connections_.retire(id);

  // The new program's connection and run become the entry's.
  connections_.move(cand, id);
  Inheritance inherited = core_.commit_swap(id, new_pid);
  Channel &channel = *connections_.channel(id);
  // Its slot table shows the whole claim, the buffers out included (the
  // kInherit events say which are out).
  std::vector<SlotEntry> slots;
  for (uint32_t index : core_.processes().at(id).slots) {
    slots.push_back({index, core_.pool().handle(index)});
  }
  channel.sync_slots(slots);
  for (uint32_t index : inherited.received) {
    connections_.push(id, core_.inherit_event(index, wire::kInheritReceived));
  }
  for (uint32_t index : inherited.out) {
    connections_.push(id, core_.inherit_event(index, wire::kInheritOut));
  }
  wire::Event reply{};
  reply.kind = static_cast<uint32_t>(wire::EventKind::kReply);
  reply.seq = seq;
  connections_.push(id, reply);

  wire::Message words{};
  words.word[wire::kSwapOutcome] = wire::kSwapDone;
  words.word[wire::kSwapNewPid] = static_cast<uint64_t>(new_pid);
  words.word[wire::kSwapOldPid] = static_cast<uint64_t>(old_pid);
  words.word[wire::kSwapStateBytes] = s.state_bytes;
  words.word[wire::kSwapPauseNs] = static_cast<uint64_t>(now - s.handed_ns);
  log::info(
      "process {} swapped: pid {} -> {} ({}), {} bytes of state, {} received and {} out "
      "inherited, paused {} us, took {} us",
      core_.processes().at(id).name, old_pid, new_pid, core_.processes().at(id).program.path,
      s.state_bytes, inherited.received.size(), inherited.out.size(), (now - s.handed_ns) / 1000,
      (now - s.began_ns) / 1000);
  std::erase_if(swaps_, [&](const std::unique_ptr<Swap> &p) { return p.get() == &s; });
  core_.end_swap(id, wire::kResultNormal, words);

  connections_.resume(id);
}

void Swaps::fail(uint32_t id, uint64_t outcome, uint64_t detail) {
  Swap *s = swap_of(id);
  if (s == nullptr) return;
  uint32_t cand = s->cand;
  uint32_t cand_generation = s->cand_generation;
  bool cand_live =
      core_.processes().live(cand) && core_.processes().at(cand).generation == cand_generation;
  wire::Message words{};
  words.word[wire::kSwapOutcome] = outcome;
  words.word[wire::kSwapDetail] = detail;
  if (outcome == wire::kSwapStartFailed) {  // start_failed_detail: the errno and its step
    words.word[wire::kSwapDetail] = detail & UINT32_MAX;
    words.word[wire::kSwapStartStep] = detail >> 32;
  }
  if (outcome == wire::kSwapNewExited) {  // new_exited_detail: its status and exit kind
    words.word[wire::kSwapDetail] = detail & UINT32_MAX;
    words.word[wire::kSwapExitKind] = detail >> 32;
  }
  words.word[wire::kSwapOldPid] = static_cast<uint64_t>(s->old_pid);
  std::erase_if(swaps_, [&](const std::unique_ptr<Swap> &p) { return p->id == id; });
  if (!core_.processes().live(id)) return;
  log::warn("process {}: swap not done: {} ({}); the old program runs on",
            core_.processes().at(id).name, outcome_name(outcome), words.word[wire::kSwapDetail]);
  if (cand_live) {
    // The pid its launch recorded: also when it was reaped already (then
    // end_candidate has none to end).
    int32_t pid = core_.processes().at(cand).pid;
    words.word[wire::kSwapNewPid] = static_cast<uint64_t>(pid > 0 ? pid : 0);
    (void)programs_.end_candidate(cand, cand_generation);
    connections_.retire(cand);
  }
  core_.end_swap(id, wire::kResultRejected, words);  // drops the hidden entry
  if (connections_.live(id)) {
    connections_.activate(id);  // served again: what it wrote since its handover, then on as before
    connections_.flush(id);
  }
}

int64_t Swaps::next_deadline() const {
  int64_t due = 0;
  for (const auto &s : swaps_) {
    if (due == 0 || s->deadline_ns < due) due = s->deadline_ns;
  }
  return due;
}

}  // namespace nucleus::daemon
