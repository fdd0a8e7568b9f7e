#include "authority.h"

#include <algorithm>
#include <cerrno>

namespace nucleus::os {

namespace {

Decision allow() {
  return Decision{true, 0, {}};
}
Decision refuse(int error, std::string why) {
  return Decision{false, error, std::move(why)};
}
bool listed(const std::vector<uint32_t> &uids, uint32_t uid) {
  return std::find(uids.begin(), uids.end(), uid) != uids.end();
}
std::string uid_text(uint32_t uid) {
  return "uid " + std::to_string(uid);
}

}  // namespace

std::string describe(const nucleus_principal_t &p) {
  switch (p.kind) {
    case NUCLEUS_FROM_PROCESS:
      return "a process of " + uid_text(p.uid) + " (gid " + std::to_string(p.gid) + ", pid " +
             std::to_string(p.pid) + ")";
    case NUCLEUS_FROM_DEVICE: return "a device named by " + uid_text(p.uid);
    case NUCLEUS_FROM_NUCLEUS: return "the nucleus";
    default: return "a sender of unknown kind " + std::to_string(p.kind);
  }
}

JobAuthority job_authority(const nucleus_principal_t &sender, const BatchPolicy &policy) {
  JobAuthority a;
  if (sender.kind != NUCLEUS_FROM_PROCESS) {
    a.take = refuse(EACCES, describe(sender) + " sends no jobs");
    return a;
  }
  if (policy.owner_uid == 0) {
    // Root's batch may name any user: it names the sender, so the job has
    // the sender's rights and no more. --allow narrows who may send.
    if (!policy.allowed.empty() && sender.uid != 0 && !listed(policy.allowed, sender.uid)) {
      a.take = refuse(EACCES,
                      uid_text(sender.uid) + " is not root and not one of the uids --allow names");
      return a;
    }
    a.user = std::to_string(sender.uid);
    a.group = std::to_string(sender.gid);
    a.file = JobFile::kAsSender;
    a.take = allow();
    return a;
  }
  // Any other batch can only run jobs as its owner: it takes its owner,
  // root (who could run them as the owner anyway), and whom its owner
  // allowed in so.
  if (sender.uid != policy.owner_uid && sender.uid != 0 && !listed(policy.allowed, sender.uid)) {
    a.take = refuse(EACCES, uid_text(sender.uid) + " is not the batch's owner (" +
                                uid_text(policy.owner_uid) +
                                "), root, or one of the uids --allow names");
    return a;
  }
  // It cannot take another's rights to read a file; its own are no more
  // than the sender's only for root and for its own uid and gid.
  bool own_rights_suffice =
      sender.uid == 0 || (sender.uid == policy.owner_uid && sender.gid == policy.owner_gid);
  a.file = own_rights_suffice ? JobFile::kOwnRights : JobFile::kRefused;
  a.take = allow();
  return a;
}

Decision console_device(const nucleus_principal_t &answer, uint32_t owner_uid,
                        const std::string &device) {
  std::string quoted = "\"" + device + "\"";
  if (answer.kind == NUCLEUS_FROM_NUCLEUS) {
    return refuse(ESRCH, "no device is named " + quoted + " (the nucleus answered)");
  }
  if (answer.kind != NUCLEUS_FROM_DEVICE) {
    return refuse(EACCES, quoted + " is " + describe(answer) +
                              ", not a device: the console reads commands only from a device");
  }
  if (answer.uid != owner_uid && answer.uid != 0) {
    return refuse(EACCES, "the device " + quoted + " was named by " + uid_text(answer.uid) +
                              ": the console reads commands only from a device named by its "
                              "owner (" +
                              uid_text(owner_uid) + ") or root");
  }
  return allow();
}

Decision supervisor_control(const nucleus_principal_t &sender, uint32_t owner_uid,
                            const std::vector<uint32_t> &controllers) {
  if (sender.kind != NUCLEUS_FROM_PROCESS) {
    return refuse(EACCES, describe(sender) + " sends no control messages");
  }
  if (sender.uid == owner_uid || sender.uid == 0 || listed(controllers, sender.uid)) return allow();
  return refuse(EACCES, uid_text(sender.uid) + " is not the supervisor's owner (" +
                            uid_text(owner_uid) + "), root, or one of its spec's controllers");
}

Decision child_ready(const nucleus_principal_t &sender, int64_t child_pid) {
  if (sender.kind != NUCLEUS_FROM_PROCESS) {
    return refuse(EACCES, describe(sender) + " is not a child");
  }
  if (child_pid == 0 || sender.pid != child_pid) {
    return refuse(EACCES, describe(sender) + " is not the child's program (pid " +
                              std::to_string(child_pid) + ")");
  }
  return allow();
}

bool name_held(int create_error) {
  // -EEXIST: the name is taken, and not by a child of the caller (its own
  // child would have been found by get_process before the create).
  return create_error == -EEXIST;
}

uint64_t held_retry_ms(uint64_t backoff_ms, uint64_t backoff_max_ms, uint64_t tries) {
  uint64_t base = std::max(backoff_ms, kHeldRetryMinMs);
  uint64_t cap = std::max(backoff_max_ms, kHeldRetryMinMs);
  uint64_t shift = std::min<uint64_t>(tries > 0 ? tries - 1 : 0, 16);
  if (base > (cap >> shift)) return cap;  // doubling would pass the cap (or overflow)
  return std::min(base << shift, cap);
}

}  // namespace nucleus::os
