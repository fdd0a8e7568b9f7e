// Who a request or a program acts as (DESIGN.md, "Principals, privilege and
// bounds"): a uid, a primary gid and the supplementary groups the user
// database gives that user. nucleusd acts with these rights, never with its
// own, when it opens a file a client named or starts a program.
//
// Threading: nucleusd's loop thread. open_as() changes that thread's file
// system ids and groups for the length of one open, and run_as() its
// effective ids and groups for the length of one call (raw system calls,
// which change the calling thread only); both restore them before they
// return.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "error.h"

namespace nucleus::daemon {

struct Principal {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<gid_t> groups;  // supplementary, from the user database
};

// The principal for uid/gid: its supplementary groups are those the user
// database lists for the user named by uid (none when uid has no entry).
Principal principal_of(uint32_t uid, uint32_t gid);

// principal_of() remembered: the user database is read once per owner, not
// once per program start. Cleared on a reload (SIGHUP), when an
// administrator has had the chance to change group memberships.
class PrincipalCache {
 public:
  const Principal &get(uint32_t uid, uint32_t gid);
  void clear() { cache_.clear(); }

 private:
  std::unordered_map<uint64_t, Principal> cache_;  // uid << 32 | gid
};

// A user named by name or number: its uid, and its primary gid in *gid
// (a number with no entry in the user database: -ENOENT unless `gid`
// already holds a group, i.e. *gid != kNoGroup).
inline constexpr uint32_t kNoGroup = UINT32_MAX;
int lookup_user(const std::string &text, uint32_t *uid, uint32_t *gid);
// A group by name or number.
int lookup_group(const std::string &text, uint32_t *gid);

// Opens `path` (absolute) with the rights of `who` and never through a
// magic link (/proc/self/fd/..., /proc/PID/root, ...: openat2 with
// RESOLVE_NO_MAGICLINKS), and never on procfs at all (/proc/self/mem would
// be nucleusd's memory: a process may always open its own). Flags get
// O_CLOEXEC | O_NOCTTY | O_NONBLOCK for the open (a FIFO or a terminal
// never blocks nucleusd); the descriptor returned is blocking. With O_PATH
// (a handle, nothing opened) only O_CLOEXEC is added. A nucleusd
// that is not root opens only for its own uid (-EACCES otherwise).
// Returns the descriptor or -errno.
int open_as(const Principal &who, const std::string &path, int flags, mode_t mode = 0640);
// The same, relative to the directory `dirfd` and beneath it
// (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV): a name in a
// directory a client may write to cannot lead nucleusd elsewhere, nor into
// a file system mounted there (a FUSE mount whose server never answers
// would hold the open).
int open_beneath_as(const Principal &who, int dirfd, const std::string &name, int flags,
                    mode_t mode);

// Calls `fn` on this thread as `who`: the thread's supplementary groups and
// its effective (hence also file-system) gid and uid become who's, and
// nucleusd's come back before run_as returns. What `fn` lets the kernel keep
// of the thread's credentials (an io_uring personality: Loop::
// register_credentials) is then who's. For a uid other than 0 that holds no
// capability of nucleusd's: the kernel clears the effective set when the
// effective uid leaves 0, and run_as checks that it did (a securebit such as
// SECBIT_NO_SETUID_FIXUP would keep it: then -EPERM and fn is not called).
// Only a root nucleusd can (-EPERM otherwise, and when a switch fails).
// Returns fn's result. Should nucleusd's ids fail to come back, which the
// kernel allows no way for (the real and saved uid stay 0), nucleusd aborts
// rather than go on with another uid's rights.
int run_as(const Principal &who, const std::function<int()> &fn);

}  // namespace nucleus::daemon
