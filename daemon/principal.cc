#include "principal.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <pwd.h>
#include <sys/fsuid.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "log.h"

namespace nucleus::daemon {

namespace {

// struct open_how and the RESOLVE_ flags (linux/openat2.h, Linux 5.6).
struct OpenHow {
  uint64_t flags;
  uint64_t mode;
  uint64_t resolve;
};
constexpr uint64_t kResolveNoMagiclinks = 0x02;
constexpr uint64_t kResolveNoSymlinks = 0x04;
constexpr uint64_t kResolveBeneath = 0x08;
constexpr uint64_t kResolveNoXdev = 0x01;
#ifndef SYS_openat2
constexpr long kSysOpenat2 = 437;
#else
constexpr long kSysOpenat2 = SYS_openat2;
#endif

bool parse_id(const std::string &text, uint32_t *out) {
  if (text.empty()) return false;
  const char *end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end;
}

// Sets this thread's groups and file-system ids (raw system calls: glibc's
// wrappers would change every thread of the process; we want one call's
// worth on this thread). Returns false when a call failed.
bool become_fs(const Principal &who) {
  if (syscall(SYS_setgroups, who.groups.size(), who.groups.data()) < 0) return false;
  syscall(SYS_setfsgid, who.gid);
  syscall(SYS_setfsuid, who.uid);
  // setfs*id return the previous id and never fail visibly: check.
  return static_cast<uint32_t>(syscall(SYS_setfsuid, -1)) == who.uid &&
         static_cast<uint32_t>(syscall(SYS_setfsgid, -1)) == who.gid;
}

// This thread's supplementary groups (getgroups reads the calling thread's).
bool thread_groups(std::vector<gid_t> *out) {
  int count = getgroups(0, nullptr);
  if (count < 0) return false;
  out->resize(static_cast<size_t>(count));
  return count == 0 || getgroups(count, out->data()) == count;
}

// This thread has no effective capability (capget with pid 0: the caller).
bool no_effective_capabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) < 0) return false;
  return std::all_of(std::begin(data), std::end(data),
                     [](const __user_cap_data_struct &d) { return d.effective == 0; });
}

void restore_fs(const std::vector<gid_t> &groups) {
  syscall(SYS_setfsuid, geteuid());
  syscall(SYS_setfsgid, getegid());
  syscall(SYS_setgroups, groups.size(), groups.data());
}

int open_with(const Principal &who, int dirfd, const std::string &path, int flags, mode_t mode,
              uint64_t resolve) {
  // O_PATH takes no other flags (openat2 refuses them): nothing is opened.
  bool handle = (flags & O_PATH) != 0;
  int extra = handle ? O_CLOEXEC : O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  OpenHow how{static_cast<uint64_t>(flags | extra), (flags & O_CREAT) != 0 ? mode : 0, resolve};
  auto open2 = [&]() -> int {
    long fd = syscall(kSysOpenat2, dirfd, path.c_str(), &how, sizeof(how));
    return fd < 0 ? -errno : static_cast<int>(fd);
  };
  // nucleusd's own rights: as they are (a nucleusd that is not root has no
  // others to give); a root nucleusd takes the requester's for the call.
  bool own =
      who.uid == geteuid() && (geteuid() != 0 || (who.gid == getegid() && who.groups.empty()));
  if (!own && geteuid() != 0) return -EACCES;
  int fd = -1;
  if (own) {
    fd = open2();
  } else {
    std::vector<gid_t> saved(static_cast<size_t>(std::max(getgroups(0, nullptr), 0)));
    if (!saved.empty() && getgroups(static_cast<int>(saved.size()), saved.data()) < 0) {
      return -errno;
    }
    fd = become_fs(who) ? open2() : -EPERM;
    restore_fs(saved);
  }
  if (fd < 0) return fd;
  struct statfs fs {};
  if (fstatfs(fd, &fs) < 0 || fs.f_type == PROC_SUPER_MAGIC) {
    close(fd);
    return -EACCES;
  }
  // Blocking from here on: io_uring waits for data (by polling) on such a
  // descriptor without blocking nucleusd; O_NONBLOCK was only for open().
  if (!handle) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

}  // namespace

