// What each uid owns in the process table, kept as entries are added and
// removed and as buffers move between claims (never recounted by scanning),
// and the per-uid bounds (DESIGN.md, "Principals, privilege and bounds").
//
// An entry is owned by Process::uid: a socket-born process by its peer's
// uid, a child by its creator's owner, a device by its namer's owner. The
// root's own devices (named by the configuration) and a swap's hidden entry
// (one per process at most) are nobody's here.
//
// Threading: nucleusd's single thread only.
#pragma once

#include <nucleus/wire.h>

#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "error.h"

namespace nucleus::daemon {

// What one uid may own at most; the server gives operators unbounded().
struct UidBudget {
  uint64_t processes = UINT64_MAX;  // process entries (attached or created)
  uint64_t names = UINT64_MAX;      // processes and devices
  uint64_t buffers = UINT64_MAX;    // buffers held by its processes' claims
  static UidBudget unbounded() { return UidBudget{}; }
};

// What one uid owns (or what one step adds).
struct UidUsage {
  uint64_t processes = 0;
  uint64_t names = 0;
  uint64_t buffers = 0;
};

class UidAccounts {
 public:
  // kUidQuota when `uid` would own more than `budget` after `more`; checked
  // before a step changes anything, so the step is all or nothing.
  Error fits(uint32_t uid, const UidUsage &more, const UidBudget &budget) const;
  // Which bound a refused fits() met (kCauseUid*), and *limit its size.
  wire::Cause over(uint32_t uid, const UidUsage &more, const UidBudget &budget,
                   uint64_t *limit) const;
  void add_entry(uint32_t uid, bool process);
  void remove_entry(uint32_t uid, bool process);
  // Buffers that came into (delta > 0) or left a claim owned by `uid`.
  void move_buffers(uint32_t uid, int64_t delta);
  UidUsage usage(uint32_t uid) const;
  // Uids that own something (a uid whose usage drops to nothing is forgotten).
  size_t size() const { return by_uid_.size(); }

 private:
  void forget_if_empty(uint32_t uid);

  std::unordered_map<uint32_t, UidUsage> by_uid_;
};

}  // namespace nucleus::daemon
