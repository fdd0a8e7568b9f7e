// The nucleus's rules without I/O: the pool, the queues and the process
// table (a tree), the six message primitives and process control on them.
// The decoder (requests.h) calls these for the requests it copied out of
// channels; nucleusd's other objects do the Linux side (programs, cgroups,
// signals, device files); tests call them directly.
//
// Every method takes the calling process's id and arguments already copied
// out of its channel; it checks them (roles, states, generations, claims) and
// either changes nothing and returns an Error, or applies the change whole.
// Events for a process (a message to it, an answer to it) go into that
// process's fifo while it is attached; the server publishes them to its
// event ring (next_event / pop_event) for the processes take_dirty() names.
// A process in the table but not attached keeps its queue: the messages are
// published when a run of it attaches. What the server takes each turn
// (take_*) comes out by value; it changes the Core only through its
// methods.
//
// Claims (docs/decisions.md, claims.h): each entry holds its buffer claim
// as buffers of the pool (slots); the root (the nucleus) holds the unowned
// ones. Every entry and the root have a ClaimsAccount: a parent's claims pay
// for its children's, so creating a child lends the child's cost out of the
// parent's account and moves buffers out of the parent's free ones.
// Removing a child repays it and moves everything of its subtree back.
//
// Bounds (DESIGN.md, "Principals, privilege and bounds"): what each uid
// owns is counted in UidAccounts and checked against the UidBudget the
// server passes (unbounded for operators) when an entry is added; exit
// notices out per parent are bounded by set_notice_limit.
//
// The Core owns the pool and the table, and the parts that own the rest:
// - Messages (messages.h): the primitives, each process's queues, and what
//   the server must publish or write each turn;
// - Notices (notices.h): the nucleus's own messages (exit notices, a swap's
//   handover) and the reserve of buffers they travel on;
// - CoreDevices (core_devices.h): the devices, their reservers and their queues;
// - ProcessTree (process_tree.h): entries coming and going, claims, the
//   state table, what each uid owns;
// - CoreSwaps (core_swaps.h): hot swap's bookkeeping;
// - Trace (trace.h): what the monitor sees.
// Its methods hand each call to the part that owns what it changes; where
// one part's step needs another built on it (an answered notice, an entry
// leaving during a swap), the Core passes it on (CoreReactions, core.cc).
// The parts hold references to each other, so a Core never moves.
//
// Threading: nucleusd's loop thread only.
#pragma once

#include <nucleus/wire.h>

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "claims.h"
#include "core_devices.h"
#include "core_reactions.h"
#include "core_states.h"
#include "core_swaps.h"
#include "error.h"
#include "messages.h"
#include "notices.h"
#include "pool.h"
#include "process_table.h"
#include "process_tree.h"
#include "trace.h"
#include "uid_accounts.h"

namespace nucleus::daemon {

class Core : private CoreReactions {
 public:
  // `notice_buffers` of the pool are kept by the nucleus for exit notices.
  explicit Core(uint32_t pool_buffers, uint32_t notice_buffers = 0,
                uint64_t root_processes = UINT32_MAX);
  Core(const Core &) = delete;
  Core &operator=(const Core &) = delete;
  ~Core() = default;

  // A process attaching through the socket: a child of the root with
  // `claims` taken from the root's. A socket-born entry that died leaving
  // children behind (state exited) is attached again under its name by the
  // same uid. `pid` is the peer's (SO_PEERCRED; 0: none): only it may take
  // the name nucleusd hands out to it (may_take_name). kUidQuota when the
  // uid would own more than `budget` allows.
  Result<uint32_t> attach(std::string_view name, const Claims &claims, uint32_t uid = 0,
                          uint32_t gid = 0, int32_t pid = 0,
                          const UidBudget &budget = UidBudget::unbounded()) {
    return tree_.attach(name, claims, uid, gid, pid, budget);
  }
  Result<uint32_t> attach(std::string_view name, uint32_t claim_buffers) {
    return attach(name, Claims{claim_buffers, 0, 0});
  }
  // A run of an entry the nucleus started attaches (its bound connection).
  void attach_run(uint32_t id) { tree_.attach_run(id); }
  // The channel is gone. Messages it received and did not answer get dummy
  // answers; messages queued to it stay queued; its buffers out are
  // orphaned (back to its claim when answered, the answer discarded). A
  // socket-born entry without children leaves the table.
  void detach(uint32_t id) { tree_.detach(id); }