Principal principal_of(uint32_t uid, uint32_t gid) {
  Principal p{uid, gid, {}};
  passwd pw{};
  passwd *found = nullptr;
  std::vector<char> buf(16384);
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return p;
  int count = 64;
  std::vector<gid_t> groups(static_cast<size_t>(count));
  if (getgrouplist(pw.pw_name, gid, groups.data(), &count) < 0) {
    groups.resize(static_cast<size_t>(count));
    if (getgrouplist(pw.pw_name, gid, groups.data(), &count) < 0) return p;
  }
  groups.resize(static_cast<size_t>(count));
  p.groups = std::move(groups);
  return p;
}

const Principal &PrincipalCache::get(uint32_t uid, uint32_t gid) {
  uint64_t key = uint64_t{uid} << 32 | gid;
  auto it = cache_.find(key);
  if (it == cache_.end()) it = cache_.emplace(key, principal_of(uid, gid)).first;
  return it->second;
}

int lookup_user(const std::string &text, uint32_t *uid, uint32_t *gid) {
  passwd pw{};
  passwd *found = nullptr;
  std::vector<char> buf(16384);
  uint32_t number = 0;
  bool numeric = parse_id(text, &number);
  int rc = numeric ? getpwuid_r(number, &pw, buf.data(), buf.size(), &found)
                   : getpwnam_r(text.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc == 0 && found != nullptr) {
    *uid = pw.pw_uid;
    if (*gid == kNoGroup) *gid = pw.pw_gid;
    return 0;
  }
  if (!numeric || *gid == kNoGroup) return -ENOENT;
  *uid = number;  // a bare number with its group given
  return 0;
}

int lookup_group(const std::string &text, uint32_t *gid) {
  uint32_t number = 0;
  if (parse_id(text, &number)) {
    *gid = number;
    return 0;
  }
  group gr{};
  group *found = nullptr;
  std::vector<char> buf(16384);
  if (getgrnam_r(text.c_str(), &gr, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return -ENOENT;
  }
  *gid = gr.gr_gid;
  return 0;
}

int open_as(const Principal &who, const std::string &path, int flags, mode_t mode) {
  if (path.empty() || path[0] != '/') return -EINVAL;
  return open_with(who, AT_FDCWD, path, flags, mode, kResolveNoMagiclinks);
}

int open_beneath_as(const Principal &who, int dirfd, const std::string &name, int flags,
                    mode_t mode) {
  return open_with(who, dirfd, name, flags, mode,
                   kResolveNoMagiclinks | kResolveNoSymlinks | kResolveBeneath | kResolveNoXdev);
}

int run_as(const Principal &who, const std::function<int()> &fn) {
  uid_t euid = geteuid();
  gid_t egid = getegid();
  std::vector<gid_t> saved;
  if (euid != 0 || !thread_groups(&saved)) return -EPERM;
  // Groups and gid while the thread is still root (they need CAP_SETGID),
  // the uid last; raw system calls: glibc's wrappers would change every
  // thread of nucleusd.
  bool switched = syscall(SYS_setgroups, who.groups.size(), who.groups.data()) == 0 &&
                  syscall(SYS_setresgid, -1, who.gid, -1) == 0 &&
                  syscall(SYS_setresuid, -1, who.uid, -1) == 0;
  int rc = -EPERM;
  if (switched && (who.uid == 0 || no_effective_capabilities())) {
    rc = fn();
  } else if (switched) {
    log::error(
        "uid {}: the effective capabilities stayed when the effective uid left 0 "
        "(a securebit?): nothing is done with its credentials",
        who.uid);
  }
  // The uid first: root again (the real and saved uid are still 0) may set
  // the rest.
  bool back = syscall(SYS_setresuid, -1, euid, -1) == 0 &&
              syscall(SYS_setresgid, -1, egid, -1) == 0 &&
              syscall(SYS_setgroups, saved.size(), saved.data()) == 0;
  if (!back) {
    log::error("cannot take back nucleusd's ids after acting as uid {}: {}", who.uid,
               std::strerror(errno));
    std::abort();
  }
  return rc;
}

}  // namespace nucleus::daemon
