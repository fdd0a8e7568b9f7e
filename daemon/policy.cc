#include "policy.h"

#include <unistd.h>

#include <algorithm>

#include <nucleus_internal/sys.h>

namespace nucleus::daemon {

bool Policy::is_operator(uint32_t uid, uint32_t gid) const {
  if (config_.operators_own_uid && uid == geteuid()) return true;
  return std::find(config_.operator_uids.begin(), config_.operator_uids.end(), uid) !=
             config_.operator_uids.end() ||
         std::find(config_.operator_gids.begin(), config_.operator_gids.end(), gid) !=
             config_.operator_gids.end();
}

bool Policy::may_attach(uint32_t uid, uint32_t gid) const {
  if (config_.allow_own_uid && uid == geteuid()) return true;
  return std::find(config_.uids.begin(), config_.uids.end(), uid) != config_.uids.end() ||
         std::find(config_.gids.begin(), config_.gids.end(), gid) != config_.gids.end();
}

UidBudget Policy::uid_budget(uint32_t uid, uint32_t gid) const {
  if (is_operator(uid, gid)) return UidBudget::unbounded();
  const Limits &l = config_.limits;
  return UidBudget{l.uid_processes, l.uid_names, l.uid_buffers};
}

int64_t Policy::log_interval_ns() const {
  return static_cast<int64_t>(config_.limits.log_interval_ms) * 1000000;
}

bool Policy::may_own(std::string_view name, Owner owner, std::string_view what) {
  const NameRule *rule = name_rule(config_.names, name);
  if (rule == nullptr ||
      std::find(rule->uids.begin(), rule->uids.end(), owner.uid) != rule->uids.end() ||
      std::find(rule->gids.begin(), rule->gids.end(), owner.gid) != rule->gids.end()) {
    return true;
  }
  reserved_name_log_.warn(sys::monotonic_ns(), log_interval_ns(),
                          "uid {} gid {} refused ({} {}): the name is reserved by names[{}] ({} "
                          "\"{}\") for other uids and groups",
                          owner.uid, owner.gid, what, name, rule - config_.names.data(),
                          rule->prefix ? "own_prefix" : "own", rule->name);
  return false;
}

void Policy::log_owner_refusal(std::string_view requester, Owner who, std::string_view what,
                               std::string_view name, Owner owner) {
  owner_rule_log_.warn(sys::monotonic_ns(), log_interval_ns(),
                       "process {} (uid {} gid {}) refused ({} {}): its program would run as uid "
                       "{} gid {}, an owner only root or that uid and gid may name (the owner "
                       "rule)",
                       requester, who.uid, who.gid, what, name, owner.uid, owner.gid);
}

void Policy::log_act_for_refusal(std::string_view requester, Owner who, std::string_view target,
                                 std::string_view why) {
  act_for_log_.warn(sys::monotonic_ns(), log_interval_ns(),
                    "process {} (uid {} gid {}) may not act for {}: {}", requester, who.uid,
                    who.gid, target, why);
}

void Policy::log_uid_refusal(Error e, uint32_t uid, std::string_view what, std::string_view name) {
  int64_t interval = log_interval_ns();
  if (e == Error::kUidQuota) {
    const UidUsage u = core_.uid_accounts().usage(uid);
    uid_quota_log_.warn(sys::monotonic_ns(), interval,
                        "uid {} refused ({} {}): at its limit (limits.uid_processes {}, "
                        "uid_names {}, uid_buffers {}; it owns {} processes, {} names, {} buffers)",
                        uid, what, name, config_.limits.uid_processes, config_.limits.uid_names,
                        config_.limits.uid_buffers, u.processes, u.names, u.buffers);
  } else if (e == Error::kNotPermitted) {
    name_right_log_.warn(sys::monotonic_ns(), interval, "uid {} refused ({} {}): not its to take",
                         uid, what, name);
  }
}

}  // namespace nucleus::daemon