  // `lend`: a range of the sender's data area the decoder checked
  // (docs/data-and-regret.md).
  Error send_message(uint32_t id, uint64_t handle, std::string_view receiver,
                     const wire::Message &message, const Lend &lend = {}) {
    return messages_.send_message(id, handle, receiver, message, lend);
  }
  // The sender withdraws a message not yet taken (Messages::regret_message):
  // the receiver to tell, or kNone.
  Result<uint32_t> regret_message(uint32_t id, uint64_t handle) {
    return messages_.regret_message(id, handle);
  }
  // A receive window's questions (Messages::head_read_lend, holds).
  std::optional<LentRange> head_read_lend(uint32_t id, uint64_t *handle) const {
    return messages_.head_read_lend(id, handle);
  }
  bool holds(uint32_t id, uint64_t handle) const { return messages_.holds(id, handle); }
  // The live lend of a message `id` holds (Messages::lent_range).
  Result<LentRange> lent_range(uint32_t id, uint64_t handle, wire::CopyDirection direction) const {
    return messages_.lent_range(id, handle, direction);
  }
  Error get_event(uint32_t id, uint64_t handle) { return messages_.get_event(id, handle); }
  Error send_answer(uint32_t id, uint64_t handle, int32_t result, const wire::Message &answer,
                    uint32_t copied = 0) {
    return messages_.send_answer(id, handle, result, answer, copied);
  }
  Error release_answer(uint32_t id, uint64_t handle) {
    return messages_.release_answer(id, handle);
  }

  // ---- process control (ProcessTree); `id` is the caller's child ----
  // Each step is a cell of the state table (core_states.h).
  // `caller` kNone is the root (an operator acting for it, the boot
  // section): its claims are the pool's unowned buffers and the table.
  // The caller's child of that name; kNoChild for any other name, so a
  // refusal does not tell whether the name exists.
  Result<uint32_t> child(uint32_t caller, std::string_view name) const {
    return tree_.child(caller, name);
  }
  // The owner a child `caller` creates with `program` gets (the owner rule
  // is checked on it: owner_rule.h): the user and group the program names,
  // each else `root_child`'s for a child of the root (whoever acts for the
  // root), else its parent's.
  Owner child_owner(uint32_t caller, const Program &program, Owner root_child) const {
    return tree_.child_owner(caller, program, root_child);
  }
  // `uid`/`gid` own a child of the root; another's children inherit their
  // parent's (child_owner). `budget` bounds the child's owner (kUidQuota).
  Result<uint32_t> create(uint32_t caller, std::string_view name, Program program,
                          const Claims &claims, uint32_t uid = 0, uint32_t gid = 0,
                          const UidBudget &budget = UidBudget::unbounded()) {
    return tree_.create(caller, name, std::move(program), claims, uid, gid, budget);
  }
  Error start(uint32_t caller, uint32_t id, StartPlan *plan) {
    return tree_.start(caller, id, plan);
  }
  // A start of `id` now would run its program (its first start, or one
  // after it exited), not only resume it: the owner rule is then checked.
  bool start_runs_program(uint32_t id) const { return tree_.start_runs_program(id); }
  // Sends `handle` (next use of a free buffer of `requester`: the caller,
  // or whoever acts for it) to the nucleus; answered to the requester by
  // finish_stop, or at once when nothing of it can run.
  Error begin_stop(uint32_t requester, uint32_t id, uint64_t handle) {
    return tree_.begin_stop(requester, id, handle);
  }
  // Its subtree is really stopped: the stop is answered.
  void finish_stop(uint32_t id) { tree_.finish_stop(id); }
  // A stop in progress could not complete (its deadline passed): it is
  // undone (the entry is no longer stopping; the server resumes what it
  // stopped) and answered MALFUNCTION with `words`. False, and nothing
  // changes, when no stop is in progress.
  bool fail_stop(uint32_t id, const wire::Message &words) { return tree_.fail_stop(id, words); }
  Error modify(uint32_t caller, uint32_t id, const Program *program, const Claims *claims) {
    return tree_.modify(caller, id, program, claims);
  }
  // Removes the child and its subtree from the table; the server has ended
  // their Linux processes and channels first.
  Error remove(uint32_t caller, uint32_t id) { return tree_.remove(caller, id); }
  void program_started(uint32_t id, int32_t pid) { tree_.program_started(id, pid); }
  // The program of `id` ended: state exited and a notice to its parent.
  void program_exited(uint32_t id, wire::ExitKind kind, int32_t value) {
    tree_.program_exited(id, kind, value);
  }

