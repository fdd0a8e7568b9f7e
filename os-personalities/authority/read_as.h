// Reads a file a sender named with the sender's rights, never the OS's:
// batch's "@file" jobs (docs/personalities.md, "Who may ask an OS what").
//
// A short-lived child of the caller drops to the sender's uid, gid and the
// supplementary groups the user database gives that uid (what nucleusd
// gives a program it starts as that owner) before it opens the file, and
// passes the bytes back through a pipe. The child shares nothing with the
// caller but that pipe: it closes every other descriptor, opens no magic
// link (/proc/self/fd/...) and nothing on procfs, reads only a regular file
// (a FIFO or a terminal never blocks it), and sends at most `limit` bytes.
// The caller waits for it at most `deadline`: the child runs as the sender,
// who may stop it; then it is killed. Nothing of what the caller could read
// and the sender could not reaches the sender: not the bytes, and not
// whether the file exists (the errno is the one the sender's own open gets).
//
// Threading: call from one thread; the child only makes system calls
// (async-signal-safe), so the caller may have other threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace nucleus::os {

struct Identity {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

struct ReadAs {
  // 0, or why not: open's errno as the sender; EINVAL a relative path or
  // not a regular file; EACCES a file on procfs or through a magic link;
  // EFBIG more than `limit` bytes; ETIMEDOUT not done within the deadline;
  // EPERM the child could not take the identity; EIO the child ended
  // without saying (it was killed).
  int error = 0;
  std::string bytes;
};

// `as`: the identity to read with; nullopt: the caller's own (for a caller
// that is not root, which cannot take another's, when its own rights are no
// more than the sender's). `path` must be absolute.
ReadAs read_file_as(const std::string &path, const std::optional<Identity> &as, size_t limit,
                    std::chrono::milliseconds deadline);

}  // namespace nucleus::os
