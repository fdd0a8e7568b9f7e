// The nucleus's rules without I/O: the pool, the queues and the process
// table (a tree), the six message primitives and process control on them.
// The server decodes requests from channels, calls these, and does the Linux
// side (programs, cgroups, signals); tests call them directly.
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
// Threading: nucleusd's single thread only.
#pragma once

#include <nucleus/wire.h>

#include <cstdint>
#include <deque>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core_states.h"
#include "error.h"
#include "pool.h"
#include "process_table.h"
#include "uid_accounts.h"

namespace nucleus::daemon {

struct ProcessStats {
  uint32_t claim_buffers = 0;
  uint32_t claim_used = 0;
  uint32_t queue_length = 0;
};

// What start_process asks the server to do.
struct StartPlan {
  bool resume = false;  // the subtree was stopped: let it run
  bool spawn = false;   // run the program (first start, or after it exited)
};

inline constexpr uint32_t kNoticeOwner = kNone - 1;  // owner of the nucleus's notice buffers

// A message a device took from its queue (Core::take_device_message).
struct DeviceMessage {
  uint64_t handle = 0;
  uint32_t sender = kNone;  // the process that owns the buffer (kNone: gone)
  uint32_t sender_generation = 0;
  wire::Message words{};
};

// What the monitor sees (Core::trace): a message sent, an answer delivered
// (by its receiver, or a dummy answer by the nucleus).
enum class TraceKind : uint8_t { kMessage, kAnswer };
struct TraceEvent {
  TraceKind kind = TraceKind::kMessage;
  int32_t result = 0;  // an answer's
  uint64_t handle = 0;
  char from[wire::kNameBytes] = {};
  char to[wire::kNameBytes] = {};
};
inline constexpr size_t kMaxTrace = 65536;

// The old OS answered the nucleus's handover message (Core::handovers).
struct HandoverAnswer {
  uint32_t id = kNone;
  uint32_t generation = 0;
  int32_t result = 0;
  wire::Message words{};
};

// What the new program of a swap takes over besides the queue (buffer
// indices): messages received and not answered, in arrival order, and
// buffers of the claim that are out.
struct Inheritance {
  std::vector<uint32_t> received;
  std::vector<uint32_t> out;
};

class Core {
 public:
  // `notice_buffers` of the pool are kept by the nucleus for exit notices.
  explicit Core(uint32_t pool_buffers, uint32_t notice_buffers = 0,
                uint64_t root_processes = UINT32_MAX);

  // A process attaching through the socket: a child of the root with
  // `claims` taken from the root's. A socket-born entry that died leaving
  // children behind (state exited) is attached again under its name by the
  // same uid. `pid` is the peer's (SO_PEERCRED; 0: none): only it may take
  // the name nucleusd hands out to it (may_take_name). kUidQuota when the
  // uid would own more than `budget` allows.
  Result<uint32_t> attach(std::string_view name, const Claims &claims, uint32_t uid = 0,
                          uint32_t gid = 0, int32_t pid = 0,
                          const UidBudget &budget = UidBudget::unbounded());
  Result<uint32_t> attach(std::string_view name, uint32_t claim_buffers) {
    return attach(name, Claims{claim_buffers, 0, 0});
  }
  // A run of an entry the nucleus started attaches (its bound connection).
  void attach_run(uint32_t id);
  // The channel is gone. Messages it received and did not answer get dummy
  // answers; messages queued to it stay queued; its buffers out are
  // orphaned (back to its claim when answered, the answer discarded). A
  // socket-born entry without children leaves the table.
  void detach(uint32_t id);

  Error send_message(uint32_t id, uint64_t handle, std::string_view receiver,
                     const wire::Message &message);
  Error get_event(uint32_t id, uint64_t handle);
  Error send_answer(uint32_t id, uint64_t handle, int32_t result, const wire::Message &answer);
  Error release_answer(uint32_t id, uint64_t handle);

