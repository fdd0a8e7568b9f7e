// Process control on the Core: the tree, claims, the per-process state
// table (core_states.h, docs/process-control.md) and exit notices. No I/O:
// the server does the Linux side of each step.
#include <algorithm>
#include <cassert>
#include <cstring>
#include <utility>

#include "core.h"

namespace nucleus::daemon {

std::vector<uint32_t> &Core::children_ref(uint32_t parent) {
  return parent == kNone ? root_children_ : processes_.at(parent).children;
}

const std::vector<uint32_t> &Core::children_of(uint32_t caller) const {
  return caller == kNone ? root_children_ : processes_.at(caller).children;
}

Result<uint32_t> Core::child(uint32_t caller, std::string_view name) const {
  uint32_t id = processes_.find(name);
  if (id == kNone || processes_.at(id).parent != caller || processes_.at(id).is_device()) {
    return Error::kNoChild;
  }
  return id;
}

uint32_t Core::free_held(uint32_t id) const {
  if (id == kNone) return pool_.free_count();
  uint32_t n = 0;
  for (uint32_t index : processes_.at(id).slots) {
    if (pool_.at(index).state == BufferState::kFree) ++n;
  }
  return n;
}

bool Core::move_free_buffers(uint32_t from, uint32_t to, uint64_t count) {
  if (count == 0) return true;
  if (free_held(from) < count) return false;
  // Its owner's count follows the buffers (uid_accounts.h).
  auto delta = static_cast<int64_t>(count);
  if (from == kNone) {  // out of the root's unowned buffers
    if (!pool_.take(static_cast<uint32_t>(count), to, &processes_.at(to).slots)) return false;
    uid_accounts_.move_buffers(processes_.at(to).uid, delta);
    mark_slots(to);
    return true;
  }
  uid_accounts_.move_buffers(processes_.at(from).uid, -delta);
  if (to == kNone) {  // back to the root
    std::vector<uint32_t> &src = processes_.at(from).slots;
    for (size_t i = src.size(); i > 0 && count > 0; --i) {
      uint32_t index = src[i - 1];
      if (pool_.at(index).state != BufferState::kFree) continue;
      src.erase(src.begin() + static_cast<std::ptrdiff_t>(i - 1));
      pool_.give_back(index);
      --count;
    }
    mark_slots(from);
    return true;
  }
  uid_accounts_.move_buffers(processes_.at(to).uid, delta);
  std::vector<uint32_t> &src = processes_.at(from).slots;
  std::vector<uint32_t> &dst = processes_.at(to).slots;
  for (size_t i = src.size(); i > 0 && count > 0; --i) {
    uint32_t index = src[i - 1];
    if (pool_.at(index).state != BufferState::kFree) continue;
    src.erase(src.begin() + static_cast<std::ptrdiff_t>(i - 1));
    pool_.at(index).owner = to;
    dst.push_back(index);
    --count;
  }
  mark_slots(from);
  mark_slots(to);
  return true;
}

Result<uint32_t> Core::create(uint32_t caller, std::string_view name, Program program,
                              const Claims &claims, uint32_t uid, uint32_t gid,
                              const UidBudget &budget) {
  if (Error e = check_claims(claims); e != Error::kNone) return e;
  if (Error e = may_take_name(name, 0); e != Error::kNone) return e;
  // Its owner: the user its (root-owned) creator named, else the root's
  // child is the requester's and another's inherits its parent's. Buffers
  // its parent gives it count for its owner when that is another uid.
  uint32_t owner = program.uid != kNone ? program.uid
                   : caller == kNone    ? uid
                                        : processes_.at(caller).uid;
  uint64_t more_buffers =
      caller == kNone || owner != processes_.at(caller).uid ? claims.buffers : 0;
  if (Error e = uid_accounts_.fits(owner, UidUsage{1, 1, more_buffers}, budget);
      e != Error::kNone) {
    return e;
  }
  // The caller lends it its claims; undone unless the entry is made. Its
  // account stays where it is: the table makes room first.
  processes_.make_room();
  ClaimsAccount::Loan loan = account_of(caller).try_lend(child_cost(claims), free_held(caller));
  if (!loan) return Error::kNoBuffers;
  Result<uint32_t> id = processes_.add(name);
  if (!id.ok()) return id;
  Process &p = processes_.at(id.value());
  p.parent = caller;
  p.origin = Origin::kNucleus;
  p.account = ClaimsAccount(claims);
  p.program = std::move(program);
  // What its program runs as and whose rights open the files it names.
  p.uid = owner;
  p.gid = p.program.gid != kNone ? p.program.gid
          : caller == kNone      ? gid
                                 : processes_.at(caller).gid;
  uid_accounts_.add_entry(owner, true);
  bool moved = move_free_buffers(caller, id.value(), claims.buffers);
  assert(moved);
  (void)moved;
  children_ref(caller).push_back(id.value());
  loan.commit();
  return id;
}

bool Core::held_stopped(uint32_t id) const {
  for (uint32_t i = id; i != kNone; i = processes_.at(i).parent) {
    if (processes_.at(i).stop != StopState::kNone) return true;
  }
  return false;
}

const ProcessCell &Core::cell_of(uint32_t id, ProcessEvent event) const {
  const Process &p = processes_.at(id);
  return process_cell(p.run, p.stop, event);
}

void Core::enter(uint32_t id, const ProcessCell &cell, const wire::Message &words) {
  assert(cell.error == Error::kNone);
  Process &p = processes_.at(id);
  if (cell.stop_answer != kNoStopAnswer && p.stop_buffer != kNone) {
    uint32_t index = std::exchange(p.stop_buffer, kNone);
    if (cell.stop_answer == wire::kResultDummy) {
      dummy_answer(index);
    } else {
      answer_request(index, cell.stop_answer, words);
    }
  }
  if (cell.has(kActLeave)) return;
  Process &q = processes_.at(id);
  q.run = cell.run;
  q.stop = cell.stop;
}

Error Core::start(uint32_t caller, uint32_t id, StartPlan *plan) {
  (void)caller;
  *plan = StartPlan{};
  const ProcessCell &cell = cell_of(id, ProcessEvent::kStart);
  if (cell.error != Error::kNone) return cell.error;
  enter(id, cell);
  plan->resume = cell.has(kActResume);
  plan->spawn = cell.has(kActSpawn);
  return Error::kNone;
}

Result<uint32_t> Core::request_buffer(uint32_t caller, uint64_t handle) const {
  auto index = pool_.resolve_next(handle);
  if (!index) return Error::kBadHandle;
  const Buffer &b = pool_.at(*index);
  if (b.owner != caller || b.state != BufferState::kFree) return Error::kBadHandle;
  return *index;
}

void Core::send_to_nucleus(uint32_t caller, uint32_t index, uint64_t handle) {
  Buffer &b = pool_.at(index);
  b.generation = wire::handle_generation(handle);
  b.words = wire::Message{};
  std::memcpy(b.sender_name, processes_.at(caller).name.c_str(),
              processes_.at(caller).name.size() + 1);
  b.published = false;
  b.sender_gone = false;
  b.receiver = kNone;  // the nucleus
  pool_.apply(index, BufferEvent::kSend);
  pool_.apply(index, BufferEvent::kTake);
  if (tracing_) record(TraceKind::kMessage, index, b.sender_name, wire::kNucleusName);
}

Error Core::begin_stop(uint32_t requester, uint32_t id, uint64_t handle) {
  Result<uint32_t> index = request_buffer(requester, handle);
  if (!index.ok()) return index.error();
  const ProcessCell &cell = cell_of(id, ProcessEvent::kStop);
  if (cell.error != Error::kNone) return cell.error;
  send_to_nucleus(requester, index.value(), handle);
  processes_.at(id).stop_buffer = index.value();
  enter(id, cell);  // stopped already: answered at once
  return Error::kNone;
}

void Core::finish_stop(uint32_t id) {
  const ProcessCell &cell = cell_of(id, ProcessEvent::kStopped);
  if (cell.error == Error::kNone) enter(id, cell);
}

bool Core::fail_stop(uint32_t id, const wire::Message &words) {
  // Back to what runs: the parent is told the stop failed, so nothing of
  // the subtree may stay held by it (a resume is the server's part).
  const ProcessCell &cell = cell_of(id, ProcessEvent::kStopTimeout);
  if (cell.error != Error::kNone) return false;
  enter(id, cell, words);
  return true;
}

void Core::answer_request(uint32_t index, int32_t result, const wire::Message &words) {
  Buffer &b = pool_.at(index);
  pool_.apply(index, BufferEvent::kAnswer);
  b.result = result;
  b.words = words;
  deliver_answer(index);
}

Error Core::modify(uint32_t caller, uint32_t id, const Program *program, const Claims *claims) {
  const ProcessCell &cell = cell_of(id, ProcessEvent::kModify);
  if (cell.error != Error::kNone) return cell.error;
  Process &p = processes_.at(id);
  if (claims != nullptr) {
    if (Error e = check_claims(*claims); e != Error::kNone) return e;
    // The caller lends the new claims in place of the old, and the child's
    // own become them; either is undone unless both hold.
    Claims before = p.account.given();
    ClaimsAccount::Loan lender =
        account_of(caller).try_relend(child_cost(before), child_cost(*claims), free_held(caller));
    ClaimsAccount::Loan holder = p.account.try_resize(*claims, free_held(id));
    if (!lender || !holder) return Error::kNoBuffers;
    // Checked by the loans: free buffers move one way or the other.
    if (claims->buffers > before.buffers) {
      move_free_buffers(caller, id, claims->buffers - before.buffers);
    } else {
      move_free_buffers(id, caller, before.buffers - claims->buffers);
    }
    lender.commit();
    holder.commit();
  }
  if (program != nullptr) {
    Process &c = processes_.at(id);
    c.program = *program;
    if (program->uid != kNone && program->uid != c.uid) {
      // A root-owned requester gave it to another user: the entry and the
      // buffers it holds count for the new owner (what it named stays its
      // namer's).
      auto held = static_cast<int64_t>(c.slots.size());
      uid_accounts_.move_buffers(c.uid, -held);
      uid_accounts_.remove_entry(c.uid, true);
      c.uid = program->uid;
      uid_accounts_.add_entry(c.uid, true);
      uid_accounts_.move_buffers(c.uid, held);
    }
    if (program->gid != kNone) c.gid = program->gid;
  }
  enter(id, cell);
  return Error::kNone;
}

Error Core::remove(uint32_t caller, uint32_t id) {
  account_of(caller).repay(child_cost(processes_.at(id).account.given()));
  std::erase(children_ref(caller), id);
  std::vector<uint32_t> order = subtree(id);
  // Children first, so every buffer of the subtree ends with the caller.
  for (size_t i = order.size(); i > 0; --i) drop_entry(order[i - 1], caller);
  return Error::kNone;
}

void Core::program_started(uint32_t id, int32_t pid) {
  const ProcessCell &cell = cell_of(id, ProcessEvent::kSpawned);
  if (cell.error != Error::kNone) return;
  enter(id, cell);
  Process &p = processes_.at(id);
  p.pid = pid;
  p.exit_kind = wire::ExitKind::kNone;
  p.exit_value = 0;
}

void Core::program_exited(uint32_t id, wire::ExitKind kind, int32_t value) {
  const ProcessCell &cell = cell_of(id, ProcessEvent::kExit);
  if (cell.error != Error::kNone) return;
  end_attachment(id);
  // A stop waiting for it stays: its children may run on, and the server
  // answers it once they are stopped too (at once when there are none).
  enter(id, cell);
  Process &p = processes_.at(id);
  p.exit_kind = kind;
  p.exit_value = value;
  if (!cell.has(kActNotice) || p.parent == kNone) return;
  uint32_t parent = p.parent;
  processes_.at(parent).notices_waiting.push_back({id, p.generation, kind, value});
  pump_notices(parent);
}

// Exit notices (docs/decisions.md 28, 46): the nucleus's notice buffers are
// one reserve shared by every parent and a swap's handover (which alone may
// take the last handover_reserve_ of them), so no parent may
// hold more than notice_limit_ of them unanswered, and a parent that is not
// running holds none. What cannot be sent now waits in the parent's entry,
// in exit order; it is never dropped while the child's entry lives.
void Core::pump_notices(uint32_t parent) {
  Process &p = processes_.at(parent);
  while (!p.notices_waiting.empty() && p.attached && p.notices_out < notice_limit_) {
    const ExitNotice &n = p.notices_waiting.front();
    // A child removed since (by its parent): nothing to tell any more.
    if (!processes_.live(n.child) || processes_.at(n.child).generation != n.generation) {
      p.notices_waiting.pop_front();
      continue;
    }
    if (notice_free_.size() <= handover_reserve_) {
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

void Core::pump_starved() {
  // Each turn either drops a stale entry, sends at least one notice, or
  // leaves a parent that cannot take one now (it is pumped again when it
  // answers one or runs again); a parent re-queues itself only when the
  // reserve ran out, which ends the loop.
  while (notice_free_.size() > handover_reserve_ && !starved_.empty()) {
    auto [id, generation] = starved_.front();
    starved_.pop_front();
    if (!processes_.live(id) || processes_.at(id).generation != generation) continue;
    processes_.at(id).notice_starved = false;
    pump_notices(id);
  }
}

void Core::notice_freed(uint32_t index) {
  notice_free_.push_back(index);
  uint32_t parent = kNone;
  if (auto it = notices_out_.find(index); it != notices_out_.end()) {
    parent = it->second.first;  // a handover's buffer is not in notices_out_
    notices_out_.erase(it);
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
  if (parent != kNone && processes_.live(parent)) pump_notices(parent);
}

void Core::withdraw_notices(uint32_t parent) {
  Process &p = processes_.at(parent);
  std::vector<ExitNotice> back;
  for (uint32_t i = p.inbox_head; i != kNone;) {
    uint32_t index = i;
    i = pool_.at(i).inbox_next;
    auto it = notices_out_.find(index);
    if (it == notices_out_.end() || pool_.at(index).state != BufferState::kQueued) continue;
    back.push_back(it->second.second);
    notices_out_.erase(it);
    inbox_remove(p, index);
    // queued -> answered (its receiver is gone) -> free: back to the reserve.
    pool_.apply(index, BufferEvent::kReceiverGone);
    pool_.apply(index, BufferEvent::kSenderGone);
    Buffer &b = pool_.at(index);
    b.receiver = kNone;
    b.published = false;
    --p.notices_out;
    notice_free_.push_back(index);
  }
  p.notices_waiting.insert(p.notices_waiting.begin(), back.begin(), back.end());
  if (!back.empty()) pump_starved();
}

void Core::send_notice(uint32_t parent, const ExitNotice &n) {
  uint32_t index = notice_free_.back();
  notice_free_.pop_back();
  notices_out_[index] = {parent, n};
  ++processes_.at(parent).notices_out;
  const Process &c = processes_.at(n.child);
  wire::ExitKind kind = n.kind;
  int32_t value = n.value;
  Buffer &b = pool_.at(index);
  b.generation = wire::handle_generation(wire::next_handle(pool_.handle(index)));
  b.words = wire::Message{};
  b.words.word[wire::kNoticeKind] = wire::kNoticeChildExited;
  b.words.word[wire::kNoticeExitKind] = static_cast<uint64_t>(kind);
  b.words.word[wire::kNoticeExitValue] = static_cast<uint32_t>(value);
  b.words.word[wire::kNoticePid] = static_cast<uint32_t>(c.pid);
  std::memcpy(&b.words.word[wire::kNoticeName], c.name.c_str(), c.name.size() + 1);
  std::memcpy(b.sender_name, wire::kNucleusName, sizeof(wire::kNucleusName));
  b.published = false;
  b.sender_gone = false;
  pool_.apply(index, BufferEvent::kSend);
  b.receiver = parent;
  inbox_append(processes_.at(parent), index);
  fifo_push(parent, index);
  if (tracing_) record(TraceKind::kMessage, index, wire::kNucleusName, processes_.at(parent).name);
}

std::vector<uint32_t> Core::subtree(uint32_t id) const {
  std::vector<uint32_t> out{id};
  for (size_t i = 0; i < out.size(); ++i) {
    const auto &kids = processes_.at(out[i]).children;
    out.insert(out.end(), kids.begin(), kids.end());
  }
  return out;
}

wire::ProcessState Core::state(uint32_t id) const {
  const Process &p = processes_.at(id);
  return shown_state(p.run, p.stop);
}

wire::Message Core::info(uint32_t id) const {
  const Process &p = processes_.at(id);
  wire::Message m{};
  m.word[wire::kInfoState] = static_cast<uint64_t>(state(id)) |
                             (static_cast<uint64_t>(p.exit_kind) << 8) |
                             (uint64_t{static_cast<uint32_t>(p.exit_value)} << 32);
  m.word[wire::kInfoPid] = static_cast<uint32_t>(p.pid) | uint64_t{p.uid} << 32;
  const Claims &given = p.account.given();
  const Claims &lent = p.account.lent();
  m.word[wire::kInfoGivenBuffers] = given.buffers;
  m.word[wire::kInfoGivenProcesses] = given.processes | (given.devices << 32);
  m.word[wire::kInfoGivenMemory] = given.memory;
  uint64_t out = 0;
  for (uint32_t index : p.slots) {
    if (pool_.at(index).state != BufferState::kFree) ++out;
  }
  m.word[wire::kInfoUsedBuffers] = out + lent.buffers;
  m.word[wire::kInfoUsedProcesses] = lent.processes | (lent.devices << 32);
  m.word[wire::kInfoUsedMemory] = lent.memory;
  return m;
}

}  // namespace nucleus::daemon
