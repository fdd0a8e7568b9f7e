// SliceQueue: inspection work in rounds, one slice a uid a round, within a
// turn's budget.
#include "slice_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace nucleus::daemon {
namespace {

using Member = SliceQueue::Member;

// Members named by index; each has `work[index]` units left and spends
// what its slice allows. Records who was served, in order.
struct Work {
  std::map<uint32_t, uint64_t> left;
  std::vector<uint32_t> served;
  SliceQueue::Served operator()(const Member &m, uint64_t slice) {
    served.push_back(m.index);
    uint64_t spent = std::min(slice, left[m.index]);
    left[m.index] -= spent;
    return {spent, left[m.index] > 0};
  }
};

TEST(SliceQueue, AUidIsServedOnceARoundHoweverManyConnectionsItHas) {
  SliceQueue q;
  // uid 7 has three connections, uid 8 one; everyone has plenty to do.
  Work w;
  for (uint32_t i : {1, 2, 3}) {
    q.push({i, 0, 7});
    w.left[i] = 1000;
  }
  q.push({4, 0, 8});
  w.left[4] = 1000;
  // Four slices of 10: two rounds.
  EXPECT_EQ(q.turn(40, 10, std::ref(w)), 40U);
  EXPECT_EQ(w.served, (std::vector<uint32_t>{1, 4, 2, 4}));
  // Uid 7's connections take their turns: the next turn goes on with 3.
  w.served.clear();
  q.turn(40, 10, std::ref(w));
  EXPECT_EQ(w.served, (std::vector<uint32_t>{3, 4, 1, 4}));
  EXPECT_EQ(q.size(), 4U);
}

TEST(SliceQueue, WhoTheBudgetDidNotReachComesFirstNextTurn) {
  SliceQueue q;
  Work w;
  for (uint32_t i : {1, 2, 3}) {
    q.push({i, 0, i});  // three uids
    w.left[i] = 1000;
  }
  q.turn(20, 10, std::ref(w));
  EXPECT_EQ(w.served, (std::vector<uint32_t>{1, 2}));
  w.served.clear();
  q.turn(20, 10, std::ref(w));
  EXPECT_EQ(w.served, (std::vector<uint32_t>{3, 1}));
}

TEST(SliceQueue, ASliceIsAtMostWhatIsLeftOfTheBudget) {
  SliceQueue q;
  std::vector<uint64_t> slices;
  q.push({1, 0, 1});
  q.push({2, 0, 2});
  q.turn(25, 10, [&](const Member &, uint64_t slice) {
    slices.push_back(slice);
    return SliceQueue::Served{slice, true};
  });
  EXPECT_EQ(slices, (std::vector<uint64_t>{10, 10, 5}));
}

TEST(SliceQueue, AMemberWithNoMoreLeavesAndAnEmptyQueueEndsTheTurn) {
  SliceQueue q;
  Work w;
  q.push({1, 0, 1});
  q.push({2, 0, 1});
  w.left[1] = 5;
  w.left[2] = 15;
  EXPECT_EQ(q.turn(1000, 10, std::ref(w)), 20U);
  EXPECT_EQ(w.served, (std::vector<uint32_t>{1, 2, 2}));
  EXPECT_TRUE(q.empty());
}

TEST(SliceQueue, AMemberThatSpendsNothingWaitsForTheNextTurn) {
  // It had its requests for this turn: served again, it would only turn
  // rounds over until the budget ran out.
  SliceQueue q;
  q.push({1, 0, 1});
  q.push({2, 0, 2});
  std::vector<uint32_t> served;
  auto serve = [&](const Member &m, uint64_t slice) {
    served.push_back(m.index);
    return SliceQueue::Served{m.index == 1 ? 0 : std::min<uint64_t>(slice, 5), true};
  };
  EXPECT_EQ(q.turn(1000000, 10, serve), 1000000U);
  EXPECT_EQ(served[0], 1U);
  EXPECT_EQ(std::count(served.begin(), served.end(), 1U), 1);
  EXPECT_EQ(q.size(), 2U);
  // Next turn it is served again, after the one that went on, and rests
  // again while 2 spends the rest.
  served.clear();
  q.turn(10, 10, serve);
  EXPECT_EQ(served, (std::vector<uint32_t>{2, 1, 2}));
  // Alone, it ends the turn at once.
  SliceQueue alone;
  alone.push({1, 0, 1});
  served.clear();
  EXPECT_EQ(alone.turn(1000000, 10, serve), 0U);
  EXPECT_EQ(served, (std::vector<uint32_t>{1}));
  EXPECT_EQ(alone.size(), 1U);
}

TEST(SliceQueue, AMemberPushedWhileServingWaitsForTheNextRound) {
  SliceQueue q;
  q.push({1, 0, 1});
  std::vector<uint32_t> served;
  q.turn(10, 10, [&](const Member &m, uint64_t slice) {
    served.push_back(m.index);
    if (m.index == 1) q.push({2, 0, 2});
    return SliceQueue::Served{slice, false};
  });
  EXPECT_EQ(served, (std::vector<uint32_t>{1}));
  ASSERT_EQ(q.size(), 1U);
  q.turn(10, 10, [&](const Member &m, uint64_t slice) {
    served.push_back(m.index);
    return SliceQueue::Served{slice, false};
  });
  EXPECT_EQ(served, (std::vector<uint32_t>{1, 2}));
}

}  // namespace
}  // namespace nucleus::daemon
