// Hot swap on the core, without Linux: who may be swapped, the handover
// message, what the new program inherits, and that a swap that ends either
// way answers its request, drops the hidden entry and loses no buffer.
#include <gtest/gtest.h>

#include "core.h"
#include "core_helpers.h"

namespace nucleus::daemon {
namespace {

class CoreSwap : public ::testing::Test {
 protected:
  static constexpr uint32_t kPool = 64;

  void SetUp() override {
    auto p = core.attach("parent", Claims{24, 8, 0});
    ASSERT_TRUE(p.ok());
    parent = p.value();
    auto c = core.create(parent, "os", Program{"/bin/os1", "", {}, {}}, Claims{8, 2, 0});
    ASSERT_TRUE(c.ok());
    os = c.value();
    StartPlan plan;
    ASSERT_EQ(core.start(parent, os, &plan), Error::kNone);
    core.program_started(os, 100);
    core.attach_run(os);
    auto u = core.attach("user", Claims{8, 0, 0});
    ASSERT_TRUE(u.ok());
    user = u.value();
  }
  uint64_t free_handle(uint32_t id) { return testing::free_handle(core, id); }
  std::vector<wire::Event> events(uint32_t id) { return testing::take_events(core, id); }
  // A message from `from` to the OS; returns its handle.
  uint64_t send(uint32_t from, uint64_t word0) {
    uint64_t h = free_handle(from);
    wire::Message m{};
    m.word[0] = word0;
    EXPECT_EQ(core.send_message(from, h, "os", m), Error::kNone);
    return h;
  }
  uint32_t free_total() const {
    uint32_t n = core.pool().free_count() + core.notice_free();
    for (uint32_t id : {parent, os, user}) {
      for (uint32_t index : core.processes().at(id).slots) {
        n += core.pool().at(index).state == BufferState::kFree ? 1 : 0;
      }
    }
    return n;
  }
  // Begins a swap and returns (candidate, the parent's request buffer).
  std::pair<uint32_t, uint64_t> begin() {
    uint64_t h = free_handle(parent);
    auto cand = core.begin_swap(parent, os, h, Program{"/bin/os2", "", {}, {}});
    EXPECT_TRUE(cand.ok());
    return {cand.ok() ? cand.value() : kNone, h};
  }
  // The handover message the OS got (taken), answered with `result`.
  void answer_handover(int32_t result, uint64_t offset = 0, uint64_t length = 16) {
    for (const wire::Event &e : events(os)) {
      if (std::string(e.sender) == wire::kNucleusName &&
          e.message.word[wire::kNoticeKind] == wire::kNoticeHandover) {
        ASSERT_EQ(core.get_event(os, e.handle), Error::kNone);
        wire::Message a{};
        a.word[wire::kHandoverOffset] = offset;
        a.word[wire::kHandoverLength] = length;
        ASSERT_EQ(core.send_answer(os, e.handle, result, a), Error::kNone);
        return;
      }
    }
    ADD_FAILURE() << "no handover message";
  }