  // Claims within the limits any claim can have (kInvalid otherwise).
  static Error check_claims(const Claims &claims) { return ProcessTree::check_claims(claims); }
  // Names nucleusd hands out are not for anyone to take: `nucleusctl-<pid>`
  // only by the peer with that pid (`peer_pid`; 0: a created child or a
  // device, which never may). kNotPermitted otherwise.
  static Error may_take_name(std::string_view name, int32_t peer_pid) {
    return ProcessTree::may_take_name(name, peer_pid);
  }

  // Exit notices out (sent, unanswered) per parent; the rest wait in the
  // table (Process::notices_waiting) and are sent as the parent answers.
  void set_notice_limit(uint32_t per_parent) { notices_.set_limit(per_parent); }

  // ---- external processes (CoreDevices; their entries: ProcessTree) ----
  // Names a device; `caller` kNone is the root (the configuration). Costs
  // one of the caller's devices claim and one of its owner's names
  // (`budget`, kUidQuota).
  Result<uint32_t> create_device(uint32_t caller, std::string_view name, wire::DeviceKind kind,
                                 const UidBudget &budget = UidBudget::unbounded()) {
    return tree_.create_device(caller, name, kind, budget);
  }
  // A device the caller named; kNoChild for any other name.
  Result<uint32_t> own_device(uint32_t caller, std::string_view name) const {
    return devices_.own_device(caller, name);
  }
  // Takes the device out of the table: dummy answers for every message
  // queued to it or taken by it and not answered.
  Error remove_device(uint32_t caller, uint32_t id) { return tree_.remove_device(caller, id); }
  // Any device by name: kNoChild when there is none, kInvalid when the name
  // is an internal process.
  Result<uint32_t> find_device(std::string_view name) const { return devices_.find_device(name); }
  // Needs the right to the device: the caller named it, is an ancestor of
  // its namer or a descendant of it (the namer lent it down its subtree), or
  // is an operator (`as_operator`: acting for the root, every namer's
  // ancestor). The root's own devices are only operators'. kNotPermitted
  // otherwise.
  Error reserve(uint32_t caller, uint32_t device, bool as_operator = false) {
    return devices_.reserve(caller, device, as_operator);
  }
  Error release(uint32_t caller, uint32_t device) { return devices_.release(caller, device); }
  // Takes the next message queued to a device (it is then received by the
  // device and answered with send_answer). A message from anyone but the
  // reserver of a reserved device is answered rejected here and skipped.
  bool take_device_message(uint32_t device, DeviceMessage *out) {
    return devices_.take_device_message(device, out);
  }
  // CoreDevices that left the table since the last call.
  std::vector<uint32_t> take_removed_devices() { return devices_.take_removed(); }
  const std::vector<uint32_t> &devices() const { return devices_.list(); }

  // ---- hot swap (CoreSwaps, docs/hot-swap.md) ----
  // Takes `handle` (next use of a free buffer of `requester`) as the
  // request to swap `id` (a child of the caller or of whoever the requester
  // acts for) to `program`, and adds the hidden entry of the new program
  // (returned). kInvalid unless `id` runs attached and is not stopped;
  // kBusy while it is being swapped.
  Result<uint32_t> begin_swap(uint32_t requester, uint32_t id, uint64_t handle, Program program) {
    return swaps_.begin_swap(requester, id, handle, std::move(program));
  }
  // Sends the handover message from the nucleus to `id` (kBusy: no notice
  // buffer is free).
  Error request_handover(uint32_t id, uint64_t data_bytes) {
    return swaps_.request_handover(id, data_bytes);
  }
  // Handovers answered since the last call.
  std::vector<HandoverAnswer> take_handovers() { return swaps_.take_handovers(); }
  // The new program takes over `id`: its program and pid become the entry's,
  // its queue is to be published again from the start, the hidden entry
  // leaves the table. Returns what the new program inherits.
  Inheritance commit_swap(uint32_t id, int32_t pid) { return swaps_.commit_swap(id, pid); }
  // The swap of `id` ends: its request is answered (result, words), the
  // hidden entry (if still there) leaves the table and `id` is served again.
  void end_swap(uint32_t id, int32_t result, const wire::Message &words) {
    swaps_.end_swap(id, result, words);
  }
  // The event record of an inherited buffer.
  wire::Event inherit_event(uint32_t index, int32_t kind) const {
    return swaps_.inherit_event(index, kind);
  }

