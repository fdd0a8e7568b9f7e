// Hot swap on the core, without Linux: who may be swapped, the handover
// message, what the new program inherits, and that a swap that ends either
// way answers its request, drops the hidden entry and loses no buffer. The
// phase table (swap_phases.h) is the documented one, and every cell of it
// is run here against the Core as the server drives it.
#include <gtest/gtest.h>

#include <map>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "core.h"
#include "core_helpers.h"
#include "swap_phases.h"

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

// Lends across a swap (docs/data-and-regret.md): what the old program lent
// lies in its data area, which goes with it; what it was lent moves with the
// messages the new program inherits; a regret during the handover takes
// the message out of what the new program gets.
TEST_F(CoreSwap, TheOldProgramsLendsEndAndTheLendsItHoldsMoveWithItsMessages) {
  uint64_t lent_to_os = free_handle(user);
  ASSERT_EQ(core.send_message(user, lent_to_os, "os", wire::Message{},
                              Lend{0, 32, wire::kLendRead | wire::kLendWrite}),
            Error::kNone);
  events(os);
  ASSERT_EQ(core.get_event(os, lent_to_os), Error::kNone);
  uint64_t lent_by_os = free_handle(os);
  ASSERT_EQ(
      core.send_message(os, lent_by_os, "user", wire::Message{}, Lend{64, 16, wire::kLendRead}),
      Error::kNone);
  events(user);
  ASSERT_EQ(core.get_event(user, lent_by_os), Error::kNone);
  uint64_t regretted = send(user, 7);  // published to the old program, not taken
  events(os);
  auto [cand, request] = begin();
  ASSERT_EQ(core.request_handover(os, 4096), Error::kNone);
  answer_handover(wire::kResultNormal);
  // During the handover: the regret takes it away (the old program's
  // connection hears of it; the new one never sees it).
  auto tell = core.regret_message(user, regretted);
  ASSERT_TRUE(tell.ok());
  EXPECT_EQ(tell.value(), os);
  EXPECT_TRUE(core.lent_range(user, lent_by_os, wire::kCopyFrom).ok());  // not yet over

  Inheritance inh = core.commit_swap(os, 200);
  EXPECT_EQ(core.lent_range(user, lent_by_os, wire::kCopyFrom).error(), Error::kLendEnded);
  ASSERT_EQ(inh.received.size(), 1U);
  wire::Event ie = core.inherit_event(inh.received[0], wire::kInheritReceived);
  EXPECT_EQ(ie.extra, wire::lend_extra(32, wire::kLendRead | wire::kLendWrite));
  EXPECT_TRUE(core.lent_range(os, lent_to_os, wire::kCopyTo).ok());
  for (const wire::Event &e : events(os)) EXPECT_NE(e.handle, regretted);
  EXPECT_EQ(core.stats(os).queue_length, 1U);  // only what it inherited
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
  // What it inherited names the message's sender, as the old one saw it.
  wire::Event ie = core.inherit_event(inh.received[0], wire::kInheritReceived);
  EXPECT_EQ(ie.kind, static_cast<uint32_t>(wire::EventKind::kInherit));
  EXPECT_STREQ(ie.sender, "user");
  EXPECT_EQ(ie.principal.kind, static_cast<uint32_t>(wire::PrincipalKind::kProcess));
  // The new program answers what the old one received, and takes the answer.
  EXPECT_EQ(core.send_answer(os, received, wire::kResultNormal, wire::Message{}), Error::kNone);
  EXPECT_EQ(core.release_answer(os, answered), Error::kNone);

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

// ---- the phase table ------------------------------------------------------------

using SP = SwapPhase;
using SE = SwapEvent;

struct SwapCellAt {
  SP phase;
  SE event;
};

void PrintTo(const SwapCellAt &c, std::ostream *out) {
  *out << to_string(c.phase) << " " << to_string(c.event);
}

std::vector<SwapCellAt> every_swap_cell() {
  std::vector<SwapCellAt> cells;
  for (int p = 0; p < kSwapPhaseCount; ++p) {
    for (int e = 0; e < kSwapEventCount; ++e) {
      cells.push_back({static_cast<SP>(p), static_cast<SE>(e)});
    }
  }
  return cells;
}

// Handover_OldExited: the event old-exited in the phase handover.
std::string swap_cell_name(const ::testing::TestParamInfo<SwapCellAt> &info) {
  return testing::camel(to_string(info.param.phase)) + "_" +
         testing::camel(to_string(info.param.event));
}

// The table is the protocol and the failure table of docs/hot-swap.md; every
// other cell does nothing.
TEST(SwapPhases, AreTheDocumentedTable) {
  std::map<std::pair<SP, SE>, SwapStep> doc;
  auto to = [](SP next) { return SwapStep{SwapAction::kAdvance, next, 0, 0}; };
  auto fail = [](uint64_t outcome) {
    return SwapStep{SwapAction::kFail, SP::kStarting, outcome, 0};
  };
  auto refuse = [](int error) { return SwapStep{SwapAction::kRefuse, SP::kStarting, 0, error}; };
  SwapStep commit{SwapAction::kCommit, SP::kStarting, wire::kSwapDone, 0};
  // The protocol, step by step.
  doc[{SP::kStarting, SE::kAttached}] = to(SP::kHandover);
  doc[{SP::kHandover, SE::kHandedOver}] = to(SP::kReady);
  doc[{SP::kReady, SE::kReadyAsked}] = to(SP::kCommitting);
  doc[{SP::kCommitting, SE::kTurn}] = commit;
  doc[{SP::kCommitting, SE::kDeadline}] = commit;  // it said ready in time
  // kSwapReady before the new program has the state, and twice.
  doc[{SP::kStarting, SE::kReadyAsked}] = refuse(EINVAL);
  doc[{SP::kHandover, SE::kReadyAsked}] = refuse(EINVAL);
  doc[{SP::kCommitting, SE::kReadyAsked}] = refuse(EALREADY);
  // When it fails: rollback.
  doc[{SP::kStarting, SE::kStartFailed}] = fail(wire::kSwapStartFailed);
  doc[{SP::kStarting, SE::kDeadline}] = fail(wire::kSwapNotReady);
  doc[{SP::kHandover, SE::kRefused}] = fail(wire::kSwapRefused);
  doc[{SP::kHandover, SE::kDeadline}] = fail(wire::kSwapNoHandover);
  doc[{SP::kHandover, SE::kNoNoticeBuffer}] = fail(wire::kSwapNoHandover);
  doc[{SP::kReady, SE::kDeadline}] = fail(wire::kSwapNotReady);
  for (SP p : {SP::kStarting, SP::kHandover, SP::kReady, SP::kCommitting}) {
    doc[{p, SE::kNewExited}] = fail(wire::kSwapNewExited);
    doc[{p, SE::kOldExited}] = fail(wire::kSwapOldExited);
    doc[{p, SE::kRemoved}] = fail(wire::kSwapCancelled);
  }
  for (const SwapCellAt &c : every_swap_cell()) {
    SCOPED_TRACE(swap_cell_name(::testing::TestParamInfo<SwapCellAt>(c, 0)));
    auto it = doc.find({c.phase, c.event});
    SwapStep want = it == doc.end() ? SwapStep{} : it->second;
    const SwapStep &got = swap_step(c.phase, c.event);
    EXPECT_EQ(got.action, want.action);
    if (want.action == SwapAction::kAdvance) {
      EXPECT_EQ(got.next, want.next);
    }
    if (want.action == SwapAction::kFail || want.action == SwapAction::kCommit) {
      EXPECT_EQ(got.outcome, want.outcome);
    }
    if (want.action == SwapAction::kRefuse) {
      EXPECT_EQ(got.error, want.error);
    }
    EXPECT_EQ(swap_expects(c.phase, c.event), want.action != SwapAction::kNone);
  }
  // The deadlines: swap.ready_timeout_ms to attach and to say ready,
  // swap.handover_timeout_ms to hand over; none once it said ready.
  EXPECT_EQ(swap_timer(SP::kStarting), SwapTimer::kReady);
  EXPECT_EQ(swap_timer(SP::kHandover), SwapTimer::kHandover);
  EXPECT_EQ(swap_timer(SP::kReady), SwapTimer::kReady);
  EXPECT_EQ(swap_timer(SP::kCommitting), SwapTimer::kNone);
}

class SwapCell : public CoreSwap, public ::testing::WithParamInterface<SwapCellAt> {
 protected:
  // Brings a swap of the OS to `phase` as the server does and returns its
  // hidden entry.
  uint32_t swap_in(SP phase) {
    auto [cand, req] = begin();
    request = req;
    core.program_started(cand, 300);  // the server spawns it at once
    if (phase == SP::kStarting) return cand;
    core.attach_run(cand);
    EXPECT_EQ(core.request_handover(os, 4096), Error::kNone);
    if (phase == SP::kHandover) return cand;
    answer_handover(wire::kResultNormal);
    EXPECT_TRUE(core.processes().at(os).handed_over);
    return cand;
  }
  // Takes the parent's events: notices answered, answers to it released;
  // returns the answers.
  std::vector<wire::Event> settle_parent() {
    std::vector<wire::Event> answers;
    for (const wire::Event &e : events(parent)) {
      if (e.kind == static_cast<uint32_t>(wire::EventKind::kMessage)) {
        EXPECT_EQ(core.get_event(parent, e.handle), Error::kNone);
        EXPECT_EQ(core.send_answer(parent, e.handle, wire::kResultNormal, wire::Message{}),
                  Error::kNone);
      } else {
        answers.push_back(e);
        EXPECT_EQ(core.release_answer(parent, e.handle), Error::kNone);
      }
    }
    return answers;
  }
  uint64_t request = 0;
};

// The Core, driven as the server drives it for the cell: its part of the
// event (the OS answers the handover, a program exits or detaches, the OS
// is removed), then what the cell says (the next phase's step, a rollback,
// the takeover). The swap's request is answered exactly when the swap ends,
// with the cell's outcome; the hidden entry goes with it; and once the OS is
// removed every buffer is back.
TEST_P(SwapCell, CoreDoesWhatTheServerDoes) {
  const auto [phase, event] = GetParam();
  const SwapStep &step = swap_step(phase, event);
  uint32_t before = free_total();
  uint32_t notices_before = core.notice_free();
  uint32_t cand = swap_in(phase);
  (void)core.take_handovers();
  events(parent);  // nothing: the request waits
  bool acts = step.action == SwapAction::kAdvance || step.action == SwapAction::kFail ||
              step.action == SwapAction::kCommit;

  // The Core's part of the event, where it acts.
  if (acts) {
    switch (event) {
      case SE::kAttached: core.attach_run(cand); break;
      case SE::kHandedOver: answer_handover(wire::kResultNormal); break;
      case SE::kRefused: answer_handover(wire::kResultRejected); break;
      case SE::kNewExited:
        if (core.processes().at(cand).attached) core.detach(cand);  // it hung up
        break;
      case SE::kOldExited: core.detach(os); break;  // its channel ends first
      default: break;
    }
  }
  wire::Message words{};
  words.word[wire::kSwapOutcome] = step.outcome;
  switch (step.action) {
    case SwapAction::kNone:
    case SwapAction::kRefuse: break;
    case SwapAction::kAdvance:
      if (step.next == SP::kHandover) {
        EXPECT_EQ(core.request_handover(os, 4096), Error::kNone);
      }
      break;
    case SwapAction::kFail: core.end_swap(os, wire::kResultRejected, words); break;
    case SwapAction::kCommit: {
      Inheritance inherited = core.commit_swap(os, 200);
      EXPECT_TRUE(inherited.received.empty() && inherited.out.empty());
      core.end_swap(os, wire::kResultNormal, words);
      break;
    }
  }
  if (acts && event == SE::kOldExited) core.program_exited(os, wire::ExitKind::kSignal, 9);
  if (acts && event == SE::kRemoved) {
    EXPECT_EQ(core.remove(parent, os), Error::kNone);
  }

  std::vector<wire::Event> answers = settle_parent();
  bool ended = step.action == SwapAction::kFail || step.action == SwapAction::kCommit;
  if (!ended) {
    EXPECT_TRUE(answers.empty()) << "the request waits";
    EXPECT_EQ(core.processes().at(os).swap_candidate, cand);
    EXPECT_TRUE(core.processes().live(cand));
    bool has_state = phase == SP::kReady || phase == SP::kCommitting ||
                     (step.action == SwapAction::kAdvance && step.next == SP::kReady);
    EXPECT_EQ(core.processes().at(os).handed_over, has_state);
    if (step.action == SwapAction::kAdvance && step.next == SP::kHandover) {
      EXPECT_NE(core.processes().at(os).handover_buffer, kNone) << "the OS was asked";
    }
    // The server ends it some way later; here it rolls back.
    core.end_swap(os, wire::kResultRejected, wire::Message{});
    answers = settle_parent();
  } else {
    ASSERT_EQ(answers.size(), 1U);
    EXPECT_EQ(answers[0].handle, request);
    EXPECT_EQ(answers[0].result,
              step.action == SwapAction::kCommit ? wire::kResultNormal : wire::kResultRejected);
    EXPECT_EQ(answers[0].message.word[wire::kSwapOutcome], step.outcome);
    EXPECT_FALSE(core.processes().live(cand)) << "the hidden entry is gone";
    if (event != SE::kRemoved) {
      const Process &p = core.processes().at(os);
      EXPECT_EQ(p.swap_candidate, kNone);
      EXPECT_FALSE(p.handed_over) << "served again";
      EXPECT_EQ(p.program.path, step.action == SwapAction::kCommit ? "/bin/os2" : "/bin/os1");
      EXPECT_EQ(p.pid, step.action == SwapAction::kCommit ? 200 : 100);
    }
  }
  if (event == SE::kOldExited && acts) {
    EXPECT_EQ(core.state(os), wire::ProcessState::kExited);
  }
  // Nothing lost: once the OS is gone, every buffer and notice buffer is back.
  if (core.processes().live(os)) {
    ASSERT_EQ(core.remove(parent, os), Error::kNone);
    settle_parent();
  }
  EXPECT_EQ(core.notice_free(), notices_before);
  EXPECT_EQ(free_total(), before);
}

INSTANTIATE_TEST_SUITE_P(Every, SwapCell, ::testing::ValuesIn(every_swap_cell()), swap_cell_name);

// The old OS ends during the swap, in each phase it can: the swap is rolled
// back OLD_EXITED, its parent gets the exit notice, a handover it had not
// answered comes back to the reserve, and it starts anew like any exited
// child.
TEST_F(CoreSwap, TheOldOsExitingEndsTheSwapInEveryPhase) {
  for (SP phase : {SP::kStarting, SP::kHandover, SP::kReady, SP::kCommitting}) {
    SCOPED_TRACE(to_string(phase));
    ASSERT_EQ(swap_step(phase, SE::kOldExited).outcome, wire::kSwapOldExited);
    auto [cand, request] = begin();
    core.program_started(cand, 300);
    if (phase != SP::kStarting) {
      core.attach_run(cand);
      ASSERT_EQ(core.request_handover(os, 4096), Error::kNone);
    }
    if (phase == SP::kReady || phase == SP::kCommitting) answer_handover(wire::kResultNormal);
    (void)core.take_handovers();
    // The server: its channel ends (detach), the swap is rolled back, then
    // its exit is reaped.
    core.detach(os);
    wire::Message why{};
    why.word[wire::kSwapOutcome] = wire::kSwapOldExited;
    core.end_swap(os, wire::kResultRejected, why);
    core.program_exited(os, wire::ExitKind::kSignal, 9);
    EXPECT_FALSE(core.processes().live(cand));
    EXPECT_EQ(core.state(os), wire::ProcessState::kExited);
    std::vector<wire::Event> pe = events(parent);
    ASSERT_EQ(pe.size(), 2U) << "the answer and the notice";
    EXPECT_EQ(pe[0].handle, request);
    EXPECT_EQ(pe[0].result, wire::kResultRejected);
    EXPECT_EQ(pe[0].message.word[wire::kSwapOutcome], wire::kSwapOldExited);
    EXPECT_EQ(pe[1].message.word[wire::kNoticeKind], wire::kNoticeChildExited);
    ASSERT_EQ(core.release_answer(parent, request), Error::kNone);
    ASSERT_EQ(core.get_event(parent, pe[1].handle), Error::kNone);
    ASSERT_EQ(core.send_answer(parent, pe[1].handle, wire::kResultNormal, wire::Message{}),
              Error::kNone);
    // A handover message it had not taken waits in its queue for its next
    // run (docs/hot-swap.md); one it had taken was answered dummy.
    uint32_t waiting = phase == SP::kHandover ? 1U : 0U;
    EXPECT_EQ(core.notice_free(), 4U - waiting);
    // It starts anew, and can be swapped again.
    StartPlan plan;
    ASSERT_EQ(core.start(parent, os, &plan), Error::kNone);
    EXPECT_TRUE(plan.spawn);
    core.program_started(os, 101);
    core.attach_run(os);
    std::vector<wire::Event> queued = events(os);
    ASSERT_EQ(queued.size(), waiting);
    for (const wire::Event &e : queued) {
      ASSERT_EQ(core.get_event(os, e.handle), Error::kNone);
      ASSERT_EQ(core.send_answer(os, e.handle, wire::kResultRejected, wire::Message{}),
                Error::kNone);
    }
    EXPECT_TRUE(core.take_handovers().empty()) << "an answer after the swap counts for nothing";
    EXPECT_EQ(core.notice_free(), 4U);
  }
}

}  // namespace
}  // namespace nucleus::daemon
