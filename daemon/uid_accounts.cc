#include "uid_accounts.h"

#include <cassert>

namespace nucleus::daemon {

namespace {

// Written as "more > budget - now" would underflow when a reload lowered
// the budget below what the uid holds already.
bool past(uint64_t have, uint64_t add, uint64_t limit) {
  return add != 0 && (have >= limit || add > limit - have);
}

}  // namespace

Error UidAccounts::fits(uint32_t uid, const UidUsage &more, const UidBudget &budget) const {
  uint64_t limit = 0;
  return over(uid, more, budget, &limit) == wire::kCauseNone ? Error::kNone : Error::kUidQuota;
}

wire::Cause UidAccounts::over(uint32_t uid, const UidUsage &more, const UidBudget &budget,
                              uint64_t *limit) const {
  UidUsage now = usage(uid);
  if (past(now.processes, more.processes, budget.processes)) {
    *limit = budget.processes;
    return wire::kCauseUidProcesses;
  }
  if (past(now.names, more.names, budget.names)) {
    *limit = budget.names;
    return wire::kCauseUidNames;
  }
  if (past(now.buffers, more.buffers, budget.buffers)) {
    *limit = budget.buffers;
    return wire::kCauseUidBuffers;
  }
  return wire::kCauseNone;
}

void UidAccounts::add_entry(uint32_t uid, bool process) {
  UidUsage &u = by_uid_[uid];
  u.names += 1;
  if (process) u.processes += 1;
}

void UidAccounts::remove_entry(uint32_t uid, bool process) {
  auto it = by_uid_.find(uid);
  assert(it != by_uid_.end() && it->second.names > 0);
  if (it == by_uid_.end()) return;
  it->second.names -= 1;
  if (process) it->second.processes -= 1;
  forget_if_empty(uid);
}

void UidAccounts::move_buffers(uint32_t uid, int64_t delta) {
  if (delta == 0) return;
  UidUsage &u = by_uid_[uid];
  assert(delta > 0 || u.buffers >= static_cast<uint64_t>(-delta));
  u.buffers = static_cast<uint64_t>(static_cast<int64_t>(u.buffers) + delta);
  forget_if_empty(uid);
}

UidUsage UidAccounts::usage(uint32_t uid) const {
  auto it = by_uid_.find(uid);
  return it == by_uid_.end() ? UidUsage{} : it->second;
}

void UidAccounts::forget_if_empty(uint32_t uid) {
  auto it = by_uid_.find(uid);
  if (it != by_uid_.end() && it->second.names == 0 && it->second.processes == 0 &&
      it->second.buffers == 0) {
    by_uid_.erase(it);
  }
}

}  // namespace nucleus::daemon
