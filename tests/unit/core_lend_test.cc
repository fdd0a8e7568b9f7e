// Data lent with a message and regret on the Core, without channels: what a
// message lends and to whom, when a lend ends, and regret in every state of
// the buffer (buffer_state.h's kRegret column, and the refusals around it).
#include <gtest/gtest.h>

#include "core.h"
#include "core_helpers.h"

namespace nucleus::daemon {
namespace {

using testing::free_handle;
using testing::take_events;

class CoreLendTest : public ::testing::Test {
 protected:
  uint32_t attach(const char *name) {
    auto r = core.attach(name, 4);
    EXPECT_TRUE(r.ok());
    return r.value();
  }
  uint64_t send(uint32_t from, const char *to, const Lend &lend = {}) {
    uint64_t h = free_handle(core, from);
    EXPECT_EQ(core.send_message(from, h, to, wire::Message{}, lend), Error::kNone);
    return h;
  }
  // Sends, publishes to the receiver and has it take the message.
  uint64_t received(uint32_t from, uint32_t to, const char *to_name, const Lend &lend) {
    uint64_t h = send(from, to_name, lend);
    take_events(core, to);
    EXPECT_EQ(core.get_event(to, h), Error::kNone);
    return h;
  }
  const Buffer &buffer(uint64_t h) const { return core.pool().at(wire::handle_index(h)); }

  Core core{16};
};

TEST_F(CoreLendTest, TheMessageEventCarriesBytesAndRightsNeverTheOffset) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  send(a, "b", Lend{100, 4096, wire::kLendRead | wire::kLendWrite});
  auto in = take_events(core, b);
  ASSERT_EQ(in.size(), 1U);
  EXPECT_EQ(in[0].extra, wire::lend_extra(4096, wire::kLendRead | wire::kLendWrite));
}

TEST_F(CoreLendTest, AMessageWithoutALendSaysNothingAndItsAnswerNeither) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  // The buffer lent before: a later send without a lend lends nothing.
  uint64_t h = received(a, b, "b", Lend{0, 64, wire::kLendRead});
  ASSERT_EQ(core.send_answer(b, h, wire::kResultNormal, wire::Message{}), Error::kNone);
  auto out = take_events(core, a);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].extra, 0U);  // an answer carries no lend
  ASSERT_EQ(core.release_answer(a, h), Error::kNone);
  send(a, "b");
  auto in = take_events(core, b);
  ASSERT_EQ(in.size(), 1U);
  EXPECT_EQ(in[0].extra, 0U);
}

TEST_F(CoreLendTest, TheReceiverThatHoldsItGetsTheRangeForTheRightItWasGiven) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  uint64_t h = received(a, b, "b", Lend{128, 256, wire::kLendRead});
  auto r = core.lent_range(b, h, wire::kCopyFrom);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().sender, a);
  EXPECT_EQ(r.value().offset, 128U);
  EXPECT_EQ(r.value().bytes, 256U);
  EXPECT_EQ(core.lent_range(b, h, wire::kCopyTo).error(), Error::kDenied);  // read only
  uint64_t w = received(a, b, "b", Lend{0, 8, wire::kLendWrite});
  EXPECT_TRUE(core.lent_range(b, w, wire::kCopyTo).ok());
  EXPECT_EQ(core.lent_range(b, w, wire::kCopyFrom).error(), Error::kDenied);  // write only
}

TEST_F(CoreLendTest, OnlyTheReceiverHoldingItMayCopy) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  uint32_t c = attach("c");
  uint64_t h = send(a, "b", Lend{0, 64, wire::kLendRead});
  take_events(core, b);
  // Published, not taken.
  EXPECT_EQ(core.lent_range(b, h, wire::kCopyFrom).error(), Error::kBadHandle);
  ASSERT_EQ(core.get_event(b, h), Error::kNone);
  EXPECT_EQ(core.lent_range(c, h, wire::kCopyFrom).error(), Error::kBadHandle);      // a third
  EXPECT_EQ(core.lent_range(a, h, wire::kCopyFrom).error(), Error::kBadHandle);      // the sender
  EXPECT_EQ(core.lent_range(b, h + 1, wire::kCopyFrom).error(), Error::kBadHandle);  // forged
  EXPECT_EQ(core.lent_range(b, wire::next_handle(h), wire::kCopyFrom).error(),
            Error::kBadHandle);  // a later use
  EXPECT_TRUE(core.lent_range(b, h, wire::kCopyFrom).ok());
  // Answered: the lend is over.
  ASSERT_EQ(core.send_answer(b, h, wire::kResultNormal, wire::Message{}), Error::kNone);
  EXPECT_EQ(core.lent_range(b, h, wire::kCopyFrom).error(), Error::kBadHandle);
}

