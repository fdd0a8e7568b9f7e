// Process control on the core, without Linux: the state table of a child
// (every cell of core_states.h, and that it is the documented one), claims
// arithmetic, exit notices, and what a parent's death leaves.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "core.h"
#include "core_helpers.h"
#include "core_states.h"

namespace nucleus::daemon {
namespace {

using PS = wire::ProcessState;
using RS = RunState;
using SS = StopState;
using PE = ProcessEvent;

class CoreTree : public ::testing::Test {
 protected:
  static constexpr uint32_t kPool = 64;

  void SetUp() override {
    auto r = core.attach("os", Claims{16, 8, 0});
    ASSERT_TRUE(r.ok());
    os = r.value();
  }
  uint32_t create(const char *name, Claims c = Claims{2, 0, 0}) {
    auto r = core.create(os, name, Program{"/bin/true", "", {}, {}}, c);
    EXPECT_TRUE(r.ok());
    return r.value();
  }
  uint64_t free_handle(uint32_t id) { return testing::free_handle(core, id); }
  std::vector<wire::Event> events(uint32_t id) { return testing::take_events(core, id); }
  uint32_t free_held(uint32_t id) {
    uint32_t n = 0;
    for (uint32_t index : core.processes().at(id).slots) {
      n += core.pool().at(index).state == BufferState::kFree ? 1 : 0;
    }
    return n;
  }
  // Brings a new child to (run, stop) the way the server would; what that
  // told its parent (a notice, a stop's answer) is taken.
  uint32_t child_in(RS run, SS stop, Claims claims = Claims{2, 0, 0}) {
    uint32_t c = create("c", claims);
    StartPlan plan;
    if (run != RS::kCreated) {
      EXPECT_EQ(core.start(os, c, &plan), Error::kNone);
      core.program_started(c, 1234);
    }
    if (run == RS::kExited) core.program_exited(c, wire::ExitKind::kCode, 0);
    if (stop != SS::kNone) {
      EXPECT_EQ(core.begin_stop(os, c, free_handle(os)), Error::kNone);
    }
    if (stop == SS::kStopped) core.finish_stop(c);
    events(os);
    return c;
  }
  // The same for a state as its parent sees it.
  uint32_t child_in(PS state, Claims claims = Claims{2, 0, 0}) {
    switch (state) {
      case PS::kCreated: return child_in(RS::kCreated, SS::kNone, claims);
      case PS::kRunning: return child_in(RS::kRunning, SS::kNone, claims);
      case PS::kStopping: return child_in(RS::kRunning, SS::kStopping, claims);
      case PS::kStopped: return child_in(RS::kRunning, SS::kStopped, claims);
      case PS::kExited: return child_in(RS::kExited, SS::kNone, claims);
    }
    return kNone;
  }

