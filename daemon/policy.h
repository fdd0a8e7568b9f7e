// Who may do what, from the configuration: operators, the uids and groups
// that may attach, the per-uid bounds a requester's owner is held to, and
// who may take which well-known names (the names section). Refusals for a
// bound, a name that is not the requester's, a reserved name or the owner
// rule (owner_rule.h) are logged at most once per limits.log_interval_ms
// each kind.
//
// Reads the Config it is given (reassigned in place on reload) and the
// Core's uid accounts for its log lines.
//
// Threading: nucleusd's loop thread only.
#pragma once

#include <cstdint>
#include <string_view>

#include "config.h"
#include "core.h"
#include "error.h"
#include "log.h"
#include "owner_rule.h"

namespace nucleus::daemon {

class Policy {
 public:
  Policy(const Config &config, const Core &core) : config_(config), core_(core) {}

  bool is_operator(uint32_t uid, uint32_t gid) const;
  // attach.* allows this uid (or primary gid).
  bool may_attach(uint32_t uid, uint32_t gid) const;
  // What a requester with this uid may make its owner hold (limits.uid_*);
  // operators are not bounded.
  UidBudget uid_budget(uint32_t uid, uint32_t gid) const;
  // A refusal for a per-uid bound (kUidQuota) or a name that is not the
  // requester's (kNotPermitted), rate-limited; other errors are not logged.
  void log_uid_refusal(Error e, uint32_t uid, std::string_view what, std::string_view name);
  // The names section lets `owner` (its uid, or its primary gid) take
  // `name`: no rule covers the name, or the rule that decides (name_rule)
  // names the uid or the gid. A refusal is logged, rate-limited, as
  // `what` (e.g. "attach as", "create", "name device").
  bool may_own(std::string_view name, Owner owner, std::string_view what);
  // A refusal by the owner rule: `requester` (its name and principal)
  // asked to `what` `name`, whose program would run as `owner`.
  void log_owner_refusal(std::string_view requester, Owner who, std::string_view what,
                         std::string_view name, Owner owner);
  // A refusal to act for `target` (act_for), and why.
  void log_act_for_refusal(std::string_view requester, Owner who, std::string_view target,
                           std::string_view why);

 private:
  int64_t log_interval_ns() const;

  const Config &config_;
  const Core &core_;
  log::RateLimited uid_quota_log_;
  log::RateLimited name_right_log_;
  log::RateLimited reserved_name_log_;
  log::RateLimited owner_rule_log_;
  log::RateLimited act_for_log_;
};

}  // namespace nucleus::daemon