  // ---- process control (core_tree.cc); `id` is the caller's child ----
  // Each step is a cell of the state table (core_states.h).
  // `caller` kNone is the root (an operator acting for it, the boot
  // section): its claims are the pool's unowned buffers and the table.
  // The caller's child of that name; kNoChild for any other name, so a
  // refusal does not tell whether the name exists.
  Result<uint32_t> child(uint32_t caller, std::string_view name) const;
  // `uid`/`gid` own a child of the root; another's children inherit their
  // parent's. `budget` bounds the child's owner (kUidQuota).
  Result<uint32_t> create(uint32_t caller, std::string_view name, Program program,
                          const Claims &claims, uint32_t uid = 0, uint32_t gid = 0,
                          const UidBudget &budget = UidBudget::unbounded());
  Error start(uint32_t caller, uint32_t id, StartPlan *plan);
  // Sends `handle` (next use of a free buffer of `requester`: the caller,
  // or whoever acts for it) to the nucleus; answered to the requester by
  // finish_stop, or at once when nothing of it can run.
  Error begin_stop(uint32_t requester, uint32_t id, uint64_t handle);
  // Its subtree is really stopped: the stop is answered.
  void finish_stop(uint32_t id);
  // A stop in progress could not complete (its deadline passed): it is
  // undone (the entry is no longer stopping; the server resumes what it
  // stopped) and answered MALFUNCTION with `words`. False, and nothing
  // changes, when no stop is in progress.
  bool fail_stop(uint32_t id, const wire::Message &words);
  Error modify(uint32_t caller, uint32_t id, const Program *program, const Claims *claims);
  // Removes the child and its subtree from the table; the server has ended
  // their Linux processes and channels first.
  Error remove(uint32_t caller, uint32_t id);
  void program_started(uint32_t id, int32_t pid);
  // The program of `id` ended: state exited and a notice to its parent.
  void program_exited(uint32_t id, wire::ExitKind kind, int32_t value);

  // Claims within the limits any claim can have (kInvalid otherwise).
  static Error check_claims(const Claims &claims);
  // Names nucleusd hands out are not for anyone to take: `nucleusctl-<pid>`
  // only by the peer with that pid (`peer_pid`; 0: a created child or a
  // device, which never may). kNotPermitted otherwise.
  static Error may_take_name(std::string_view name, int32_t peer_pid);

  // Exit notices out (sent, unanswered) per parent; the rest wait in the
  // table (Process::notices_waiting) and are sent as the parent answers.
  void set_notice_limit(uint32_t per_parent);

  // ---- external processes (core_devices.cc) ----
  // Names a device; `caller` kNone is the root (the configuration). Costs
  // one of the caller's devices claim and one of its owner's names
  // (`budget`, kUidQuota).
  Result<uint32_t> create_device(uint32_t caller, std::string_view name, wire::DeviceKind kind,
                                 const UidBudget &budget = UidBudget::unbounded());
  // A device the caller named; kNoChild for any other name.
  Result<uint32_t> own_device(uint32_t caller, std::string_view name) const;
  // Takes the device out of the table: dummy answers for every message
  // queued to it or taken by it and not answered.
  Error remove_device(uint32_t caller, uint32_t id);
  // Any device by name: kNoChild when there is none, kInvalid when the name
  // is an internal process.
  Result<uint32_t> find_device(std::string_view name) const;
  // Needs the right to the device: the caller named it, is an ancestor of
  // its namer or a descendant of it (the namer lent it down its subtree), or
  // is an operator (`as_operator`: acting for the root, every namer's
  // ancestor). The root's own devices are only operators'. kNotPermitted
  // otherwise.
  Error reserve(uint32_t caller, uint32_t device, bool as_operator = false);
  Error release(uint32_t caller, uint32_t device);
  // Takes the next message queued to a device (it is then received by the
  // device and answered with send_answer). A message from anyone but the
  // reserver of a reserved device is answered rejected here and skipped.
  bool take_device_message(uint32_t device, DeviceMessage *out);
  // Devices that left the table since the last call.
  std::vector<uint32_t> take_removed_devices() { return std::exchange(removed_devices_, {}); }
  const std::vector<uint32_t> &devices() const { return device_ids_; }

