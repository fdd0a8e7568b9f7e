#include "pool.h"

#include <gtest/gtest.h>

namespace nucleus::daemon {
namespace {

TEST(Pool, TakeIsAllOrNothing) {
  Pool pool(8);
  std::vector<uint32_t> a;
  EXPECT_TRUE(pool.take(5, 1, &a));
  EXPECT_EQ(pool.free_count(), 3U);
  std::vector<uint32_t> b;
  EXPECT_FALSE(pool.take(4, 2, &b));
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(pool.free_count(), 3U);
  for (uint32_t i : a) EXPECT_EQ(pool.at(i).owner, 1U);
  for (uint32_t i : a) pool.give_back(i);
  EXPECT_EQ(pool.free_count(), 8U);
}

TEST(Pool, HandlesNameOneUseOfOneBuffer) {
  Pool pool(4);
  uint64_t current = pool.handle(2);
  EXPECT_EQ(wire::handle_index(current), 2U);
  EXPECT_TRUE(pool.resolve_next(wire::next_handle(current)).has_value());
  EXPECT_FALSE(pool.resolve_next(current).has_value());  // not the next use
  EXPECT_FALSE(pool.resolve_next(wire::next_handle(wire::next_handle(current))).has_value());
  pool.at(2).generation = wire::handle_generation(wire::next_handle(current));
  uint64_t used = pool.handle(2);
  EXPECT_EQ(pool.resolve(used), std::optional<uint32_t>(2));
  EXPECT_FALSE(pool.resolve(current).has_value());  // stale
}

TEST(Pool, ForgedHandlesAreRefused) {
  Pool pool(4);
  EXPECT_FALSE(pool.resolve(0).has_value());
  EXPECT_FALSE(pool.resolve(wire::make_handle(4, 1)).has_value());  // out of range
  EXPECT_FALSE(pool.resolve(wire::make_handle(0xffffff, 1)).has_value());
  EXPECT_FALSE(pool.resolve(~0ULL).has_value());
  EXPECT_FALSE(pool.resolve_next(wire::make_handle(9, 1)).has_value());
}

TEST(Pool, ApplyRefusesMissingEdgesAndChangesNothing) {
  Pool pool(1);
  EXPECT_FALSE(pool.apply(0, BufferEvent::kAnswer));
  EXPECT_EQ(pool.at(0).state, BufferState::kFree);
  EXPECT_TRUE(pool.apply(0, BufferEvent::kSend));
  EXPECT_EQ(pool.at(0).state, BufferState::kQueued);
}

TEST(Pool, InUseCountsTheBuffersThatAreNotFree) {
  Pool pool(4);
  auto count = [&] {
    uint32_t n = 0;
    for (uint32_t i = 0; i < pool.size(); ++i) n += pool.at(i).state != BufferState::kFree;
    return n;
  };
  EXPECT_EQ(pool.in_use(), 0U);
  // Every edge of the table from every state, one buffer each.
  for (uint32_t i = 0; i < pool.size(); ++i) {
    for (int e = 0; e < kBufferEventCount; ++e) {
      pool.apply(i, static_cast<BufferEvent>((e + i) % kBufferEventCount));
      EXPECT_EQ(pool.in_use(), count());
    }
  }
  EXPECT_GT(pool.in_use(), 0U);  // the walk left some in use
}

TEST(Handles, GenerationWrapSkipsZero) {
  uint64_t last = wire::make_handle(7, wire::kHandleGenerationMask);
  uint64_t next = wire::next_handle(last);
  EXPECT_NE(next, 0U);
  EXPECT_EQ(wire::handle_index(next), 7U);
  EXPECT_EQ(wire::handle_generation(next), 1U);
}

TEST(Names, Validation) {
  EXPECT_EQ(wire::name_length("echo", 32), 4);
  EXPECT_EQ(wire::name_length("a.B_c-9", 32), 7);
  EXPECT_EQ(wire::name_length("", 32), -1);
  EXPECT_EQ(wire::name_length("a b", 32), -1);
  EXPECT_EQ(wire::name_length("caf\xc3\xa9", 32), -1);
  EXPECT_EQ(wire::name_length("a/b", 32), -1);
  std::string n31(31, 'x');
  std::string n32(32, 'x');
  EXPECT_EQ(wire::name_length(n31.c_str(), 32), 31);
  EXPECT_EQ(wire::name_length(n32.c_str(), 33), -1);
  char unterminated[32];
  std::memset(unterminated, 'a', sizeof(unterminated));
  EXPECT_EQ(wire::name_length(unterminated, sizeof(unterminated)), -1);
}

}  // namespace
}  // namespace nucleus::daemon
