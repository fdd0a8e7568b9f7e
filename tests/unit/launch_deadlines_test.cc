// The launcher's watchdog book (daemon/launch_deadlines.h) on a fake clock:
// when a launch is due to be killed, when a kill that could not be
// delivered is tried again, when a killed launch is left behind, and that
// shutdown makes every launch due at once and lets none begin.
#include "launch_deadlines.h"

#include <gtest/gtest.h>

namespace nucleus::daemon {
namespace {

using State = LaunchDeadlines::State;
constexpr int64_t kMs = 1000000;
constexpr int64_t kGrace = 1000 * kMs;

TEST(LaunchDeadlines, NothingArmedIsNeverDue) {
  LaunchDeadlines d(4, kGrace);
  EXPECT_TRUE(d.due(0).empty());
  EXPECT_TRUE(d.abandon(1000 * kGrace).empty());
  EXPECT_EQ(d.next(0), LaunchDeadlines::kNever);
}

TEST(LaunchDeadlines, ALaunchIsDueAtItsDeadlineNotBefore) {
  LaunchDeadlines d(4, kGrace);
  ASSERT_TRUE(d.arm(1, 100 * kMs));
  ASSERT_TRUE(d.arm(2, 50 * kMs));
  EXPECT_EQ(d.next(0), 50 * kMs);  // the nearest deadline
  EXPECT_TRUE(d.due(50 * kMs - 1).empty());
  EXPECT_EQ(d.due(50 * kMs), std::vector<size_t>{2});
  EXPECT_EQ(d.due(100 * kMs), (std::vector<size_t>{1, 2}));
  EXPECT_EQ(d.state(1), State::kArmed);
}

TEST(LaunchDeadlines, AKillNotYetDeliveredIsTriedAgainSoon) {
  LaunchDeadlines d(2, kGrace);
  ASSERT_TRUE(d.arm(0, 10 * kMs));
  // Due, but the watchdog could not kill it (the kernel has not yet shown
  // the child): it stays due and the watchdog looks again shortly.
  EXPECT_EQ(d.due(20 * kMs), std::vector<size_t>{0});
  EXPECT_EQ(d.next(20 * kMs), 20 * kMs + LaunchDeadlines::kRetryNs);
  EXPECT_EQ(d.due(21 * kMs), std::vector<size_t>{0});
}

TEST(LaunchDeadlines, AKilledLaunchThatComesBackSaysItWasKilled) {
  LaunchDeadlines d(2, kGrace);
  ASSERT_TRUE(d.arm(0, 10 * kMs));
  d.killed(0, 10 * kMs);
  EXPECT_EQ(d.state(0), State::kKilled);
  EXPECT_TRUE(d.due(11 * kMs).empty()) << "killed once";
  EXPECT_EQ(d.next(11 * kMs), 10 * kMs + kGrace);  // the end of its grace
  EXPECT_TRUE(d.abandon(10 * kMs + kGrace - 1).empty());
  EXPECT_EQ(d.disarm(0), State::kKilled);
  EXPECT_EQ(d.state(0), State::kIdle);
  EXPECT_TRUE(d.abandon(100 * kGrace).empty());
  EXPECT_EQ(d.next(100 * kGrace), LaunchDeadlines::kNever);
}

TEST(LaunchDeadlines, AKilledLaunchNotBackAfterTheGraceIsAbandonedOnce) {
  LaunchDeadlines d(2, kGrace);
  ASSERT_TRUE(d.arm(1, 10 * kMs));
  d.killed(1, 10 * kMs);
  EXPECT_EQ(d.abandon(10 * kMs + kGrace), std::vector<size_t>{1});
  EXPECT_EQ(d.state(1), State::kAbandoned);
  EXPECT_TRUE(d.abandon(10 * kMs + 2 * kGrace).empty()) << "once";
  EXPECT_TRUE(d.due(10 * kMs + 2 * kGrace).empty()) << "never killed again";
  EXPECT_EQ(d.next(10 * kMs + 2 * kGrace), LaunchDeadlines::kNever);
  // Should its thread ever come back, it learns it was left behind.
  EXPECT_EQ(d.disarm(1), State::kAbandoned);
  EXPECT_EQ(d.state(1), State::kIdle);
}

TEST(LaunchDeadlines, ALaunchThatExecsInTimeWasNotTouched) {
  LaunchDeadlines d(1, kGrace);
  ASSERT_TRUE(d.arm(0, 10 * kMs));
  EXPECT_EQ(d.disarm(0), State::kArmed);
  EXPECT_TRUE(d.due(20 * kMs).empty());
  // A late kill report for a slot that came back changes nothing.
  d.killed(0, 20 * kMs);
  EXPECT_EQ(d.state(0), State::kIdle);
  // And the slot serves the next launch.
  ASSERT_TRUE(d.arm(0, 30 * kMs));
  EXPECT_EQ(d.next(20 * kMs), 30 * kMs);
}

TEST(LaunchDeadlines, AtShutdownEveryLaunchIsDueAtOnceAndNoneBegins) {
  LaunchDeadlines d(3, kGrace);
  ASSERT_TRUE(d.arm(0, 1000 * kMs));
  ASSERT_TRUE(d.arm(2, 2000 * kMs));
  d.stop();
  EXPECT_TRUE(d.stopping());
  EXPECT_EQ(d.due(0), (std::vector<size_t>{0, 2}));
  EXPECT_EQ(d.next(0), LaunchDeadlines::kRetryNs);
  EXPECT_FALSE(d.arm(1, 3000 * kMs));
  EXPECT_EQ(d.state(1), State::kIdle);
}

}  // namespace
}  // namespace nucleus::daemon