  // `id` and every descendant, parents before children.
  std::vector<uint32_t> subtree(uint32_t id) const { return tree_.subtree(id); }
  // Stopped by its own stop or an ancestor's.
  bool held_stopped(uint32_t id) const { return tree_.held_stopped(id); }
  wire::ProcessState state(uint32_t id) const { return tree_.state(id); }
  // The kGetProcess reply words.
  wire::Message info(uint32_t id) const { return tree_.info(id); }
  const std::vector<uint32_t> &children_of(uint32_t caller) const {
    return tree_.children_of(caller);
  }
  // Processes whose slot table must be written since the last call: the
  // caller writes them (each is named again when its claim changes again).
  std::vector<uint32_t> take_slot_changes() { return messages_.take_slot_changes(); }

  // The first event waiting to be published to `id`, as an event record.
  bool next_event(uint32_t id, wire::Event *out) const { return messages_.next_event(id, out); }
  void pop_event(uint32_t id) { messages_.pop_event(id); }
  // Processes whose fifo got entries since the last call: the caller
  // publishes them (each is named again when its fifo gets more).
  std::vector<uint32_t> take_dirty() { return messages_.take_dirty(); }

  ProcessStats stats(uint32_t id) const { return messages_.stats(id); }

  // The nucleus's principal (wire::Principal) in what it sends: nucleusd's
  // uid, gid and pid, set by the server at start.
  void set_nucleus_principal(uint32_t uid, uint32_t gid, int32_t pid) {
    messages_.set_nucleus_principal(uid, gid, pid);
  }
  const wire::Principal &nucleus_principal() const { return messages_.nucleus_principal(); }

  // ---- monitor: message events while someone watches (inspector.cc) ----
  // Off: the events kept are dropped (the count of those not kept stays).
  void set_tracing(bool on) { trace_.set_on(on); }
  bool tracing() const { return trace_.on(); }
  // Events since the last take_trace(); at most kMaxTrace are kept between
  // calls, the rest counted in trace_dropped().
  const std::vector<TraceEvent> &trace() const { return trace_.events(); }
  uint64_t trace_dropped() const { return trace_.dropped(); }
  using TraceBatch = nucleus::daemon::TraceBatch;
  TraceBatch take_trace() { return trace_.take(); }
  const Pool &pool() const { return pool_; }
  uint32_t notice_free() const { return notices_.free_count(); }
  const Claims &root_lent() const { return tree_.account(kNone).lent(); }
  // The claims account of `id`, or the root's (kNone).
  const ClaimsAccount &account(uint32_t id) const { return tree_.account(id); }
  const UidAccounts &uid_accounts() const { return tree_.uid_accounts(); }
  // Why the last refusal of `e` by attach, create, modify or
  // create_device was made (refusal.h), forgotten.
  Refusal take_refusal(Error e) { return tree_.take_refusal(e); }
  const ProcessTable &processes() const { return processes_; }
  // A malformed request of `id`'s: how many it has made now.
  uint64_t count_protocol_error(uint32_t id) { return ++processes_.at(id).protocol_errors; }

 private:
  void nucleus_buffer_answered(uint32_t index) override;
  void entry_leaving(uint32_t id) override;

  // In this order: each part is built on those before it, and the tree's
  // root account takes the pool's buffers the notice reserve left.
  Pool pool_;
  ProcessTable processes_;
  Trace trace_;
  Messages messages_;
  Notices notices_;
  CoreDevices devices_;
  ProcessTree tree_;
  CoreSwaps swaps_;
};

}  // namespace nucleus::daemon
