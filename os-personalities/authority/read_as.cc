#include "read_as.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/magic.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace nucleus::os {

namespace {

// struct open_how and RESOLVE_NO_MAGICLINKS (linux/openat2.h, Linux 5.6).
struct OpenHow {
  uint64_t flags;
  uint64_t mode;
  uint64_t resolve;
};
constexpr uint64_t kResolveNoMagiclinks = 0x02;
#ifdef SYS_openat2
constexpr long kSysOpenat2 = SYS_openat2;
#else
constexpr long kSysOpenat2 = 437;
#endif
#ifdef SYS_close_range
constexpr long kSysCloseRange = SYS_close_range;
#else
constexpr long kSysCloseRange = 436;
#endif

// The groups the user database gives `uid` with primary group `gid`: what
// nucleusd gives a program it runs as that owner. Just `gid` when the uid
// has no entry. Read before the fork: the user database is not
// async-signal-safe.
std::vector<gid_t> groups_of(uint32_t uid, uint32_t gid) {
  passwd pw{};
  passwd *found = nullptr;
  std::vector<char> buf(16384);
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return {gid};
  int count = 64;
  std::vector<gid_t> groups(static_cast<size_t>(count));
  if (getgrouplist(pw.pw_name, gid, groups.data(), &count) < 0) {
    groups.resize(static_cast<size_t>(count));
    if (getgrouplist(pw.pw_name, gid, groups.data(), &count) < 0) return {gid};
  }
  groups.resize(static_cast<size_t>(count));
  return groups;
}

bool write_all(int fd, const void *data, size_t size) {
  const char *p = static_cast<const char *>(data);
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// The child: system calls only (it was forked from a process that may have
// threads). Writes a 4-byte errno, then (when 0) the file's bytes, at most
// limit + 1 of them; the parent tells "too big" from that.
[[noreturn]] void child(int out, const char *path, const std::optional<Identity> &as,
                        const std::vector<gid_t> &groups, size_t limit) {
  // Nothing of the caller's but the pipe: move it to 3 and close the rest.
  if (out != 3) {
    if (dup2(out, 3) < 0) _exit(1);
    out = 3;
  }
  syscall(kSysCloseRange, 0U, 2U, 0U);
  syscall(kSysCloseRange, 4U, ~0U, 0U);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  int32_t error = 0;
  // Raw system calls: glibc's set*id wrappers signal every thread of the
  // process, and a forked child has one.
  if (as && (syscall(SYS_setgroups, groups.size(), groups.data()) < 0 ||
             syscall(SYS_setresgid, as->gid, as->gid, as->gid) < 0 ||
             syscall(SYS_setresuid, as->uid, as->uid, as->uid) < 0)) {
    error = EPERM;
  }
  int fd = -1;
  if (error == 0) {
    OpenHow how{O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0, kResolveNoMagiclinks};
    long r = syscall(kSysOpenat2, AT_FDCWD, path, &how, sizeof(how));
    if (r < 0) {
      error = errno;
    } else {
      fd = static_cast<int>(r);
    }
  }
  if (error == 0) {
    struct statfs fs {};
    struct stat st {};
    if (fstatfs(fd, &fs) < 0 || fs.f_type == PROC_SUPER_MAGIC) {
      error = EACCES;
    } else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
      error = EINVAL;
    }
  }
  if (!write_all(out, &error, sizeof(error))) _exit(1);
  if (error != 0) _exit(0);
  char buf[4096];
  size_t sent = 0;
  while (sent <= limit) {
    ssize_t n = read(fd, buf, std::min(sizeof(buf), limit + 1 - sent));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (!write_all(out, buf, static_cast<size_t>(n))) _exit(1);
    sent += static_cast<size_t>(n);
  }
  _exit(0);
}

}  // namespace

ReadAs read_file_as(const std::string &path, const std::optional<Identity> &as, size_t limit,
                    std::chrono::milliseconds deadline) {
  if (path.empty() || path[0] != '/') return {EINVAL, {}};
  std::vector<gid_t> groups;
  if (as) groups = groups_of(as->uid, as->gid);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) return {errno, {}};
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(fds[0]);
    close(fds[1]);
    return {e, {}};
  }
  if (pid == 0) child(fds[1], path.c_str(), as, groups, limit);
  close(fds[1]);

  // What the child sends: its errno, then the bytes. Until EOF, more than
  // limit bytes, or the deadline.
  std::string got;
  auto until = std::chrono::steady_clock::now() + deadline;
  bool timed_out = false;
  char buf[4096];
  while (got.size() <= sizeof(int32_t) + limit) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int ready = poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), INT32_MAX)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;  // the deadline is looked at again
    ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the child is done (or was killed)
    got.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  // It has ended, or is ending, or was stopped by the sender it runs as:
  // end it in any case, and reap it.
  kill(pid, SIGKILL);
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) return {ETIMEDOUT, {}};
  if (got.size() < sizeof(int32_t)) return {EIO, {}};
  int32_t error = 0;
  std::memcpy(&error, got.data(), sizeof(error));
  if (error != 0) return {error, {}};
  if (got.size() - sizeof(int32_t) > limit) return {EFBIG, {}};
  return {0, got.substr(sizeof(int32_t))};
}

}  // namespace nucleus::os
