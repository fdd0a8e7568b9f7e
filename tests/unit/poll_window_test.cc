// The polling window: derived from turnarounds, bounded, capped in CPU.
#include "poll_window.h"

#include <gtest/gtest.h>

namespace nucleus::daemon {
namespace {

constexpr int64_t kUs = 1000;

void feed(PollWindow &w, int n, int64_t gap_ns) {
  for (int i = 0; i < n; ++i) w.turnaround(gap_ns);
}

TEST(PollWindow, NoTurnaroundsSeenNoPolling) {
  PollWindow w;
  EXPECT_EQ(w.window_ns(), 0);
}

TEST(PollWindow, CoversNineInTenTurnaroundsTwice) {
  PollWindow w;
  feed(w, 90, 10 * kUs);
  feed(w, 6, 40 * kUs);
  // Nine in ten are at most 10 µs: their half-octave bucket ends at
  // 11.3 µs, and the window is twice that.
  EXPECT_GE(w.window_ns(), 20 * kUs);
  EXPECT_LE(w.window_ns(), 24 * kUs);
  // When the slower ones are more than one in ten, the window covers them.
  feed(w, 64, 40 * kUs);
  EXPECT_GE(w.window_ns(), 80 * kUs);
  EXPECT_LE(w.window_ns(), 2 * 46 * kUs);
}

TEST(PollWindow, NeverLongerThanItsBound) {
  PollWindow w(PollSettings{PollMode::kAdaptive, 100 * kUs, 50});
  feed(w, 64, 90 * kUs);
  EXPECT_EQ(w.window_ns(), 100 * kUs);
}

TEST(PollWindow, MostlyLongGapsNoPolling) {
  PollWindow w(PollSettings{PollMode::kAdaptive, 250 * kUs, 50});
  feed(w, 30, 5 * kUs);
  feed(w, 34, 3000 * kUs);  // a process that answers after 3 ms
  EXPECT_EQ(w.window_ns(), 0);
  // Some long gaps among many short ones do not stop it.
  feed(w, 128, 5 * kUs);
  EXPECT_GT(w.window_ns(), 0);
  EXPECT_LE(w.window_ns(), 12 * kUs);
}

TEST(PollWindow, FollowsRecentTurnarounds) {
  PollWindow w;
  feed(w, 2000, 100 * kUs);
  EXPECT_GE(w.window_ns(), 200 * kUs);
  // Old samples halve away: after enough fast ones the window shrinks.
  feed(w, 4 * static_cast<int>(PollWindow::kDecayAt), 3 * kUs);
  EXPECT_LE(w.window_ns(), 8 * kUs);
}

TEST(PollWindow, FixedAndOff) {
  PollWindow w(PollSettings{PollMode::kFixed, 70 * kUs, 50});
  EXPECT_EQ(w.window_ns(), 70 * kUs);
  feed(w, 64, 3 * kUs);
  EXPECT_EQ(w.window_ns(), 70 * kUs);
  w.configure(PollSettings{PollMode::kOff, 70 * kUs, 50});
  EXPECT_EQ(w.window_ns(), 0);
  feed(w, 64, 3 * kUs);
  EXPECT_EQ(w.window_ns(), 0);
  // Back to adaptive: the samples seen meanwhile count at once.
  w.configure(PollSettings{PollMode::kAdaptive, 250 * kUs, 50});
  EXPECT_GT(w.window_ns(), 0);
  EXPECT_LE(w.window_ns(), 8 * kUs);
}

TEST(PollWindow, CpuShareIsCappedPerSecond) {
  PollWindow w(PollSettings{PollMode::kAdaptive, 250 * kUs, 25});
  int64_t t = 5 * PollWindow::kSecondNs;
  ASSERT_TRUE(w.may_poll(t));
  // 240 ms of polling in this second: still under a quarter of it.
  for (int i = 0; i < 240; ++i) w.polled(t + i * 1000 * kUs, t + (i + 1) * 1000 * kUs);
  EXPECT_TRUE(w.may_poll(t + 240 * 1000 * kUs));
  w.polled(t + 240 * 1000 * kUs, t + 251 * 1000 * kUs);
  EXPECT_FALSE(w.may_poll(t + 251 * 1000 * kUs));
  EXPECT_FALSE(w.may_poll(t + 999 * 1000 * kUs));
  // The next second starts afresh and reports what the last one took.
  EXPECT_TRUE(w.may_poll(t + PollWindow::kSecondNs));
  EXPECT_EQ(w.polled_last_second_ns(), 251 * 1000 * kUs);
  // A second with no polling at all, after a gap of many: reported as 0.
  EXPECT_TRUE(w.may_poll(t + 10 * PollWindow::kSecondNs));
  EXPECT_EQ(w.polled_last_second_ns(), 0);
}

TEST(PollWindow, BackwardsOrEmptyIntervalsCostNothing) {
  PollWindow w(PollSettings{PollMode::kAdaptive, 250 * kUs, 1});
  int64_t t = PollWindow::kSecondNs;
  ASSERT_TRUE(w.may_poll(t));
  w.polled(t, t);
  w.polled(t, t - 5 * PollWindow::kSecondNs);
  EXPECT_TRUE(w.may_poll(t));
  w.turnaround(-5);  // a clock that went back counts as the shortest gap
  EXPECT_EQ(w.samples(), 1U);
}

}  // namespace
}  // namespace nucleus::daemon
