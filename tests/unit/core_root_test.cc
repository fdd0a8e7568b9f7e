// The root as a parent (an operator acting for it through nucleusctl):
// claims out of the pool's unowned buffers and the table, children that
// come back whole on remove; requests (stop, swap) on a requester's buffer
// with another's authority; and the monitor's trace of message events.
#include <gtest/gtest.h>

#include <iterator>
#include <vector>

#include "core.h"
#include "core_helpers.h"

namespace nucleus::daemon {
namespace {

class CoreRoot : public testing::SmallCore {};

TEST_F(CoreRoot, CreatesFromTheUnownedBuffersAndGivesThemBackOnRemove) {
  uint32_t unowned = core.pool().free_count();
  auto c = core.create(kNone, "sup", program, Claims{16, 3, 0, 2}, 1000, 100);
  ASSERT_TRUE(c.ok());
  const Process &p = core.processes().at(c.value());
  EXPECT_EQ(p.parent, kNone);
  EXPECT_EQ(p.uid, 1000U);  // the operator's
  EXPECT_EQ(p.gid, 100U);
  EXPECT_EQ(p.slots.size(), 16U);
  EXPECT_EQ(core.pool().free_count(), unowned - 16);
  EXPECT_EQ(core.root_lent().processes, 4U);
  EXPECT_EQ(core.root_lent().buffers, 16U);
  ASSERT_EQ(core.children_of(kNone).size(), 1U);
  // Its own children take out of its claim and inherit its owner.
  auto g = core.create(c.value(), "worker", program, Claims{4, 0, 0});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(core.processes().at(g.value()).uid, 1000U);
  EXPECT_EQ(core.remove(kNone, c.value()), Error::kNone);
  EXPECT_EQ(core.pool().free_count(), unowned);
  EXPECT_EQ(core.root_lent().processes, 0U);
  EXPECT_EQ(core.root_lent().buffers, 0U);
  EXPECT_TRUE(core.children_of(kNone).empty());
}

TEST_F(CoreRoot, ItsClaimsAreThePoolAndTheTable) {
  // The table allows 10 descendants of the root.
  EXPECT_EQ(core.create(kNone, "big", program, Claims{1, 10, 0}).error(), Error::kNoBuffers);
  EXPECT_EQ(core.create(kNone, "greedy", program, Claims{kPool, 0, 0}).error(), Error::kNoBuffers);
  auto c = core.create(kNone, "ok", program, Claims{kPool - kNotices, 9, 0});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(core.pool().free_count(), 0U);
  EXPECT_EQ(core.create(kNone, "more", program, Claims{0, 0, 0}).error(), Error::kNoBuffers);
  // Modify gives buffers back to the root and takes them again.
  Claims fewer{10, 9, 0}, more{20, 9, 0}, too_many{kPool, 9, 0};
  EXPECT_EQ(core.modify(kNone, c.value(), nullptr, &fewer), Error::kNone);
  EXPECT_EQ(core.pool().free_count(), kPool - kNotices - 10);
  EXPECT_EQ(core.modify(kNone, c.value(), nullptr, &more), Error::kNone);
  EXPECT_EQ(core.pool().free_count(), kPool - kNotices - 20);
  EXPECT_EQ(core.root_lent().buffers, 20U);
  EXPECT_EQ(core.modify(kNone, c.value(), nullptr, &too_many), Error::kNoBuffers);
}

TEST_F(CoreRoot, AStopAskedByOneActingForTheRootIsAnsweredToIt) {
  auto ctl = core.attach("nucleusctl-1", Claims{4, 0, 0}, 0, 0, 1);  // its own pid
  ASSERT_TRUE(ctl.ok());
  auto c = core.create(kNone, "sup", program, Claims{2, 0, 0});
  ASSERT_TRUE(c.ok());
  StartPlan plan;
  ASSERT_EQ(core.start(kNone, c.value(), &plan), Error::kNone);
  core.program_started(c.value(), 42);
  uint64_t handle = testing::free_handle(core, ctl.value());
  ASSERT_EQ(core.begin_stop(ctl.value(), c.value(), handle), Error::kNone);
  EXPECT_EQ(core.stats(ctl.value()).claim_used, 1U);  // the requester's buffer
  core.finish_stop(c.value());
  auto events = testing::take_events(core, ctl.value());
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0].kind, static_cast<uint32_t>(wire::EventKind::kAnswer));
  EXPECT_EQ(events[0].handle, handle);
  EXPECT_EQ(events[0].result, wire::kResultNormal);
  // A buffer not of the requester's claim is refused.
  auto other = core.attach("other", Claims{2, 0, 0});
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(core.begin_stop(ctl.value(), c.value(), testing::free_handle(core, other.value())),
            Error::kBadHandle);
}

