// The process table as a tree (docs/process-control.md): processes attach
// and detach, parents create, start, stop, modify and remove children and
// name devices, and each step on an entry is a cell of its state table
// (core_states.h). Owns the root's claims account and children, and what
// each uid owns (UidAccounts); each entry's own place, claims and state are
// in its Process, changed here.
//
// Claims (docs/decisions.md, claims.h): each entry holds its buffer claim
// as buffers of the pool (slots); the root (the nucleus) holds the unowned
// ones. A parent's claims pay for its children's, so creating a child lends
// the child's cost out of the parent's account and moves buffers out of the
// parent's free ones; removing a child repays it and moves everything of
// its subtree back.
//
// No I/O: Programs (programs.h) does the Linux side of each step.
// Threading: nucleusd's loop thread only.
#pragma once

#include <nucleus/wire.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "claims.h"
#include "core_devices.h"
#include "core_reactions.h"
#include "core_states.h"
#include "error.h"
#include "messages.h"
#include "notices.h"
#include "owner_rule.h"
#include "pool.h"
#include "process_table.h"
#include "refusal.h"
#include "uid_accounts.h"

namespace nucleus::daemon {

// What a start asks the Linux side to do (Requests::start).
struct StartPlan {
  bool resume = false;  // the subtree was stopped: let it run
  bool spawn = false;   // run the program (first start, or after it exited)
};

class ProcessTree {
 public:
  // The root's account: the pool's unowned buffers now (the notice reserve
  // taken first), `root_processes`, no memory or devices limit of its own.
  ProcessTree(Pool &pool, ProcessTable &processes, Messages &messages, Notices &notices,
              CoreDevices &devices, CoreReactions &reactions, uint64_t root_processes);
  ProcessTree(const ProcessTree &) = delete;
  ProcessTree &operator=(const ProcessTree &) = delete;

  // The operations are documented on the Core's surface (core.h).
  Result<uint32_t> attach(std::string_view name, const Claims &claims, uint32_t uid, uint32_t gid,
                          int32_t pid, const UidBudget &budget);
  void attach_run(uint32_t id);
  void detach(uint32_t id);
  Result<uint32_t> child(uint32_t caller, std::string_view name) const;
  Owner child_owner(uint32_t caller, const Program &program, Owner root_child) const;
  Result<uint32_t> create(uint32_t caller, std::string_view name, Program program,
                          const Claims &claims, uint32_t uid, uint32_t gid,
                          const UidBudget &budget);
  Error start(uint32_t caller, uint32_t id, StartPlan *plan);
  bool start_runs_program(uint32_t id) const;
  Error begin_stop(uint32_t requester, uint32_t id, uint64_t handle);
  void finish_stop(uint32_t id);
  bool fail_stop(uint32_t id, const wire::Message &words);
  Error modify(uint32_t caller, uint32_t id, const Program *program, const Claims *claims);
  Error remove(uint32_t caller, uint32_t id);
  void program_started(uint32_t id, int32_t pid);
  void program_exited(uint32_t id, wire::ExitKind kind, int32_t value);
  Result<uint32_t> create_device(uint32_t caller, std::string_view name, wire::DeviceKind kind,
                                 const UidBudget &budget);
  Error remove_device(uint32_t caller, uint32_t id);

  static Error check_claims(const Claims &claims);
  static Error may_take_name(std::string_view name, int32_t peer_pid);

  std::vector<uint32_t> subtree(uint32_t id) const;
  bool held_stopped(uint32_t id) const;
  wire::ProcessState state(uint32_t id) const;
  wire::Message info(uint32_t id) const;
  const std::vector<uint32_t> &children_of(uint32_t caller) const;
  const ClaimsAccount &account(uint32_t id) const {
    return id == kNone ? root_ : processes_.at(id).account;
  }
  const UidAccounts &uid_accounts() const { return uid_accounts_; }
  // Why its last refusal of `e` was made (refusal.h), forgotten.
  Refusal take_refusal(Error e) { return note_.take(e); }

  // For a swap (CoreSwaps): the run of `id` ends (its channel is gone): its
  // fifo, reservations and notices out; what it received gets dummy answers.
  void end_attachment(uint32_t id);
  // Frees an entry of the table; its buffers go to `heir` (kNone: the root).
  void drop_entry(uint32_t id, uint32_t heir);

 private:
  // The state table's cell for `event` in the state `id` is in.
  const ProcessCell &cell_of(uint32_t id, ProcessEvent event) const;
  // Does what an applying cell says of the stop (answered with `words`) and
  // moves the entry to its state.
  void enter(uint32_t id, const ProcessCell &cell, const wire::Message &words = {});
  void drop_device(uint32_t id);
  // Refusals that note their cause (refusal.h): the claim of `payer`
  // (kNone: the root) that `amount` does not fit, the uid bound `more`
  // meets, the name the table would not add, a claim over the bounds.
  Error refuse_claims(uint32_t payer, const Claims &amount);
  Error refuse_uid(uint32_t uid, const UidUsage &more, const UidBudget &budget);
  Error refuse_name(Error e);
  Error checked_claims(const Claims &claims);
  Error checked_name(std::string_view name, int32_t peer_pid);
  void adopt_buffer(uint32_t heir, uint32_t index);
  // Free buffers of its claim (the root: the pool's unowned ones).
  uint32_t free_held(uint32_t id) const;
  bool move_free_buffers(uint32_t from, uint32_t to, uint64_t count);
  std::vector<uint32_t> &children_ref(uint32_t parent);
  ClaimsAccount &account_of(uint32_t id) { return id == kNone ? root_ : processes_.at(id).account; }
  // Its entry is charged to its owner's uid (uid_accounts.h).
  static bool charged(const Process &p) {
    return !p.hidden && !(p.is_device() && p.parent == kNone);
  }

  Pool &pool_;
  ProcessTable &processes_;
  Messages &messages_;
  Notices &notices_;
  CoreDevices &devices_;
  CoreReactions &reactions_;
  UidAccounts uid_accounts_;
  std::vector<uint32_t> root_children_;
  // The root's: the pool but the notice reserve, processes.max, and no
  // memory or devices limit of its own.
  ClaimsAccount root_;
  RefusalNote note_;
};

}  // namespace nucleus::daemon