TEST_F(CoreLendTest, AMessageThatLendsNothingSaysSo) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  uint64_t h = received(a, b, "b", Lend{});
  EXPECT_EQ(core.lent_range(b, h, wire::kCopyFrom).error(), Error::kNoLend);
}

TEST_F(CoreLendTest, TheSendersDeathEndsTheLend) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  uint64_t h = received(a, b, "b", Lend{0, 64, wire::kLendRead | wire::kLendWrite});
  core.detach(a);
  EXPECT_EQ(core.lent_range(b, h, wire::kCopyFrom).error(), Error::kLendEnded);
  EXPECT_EQ(core.lent_range(b, h, wire::kCopyTo).error(), Error::kLendEnded);
  // Its answer is still fine, and frees the orphan.
  EXPECT_EQ(core.send_answer(b, h, wire::kResultNormal, wire::Message{}), Error::kNone);
  EXPECT_EQ(core.pool().in_use(), 0U);
}

TEST_F(CoreLendTest, TheLendMovesWithAReceivedMessageToASwapsNewProgram) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  uint64_t h = received(a, b, "b", Lend{8, 64, wire::kLendWrite});
  wire::Event e = core.inherit_event(wire::handle_index(h), wire::kInheritReceived);
  EXPECT_EQ(e.extra, wire::lend_extra(64, wire::kLendWrite));
}

// ---- regret: the kRegret column, and what each refused cell says --------

TEST_F(CoreLendTest, RegretOfAQueuedMessageNotYetPublishedFreesItAtOnce) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  uint64_t h = send(a, "b", Lend{0, 64, wire::kLendRead});
  auto tell = core.regret_message(a, h);
  ASSERT_TRUE(tell.ok());
  EXPECT_EQ(tell.value(), kNone);  // it never reached b's ring
  EXPECT_EQ(buffer(h).state, BufferState::kFree);
  EXPECT_EQ(core.pool().in_use(), 0U);
  EXPECT_EQ(core.stats(b).queue_length, 0U);
  EXPECT_TRUE(take_events(core, b).empty());  // gone from its fifo
  EXPECT_EQ(core.stats(a).claim_used, 0U);
  // Its next send goes on as usual.
  uint64_t again = send(a, "b");
  EXPECT_EQ(again, wire::next_handle(h));
  EXPECT_EQ(take_events(core, b).size(), 1U);
}

TEST_F(CoreLendTest, AWithdrawnUseIsVoidOnlyForItsReceiverAnyOtherStaleHandleIsRefused) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  uint32_t c = attach("c");
  uint64_t h = send(a, "b");
  ASSERT_EQ(take_events(core, b).size(), 1U);
  ASSERT_TRUE(core.regret_message(a, h).ok());
  // Another process naming that handle is refused, as any foreign handle.
  EXPECT_EQ(core.get_event(c, h), Error::kBadHandle);
  EXPECT_EQ(core.send_answer(c, h, wire::kResultNormal, wire::Message{}), Error::kBadHandle);
  // A buffer never regretted: its stale handle is refused, also to its receiver.
  uint64_t other = send(a, "c");
  ASSERT_EQ(take_events(core, c).size(), 1U);
  ASSERT_EQ(core.get_event(c, other), Error::kNone);
  ASSERT_EQ(core.send_answer(c, other, wire::kResultNormal, wire::Message{}), Error::kNone);
  EXPECT_EQ(core.send_answer(c, other, wire::kResultNormal, wire::Message{}), Error::kBadHandle);
  EXPECT_EQ(core.get_event(b, h), Error::kNone);  // b's late take: void
}

TEST_F(CoreLendTest, RegretOfAPublishedMessageTellsTheReceiverAndItsLateTakeIsVoid) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  uint64_t first = send(a, "b");
  uint64_t h = send(a, "b");
  uint64_t last = send(a, "b");
  ASSERT_EQ(take_events(core, b).size(), 3U);
  auto tell = core.regret_message(a, h);
  ASSERT_TRUE(tell.ok());
  EXPECT_EQ(tell.value(), b);
  // b's take was on its way: void, not a protocol error, and nothing moves.
  EXPECT_EQ(core.get_event(b, h), Error::kNone);
  EXPECT_EQ(buffer(h).state, BufferState::kFree);
  // Nor is its answer, sent before b read kWithdrawn: void, nobody gets it.
  EXPECT_EQ(core.send_answer(b, h, wire::kResultNormal, wire::Message{}), Error::kNone);
  EXPECT_EQ(buffer(h).state, BufferState::kFree);
  EXPECT_TRUE(take_events(core, a).empty());
  EXPECT_EQ(core.lent_range(b, h, wire::kCopyFrom).error(), Error::kBadHandle);
  // The others are b's as before.
  EXPECT_EQ(core.get_event(b, first), Error::kNone);
  EXPECT_EQ(core.get_event(b, last), Error::kNone);
  EXPECT_EQ(core.stats(b).queue_length, 2U);
  // Sent again on the same buffer before b's take came: still void.
  uint64_t again = send(a, "c-does-not-exist");
  EXPECT_EQ(again, wire::next_handle(h));
  EXPECT_EQ(core.get_event(b, h), Error::kNone);
  EXPECT_EQ(core.send_answer(b, h, wire::kResultNormal, wire::Message{}), Error::kNone);
  EXPECT_EQ(buffer(h).state, BufferState::kAnswered);  // untouched: its dummy answer
  EXPECT_EQ(buffer(h).result, wire::kResultDummy);
}

