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

UidBudget Policy::uid_budget(uint32_t uid, uint32_t gid) const {
  if (is_operator(uid, gid)) return UidBudget::unbounded();
  const Limits &l = config_.limits;
  return UidBudget{l.uid_processes, l.uid_names, l.uid_buffers};
}

bool Policy::may_attach(uint32_t uid, uint32_t gid) const {
  if (config_.allow_own_uid && uid == geteuid()) return true;
  return std::find(config_.uids.begin(), config_.uids.end(), uid) != config_.uids.end() ||
         std::find(config_.gids.begin(), config_.gids.end(), gid) != config_.gids.end();
}

void Policy::log_uid_refusal(Error e, uint32_t uid, std::string_view what, std::string_view name) {
  auto interval = static_cast<int64_t>(config_.limits.log_interval_ms) * 1000000;
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