  Core core{kPool, 4, 100};
  uint32_t parent = kNone;
  uint32_t os = kNone;
  uint32_t user = kNone;
};

TEST_F(CoreSwap, OnlyARunningAttachedChildThatIsNotStoppedOrSwapping) {
  uint64_t h = free_handle(parent);
  // A created child that never ran.
  auto idle = core.create(parent, "idle", Program{"/bin/x", "", {}, {}}, Claims{1, 0, 0});
  ASSERT_TRUE(idle.ok());
  EXPECT_EQ(core.begin_swap(parent, idle.value(), h, Program{}).error(), Error::kInvalid);
  // A stopped one.
  ASSERT_EQ(core.begin_stop(parent, os, free_handle(parent)), Error::kNone);
  EXPECT_EQ(core.begin_swap(parent, os, free_handle(parent), Program{}).error(), Error::kInvalid);
  StartPlan plan;
  ASSERT_EQ(core.start(parent, os, &plan), Error::kNone);
  events(parent);
  // A handle that is not the next use of a free buffer of the caller.
  EXPECT_EQ(core.begin_swap(parent, os, 12345, Program{}).error(), Error::kBadHandle);
  EXPECT_EQ(core.begin_swap(parent, os, free_handle(user), Program{}).error(), Error::kBadHandle);
  // One swap at a time.
  auto [cand, request] = begin();
  EXPECT_EQ(core.begin_swap(parent, os, free_handle(parent), Program{}).error(), Error::kBusy);
  (void)cand;
  (void)request;
}

TEST_F(CoreSwap, TheNewProgramIsHiddenUntilItTakesOver) {
  auto [cand, request] = begin();
  EXPECT_EQ(core.processes().find("os"), os);
  EXPECT_TRUE(core.processes().at(cand).hidden);
  EXPECT_EQ(core.processes().at(cand).swap_of, os);
  EXPECT_EQ(core.processes().at(cand).program.path, "/bin/os2");
  EXPECT_TRUE(core.processes().at(cand).slots.empty()) << "it holds no buffer before";
  // A message to the name still goes to the old program.
  send(user, 7);
  EXPECT_EQ(events(os).size(), 1U);
}

TEST_F(CoreSwap, HandoverComesFirstInTheQueue) {
  send(user, 1);
  send(user, 2);
  auto [cand, request] = begin();
  events(os);  // published to the old program, not taken
  ASSERT_EQ(core.request_handover(os, 4096), Error::kNone);
  std::vector<wire::Event> ev = events(os);
  ASSERT_FALSE(ev.empty());
  EXPECT_STREQ(ev.back().sender, wire::kNucleusName);
  // In the inbox it is first.
  uint32_t head = core.processes().at(os).inbox_head;
  EXPECT_EQ(core.pool().at(head).words.word[wire::kNoticeKind], wire::kNoticeHandover);
  EXPECT_EQ(core.pool().at(head).words.word[wire::kHandoverDataBytes], 4096U);
  (void)cand;
  (void)request;
}

TEST_F(CoreSwap, NoNoticeBufferMeansBusy) {
  Core small{kPool, 0, 100};  // no notice buffers at all
  auto p = small.attach("parent", Claims{8, 4, 0});
  ASSERT_TRUE(p.ok());
  auto c = small.create(p.value(), "os", Program{"/bin/os", "", {}, {}}, Claims{2, 0, 0});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(small.request_handover(c.value(), 100), Error::kBusy);
}

TEST_F(CoreSwap, AnswersToTheHandoverAreRecorded) {
  auto [cand, request] = begin();
  ASSERT_EQ(core.request_handover(os, 4096), Error::kNone);
  answer_handover(wire::kResultNormal, 8, 100);
  EXPECT_TRUE(core.processes().at(os).handed_over);
  std::vector<HandoverAnswer> handovers = core.take_handovers();
  ASSERT_EQ(handovers.size(), 1U);
  EXPECT_EQ(handovers[0].id, os);
  EXPECT_EQ(handovers[0].result, wire::kResultNormal);
  EXPECT_EQ(handovers[0].words.word[wire::kHandoverOffset], 8U);
  EXPECT_EQ(handovers[0].words.word[wire::kHandoverLength], 100U);
  EXPECT_TRUE(core.take_handovers().empty()) << "taken";
  EXPECT_EQ(core.notice_free(), 4U) << "the handover buffer is a notice buffer again";
  (void)cand;
  (void)request;
}

TEST_F(CoreSwap, ARefusalIsNotAHandover) {
  auto [cand, request] = begin();
  ASSERT_EQ(core.request_handover(os, 4096), Error::kNone);
  answer_handover(wire::kResultRejected);
  EXPECT_FALSE(core.processes().at(os).handed_over);
  std::vector<HandoverAnswer> handovers = core.take_handovers();
  ASSERT_EQ(handovers.size(), 1U);
  EXPECT_EQ(handovers[0].result, wire::kResultRejected);
  (void)cand;
  (void)request;
}

TEST_F(CoreSwap, TheOldProgramDyingAnswersTheHandoverDummy) {
  auto [cand, request] = begin();
  ASSERT_EQ(core.request_handover(os, 4096), Error::kNone);
  for (const wire::Event &e : events(os)) ASSERT_EQ(core.get_event(os, e.handle), Error::kNone);
  core.program_exited(os, wire::ExitKind::kSignal, 9);
  std::vector<HandoverAnswer> handovers = core.take_handovers();
  ASSERT_EQ(handovers.size(), 1U);
  EXPECT_EQ(handovers[0].result, wire::kResultDummy);
  EXPECT_FALSE(core.processes().at(os).handed_over);
  (void)cand;
  (void)request;
}

TEST_F(CoreSwap, CommitMovesEverythingToTheNewProgram) {
  // Before the swap: one message received (not answered), one queued, one
  // buffer of the OS out at the user and one answered but not yet taken.
  uint64_t received = send(user, 1);
  events(os);
  ASSERT_EQ(core.get_event(os, received), Error::kNone);
  uint64_t out = free_handle(os);
  ASSERT_EQ(core.send_message(os, out, "user", wire::Message{}), Error::kNone);
  uint64_t answered = free_handle(os);
  ASSERT_EQ(core.send_message(os, answered, "user", wire::Message{}), Error::kNone);
  events(user);
  ASSERT_EQ(core.get_event(user, answered), Error::kNone);
  ASSERT_EQ(core.send_answer(user, answered, wire::kResultNormal, wire::Message{}), Error::kNone);
  events(os);  // the answer was published to the old program, not taken
  uint64_t queued = send(user, 2);
  auto [cand, request] = begin();
  ASSERT_EQ(core.request_handover(os, 4096), Error::kNone);
  answer_handover(wire::kResultNormal);
  uint32_t free_before = free_total();

  Inheritance inh = core.commit_swap(os, 200);
  EXPECT_FALSE(core.processes().live(cand)) << "the hidden entry is gone";
  EXPECT_EQ(core.processes().at(os).pid, 200);
  EXPECT_EQ(core.processes().at(os).program.path, "/bin/os2");
  EXPECT_FALSE(core.processes().at(os).handed_over);
  ASSERT_EQ(inh.received.size(), 1U);
  EXPECT_EQ(core.pool().handle(inh.received[0]), received);
  ASSERT_EQ(inh.out.size(), 2U);
  // Published again: the queued message and the answer not taken.
  std::vector<wire::Event> ev = events(os);
  ASSERT_EQ(ev.size(), 2U);
  EXPECT_EQ(ev[0].handle, queued);
  EXPECT_EQ(ev[0].kind, static_cast<uint32_t>(wire::EventKind::kMessage));
  EXPECT_EQ(ev[1].handle, answered);
  EXPECT_EQ(ev[1].kind, static_cast<uint32_t>(wire::EventKind::kAnswer));
  // The new program answers what the old one received, and takes the answer.
  EXPECT_EQ(core.send_answer(os, received, wire::kResultNormal, wire::Message{}), Error::kNone);
  EXPECT_EQ(core.release_answer(os, answered), Error::kNone);
  wire::Event ie = core.inherit_event(inh.received[0], wire::kInheritReceived);
  EXPECT_EQ(ie.kind, static_cast<uint32_t>(wire::EventKind::kInherit));
  EXPECT_STREQ(ie.sender, "user");

  core.end_swap(os, wire::kResultNormal, wire::Message{});
  // The parent's request is answered normal.
  std::vector<wire::Event> pe = events(parent);
  ASSERT_EQ(pe.size(), 1U);
  EXPECT_EQ(pe[0].handle, request);
  EXPECT_EQ(pe[0].result, wire::kResultNormal);
  EXPECT_EQ(core.release_answer(parent, request), Error::kNone);
  EXPECT_GE(free_total(), free_before + 2) << "the answers freed their buffers";
}

TEST_F(CoreSwap, RollbackServesTheOldProgramAndAnswersRejected) {
  auto [cand, request] = begin();
  ASSERT_EQ(core.request_handover(os, 4096), Error::kNone);
  answer_handover(wire::kResultNormal);
  ASSERT_TRUE(core.processes().at(os).handed_over);
  wire::Message why{};
  why.word[wire::kSwapOutcome] = wire::kSwapNotReady;
  core.end_swap(os, wire::kResultRejected, why);
  EXPECT_FALSE(core.processes().at(os).handed_over);
  EXPECT_FALSE(core.processes().live(cand));
  EXPECT_EQ(core.processes().at(os).program.path, "/bin/os1");
  EXPECT_EQ(core.processes().at(os).pid, 100);
  std::vector<wire::Event> pe = events(parent);
  ASSERT_EQ(pe.size(), 1U);
  EXPECT_EQ(pe[0].result, wire::kResultRejected);
  EXPECT_EQ(pe[0].message.word[wire::kSwapOutcome], wire::kSwapNotReady);
  // A new swap may begin.
  EXPECT_TRUE(core.begin_swap(parent, os, free_handle(parent), Program{}).ok());
}

TEST_F(CoreSwap, ALateHandoverAnswerAfterARollbackFreesTheNoticeBuffer) {
  auto [cand, request] = begin();
  ASSERT_EQ(core.request_handover(os, 4096), Error::kNone);
  std::vector<wire::Event> ev = events(os);
  ASSERT_EQ(ev.size(), 1U);
  ASSERT_EQ(core.get_event(os, ev[0].handle), Error::kNone);
  core.end_swap(os, wire::kResultRejected, wire::Message{});  // timed out
  EXPECT_EQ(core.notice_free(), 3U);
  ASSERT_EQ(core.send_answer(os, ev[0].handle, wire::kResultNormal, wire::Message{}), Error::kNone);
  EXPECT_FALSE(core.processes().at(os).handed_over) << "too late to count";
  EXPECT_TRUE(core.take_handovers().empty());
  EXPECT_EQ(core.notice_free(), 4U);
  (void)cand;
  (void)request;
}

TEST_F(CoreSwap, RemovingTheParentsChildDuringASwapLosesNoBuffer) {
  uint32_t before = free_total();
  auto [cand, request] = begin();
  ASSERT_EQ(core.request_handover(os, 4096), Error::kNone);
  core.end_swap(os, wire::kResultRejected, wire::Message{});
  events(parent);
  ASSERT_EQ(core.release_answer(parent, request), Error::kNone);
  ASSERT_EQ(core.remove(parent, os), Error::kNone);
  EXPECT_EQ(core.notice_free(), 4U) << "the unanswered handover came back as a dummy answer";
  EXPECT_GE(free_total(), before);
  (void)cand;
}

}  // namespace
}  // namespace nucleus::daemon