TEST_F(CoreLendTest, RegretOfATakenMessageIsBusyAndItsAnswerComesAsUsual) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  uint64_t h = received(a, b, "b", Lend{0, 64, wire::kLendRead});
  EXPECT_EQ(core.regret_message(a, h).error(), Error::kBusy);
  EXPECT_TRUE(core.lent_range(b, h, wire::kCopyFrom).ok());  // the lend goes on
  ASSERT_EQ(core.send_answer(b, h, 1, wire::Message{}), Error::kNone);
  EXPECT_EQ(take_events(core, a).size(), 1U);
}

TEST_F(CoreLendTest, RegretOfAnAnsweredMessageIsAlready) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  uint64_t h = received(a, b, "b", Lend{});
  ASSERT_EQ(core.send_answer(b, h, 1, wire::Message{}), Error::kNone);
  EXPECT_EQ(core.regret_message(a, h).error(), Error::kAlready);
  // A dummy answer too: to an unknown name, and when the receiver died.
  uint64_t u = send(a, "nobody");
  EXPECT_EQ(core.regret_message(a, u).error(), Error::kAlready);
  uint64_t d = received(a, b, "b", Lend{});
  core.detach(b);
  EXPECT_EQ(core.regret_message(a, d).error(), Error::kAlready);
  EXPECT_EQ(buffer(d).result, wire::kResultDummy);
}

TEST_F(CoreLendTest, RegretTwiceOrOfABufferNotOutOrAnothersIsBadHandle) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  uint64_t h = send(a, "b");
  ASSERT_TRUE(core.regret_message(a, h).ok());
  EXPECT_EQ(core.regret_message(a, h).error(), Error::kBadHandle);                     // twice
  EXPECT_EQ(core.regret_message(a, free_handle(core, a)).error(), Error::kBadHandle);  // never sent
  uint64_t x = send(a, "b");
  EXPECT_EQ(core.regret_message(b, x).error(), Error::kBadHandle);      // the receiver's
  EXPECT_EQ(core.regret_message(a, x + 1).error(), Error::kBadHandle);  // forged
  EXPECT_EQ(core.regret_message(a, 0).error(), Error::kBadHandle);
  EXPECT_EQ(core.regret_message(a, wire::make_handle(1U << 23, 1)).error(),
            Error::kBadHandle);  // past the pool
}

TEST_F(CoreLendTest, RegretOfAMessageToAReceiverNotAttachedTellsNobody) {
  uint32_t a = attach("a");
  // An entry with a child stays when its run ends; messages to it queue.
  Program program{"/bin/true", "", {}, {}};
  auto p = core.attach("p", Claims{2, 2, 0, 0, 0});
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(core.create(p.value(), "kid", program, Claims{1, 0, 0, 0, 0}).ok());
  core.detach(p.value());
  ASSERT_TRUE(core.processes().live(p.value()));
  uint64_t h = send(a, "p");
  auto tell = core.regret_message(a, h);
  ASSERT_TRUE(tell.ok());
  EXPECT_EQ(tell.value(), kNone);
  EXPECT_EQ(core.stats(p.value()).queue_length, 0U);
}

TEST_F(CoreLendTest, ATakeOfAFreeBufferOrOfAnOldUseIsVoidButAForgedOneIsRefused) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  EXPECT_EQ(core.get_event(b, wire::make_handle(3, 0x7fffff)), Error::kBadHandle);  // future
  EXPECT_EQ(core.get_event(b, wire::make_handle(1U << 23, 1)), Error::kBadHandle);  // past pool
  EXPECT_EQ(core.get_event(b, 0), Error::kBadHandle);
  uint64_t h = send(a, "b");
  take_events(core, b);
  ASSERT_EQ(core.get_event(b, h), Error::kNone);
  EXPECT_EQ(core.pool().in_use(), 1U);
}

}  // namespace
}  // namespace nucleus::daemon
