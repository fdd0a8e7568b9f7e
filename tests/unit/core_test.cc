// The message primitives on the core, without channels: roles, states,
// claims, and what death does to every buffer.
#include "core.h"
#include "core_helpers.h"

#include <gtest/gtest.h>

namespace nucleus::daemon {
namespace {

wire::Message msg(uint64_t w0) {
  wire::Message m{};
  m.word[0] = w0;
  return m;
}

class CoreTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kPool = 16;
  static constexpr uint32_t kClaim = 4;

  uint32_t attach(const char *name, uint32_t claim = kClaim) {
    auto r = core.attach(name, claim);
    EXPECT_TRUE(r.ok());
    return r.value();
  }
  // The handle the process's next send on its first free buffer uses.
  uint64_t next(uint32_t id) { return testing::free_handle(core, id); }
  std::vector<wire::Event> events(uint32_t id) { return testing::take_events(core, id); }
  uint64_t send(uint32_t from, const char *to, uint64_t w0) {
    uint64_t h = next(from);
    EXPECT_EQ(core.send_message(from, h, to, msg(w0)), Error::kNone);
    return h;
  }

  Core core{kPool};
};

TEST_F(CoreTest, RoundTrip) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  EXPECT_EQ(core.pool().free_count(), kPool - 2 * kClaim);
  uint64_t h = send(a, "b", 42);
  auto in = events(b);
  ASSERT_EQ(in.size(), 1U);
  EXPECT_EQ(in[0].kind, static_cast<uint32_t>(wire::EventKind::kMessage));
  EXPECT_EQ(in[0].handle, h);
  EXPECT_STREQ(in[0].sender, "a");
  EXPECT_EQ(in[0].message.word[0], 42U);
  EXPECT_EQ(core.get_event(b, h), Error::kNone);
  EXPECT_EQ(core.send_answer(b, h, wire::kResultNormal, msg(43)), Error::kNone);
  auto out = events(a);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].kind, static_cast<uint32_t>(wire::EventKind::kAnswer));
  EXPECT_EQ(out[0].result, wire::kResultNormal);
  EXPECT_EQ(out[0].message.word[0], 43U);
  EXPECT_EQ(core.stats(a).claim_used, 1U);
  EXPECT_EQ(core.release_answer(a, h), Error::kNone);
  EXPECT_EQ(core.stats(a).claim_used, 0U);
  // The same handle is stale now.
  EXPECT_EQ(core.release_answer(a, h), Error::kBadHandle);
  EXPECT_EQ(core.send_message(a, h, "b", msg(1)), Error::kBadHandle);
}

TEST_F(CoreTest, UnknownReceiverGetsDummyAnswerAtOnce) {
  uint32_t a = attach("a");
  uint64_t h = send(a, "nobody", 1);
  auto out = events(a);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].handle, h);
  EXPECT_EQ(out[0].result, wire::kResultDummy);
  EXPECT_EQ(core.release_answer(a, h), Error::kNone);
}

TEST_F(CoreTest, FifoOrderOfQueue) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  for (uint64_t i = 0; i < kClaim; ++i) send(a, "b", i);
  auto in = events(b);
  ASSERT_EQ(in.size(), kClaim);
  for (uint64_t i = 0; i < kClaim; ++i) EXPECT_EQ(in[i].message.word[0], i);
}

TEST_F(CoreTest, OnlyOwnFreeBuffersCanBeSent) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  uint64_t theirs = next(b);
  EXPECT_EQ(core.send_message(a, theirs, "b", msg(0)), Error::kBadHandle);  // foreign
  uint64_t h = send(a, "b", 0);
  // The buffer is out: a send on its next use is refused until released.
  EXPECT_EQ(core.send_message(a, wire::next_handle(h), "b", msg(0)), Error::kBadHandle);
  EXPECT_EQ(core.send_message(a, wire::make_handle(kPool + 3, 1), "b", msg(0)), Error::kBadHandle);
}