  // ---- hot swap (core_swap.cc, docs/hot-swap.md) ----
  // Takes `handle` (next use of a free buffer of `requester`) as the
  // request to swap `id` (a child of the caller or of whoever the requester
  // acts for) to `program`, and adds the hidden entry of the new program
  // (returned). kInvalid unless `id` runs attached and is not stopped;
  // kBusy while it is being swapped.
  Result<uint32_t> begin_swap(uint32_t requester, uint32_t id, uint64_t handle, Program program);
  // Sends the handover message from the nucleus to `id` (kBusy: no notice
  // buffer is free).
  Error request_handover(uint32_t id, uint64_t data_bytes);
  // Handovers answered since the last call.
  std::vector<HandoverAnswer> take_handovers() { return std::exchange(handovers_, {}); }
  // The new program takes over `id`: its program and pid become the entry's,
  // its queue is to be published again from the start, the hidden entry
  // leaves the table. Returns what the new program inherits.
  Inheritance commit_swap(uint32_t id, int32_t pid);
  // The swap of `id` ends: its request is answered (result, words), the
  // hidden entry (if still there) leaves the table and `id` is served again.
  void end_swap(uint32_t id, int32_t result, const wire::Message &words);
  // The event record of an inherited buffer.
  wire::Event inherit_event(uint32_t index, int32_t kind) const;

  // `id` and every descendant, parents before children.
  std::vector<uint32_t> subtree(uint32_t id) const;
  // Stopped by its own stop or an ancestor's.
  bool held_stopped(uint32_t id) const;
  wire::ProcessState state(uint32_t id) const;
  // The kGetProcess reply words.
  wire::Message info(uint32_t id) const;
  const std::vector<uint32_t> &children_of(uint32_t caller) const;
  // Processes whose slot table must be written since the last call: the
  // caller writes them (each is named again when its claim changes again).
  std::vector<uint32_t> take_slot_changes();

  // The first event waiting to be published to `id`, as an event record.
  bool next_event(uint32_t id, wire::Event *out) const;
  void pop_event(uint32_t id);
  // Processes whose fifo got entries since the last call: the caller
  // publishes them (each is named again when its fifo gets more).
  std::vector<uint32_t> take_dirty();

  ProcessStats stats(uint32_t id) const;

  // ---- monitor: message events while someone watches (server_inspect.cc) ----
  // Off: the events kept are dropped (the count of those not kept stays).
  void set_tracing(bool on);
  bool tracing() const { return tracing_; }
  // Events since the last take_trace(); at most kMaxTrace are kept between
  // calls, the rest counted in trace_dropped().
  const std::vector<TraceEvent> &trace() const { return trace_; }
  uint64_t trace_dropped() const { return trace_dropped_; }
  struct TraceBatch {
    std::vector<TraceEvent> events;
    uint64_t dropped = 0;
  };
  TraceBatch take_trace();
  const Pool &pool() const { return pool_; }
  uint32_t notice_free() const { return static_cast<uint32_t>(notice_free_.size()); }
  const Claims &root_lent() const { return root_.lent(); }
  // The claims account of `id`, or the root's (kNone).
  const ClaimsAccount &account(uint32_t id) const {
    return id == kNone ? root_ : processes_.at(id).account;
  }
  const UidAccounts &uid_accounts() const { return uid_accounts_; }
  const ProcessTable &processes() const { return processes_; }
  // A malformed request of `id`'s: how many it has made now.
  uint64_t count_protocol_error(uint32_t id) { return ++processes_.at(id).protocol_errors; }

