// One connection's descriptor to poll (wire::Op::kPollDescriptor): a pipe
// whose read end the process holds and whose write end is nucleusd's alone.
// nucleusd writes a byte when it publishes events while the process says it
// waits on the descriptor (wire::kWaitingOnDescriptor), so the read end is
// readable when an event waits (docs/data-and-regret.md, "A descriptor to
// poll").
//
// Why a pipe, not an eventfd: an eventfd's one file description is shared
// with the process, which could clear O_NONBLOCK and fill the counter, and
// nucleusd's next write would block its loop. The pipe's write end is a file
// description nobody else holds, opened O_NONBLOCK: whatever the process does
// to its end (never read it, fill the pipe through a write end it opens
// itself, close it, pass it on), a write here returns at once (EAGAIN when
// full, EPIPE when no reader is left; SIGPIPE is ignored in nucleusd, and
// EPIPE closes the write end for good).
//
// Bounded: one per connection, closed with it; nucleusd writes at most
// kUncheckedBytes bytes the process has not read before it checks
// (FIONREAD) whether the pipe is empty again, so a process that never reads
// makes nucleusd hold no more than that, however large it made the pipe.
//
// Owns: the write end. Threading: nucleusd's loop thread only.
#pragma once

#include <cstdint>

#include <nucleus_internal/sys.h>

namespace nucleus::daemon {

class PollDescriptor {
 public:
  // Bytes written since the pipe was last seen empty, before ring() asks.
  static constexpr uint32_t kUncheckedBytes = 64;

  PollDescriptor() = default;
  // The pipe: *out keeps the write end, *read_end is the process's. 0 or
  // -errno (pipe2's: -EMFILE, -ENFILE).
  static int create(PollDescriptor *out, sys::UniqueFd *read_end);
  // Sends `read_end` on the process's connection socket as one
  // wire::PollDescriptorRecord with SCM_RIGHTS, never blocking. 0 or -errno
  // (-EAGAIN: its socket's buffer is full, it does not read it).
  static int send(int socket, int read_end);

  bool open() const { return static_cast<bool>(write_end_); }
  // Makes the read end readable (if it is not already). Never blocks.
  void ring();
  void close() { write_end_.reset(); }
  // Bytes written and not yet seen read (for the tests).
  uint32_t unchecked() const { return unchecked_; }

 private:
  sys::UniqueFd write_end_;
  uint32_t unchecked_ = 0;
};

}  // namespace nucleus::daemon