TEST_F(CoreTest, ClaimIsTheLimitAndNeverAnotherShare) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  for (uint32_t i = 0; i < kClaim; ++i) send(a, "b", i);
  EXPECT_EQ(next(a), 0U);  // nothing left to send on
  EXPECT_EQ(core.stats(a).claim_used, kClaim);
  EXPECT_NE(next(b), 0U);  // b's share is untouched
  send(b, "a", 1);
}

TEST_F(CoreTest, OnlyTheReceiverMayTakeAndAnswer) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  uint32_t c = attach("c");
  uint64_t h = send(a, "b", 0);
  EXPECT_EQ(core.get_event(b, h), Error::kBadHandle);  // not yet published to b
  events(b);
  EXPECT_EQ(core.send_answer(b, h, 1, msg(0)), Error::kBadHandle);  // not yet taken
  EXPECT_EQ(core.get_event(c, h), Error::kBadHandle);               // foreign
  EXPECT_EQ(core.get_event(b, h), Error::kNone);
  EXPECT_EQ(core.get_event(b, h), Error::kBadHandle);  // taken twice
  EXPECT_EQ(core.send_answer(c, h, 1, msg(0)), Error::kBadHandle);
  EXPECT_EQ(core.send_answer(a, h, 1, msg(0)), Error::kBadHandle);  // the sender
  EXPECT_EQ(core.send_answer(b, h, 0, msg(0)), Error::kInvalid);
  EXPECT_EQ(core.send_answer(b, h, wire::kResultDummy, msg(0)), Error::kInvalid);
  EXPECT_EQ(core.send_answer(b, h, 2, msg(0)), Error::kNone);
  EXPECT_EQ(core.send_answer(b, h, 2, msg(0)), Error::kBadHandle);  // answered twice
  EXPECT_EQ(core.release_answer(b, h), Error::kBadHandle);          // not b's
  events(a);
  EXPECT_EQ(core.release_answer(a, h), Error::kNone);
}

TEST_F(CoreTest, ReceiverDeathGivesDummyAnswersForQueuedAndReceived) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  uint64_t h1 = send(a, "b", 1);
  uint64_t h2 = send(a, "b", 2);
  uint64_t h3 = send(a, "b", 3);
  events(b);
  ASSERT_EQ(core.get_event(b, h1), Error::kNone);  // received, h2 published, h3 too
  core.detach(b);
  auto out = events(a);
  ASSERT_EQ(out.size(), 3U);
  for (const auto &e : out) EXPECT_EQ(e.result, wire::kResultDummy);
  EXPECT_EQ(out[0].handle, h1);
  EXPECT_EQ(out[1].handle, h2);
  EXPECT_EQ(out[2].handle, h3);
  for (uint64_t h : {h1, h2, h3}) EXPECT_EQ(core.release_answer(a, h), Error::kNone);
  EXPECT_EQ(core.pool().free_count(), kPool - kClaim);
  EXPECT_EQ(core.processes().find("b"), kNone);
}

TEST_F(CoreTest, SenderDeathLeaksNothing) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  uint64_t h1 = send(a, "b", 1);
  uint64_t h2 = send(a, "b", 2);
  uint64_t h3 = send(a, "nobody", 3);  // answered, not released
  (void)h3;
  events(b);
  ASSERT_EQ(core.get_event(b, h1), Error::kNone);
  core.detach(a);
  // a's free and answered buffers are back; the two out are not yet.
  EXPECT_EQ(core.pool().free_count(), kPool - kClaim - 2);
  // b still holds them and may answer; the answers are discarded.
  EXPECT_EQ(core.send_answer(b, h1, 1, msg(0)), Error::kNone);
  ASSERT_EQ(core.get_event(b, h2), Error::kNone);
  EXPECT_EQ(core.send_answer(b, h2, 1, msg(0)), Error::kNone);
  EXPECT_EQ(core.pool().free_count(), kPool - kClaim);
  core.detach(b);
  EXPECT_EQ(core.pool().free_count(), kPool);
}