TEST_F(CoreRoot, TheTraceRecordsMessagesAndAnswersOnlyWhileOn) {
  auto a = core.attach("a", Claims{4, 0, 0});
  auto b = core.attach("b", Claims{4, 0, 0});
  ASSERT_TRUE(a.ok() && b.ok());
  uint64_t h = testing::free_handle(core, a.value());
  ASSERT_EQ(core.send_message(a.value(), h, "b", wire::Message{}), Error::kNone);
  EXPECT_TRUE(core.trace().empty());  // off
  core.set_tracing(true);
  // Each event keeps its words: the message's, or the answer's.
  wire::Message asked{{1, 2, 3, 4, 5, 6, 7, 8}};
  wire::Message answered{{9, 0, 0, 0, 0, 0, 0, UINT64_MAX}};
  h = testing::free_handle(core, a.value());
  ASSERT_EQ(core.send_message(a.value(), h, "b", asked), Error::kNone);
  testing::take_events(core, b.value());
  ASSERT_EQ(core.get_event(b.value(), h), Error::kNone);
  ASSERT_EQ(core.send_answer(b.value(), h, wire::kResultRejected, answered), Error::kNone);
  uint64_t h2 = testing::free_handle(core, a.value());
  ASSERT_EQ(core.send_message(a.value(), h2, "nobody", asked), Error::kNone);
  const auto &t = core.trace();
  ASSERT_EQ(t.size(), 4U);
  EXPECT_EQ(t[0].kind, TraceKind::kMessage);
  EXPECT_STREQ(t[0].from, "a");
  EXPECT_STREQ(t[0].to, "b");
  EXPECT_EQ(t[0].handle, h);
  EXPECT_EQ(t[1].kind, TraceKind::kAnswer);
  EXPECT_STREQ(t[1].from, "b");
  EXPECT_STREQ(t[1].to, "a");
  EXPECT_EQ(t[1].result, wire::kResultRejected);
  EXPECT_STREQ(t[2].to, "nobody");
  EXPECT_EQ(t[3].kind, TraceKind::kAnswer);
  EXPECT_STREQ(t[3].from, "nucleus");  // the dummy answer
  EXPECT_EQ(t[3].result, wire::kResultDummy);
  auto words = [](const TraceEvent &e) {
    return std::vector<uint64_t>(std::begin(e.words.word), std::end(e.words.word));
  };
  EXPECT_EQ(words(t[0]), std::vector<uint64_t>(std::begin(asked.word), std::end(asked.word)));
  EXPECT_EQ(words(t[1]), std::vector<uint64_t>(std::begin(answered.word), std::end(answered.word)));
  // A message nobody receives is traced with its words, its dummy answer
  // with none.
  EXPECT_EQ(words(t[2]), std::vector<uint64_t>(std::begin(asked.word), std::end(asked.word)));
  EXPECT_EQ(words(t[3]), std::vector<uint64_t>(8, 0));
  Core::TraceBatch taken = core.take_trace();
  EXPECT_EQ(taken.events.size(), 4U);
  EXPECT_EQ(taken.dropped, 0U);
  EXPECT_TRUE(t.empty()) << "taken";
  // Bounded: past kMaxTrace events are counted, not kept.
  for (size_t i = 0; i < kMaxTrace + 3; ++i) {
    uint64_t hh = testing::free_handle(core, a.value());
    ASSERT_EQ(core.send_message(a.value(), hh, "nobody", wire::Message{}), Error::kNone);
    testing::take_events(core, a.value());
    ASSERT_EQ(core.release_answer(a.value(), hh), Error::kNone);
  }
  EXPECT_EQ(t.size(), kMaxTrace);
  EXPECT_EQ(core.trace_dropped(), (kMaxTrace + 3) * 2 - kMaxTrace);
  taken = core.take_trace();
  EXPECT_EQ(taken.events.size(), kMaxTrace);
  EXPECT_EQ(taken.dropped, (kMaxTrace + 3) * 2 - kMaxTrace);
  EXPECT_EQ(core.trace_dropped(), 0U);
  // Turned off, it drops what it kept.
  h = testing::free_handle(core, a.value());
  ASSERT_EQ(core.send_message(a.value(), h, "nobody", wire::Message{}), Error::kNone);
  EXPECT_FALSE(t.empty());
  core.set_tracing(false);
  EXPECT_TRUE(t.empty());
}

}  // namespace
}  // namespace nucleus::daemon