  Core core{kPool, 4, 100};
  uint32_t os = kNone;
};

// ---- the state table, cell by cell ------------------------------------------

struct CellAt {
  RS run;
  SS stop;
  PE event;
};

std::vector<CellAt> every_cell() {
  std::vector<CellAt> cells;
  for (int r = 0; r < kRunStateCount; ++r) {
    for (int s = 0; s < kStopStateCount; ++s) {
      for (int e = 0; e < kProcessEventCount; ++e) {
        cells.push_back({static_cast<RS>(r), static_cast<SS>(s), static_cast<PE>(e)});
      }
    }
  }
  return cells;
}

void PrintTo(const CellAt &c, std::ostream *out) {
  *out << "(" << to_string(c.run) << ", " << to_string(c.stop) << ") " << to_string(c.event);
}

// RunningStopping_Stop: the event stop in state (running, stopping).
std::string cell_name(const ::testing::TestParamInfo<CellAt> &info) {
  const CellAt &c = info.param;
  return testing::camel(to_string(c.run)) +
         (c.stop == SS::kNone ? "" : testing::camel(to_string(c.stop))) + "_" +
         testing::camel(to_string(c.event));
}

class StateCell : public CoreTree, public ::testing::WithParamInterface<CellAt> {};

// The Core does what the cell says, as the server calls it: the error, the
// state after, the stop's answer and the notice (and nothing else to the
// parent), what start asks the server to do, and for a refused cell that
// nothing changed.
TEST_P(StateCell, DoesWhatItSays) {
  const auto [run, stop, event] = GetParam();
  const ProcessCell &cell = process_cell(run, stop, event);
  uint32_t held_before = free_held(os);
  uint32_t c = child_in(run, stop);
  ASSERT_EQ(core.processes().at(c).run, run);
  ASSERT_EQ(core.processes().at(c).stop, stop);
  ASSERT_EQ(core.state(c), shown_state(run, stop));

  Program other{"/bin/false", "", {}, {}};
  Claims more{3, 0, 0};
  wire::Message words{};
  words.word[0] = 110;  // what the server says of a stop that timed out: ETIMEDOUT
  StartPlan plan;
  Error error = Error::kNone;
  bool returns_error = true;  // else a refusal shows only as nothing changed
  switch (event) {
    case PE::kStart: error = core.start(os, c, &plan); break;
    case PE::kSpawned:
      core.program_started(c, 99);
      returns_error = false;
      break;
    case PE::kStop: error = core.begin_stop(os, c, free_handle(os)); break;
    case PE::kStopped:
      core.finish_stop(c);
      returns_error = false;
      break;
    case PE::kStopTimeout: error = core.fail_stop(c, words) ? Error::kNone : Error::kInvalid; break;
    case PE::kModify: error = core.modify(os, c, &other, &more); break;
    case PE::kRemove: error = core.remove(os, c); break;
    case PE::kExit:
      core.program_exited(c, wire::ExitKind::kSignal, 9);
      returns_error = false;
      break;
  }
  std::vector<wire::Event> told = events(os);

  if (cell.error != Error::kNone) {
    if (returns_error) {
      EXPECT_EQ(error, cell.error);
    }
    EXPECT_EQ(core.processes().at(c).run, run);
    EXPECT_EQ(core.processes().at(c).stop, stop);
    EXPECT_TRUE(told.empty());
    EXPECT_FALSE(plan.resume || plan.spawn);
    EXPECT_EQ(core.processes().at(c).account.given().buffers, 2U);
    EXPECT_EQ(core.processes().at(c).program.path, "/bin/true");
    return;
  }
  EXPECT_EQ(error, Error::kNone);
  // The parent is told what the cell says, and nothing else.
  size_t notices = 0, answers = 0;
  for (const wire::Event &e : told) {
    if (e.kind == static_cast<uint32_t>(wire::EventKind::kMessage)) {
      EXPECT_STREQ(e.sender, wire::kNucleusName);
      EXPECT_EQ(e.message.word[wire::kNoticeKind], wire::kNoticeChildExited);
      ++notices;
    } else {
      EXPECT_EQ(e.kind, static_cast<uint32_t>(wire::EventKind::kAnswer));
      EXPECT_EQ(e.result, cell.stop_answer);
      if (e.result == wire::kResultMalfunction) {
        EXPECT_EQ(e.message.word[0], 110U);
      }
      ++answers;
    }
  }
  EXPECT_EQ(notices, cell.has(kActNotice) ? 1U : 0U);
  EXPECT_EQ(answers, cell.stop_answer != kNoStopAnswer ? 1U : 0U);

  if (cell.has(kActLeave)) {
    // Gone, and every buffer it had is the parent's again.
    EXPECT_FALSE(core.child(os, "c").ok());
    for (uint32_t index : core.processes().at(os).slots) {
      if (core.pool().at(index).state == BufferState::kAnswered) {
        core.release_answer(os, core.pool().handle(index));
      }
    }
    EXPECT_EQ(free_held(os), held_before);
    return;
  }
  const Process &p = core.processes().at(c);
  EXPECT_EQ(p.run, cell.run);
  EXPECT_EQ(p.stop, cell.stop);
  EXPECT_EQ(core.state(c), shown_state(cell.run, cell.stop));
  EXPECT_EQ(p.stop_buffer != kNone, cell.stop == SS::kStopping) << "a stop in progress waits";
  switch (event) {
    case PE::kStart:
      EXPECT_EQ(plan.resume, cell.has(kActResume));
      EXPECT_EQ(plan.spawn, cell.has(kActSpawn));
      if (plan.spawn) core.program_started(c, 99);
      EXPECT_EQ(core.state(c), PS::kRunning);
      break;
    case PE::kModify:
      EXPECT_EQ(p.account.given().buffers, 3U);
      EXPECT_EQ(p.program.path, "/bin/false");
      break;
    case PE::kStopTimeout: {
      // As if it had never been stopped: nothing held, nothing for a start
      // to resume, and the next stop is taken and can complete.
      EXPECT_FALSE(core.held_stopped(c));
      StartPlan again;
      EXPECT_EQ(core.start(os, c, &again), run == RS::kRunning ? Error::kAlready : Error::kNone);
      EXPECT_FALSE(again.resume);
      EXPECT_EQ(core.begin_stop(os, c, free_handle(os)), Error::kNone);
      EXPECT_EQ(core.state(c), PS::kStopping);
      core.finish_stop(c);
      EXPECT_EQ(core.processes().at(c).stop, SS::kStopped);
      EXPECT_EQ(events(os).size(), 1U);
      break;
    }
    default: break;
  }
}

INSTANTIATE_TEST_SUITE_P(Every, StateCell, ::testing::ValuesIn(every_cell()), cell_name);

// The code's table is the documented one (docs/process-control.md,
// "States"), row by row as a parent sees the state.
TEST(ProcessTable, IsTheDocumentedTable) {
  struct Row {
    PS shown;
    RS run;
    SS stop;
    Error start;  // and what it asks the server to do
    bool resume, spawn;
    Error stop_error;  // and the state after
    PS after_stop;
    bool timeout_fails;  // and the state after
    PS after_timeout;
    Error modify;
  };
  const Row rows[] = {
      {PS::kCreated, RS::kCreated, SS::kNone, Error::kNone, false, true, Error::kNone,
       PS::kStopping,  // the server finds nothing running
       false, PS::kCreated, Error::kNone},
      {PS::kRunning, RS::kRunning, SS::kNone, Error::kAlready, false, false, Error::kNone,
       PS::kStopping, false, PS::kRunning, Error::kBusy},
      {PS::kStopping, RS::kRunning, SS::kStopping, Error::kNone, true, false, Error::kBusy,
       PS::kStopping,  // one stop at a time
       true, PS::kRunning, Error::kBusy},
      {PS::kStopped, RS::kRunning, SS::kStopped, Error::kNone, true, false, Error::kNone,
       PS::kStopped,  // answered at once
       false, PS::kStopped, Error::kNone},
      {PS::kExited, RS::kExited, SS::kNone, Error::kNone, false, true, Error::kNone, PS::kStopping,
       false, PS::kExited, Error::kNone},
  };
  for (const Row &r : rows) {
    SCOPED_TRACE(to_string(r.run) + std::string(" ") + to_string(r.stop));
    EXPECT_EQ(shown_state(r.run, r.stop), r.shown);
    const ProcessCell &start = process_cell(r.run, r.stop, PE::kStart);
    EXPECT_EQ(start.error, r.start);
    EXPECT_EQ(start.has(kActResume), r.resume);
    EXPECT_EQ(start.has(kActSpawn), r.spawn);
    EXPECT_EQ(start.stop_answer, r.shown == PS::kStopping ? wire::kResultRejected : kNoStopAnswer);
    const ProcessCell &stop = process_cell(r.run, r.stop, PE::kStop);
    EXPECT_EQ(stop.error, r.stop_error);
    // A stop's answer is NORMAL, when the subtree is stopped (at once if it is).
    EXPECT_EQ(stop.stop_answer, r.shown == PS::kStopped ? wire::kResultNormal : kNoStopAnswer);
    if (r.shown == PS::kStopping) {
      EXPECT_EQ(process_cell(r.run, r.stop, PE::kStopped).stop_answer, wire::kResultNormal);
    }
    if (stop.error == Error::kNone) {
      EXPECT_EQ(shown_state(stop.run, stop.stop), r.after_stop);
    }
    const ProcessCell &timeout = process_cell(r.run, r.stop, PE::kStopTimeout);
    EXPECT_EQ(timeout.error == Error::kNone, r.timeout_fails);
    if (r.timeout_fails) {
      EXPECT_EQ(shown_state(timeout.run, timeout.stop), r.after_timeout);
      EXPECT_EQ(timeout.stop_answer, wire::kResultMalfunction);
    }
    EXPECT_EQ(process_cell(r.run, r.stop, PE::kModify).error, r.modify);
    const ProcessCell &remove = process_cell(r.run, r.stop, PE::kRemove);
    EXPECT_EQ(remove.error, Error::kNone);
    EXPECT_TRUE(remove.has(kActLeave));
    EXPECT_EQ(remove.stop_answer, r.shown == PS::kStopping ? wire::kResultDummy : kNoStopAnswer);
    // A program exits only where it runs: exited and a notice; a stop in
    // progress waits for the rest of the subtree.
    const ProcessCell &exit = process_cell(r.run, r.stop, PE::kExit);
    EXPECT_EQ(exit.reachable, r.run == RS::kRunning);
    if (exit.reachable) {
      EXPECT_TRUE(exit.has(kActNotice));
      EXPECT_EQ(shown_state(exit.run, exit.stop),
                r.shown == PS::kStopping ? PS::kStopping : PS::kExited);
    }
  }
}

// What nucleusd never brings about is refused and changes nothing: a
// program exits only while it runs, starts only when it does not, and a
// stop completes or times out only while in progress.
TEST(ProcessTable, CellsThatCannotHappenAreRefused) {
  for (const CellAt &c : every_cell()) {
    const ProcessCell &cell = process_cell(c.run, c.stop, c.event);
    bool reachable = true;
    if (c.event == PE::kExit) reachable = c.run == RS::kRunning;
    if (c.event == PE::kSpawned) reachable = c.run != RS::kRunning && c.stop == SS::kNone;
    if (c.event == PE::kStopped || c.event == PE::kStopTimeout) reachable = c.stop == SS::kStopping;
    SCOPED_TRACE(cell_name(::testing::TestParamInfo<CellAt>(c, 0)));
    EXPECT_EQ(cell.reachable, reachable);
    if (!reachable) {
      EXPECT_EQ(cell.error, Error::kInvalid);
      EXPECT_EQ(cell.actions, 0);
      EXPECT_EQ(cell.stop_answer, kNoStopAnswer);
    }
  }
}

// A stop of an exited entry whose children run, failed: it stays exited.
TEST_F(CoreTree, FailStopOfAnExitedEntryLeavesItExited) {
  uint32_t c = child_in(PS::kExited);
  EXPECT_EQ(core.begin_stop(os, c, free_handle(os)), Error::kNone);
  EXPECT_EQ(core.state(c), PS::kStopping);
  EXPECT_TRUE(core.fail_stop(c, wire::Message{}));
  EXPECT_EQ(core.state(c), PS::kExited);
  auto ev = events(os);
  ASSERT_EQ(ev.size(), 1U);
  EXPECT_EQ(ev[0].result, wire::kResultMalfunction);
}

// A stop in progress when the program exits waits for the rest of the
// subtree, and is then answered; the entry shows exited.
TEST_F(CoreTree, AStopInProgressOutlivesTheExit) {
  uint32_t c = child_in(PS::kStopping);
  core.program_exited(c, wire::ExitKind::kSignal, 9);
  EXPECT_EQ(core.state(c), PS::kStopping);
  EXPECT_EQ(events(os).size(), 1U);  // the notice only
  EXPECT_EQ(core.processes().at(c).stop, StopState::kStopping);
  core.finish_stop(c);
  EXPECT_EQ(events(os).size(), 1U);  // the answer
  EXPECT_EQ(core.state(c), PS::kExited);
}

// ---- claims --------------------------------------------------------------------

TEST_F(CoreTree, ClaimsComeOutOfTheParentAndBack) {
  uint32_t a = create("a", Claims{4, 3, 0});
  EXPECT_EQ(core.processes().at(os).slots.size(), 12U);
  EXPECT_EQ(core.processes().at(os).account.lent().processes, 4U);
  auto g = core.create(a, "g", Program{"/bin/true", "", {}, {}}, Claims{2, 1, 0});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(core.processes().at(a).slots.size(), 2U);
  // Short claims: refused, nothing changes.
  EXPECT_EQ(core.create(a, "h", Program{"/bin/true", "", {}, {}}, Claims{3, 0, 0}).error(),
            Error::kNoBuffers);
  EXPECT_EQ(core.create(a, "h", Program{"/bin/true", "", {}, {}}, Claims{0, 1, 0}).error(),
            Error::kNoBuffers);
  EXPECT_EQ(core.create(os, "x", Program{"/bin/true", "", {}, {}}, Claims{13, 0, 0}).error(),
            Error::kNoBuffers);
  EXPECT_EQ(core.processes().at(a).slots.size(), 2U);
  EXPECT_EQ(core.processes().find("h"), kNone);
  // Removing a returns its whole subtree's claims.
  core.remove(os, a);
  EXPECT_EQ(core.processes().at(os).slots.size(), 16U);
  EXPECT_EQ(core.processes().at(os).account.lent().processes, 0U);
  EXPECT_EQ(core.processes().count(), 1U);
}

TEST_F(CoreTree, MemoryClaimsNestOnlyUnderALimit) {
  // os has no memory limit of its own: it may give any limit.
  uint32_t a = create("a", Claims{2, 2, 1000});
  EXPECT_EQ(core.create(a, "b", Program{"/bin/true", "", {}, {}}, Claims{0, 0, 600}).error(),
            Error::kNone);
  EXPECT_EQ(core.create(a, "c", Program{"/bin/true", "", {}, {}}, Claims{0, 0, 600}).error(),
            Error::kNoBuffers);
  Claims less{2, 2, 500};
  EXPECT_EQ(core.modify(os, a, nullptr, &less), Error::kNoBuffers);  // it gave 600 away
}

TEST_F(CoreTree, OnlyOwnChildrenAreFound) {
  uint32_t a = create("a", Claims{4, 2, 0});
  ASSERT_TRUE(core.create(a, "g", Program{"/bin/true", "", {}, {}}, Claims{}).ok());
  auto b = core.attach("b", Claims{1, 0, 0});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(core.child(os, "a").value(), a);
  for (const char *name : {"g", "b", "os", "nucleus", "none"}) {
    EXPECT_EQ(core.child(os, name).error(), Error::kNoChild) << name;
  }
  EXPECT_EQ(core.child(a, "os").error(), Error::kNoChild);
  EXPECT_EQ(core.child(b.value(), "a").error(), Error::kNoChild);
}

// ---- notices and deaths ---------------------------------------------------------

TEST_F(CoreTree, ExitNoticeFromTheNucleus) {
  uint32_t c = child_in(PS::kRunning);
  core.program_exited(c, wire::ExitKind::kCode, 3);
  auto ev = events(os);
  ASSERT_EQ(ev.size(), 1U);
  EXPECT_STREQ(ev[0].sender, "nucleus");
  EXPECT_EQ(ev[0].message.word[wire::kNoticeKind], wire::kNoticeChildExited);
  EXPECT_EQ(ev[0].message.word[wire::kNoticeExitKind],
            static_cast<uint64_t>(wire::ExitKind::kCode));
  EXPECT_EQ(ev[0].message.word[wire::kNoticeExitValue], 3U);
  EXPECT_EQ(ev[0].message.word[wire::kNoticePid], 1234U);
  EXPECT_STREQ(reinterpret_cast<const char *>(&ev[0].message.word[wire::kNoticeName]), "c");
  // Answering it returns the buffer to the nucleus's notice reserve.
  EXPECT_EQ(core.notice_free(), 3U);
  ASSERT_EQ(core.get_event(os, ev[0].handle), Error::kNone);
  ASSERT_EQ(core.send_answer(os, ev[0].handle, wire::kResultNormal, wire::Message{}), Error::kNone);
  EXPECT_EQ(core.notice_free(), 4U);
}

TEST_F(CoreTree, NoticesWaitForAFreeNoticeBuffer) {
  std::vector<uint32_t> kids;
  for (const char *name : {"a", "b", "c", "d", "e", "f"}) {
    kids.push_back(create(name, Claims{1, 0, 0}));
    StartPlan plan;
    core.start(os, kids.back(), &plan);
    core.program_started(kids.back(), 1);
  }
  for (uint32_t k : kids) core.program_exited(k, wire::ExitKind::kCode, 0);
  auto ev = events(os);
  ASSERT_EQ(ev.size(), 4U);  // the reserve
  for (const auto &e : ev) {
    core.get_event(os, e.handle);
    core.send_answer(os, e.handle, wire::kResultNormal, wire::Message{});
  }
  EXPECT_EQ(events(os).size(), 2U);  // the two that waited
}

TEST_F(CoreTree, ADeadParentKeepsItsChildrenAndQueue) {
  uint32_t c = child_in(PS::kRunning, Claims{2, 1, 0});
  core.attach_run(c);
  auto g = core.create(c, "g", Program{"/bin/true", "", {}, {}}, Claims{1, 0, 0});
  ASSERT_TRUE(g.ok());
  // A message to c, taken (received, unanswered), and one queued.
  uint64_t h1 = free_handle(os);
  ASSERT_EQ(core.send_message(os, h1, "c", wire::Message{}), Error::kNone);
  auto in = events(c);
  ASSERT_EQ(core.get_event(c, in[0].handle), Error::kNone);
  uint64_t h2 = free_handle(os);
  ASSERT_EQ(core.send_message(os, h2, "c", wire::Message{}), Error::kNone);
  core.detach(c);
  core.program_exited(c, wire::ExitKind::kSignal, 9);
  // The received one got a dummy answer; the queued one waits; g is kept.
  auto ev = events(os);
  ASSERT_EQ(ev.size(), 2U);
  EXPECT_EQ(ev[0].handle, h1);
  EXPECT_EQ(ev[0].result, wire::kResultDummy);
  EXPECT_EQ(core.child(c, "g").value(), g.value());
  // The next run gets the queued message and owns g.
  StartPlan plan;
  EXPECT_EQ(core.start(os, c, &plan), Error::kNone);
  core.program_started(c, 2);
  core.attach_run(c);
  auto again = events(c);
  ASSERT_EQ(again.size(), 1U);
  EXPECT_EQ(again[0].handle, h2);
  EXPECT_EQ(core.children_of(c).size(), 1U);
}

TEST_F(CoreTree, ASocketProcessWithChildrenStaysAndComesBack) {
  auto p = core.attach("sock", Claims{4, 2, 0}, 1000);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(
      core.create(p.value(), "kid", Program{"/bin/true", "", {}, {}}, Claims{1, 0, 0}).ok());
  core.detach(p.value());
  EXPECT_EQ(core.state(p.value()), PS::kExited);
  EXPECT_EQ(core.attach("sock", Claims{4, 2, 0}, 1001).error(), Error::kNameTaken);  // other uid
  auto back = core.attach("sock", Claims{4, 2, 0}, 1000);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back.value(), p.value());
  EXPECT_EQ(core.children_of(p.value()).size(), 1U);
}

}  // namespace
}  // namespace nucleus::daemon
