// Who may do what in nucleusd: who is an operator, what a uid may make its
// owner hold (limits.uid_*), who may attach (attach.*), and the log line of
// a refusal for a per-uid bound or a name that is not the requester's.
//
// Owns: the rate limits of those refusal lines. Reads: the Config, by
// reference (a reload changes it in place, so this sees the new one), and
// the Core's uid accounts (what a refused uid owns, for its log line).
//
// Threading: nucleusd's loop thread only.
#pragma once

#include <cstdint>
#include <string_view>

#include "config.h"
#include "core.h"
#include "error.h"
#include "log.h"
#include "uid_accounts.h"

namespace nucleus::daemon {

class Policy {
 public:
  Policy(const Config &config, const Core &core) : config_(config), core_(core) {}
  Policy(const Policy &) = delete;
  Policy &operator=(const Policy &) = delete;

  bool is_operator(uint32_t uid, uint32_t gid) const;
  // What a requester with this uid may make its owner hold (limits.uid_*);
  // operators are not bounded.
  UidBudget uid_budget(uint32_t uid, uint32_t gid) const;
  // attach.* allows this uid (or primary gid).
  bool may_attach(uint32_t uid, uint32_t gid) const;
  // A refusal for a per-uid bound or a name that is not the requester's,
  // logged at most once per limits.log_interval_ms.
  void log_uid_refusal(Error e, uint32_t uid, std::string_view what, std::string_view name);

 private:
  const Config &config_;
  const Core &core_;
  log::RateLimited uid_quota_log_;
  log::RateLimited name_right_log_;
};

}  // namespace nucleus::daemon
