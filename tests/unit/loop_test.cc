// The Loop (loop.h): routing by kind, and closing the ring before the
// memory its SQEs name goes (Server::~Server closes it before destroying
// the objects that own that memory).
#include "loop.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

namespace nucleus::daemon {
namespace {

class Pipe {
 public:
  Pipe() { EXPECT_EQ(pipe2(fds_, O_CLOEXEC), 0); }
  ~Pipe() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  Pipe(const Pipe &) = delete;
  Pipe &operator=(const Pipe &) = delete;
  int in() const { return fds_[0]; }
  int out() const { return fds_[1]; }

 private:
  int fds_[2] = {-1, -1};
};

// Submits a read of `fd` into `into`, tagged as a device's.
void read_into(Loop &loop, int fd, char *into, unsigned bytes) {
  io_uring_sqe *sqe = loop.sqe();
  io_uring_prep_read(sqe, fd, into, bytes, 0);
  Loop::set_tag(sqe, Kind::kDevice, 3, 9);
  loop.submit();
}

TEST(Loop, ACompletionGoesToItsKindsHandlerWithIndexAndGeneration) {
  Loop loop;
  std::string error;
  ASSERT_TRUE(loop.setup(false, &error)) << error;
  Pipe pipe;
  char buffer[8] = {};
  Completion seen{};
  int calls = 0;
  loop.route(Kind::kDevice, [&](const Completion &c) {
    seen = c;
    ++calls;
  });
  // The bytes first: the read completes as it is submitted.
  ASSERT_EQ(write(pipe.out(), "state", 5), 5);
  read_into(loop, pipe.in(), buffer, sizeof(buffer));
  EXPECT_EQ(loop.turn(false), 1U);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen.index, 3U);
  EXPECT_EQ(seen.generation, 9U);
  EXPECT_EQ(seen.result, 5);
  EXPECT_EQ(std::string(buffer, 5), "state");
}

// nucleusd's objects own memory that SQEs in flight name (a doorbell's
// eventfd counter, a console's input buffer): once the Loop is closed
// nothing is read into it any more, so it may be freed. Before the fix the
// ring outlived those objects (Server destroyed them first).
TEST(Loop, ClosingEndsAReadInFlightSoItsMemoryMayGo) {
  Loop loop;
  std::string error;
  ASSERT_TRUE(loop.setup(false, &error)) << error;
  Pipe pipe;
  auto buffer = std::make_unique<char[]>(16);
  std::memset(buffer.get(), 0, 16);
  bool completed = false;
  loop.route(Kind::kDevice, [&](const Completion &) { completed = true; });
  read_into(loop, pipe.in(), buffer.get(), 16);
  loop.close();
  ASSERT_EQ(write(pipe.out(), "state", 5), 5);
  // The bytes are still the pipe's: the read ended with the ring.
  pollfd p{pipe.in(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  char back[16] = {};
  EXPECT_EQ(read(pipe.in(), back, sizeof(back)), 5);
  EXPECT_EQ(buffer[0], 0);
  EXPECT_FALSE(completed);
  loop.close();  // again: nothing
}

}  // namespace
}  // namespace nucleus::daemon
