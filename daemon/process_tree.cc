#include "process_tree.h"

#include <algorithm>
#include <cassert>
#include <string>
#include <utility>

namespace nucleus::daemon {

ProcessTree::ProcessTree(Pool &pool, ProcessTable &processes, Messages &messages, Notices &notices,
                         CoreDevices &devices, CoreReactions &reactions, uint64_t root_processes)
    : pool_(pool),
      processes_(processes),
      messages_(messages),
      notices_(notices),
      devices_(devices),
      reactions_(reactions),
      root_(Claims{pool.free_count(), root_processes, 0, UINT64_MAX, 0}) {}

Error ProcessTree::check_claims(const Claims &claims) {
  if (claims.buffers > wire::kMaxBufferClaim || claims.processes > wire::kMaxProcessClaim ||
      claims.devices > wire::kMaxDeviceClaim || claims.data_bytes > wire::kMaxDataAreaBytes) {
    return Error::kInvalid;
  }
  return Error::kNone;
}

Error ProcessTree::may_take_name(std::string_view name, int32_t peer_pid) {
  // nucleusctl attaches as nucleusctl-<its pid>: a name anyone could take
  // first would lock it out (or let a squatter receive what is sent to it).
  constexpr std::string_view kCtl = "nucleusctl-";
  if (!name.starts_with(kCtl)) return Error::kNone;
  if (peer_pid > 0 && name.substr(kCtl.size()) == std::to_string(peer_pid)) return Error::kNone;
  return Error::kNotPermitted;
}

// ---- refusals that say why (refusal.h) ----

Error ProcessTree::refuse_claims(uint32_t payer, const Claims &amount) {
  uint64_t value = 0;
  wire::Cause cause = account_of(payer).shortfall(amount, free_held(payer), &value);
  // The root's claims are the nucleus's: the pool and the table.
  if (payer == kNone && cause == wire::kCauseClaimBuffers) cause = wire::kCausePoolEmpty;
  if (payer == kNone && cause == wire::kCauseClaimProcesses) cause = wire::kCauseTableFull;
  return note_.refuse(Error::kNoBuffers, cause, value);
}

Error ProcessTree::refuse_uid(uint32_t uid, const UidUsage &more, const UidBudget &budget) {
  uint64_t limit = 0;
  wire::Cause cause = uid_accounts_.over(uid, more, budget, &limit);
  // The limit (< 2^32: the configuration bounds it) and whose uid.
  return note_.refuse(Error::kUidQuota, cause, (limit & UINT32_MAX) | uint64_t{uid} << 32);
}

Error ProcessTree::refuse_name(Error e) {
  return note_.refuse(e, e == Error::kNameTaken ? wire::kCauseNameTaken : wire::kCauseBadName);
}

Error ProcessTree::checked_claims(const Claims &claims) {
  Error e = check_claims(claims);
  return e == Error::kNone ? e : note_.refuse(e, wire::kCauseClaimOverLimit);
}

Error ProcessTree::checked_name(std::string_view name, int32_t peer_pid) {
  Error e = may_take_name(name, peer_pid);
  return e == Error::kNone ? e : note_.refuse(e, wire::kCauseNameHandedOut);
}

// ---- attaching and detaching ----

Result<uint32_t> ProcessTree::attach(std::string_view name, const Claims &claims, uint32_t uid,
                                     uint32_t gid, int32_t pid, const UidBudget &budget) {
  if (Error e = checked_claims(claims); e != Error::kNone) return e;
  if (Error e = checked_name(name, pid); e != Error::kNone) return e;
  uint32_t existing = processes_.find(name);
  if (existing != kNone) {
    // A socket-born entry that died with children: its new run.
    Process &p = processes_.at(existing);
    if (p.origin != Origin::kSocket || p.attached || p.run != RunState::kExited || p.uid != uid ||
        p.gid != gid) {
      return note_.refuse(Error::kNameTaken, wire::kCauseNameTaken);
    }
    attach_run(existing);
    processes_.at(existing).pid = pid;  // its principal's pid (wire::Principal)
    return existing;
  }
  if (Error e = processes_.may_add(name); e != Error::kNone) return refuse_name(e);
  if (Error e = uid_accounts_.fits(uid, UidUsage{1, 1, claims.buffers}, budget);
      e != Error::kNone) {
    return refuse_uid(uid, UidUsage{1, 1, claims.buffers}, budget);
  }
  // The root lends it its claims; undone unless the entry is made.
  ClaimsAccount::Loan loan = root_.try_lend(child_cost(claims), free_held(kNone));
  if (!loan) return refuse_claims(kNone, child_cost(claims));
  Result<uint32_t> id = processes_.add(name);
  if (!id.ok()) return refuse_name(id.error());
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
  p.pid = pid;  // the peer's: what a receiver of its messages is told
  p.origin = Origin::kSocket;
  p.run = RunState::kRunning;
  p.attached = true;
  root_children_.push_back(id.value());
  loan.commit();
  return id;
}

void ProcessTree::attach_run(uint32_t id) {
  Process &p = processes_.at(id);
  p.attached = true;
  p.run = RunState::kRunning;
  messages_.publish_inbox(id);
  // Its children's exits that waited for a run of it.
  notices_.pump(id);
}

void ProcessTree::end_attachment(uint32_t id) {
  Process &p = processes_.at(id);
  if (!p.attached) return;
  p.attached = false;
  messages_.fifo_clear(p);
  devices_.release_all(id);  // a device it reserved is free again
  // Its own buffers: answers it did not take are dropped; ones out at a
  // receiver (or at the nucleus, a stop) come back when answered.
  for (uint32_t index : p.slots) messages_.disown(index);
  // Exit notices it has not received go back to the reserve (a parent that
  // is not running holds none) and wait for its next run.
  notices_.withdraw(id);
  // Messages it received and did not answer: nobody will. Messages still
  // queued wait for the next run.
  messages_.dummy_answer_received(id);
}

void ProcessTree::detach(uint32_t id) {
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

void ProcessTree::adopt_buffer(uint32_t heir, uint32_t index) {
  Buffer &b = pool_.at(index);
  b.owner = heir;
  messages_.disown(index);
  if (heir == kNone) {
    if (b.state == BufferState::kFree) pool_.give_back(index);
    return;
  }
  uid_accounts_.move_buffers(processes_.at(heir).uid, 1);
  processes_.at(heir).slots.push_back(index);
  if (b.state == BufferState::kFree) messages_.mark_slots(heir);
}

void ProcessTree::drop_entry(uint32_t id, uint32_t heir) {
  reactions_.entry_leaving(id);  // a swap of it in progress ends
  for (uint32_t d : devices_.take_named(id)) drop_device(d);
  if (!processes_.at(id).is_device()) devices_.release_all(id);
  Process &p = processes_.at(id);
  messages_.fifo_clear(p);
  p.attached = false;
  enter(id, cell_of(id, ProcessEvent::kRemove));  // a stop in progress: a dummy answer
  // Messages queued to it or received by it: dummy answers to their senders.
  messages_.dummy_answer_inbox(id);
  std::vector<uint32_t> slots;
  slots.swap(p.slots);
  if (charged(p)) {
    uid_accounts_.move_buffers(p.uid, -static_cast<int64_t>(slots.size()));
    uid_accounts_.remove_entry(p.uid, !p.is_device());
  }
  for (uint32_t index : slots) adopt_buffer(heir, index);
  processes_.remove(id);
}

// ---- children and claims ----

std::vector<uint32_t> &ProcessTree::children_ref(uint32_t parent) {
  return parent == kNone ? root_children_ : processes_.at(parent).children;
}

const std::vector<uint32_t> &ProcessTree::children_of(uint32_t caller) const {
  return caller == kNone ? root_children_ : processes_.at(caller).children;
}

Result<uint32_t> ProcessTree::child(uint32_t caller, std::string_view name) const {
  uint32_t id = processes_.find(name);
  if (id == kNone || processes_.at(id).parent != caller || processes_.at(id).is_device()) {
    return Error::kNoChild;
  }
  return id;
}

uint32_t ProcessTree::free_held(uint32_t id) const {
  if (id == kNone) return pool_.free_count();
  uint32_t n = 0;
  for (uint32_t index : processes_.at(id).slots) {
    if (pool_.at(index).state == BufferState::kFree) ++n;
  }
  return n;
}

bool ProcessTree::move_free_buffers(uint32_t from, uint32_t to, uint64_t count) {
  if (count == 0) return true;
  if (free_held(from) < count) return false;
  // Its owner's count follows the buffers (uid_accounts.h).
  auto delta = static_cast<int64_t>(count);
  if (from == kNone) {  // out of the root's unowned buffers
    if (!pool_.take(static_cast<uint32_t>(count), to, &processes_.at(to).slots)) return false;
    uid_accounts_.move_buffers(processes_.at(to).uid, delta);
    messages_.mark_slots(to);
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
    messages_.mark_slots(from);
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
  messages_.mark_slots(from);
  messages_.mark_slots(to);
  return true;
}

Owner ProcessTree::child_owner(uint32_t caller, const Program &program, Owner root_child) const {
  return owner_named(program, caller == kNone ? root_child : owner_of(processes_.at(caller)));
}

Result<uint32_t> ProcessTree::create(uint32_t caller, std::string_view name, Program program,
                                     const Claims &claims, uint32_t uid, uint32_t gid,
                                     const UidBudget &budget) {
  if (Error e = checked_claims(claims); e != Error::kNone) return e;
  if (Error e = checked_name(name, 0); e != Error::kNone) return e;
  // The name before the claims: a name taken is -EEXIST whatever is left.
  if (Error e = processes_.may_add(name); e != Error::kNone) return refuse_name(e);
  // Buffers its parent gives it count for its owner when that is another
  // uid.
  Owner owner = child_owner(caller, program, Owner{uid, gid});
  uint64_t more_buffers =
      caller == kNone || owner.uid != processes_.at(caller).uid ? claims.buffers : 0;
  if (Error e = uid_accounts_.fits(owner.uid, UidUsage{1, 1, more_buffers}, budget);
      e != Error::kNone) {
    return refuse_uid(owner.uid, UidUsage{1, 1, more_buffers}, budget);
  }
  // The caller lends it its claims; undone unless the entry is made. Its
  // account stays where it is: the table makes room first.
  processes_.make_room();
  ClaimsAccount::Loan loan = account_of(caller).try_lend(child_cost(claims), free_held(caller));
  if (!loan) return refuse_claims(caller, child_cost(claims));
  Result<uint32_t> id = processes_.add(name);
  if (!id.ok()) return refuse_name(id.error());
  Process &p = processes_.at(id.value());
  p.parent = caller;
  p.origin = Origin::kNucleus;
  p.account = ClaimsAccount(claims);
  p.program = std::move(program);
  // What its program runs as and whose rights open the files it names.
  p.uid = owner.uid;
  p.gid = owner.gid;
  uid_accounts_.add_entry(owner.uid, true);
  bool moved = move_free_buffers(caller, id.value(), claims.buffers);
  assert(moved);
  (void)moved;
  children_ref(caller).push_back(id.value());
  loan.commit();
  return id;
}

// ---- the state table ----

bool ProcessTree::held_stopped(uint32_t id) const {
  for (uint32_t i = id; i != kNone; i = processes_.at(i).parent) {
    if (processes_.at(i).stop != StopState::kNone) return true;
  }
  return false;
}

const ProcessCell &ProcessTree::cell_of(uint32_t id, ProcessEvent event) const {
  const Process &p = processes_.at(id);
  return process_cell(p.run, p.stop, event);
}

void ProcessTree::enter(uint32_t id, const ProcessCell &cell, const wire::Message &words) {
  assert(cell.error == Error::kNone);
  Process &p = processes_.at(id);
  if (cell.stop_answer != kNoStopAnswer && p.stop_buffer != kNone) {
    uint32_t index = std::exchange(p.stop_buffer, kNone);
    if (cell.stop_answer == wire::kResultDummy) {
      messages_.dummy_answer(index);
    } else {
      messages_.answer(index, cell.stop_answer, words, kNone);
    }
  }
  if (cell.has(kActLeave)) return;
  Process &q = processes_.at(id);
  q.run = cell.run;
  q.stop = cell.stop;
}

Error ProcessTree::start(uint32_t caller, uint32_t id, StartPlan *plan) {
  (void)caller;
  *plan = StartPlan{};
  const ProcessCell &cell = cell_of(id, ProcessEvent::kStart);
  if (cell.error != Error::kNone) return cell.error;
  enter(id, cell);
  plan->resume = cell.has(kActResume);
  plan->spawn = cell.has(kActSpawn);
  return Error::kNone;
}

bool ProcessTree::start_runs_program(uint32_t id) const {
  const ProcessCell &cell = cell_of(id, ProcessEvent::kStart);
  return cell.error == Error::kNone && cell.has(kActSpawn);
}

Error ProcessTree::begin_stop(uint32_t requester, uint32_t id, uint64_t handle) {
  Result<uint32_t> index = messages_.request_buffer(requester, handle);
  if (!index.ok()) return index.error();
  const ProcessCell &cell = cell_of(id, ProcessEvent::kStop);
  if (cell.error != Error::kNone) return cell.error;
  messages_.send_to_nucleus(requester, index.value(), handle);
  processes_.at(id).stop_buffer = index.value();
  enter(id, cell);  // stopped already: answered at once
  return Error::kNone;
}

void ProcessTree::finish_stop(uint32_t id) {
  const ProcessCell &cell = cell_of(id, ProcessEvent::kStopped);
  if (cell.error == Error::kNone) enter(id, cell);
}

bool ProcessTree::fail_stop(uint32_t id, const wire::Message &words) {
  // Back to what runs: the parent is told the stop failed, so nothing of
  // the subtree may stay held by it (a resume is the server's part).
  const ProcessCell &cell = cell_of(id, ProcessEvent::kStopTimeout);
  if (cell.error != Error::kNone) return false;
  enter(id, cell, words);
  return true;
}

Error ProcessTree::modify(uint32_t caller, uint32_t id, const Program *program,
                          const Claims *claims) {
  const ProcessCell &cell = cell_of(id, ProcessEvent::kModify);
  if (cell.error != Error::kNone) return cell.error;
  Process &p = processes_.at(id);
  if (claims != nullptr) {
    if (Error e = checked_claims(*claims); e != Error::kNone) return e;
    // The caller lends the new claims in place of the old, and the child's
    // own become them; either is undone unless both hold.
    Claims before = p.account.given();
    ClaimsAccount::Loan lender =
        account_of(caller).try_relend(child_cost(before), child_cost(*claims), free_held(caller));
    ClaimsAccount::Loan holder = p.account.try_resize(*claims, free_held(id));
    if (!lender) {
      // What the caller would lend beyond what it lends now.
      Claims more = child_cost(*claims);
      Claims old = child_cost(before);
      auto growth = [](uint64_t from, uint64_t to) { return to > from ? to - from : 0; };
      more = Claims{growth(old.buffers, more.buffers), growth(old.processes, more.processes),
                    growth(old.memory, more.memory), growth(old.devices, more.devices), 0};
      return refuse_claims(caller, more);
    }
    if (!holder) return note_.refuse(Error::kNoBuffers, wire::kCauseClaimsInUse);
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
    Owner next = owner_named(*program, owner_of(c));
    if (next.uid != c.uid) {
      // The program names another user (the decoder checked the owner
      // rule): the entry and the buffers it holds count for the new owner
      // (what it named stays its namer's).
      auto held = static_cast<int64_t>(c.slots.size());
      uid_accounts_.move_buffers(c.uid, -held);
      uid_accounts_.remove_entry(c.uid, true);
      c.uid = next.uid;
      uid_accounts_.add_entry(c.uid, true);
      uid_accounts_.move_buffers(c.uid, held);
    }
    c.gid = next.gid;
  }
  enter(id, cell);
  return Error::kNone;
}

Error ProcessTree::remove(uint32_t caller, uint32_t id) {
  account_of(caller).repay(child_cost(processes_.at(id).account.given()));
  std::erase(children_ref(caller), id);
  std::vector<uint32_t> order = subtree(id);
  // Children first, so every buffer of the subtree ends with the caller.
  for (size_t i = order.size(); i > 0; --i) drop_entry(order[i - 1], caller);
  return Error::kNone;
}

void ProcessTree::program_started(uint32_t id, int32_t pid) {
  const ProcessCell &cell = cell_of(id, ProcessEvent::kSpawned);
  if (cell.error != Error::kNone) return;
  enter(id, cell);
  Process &p = processes_.at(id);
  p.pid = pid;
  p.exit_kind = wire::ExitKind::kNone;
  p.exit_value = 0;
}

void ProcessTree::program_exited(uint32_t id, wire::ExitKind kind, int32_t value) {
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
  notices_.child_exited(p.parent, ExitNotice{id, p.generation, kind, value});
}

// ---- devices' entries ----

Result<uint32_t> ProcessTree::create_device(uint32_t caller, std::string_view name,
                                            wire::DeviceKind kind, const UidBudget &budget) {
  if (Error e = checked_name(name, 0); e != Error::kNone) return e;
  // The name before the claim: a name taken (by another, or a device the
  // caller named before it restarted) is -EEXIST, not its devices claim
  // used up (issue 21).
  if (Error e = processes_.may_add(name); e != Error::kNone) return refuse_name(e);
  // The caller's account pays one device claim; undone unless the entry is
  // made. Its account stays where it is: the table makes room first.
  processes_.make_room();
  ClaimsAccount::Loan loan = account_of(caller).try_lend(kDeviceCost, 0);
  if (!loan) return refuse_claims(caller, kDeviceCost);
  uint32_t owner = 0, group = 0;
  if (caller != kNone) {
    const Process &c = processes_.at(caller);
    owner = c.uid;
    group = c.gid;
    if (Error e = uid_accounts_.fits(owner, UidUsage{0, 1, 0}, budget); e != Error::kNone) {
      return refuse_uid(owner, UidUsage{0, 1, 0}, budget);
    }
  }
  Result<uint32_t> id = processes_.add(name);
  if (!id.ok()) return refuse_name(id.error());
  Process &d = processes_.at(id.value());
  d.uid = owner;  // its namer's owner (the root's own devices: nobody's)
  d.gid = group;
  if (caller != kNone) uid_accounts_.add_entry(owner, false);
  d.parent = caller;
  d.origin = Origin::kDevice;
  d.device_kind = kind;
  d.run = RunState::kRunning;
  d.attached = true;  // its queue is served by nucleusd
  devices_.named(caller, id.value());
  loan.commit();
  return id;
}

Error ProcessTree::remove_device(uint32_t caller, uint32_t id) {
  account_of(caller).repay(kDeviceCost);
  devices_.unnamed(caller, id);
  drop_device(id);
  return Error::kNone;
}

void ProcessTree::drop_device(uint32_t id) {
  devices_.dropped(id);
  drop_entry(id, kNone);  // a device holds no buffers of its own
}

// ---- what the server and nucleusctl read ----

std::vector<uint32_t> ProcessTree::subtree(uint32_t id) const {
  std::vector<uint32_t> out{id};
  for (size_t i = 0; i < out.size(); ++i) {
    const auto &kids = processes_.at(out[i]).children;
    out.insert(out.end(), kids.begin(), kids.end());
  }
  return out;
}

wire::ProcessState ProcessTree::state(uint32_t id) const {
  const Process &p = processes_.at(id);
  return shown_state(p.run, p.stop);
}

wire::Message ProcessTree::info(uint32_t id) const {
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
