// Connections (connections.h) without a ring: what it does for process ids
// that have, or never had, a connection. The Loop is never set up, so
// nothing here may reach it.
#include "connections.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "policy.h"
#include "requests.h"

namespace nucleus::daemon {
namespace {

class NoLinux : public LinuxSide {
 public:
  bool launching(uint32_t) const override { return false; }
  int spawn(uint32_t, const Waiter &, uint64_t *) override { return -ENOSYS; }
  void stop_subtree(uint32_t) override {}
  void resume_subtree(uint32_t) override {}
  void end_subtree(uint32_t) override {}
  void begin_swap(uint32_t, uint32_t, uint32_t) override {}
  int swap_ready(uint32_t, uint32_t) override { return -ENOSYS; }
  int open_device(uint32_t, uint32_t, const DeviceConfig &) override { return -ENOSYS; }
  std::span<uint8_t> data_area(uint32_t) override { return {}; }
};

// Records what Connections tells the others.
class Told : public Reactions {
 public:
  void answer(const Waiter &, int, uint64_t) override { said.emplace_back("answer"); }
  void program_ended(uint32_t) override { said.emplace_back("ended"); }
  void detached(uint32_t id, uint32_t, bool, uint32_t) override {
    said.push_back("detached " + std::to_string(id));
  }
  void removed(uint32_t) override { said.emplace_back("removed"); }
  void bound(uint32_t, sys::UniqueFd, pid_t, int) override { said.emplace_back("bound"); }
  void candidate_attached(uint32_t, sys::UniqueFd) override { said.emplace_back("candidate"); }
  void tell_swap(uint32_t, SwapEvent, uint64_t) override { said.emplace_back("swap"); }
  int64_t swap_deadline() const override { return 0; }

  std::vector<std::string> said;
};

class ConnectionsTest : public ::testing::Test {
 protected:
  ConnectionsTest()
      : core_(64, 4, 64),
        policy_(config_, core_),
        requests_(core_, config_, policy_, linux_, [](uint32_t, const wire::Event &) {}),
        connections_(config_, core_, loop_, requests_, told_) {
    config_.data_bytes = 4096;
  }

  Config config_;
  Core core_;
  Loop loop_;  // never set up
  NoLinux linux_;
  Told told_;
  Policy policy_;
  Requests requests_;
  Connections connections_;
};

// A swap whose new program never attached (it could not start, ended
// first, or never tried) is rolled back with retire(its hidden entry): an
// id past every connection nucleusd opened, since the hidden entry was
// added to the table after the last attach. Indexing the connections with
// it read (and, had it looked live, wrote) past their end.
TEST_F(ConnectionsTest, RetiringAnIdThatNeverHadAConnectionChangesNothing) {
  uint32_t os = core_.attach("os", Claims{8, 48, 0, 0, 0}).value();
  // No connection at all yet.
  connections_.retire(os);
  EXPECT_FALSE(connections_.live(os));

  // One connection; then an entry added after it (as a swap's hidden one).
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
  ASSERT_GE(pidfd, 0);
  ASSERT_EQ(connections_.open(os, pidfd, getpid()), 0);
  ASSERT_TRUE(connections_.live(os));
  Program program;
  program.path = "/bin/true";
  uint32_t later = kNone;
  for (int i = 0; i < 40; ++i) {  // past the connections' room
    Result<uint32_t> child = core_.create(os, "c" + std::to_string(i), program, Claims{});
    ASSERT_TRUE(child.ok()) << i;
    later = child.value();
  }
  ASSERT_GT(later, os);
  connections_.retire(later);
  EXPECT_FALSE(connections_.live(later));
  EXPECT_TRUE(connections_.live(os));
  EXPECT_EQ(connections_.count(), 1U);
  EXPECT_TRUE(told_.said.empty());
}

}  // namespace
}  // namespace nucleus::daemon