TEST_F(CoreTest, SenderAndReceiverDeathInEitherOrderLeaksNothing) {
  uint32_t a = attach("a");
  attach("b");
  send(a, "b", 1);
  send(a, "b", 2);
  core.detach(a);
  core.detach(core.processes().find("b"));
  EXPECT_EQ(core.pool().free_count(), kPool);
  EXPECT_EQ(core.processes().count(), 0U);
}

TEST_F(CoreTest, MessageToSelfThenDeath) {
  uint32_t a = attach("a");
  send(a, "a", 1);
  send(a, "a", 2);
  events(a);
  core.detach(a);
  EXPECT_EQ(core.pool().free_count(), kPool);
}

TEST_F(CoreTest, UnpublishedEventsOfTheDeadAreDropped) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  send(a, "b", 1);  // b never saw it
  uint64_t h = send(b, "a", 2);
  core.detach(b);  // a's message gets a dummy answer; b's message to a is orphaned
  auto out = events(a);
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(out[0].kind, static_cast<uint32_t>(wire::EventKind::kMessage));
  EXPECT_EQ(out[0].handle, h);
  EXPECT_EQ(out[1].result, wire::kResultDummy);
  ASSERT_EQ(core.get_event(a, h), Error::kNone);
  EXPECT_EQ(core.send_answer(a, h, 1, msg(0)), Error::kNone);
  EXPECT_EQ(core.release_answer(a, out[1].handle), Error::kNone);
  core.detach(a);
  EXPECT_EQ(core.pool().free_count(), kPool);
}

TEST_F(CoreTest, AttachNeedsTheWholeClaim) {
  attach("a", 10);
  EXPECT_EQ(core.attach("b", 7).error(), Error::kNoBuffers);
  EXPECT_EQ(core.processes().find("b"), kNone);
  EXPECT_TRUE(core.attach("b", 6).ok());
  EXPECT_EQ(core.attach("b", 0).error(), Error::kNameTaken);
}

// What the server takes each loop turn: named once per change, and named
// again when it changes again after it was taken.
TEST_F(CoreTest, DirtyProcessesAreTakenOnceUntilTheyChangeAgain) {
  uint32_t a = attach("a");
  uint32_t b = attach("b");
  (void)core.take_dirty();
  send(a, "b", 1);
  send(a, "b", 2);
  EXPECT_EQ(core.take_dirty(), std::vector<uint32_t>{b}) << "once for both";
  EXPECT_TRUE(core.take_dirty().empty());
  send(a, "b", 3);
  EXPECT_EQ(core.take_dirty(), std::vector<uint32_t>{b}) << "again after it was taken";
  EXPECT_EQ(events(b).size(), 3U);
}

TEST_F(CoreTest, SlotChangesAreTakenOnceUntilTheClaimChangesAgain) {
  uint32_t a = core.attach("a", Claims{8, 2, 0}).value();
  (void)core.take_slot_changes();
  Program program{"/bin/true", "", {}, {}};
  auto c = core.create(a, "c", program, Claims{2, 0, 0});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(core.take_slot_changes(), std::vector<uint32_t>{a}) << "c is not attached";
  EXPECT_TRUE(core.take_slot_changes().empty());
  ASSERT_TRUE(core.create(a, "d", program, Claims{1, 0, 0}).ok());
  EXPECT_EQ(core.take_slot_changes(), std::vector<uint32_t>{a});
}

TEST_F(CoreTest, ProtocolErrorsAreCounted) {
  uint32_t a = attach("a");
  EXPECT_EQ(core.count_protocol_error(a), 1U);
  EXPECT_EQ(core.count_protocol_error(a), 2U);
  EXPECT_EQ(core.processes().at(a).protocol_errors, 2U);
}

}  // namespace
}  // namespace nucleus::daemon