 private:
  // The state table's cell for `event` in the state `id` is in.
  const ProcessCell &cell_of(uint32_t id, ProcessEvent event) const;
  // Does what an applying cell says of the stop (answered with `words`) and
  // moves the entry to its state.
  void enter(uint32_t id, const ProcessCell &cell, const wire::Message &words = {});
  void inbox_append(Process &p, uint32_t index);
  void inbox_prepend(Process &p, uint32_t index);
  // A request to the nucleus on the next use of a free buffer of the caller
  // (a stop, a swap): request_buffer checks `handle` and changes nothing;
  // send_to_nucleus sends on it and the nucleus takes it at once (received,
  // answered when what it asks for is done).
  Result<uint32_t> request_buffer(uint32_t caller, uint64_t handle) const;
  void send_to_nucleus(uint32_t caller, uint32_t index, uint64_t handle);
  // The nucleus answers such a request.
  void answer_request(uint32_t index, int32_t result, const wire::Message &words);
  void inbox_remove(Process &p, uint32_t index);
  void fifo_push(uint32_t id, uint32_t index);
  void fifo_clear(Process &p);
  // After an answer (or dummy answer): to the sender, or freed if it is gone.
  void deliver_answer(uint32_t index);
  void dummy_answer(uint32_t index);
  void end_attachment(uint32_t id);
  // Frees an entry of the table; its buffers go to `heir` (kNone: the root).
  void drop_entry(uint32_t id, uint32_t heir);
  void adopt_buffer(uint32_t heir, uint32_t index);
  // Free buffers of its claim (the root: the pool's unowned ones).
  uint32_t free_held(uint32_t id) const;
  bool move_free_buffers(uint32_t from, uint32_t to, uint64_t count);
  void mark_slots(uint32_t id);
  std::vector<uint32_t> &children_ref(uint32_t parent);
  ClaimsAccount &account_of(uint32_t id) { return id == kNone ? root_ : processes_.at(id).account; }
  // Sends what waits for `parent` while it is attached, under its limit,
  // and a notice buffer is free (else it joins starved_).
  void pump_notices(uint32_t parent);
  // Parents that waited for a notice buffer, now that one is free.
  void pump_starved();
  void send_notice(uint32_t parent, const ExitNotice &n);
  // A notice buffer is free again (answered, or taken back from a parent
  // that detached).
  void notice_freed(uint32_t index);
  // Its notices queued and not yet received go back to the reserve and wait
  // for its next run, first and in order.
  void withdraw_notices(uint32_t parent);
  // Its entry is charged to its owner's uid (uid_accounts.h).
  static bool charged(const Process &p) {
    return !p.hidden && !(p.is_device() && p.parent == kNone);
  }
  void drop_device(uint32_t id);
  void record(TraceKind kind, uint32_t index, std::string_view from, std::string_view to);
  // Devices reserved by `id` are free again.
  void release_all(uint32_t id);

  Pool pool_;
  ProcessTable processes_;
  std::vector<uint32_t> dirty_;
  std::vector<uint32_t> slot_changes_;
  std::vector<uint32_t> notice_free_;
  uint32_t handover_reserve_ = 0;  // the last of notice_free_, for handovers only
  // Notice buffers out, by buffer index: which notice (to send again when
  // its parent detaches before receiving it).
  std::unordered_map<uint32_t, std::pair<uint32_t, ExitNotice>> notices_out_;  // (parent, notice)
  std::deque<std::pair<uint32_t, uint32_t>> starved_;  // parents (id, generation)
  uint32_t notice_limit_ = UINT32_MAX;
  UidAccounts uid_accounts_;
  std::vector<uint32_t> root_children_;
  std::vector<uint32_t> root_devices_;
  std::vector<uint32_t> device_ids_;
  std::vector<uint32_t> removed_devices_;
  std::vector<HandoverAnswer> handovers_;
  // The root's: the pool but the notice reserve, processes.max, and no
  // memory or devices limit of its own.
  ClaimsAccount root_;
  bool tracing_ = false;
  std::vector<TraceEvent> trace_;
  uint64_t trace_dropped_ = 0;
};

}  // namespace nucleus::daemon
