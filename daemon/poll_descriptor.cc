#include "poll_descriptor.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nucleus/wire.h>

#include <cerrno>
#include <cstring>

namespace nucleus::daemon {

int PollDescriptor::create(PollDescriptor *out, sys::UniqueFd *read_end) {
  int fds[2] = {-1, -1};
  // Both ends non-blocking: the read end's flag is the process's to change
  // (its file description is its own from here on); the write end's is ours.
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) return -errno;
  read_end->reset(fds[0]);
  out->write_end_.reset(fds[1]);
  out->unchecked_ = 0;
  return 0;
}

int PollDescriptor::send(int socket, int read_end) {
  wire::PollDescriptorRecord record{wire::kMagic, static_cast<uint32_t>(wire::Op::kPollDescriptor)};
  ssize_t n = sys::send_record(socket, &record, sizeof(record), &read_end, 1);
  if (n < 0) return static_cast<int>(n);
  // A SEQPACKET record goes whole or not at all.
  return n == static_cast<ssize_t>(sizeof(record)) ? 0 : -EPROTO;
}

void PollDescriptor::ring() {
  if (!write_end_) return;
  if (unchecked_ >= kUncheckedBytes) {
    // The process has not read for a while: write only if it has emptied
    // the pipe meanwhile (a byte there makes it readable already).
    int queued = 0;
    if (ioctl(write_end_.get(), FIONREAD, &queued) == 0 && queued > 0) return;
    unchecked_ = 0;
  }
  char byte = 1;
  ssize_t n = write(write_end_.get(), &byte, 1);
  if (n == 1) {
    ++unchecked_;
  } else if (n < 0 && errno == EPIPE) {
    // Nobody holds the read end any more: nothing will read what we write.
    write_end_.reset();
  }
  // EAGAIN: full, so readable already.
}

}  // namespace nucleus::daemon
