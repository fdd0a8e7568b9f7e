// PollDescriptor (poll_descriptor.h): a pipe whose write end is nucleusd's
// alone. Whatever the holder of the read end does, ring() returns at once
// and nucleusd holds no more than kUncheckedBytes of it.
#include "poll_descriptor.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nucleus/wire.h>

#include <cstring>
#include <string>

namespace nucleus::daemon {
namespace {

// Readable, or hung up (a pipe with no writer left: end of file), as a
// poll loop takes it.
bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP)) != 0;
}

int queued(int fd) {
  int n = -1;
  EXPECT_EQ(ioctl(fd, FIONREAD, &n), 0);
  return n;
}

void empty(int fd) {
  char bytes[4096];
  while (read(fd, bytes, sizeof(bytes)) > 0) {
  }
}

TEST(PollDescriptor, ARingMakesTheReadEndReadableUntilItIsRead) {
  PollDescriptor d;
  sys::UniqueFd r;
  ASSERT_EQ(PollDescriptor::create(&d, &r), 0);
  EXPECT_TRUE(d.open());
  EXPECT_FALSE(readable(r.get()));
  d.ring();
  EXPECT_TRUE(readable(r.get()));
  empty(r.get());
  EXPECT_FALSE(readable(r.get()));
}

// The write end is opened O_NONBLOCK and is nobody else's: a holder of the
// read end that made the pipe blocking and filled it through a write end
// of its own (a file description of its own, /proc/self/fd) cannot make a
// ring block.
TEST(PollDescriptor, AFullPipeMadeBlockingByItsReaderNeverBlocksARing) {
  PollDescriptor d;
  sys::UniqueFd r;
  ASSERT_EQ(PollDescriptor::create(&d, &r), 0);
  ASSERT_EQ(fcntl(r.get(), F_SETFL, 0), 0);
  std::string path = "/proc/self/fd/" + std::to_string(r.get());
  sys::UniqueFd own(open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NONBLOCK));
  ASSERT_TRUE(own);
  char page[4096] = {};
  while (write(own.get(), page, sizeof(page)) > 0) {
  }
  ASSERT_EQ(fcntl(own.get(), F_SETFL, 0), 0);  // its own description only
  for (int i = 0; i < 1000; ++i) d.ring();     // returns: EAGAIN each time
  EXPECT_TRUE(d.open());
  EXPECT_TRUE(readable(r.get()));
}

// A reader that never reads: nucleusd writes kUncheckedBytes, then only
// when the pipe was emptied meanwhile.
TEST(PollDescriptor, RingsNobodyReadsHoldAtMostTheUncheckedBytes) {
  PollDescriptor d;
  sys::UniqueFd r;
  ASSERT_EQ(PollDescriptor::create(&d, &r), 0);
  for (int i = 0; i < 10000; ++i) d.ring();
  EXPECT_EQ(queued(r.get()), static_cast<int>(PollDescriptor::kUncheckedBytes));
  empty(r.get());
  d.ring();  // it was emptied: readable again
  EXPECT_EQ(queued(r.get()), 1);
  EXPECT_EQ(d.unchecked(), 1U);
}

// A holder that closed the read end: the ring's EPIPE closes the write end
// (SIGPIPE is ignored in nucleusd, Server::start_loop).
TEST(PollDescriptor, AClosedReadEndClosesTheWriteEnd) {
  struct sigaction ignore {};
  struct sigaction before {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGPIPE, &ignore, &before), 0);
  PollDescriptor d;
  sys::UniqueFd r;
  ASSERT_EQ(PollDescriptor::create(&d, &r), 0);
  r.reset();
  d.ring();
  EXPECT_FALSE(d.open());
  d.ring();  // nothing to ring any more
  sigaction(SIGPIPE, &before, nullptr);
}

TEST(PollDescriptor, TheReadEndGoesAsOneRecordWithItsDescriptor) {
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
  sys::UniqueFd ours(pair[0]), theirs(pair[1]);
  PollDescriptor d;
  sys::UniqueFd r;
  ASSERT_EQ(PollDescriptor::create(&d, &r), 0);
  ASSERT_EQ(PollDescriptor::send(ours.get(), r.get()), 0);
  r.reset();  // nucleusd's copy goes; the process's is the only one

  wire::PollDescriptorRecord record{};
  iovec iov{&record, sizeof(record)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ASSERT_EQ(recvmsg(theirs.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC),
            static_cast<ssize_t>(sizeof(record)));
  EXPECT_EQ(record.magic, wire::kMagic);
  EXPECT_EQ(record.op, static_cast<uint32_t>(wire::Op::kPollDescriptor));
  cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  ASSERT_NE(cm, nullptr);
  ASSERT_EQ(cm->cmsg_type, SCM_RIGHTS);
  int fd = -1;
  std::memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
  sys::UniqueFd received(fd);
  EXPECT_FALSE(readable(received.get()));
  d.ring();
  EXPECT_TRUE(readable(received.get()));
  // nucleusd's end closed: end of file, readable for good.
  d.close();
  empty(received.get());
  EXPECT_TRUE(readable(received.get()));
  char byte = 0;
  EXPECT_EQ(read(received.get(), &byte, 1), 0);
}

// A process that never reads its socket: the send fails at once (EAGAIN)
// when the socket's buffer is full, and nucleusd holds nothing of it.
TEST(PollDescriptor, ASocketNobodyReadsRefusesTheSendAtOnce) {
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
  sys::UniqueFd ours(pair[0]), theirs(pair[1]);
  int rc = 0;
  for (int i = 0; i < 100000 && rc == 0; ++i) {
    PollDescriptor d;
    sys::UniqueFd r;
    ASSERT_EQ(PollDescriptor::create(&d, &r), 0);
    rc = PollDescriptor::send(ours.get(), r.get());
  }
  EXPECT_EQ(rc, -EAGAIN);
}

}  // namespace
}  // namespace nucleus::daemon
