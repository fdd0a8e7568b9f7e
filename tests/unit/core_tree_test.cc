// Process control on the core, without Linux: the state table of a child
// (every cell), claims arithmetic, exit notices, and what a parent's death
// leaves.
#include <gtest/gtest.h>

#include <map>

#include "core.h"
#include "core_helpers.h"

namespace nucleus::daemon {
namespace {

using PS = wire::ProcessState;

class CoreTree : public ::testing::Test {
 protected:
  static constexpr uint32_t kPool = 64;

  void SetUp() override { fresh(); }
  void fresh() {
    core = Core{kPool, 4, 100};
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
  // Brings a new child to `state` the way the server would.
  uint32_t child_in(PS state, Claims claims = Claims{2, 0, 0}) {
    uint32_t c = create("c", claims);
    StartPlan plan;
    if (state == PS::kCreated) return c;
    EXPECT_EQ(core.start(os, c, &plan), Error::kNone);
    core.program_started(c, 1234);
    if (state == PS::kRunning) return c;
    if (state == PS::kExited) {
      core.program_exited(c, wire::ExitKind::kCode, 0);
      events(os);
      return c;
    }
    EXPECT_EQ(core.begin_stop(os, c, free_handle(os)), Error::kNone);
    if (state == PS::kStopped) {
      core.finish_stop(c);
      events(os);
    }
    return c;
  }

  Core core{kPool, 4, 100};
  uint32_t os = kNone;
};

// ---- the state table, cell by cell ------------------------------------------

TEST_F(CoreTree, StartCells) {
  struct Cell {
    PS from;
    Error error;
    bool resume, spawn;
  };
  for (Cell cell : {Cell{PS::kCreated, Error::kNone, false, true},
                    Cell{PS::kRunning, Error::kAlready, false, false},
                    Cell{PS::kStopping, Error::kNone, true, false},
                    Cell{PS::kStopped, Error::kNone, true, false},
                    Cell{PS::kExited, Error::kNone, false, true}}) {
    fresh();
    uint32_t c = child_in(cell.from);
    StartPlan plan;
    EXPECT_EQ(core.start(os, c, &plan), cell.error) << static_cast<int>(cell.from);
    EXPECT_EQ(plan.resume, cell.resume) << static_cast<int>(cell.from);
    EXPECT_EQ(plan.spawn, cell.spawn) << static_cast<int>(cell.from);
    if (cell.spawn) core.program_started(c, 99);
    EXPECT_EQ(core.state(c), cell.from == PS::kCreated && cell.error != Error::kNone
                                 ? PS::kCreated
                                 : PS::kRunning);
    if (cell.from == PS::kStopping) {  // the stop is answered rejected
      auto ev = events(os);
      ASSERT_EQ(ev.size(), 1U);
      EXPECT_EQ(ev[0].result, wire::kResultRejected);
    }
    core.remove(os, c);
  }
}

TEST_F(CoreTree, StopCells) {
  std::map<PS, std::pair<Error, PS>> table{
      {PS::kCreated, {Error::kNone, PS::kStopping}},  // the server finds nothing running
      {PS::kRunning, {Error::kNone, PS::kStopping}},
      {PS::kStopping, {Error::kBusy, PS::kStopping}},  // one stop at a time
      {PS::kStopped, {Error::kNone, PS::kStopped}},    // answered at once
      {PS::kExited, {Error::kNone, PS::kStopping}},
  };
  for (auto [from, expect] : table) {
    fresh();
    uint32_t c = child_in(from);
    events(os);
    EXPECT_EQ(core.begin_stop(os, c, free_handle(os)), expect.first) << static_cast<int>(from);
    EXPECT_EQ(core.state(c), expect.second) << static_cast<int>(from);
    if (from == PS::kStopped) {
      EXPECT_EQ(events(os).size(), 1U);  // the answer
    }
    core.remove(os, c);
  }
}

// A stop that times out: only a stop in progress fails; it is answered
// MALFUNCTION with the server's words and the entry runs (or stays exited)
// as if it had never been stopped, so a start finds nothing to resume.
TEST_F(CoreTree, FailStopCells) {
  struct Cell {
    PS from;
    bool failed;
    PS to;
  };
  for (Cell cell :
       {Cell{PS::kCreated, false, PS::kCreated}, Cell{PS::kRunning, false, PS::kRunning},
        Cell{PS::kStopping, true, PS::kRunning}, Cell{PS::kStopped, false, PS::kStopped},
        Cell{PS::kExited, false, PS::kExited}}) {
    fresh();
    uint32_t c = child_in(cell.from);
    events(os);
    wire::Message words{};
    words.word[0] = 110;  // what the server says: ETIMEDOUT
    EXPECT_EQ(core.fail_stop(c, words), cell.failed) << static_cast<int>(cell.from);
    EXPECT_EQ(core.state(c), cell.to) << static_cast<int>(cell.from);
    auto ev = events(os);
    ASSERT_EQ(ev.size(), cell.failed ? 1U : 0U) << static_cast<int>(cell.from);
    if (cell.failed) {
      EXPECT_EQ(ev[0].result, wire::kResultMalfunction);
      EXPECT_EQ(ev[0].message.word[0], 110U);
      EXPECT_FALSE(core.held_stopped(c));
      EXPECT_EQ(core.processes().at(c).stop_buffer, kNone);
      StartPlan plan;  // running, nothing held: start has nothing to do
      EXPECT_EQ(core.start(os, c, &plan), Error::kAlready);
      EXPECT_FALSE(plan.resume);
      // The next stop is taken (not kBusy) and can complete.
      EXPECT_EQ(core.begin_stop(os, c, free_handle(os)), Error::kNone);
      EXPECT_EQ(core.state(c), PS::kStopping);
      core.finish_stop(c);
      EXPECT_EQ(core.state(c), PS::kStopped);
      events(os);
    }
    core.remove(os, c);
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

TEST_F(CoreTree, ExitCells) {
  for (PS from : {PS::kRunning, PS::kStopping, PS::kStopped}) {
    fresh();
    uint32_t c = child_in(from);
    events(os);
    core.program_exited(c, wire::ExitKind::kSignal, 9);
    EXPECT_EQ(core.state(c), from == PS::kStopping ? PS::kStopping : PS::kExited)
        << static_cast<int>(from);
    auto ev = events(os);
    // The notice only: a stop in progress waits for the rest of the subtree
    // (its children may run on), which the server looks at next.
    EXPECT_EQ(ev.size(), 1U);
    if (from == PS::kStopping) {
      EXPECT_EQ(core.processes().at(c).stop, StopState::kStopping);
      core.finish_stop(c);
      EXPECT_EQ(events(os).size(), 1U);  // the answer
      EXPECT_EQ(core.state(c), PS::kExited);
    }
    core.remove(os, c);
  }
}

TEST_F(CoreTree, ModifyCells) {
  std::map<PS, Error> table{{PS::kCreated, Error::kNone},
                            {PS::kRunning, Error::kBusy},
                            {PS::kStopping, Error::kBusy},
                            {PS::kStopped, Error::kNone},
                            {PS::kExited, Error::kNone}};
  for (auto [from, error] : table) {
    fresh();
    uint32_t c = child_in(from);
    Claims more{3, 0, 0};
    Program p{"/bin/false", "", {}, {}};
    EXPECT_EQ(core.modify(os, c, &p, &more), error) << static_cast<int>(from);
    EXPECT_EQ(core.processes().at(c).account.given().buffers, error == Error::kNone ? 3U : 2U);
    EXPECT_EQ(core.processes().at(c).program.path,
              error == Error::kNone ? "/bin/false" : "/bin/true");
    core.remove(os, c);
  }
}

TEST_F(CoreTree, RemoveCells) {
  for (PS from : {PS::kCreated, PS::kRunning, PS::kStopping, PS::kStopped, PS::kExited}) {
    fresh();
    uint32_t before = free_held(os);
    uint32_t c = child_in(from);
    EXPECT_EQ(core.remove(os, c), Error::kNone);
    EXPECT_FALSE(core.child(os, "c").ok());
    events(os);  // a stop in progress is answered with a dummy answer
    for (uint32_t index : core.processes().at(os).slots) {
      if (core.pool().at(index).state == BufferState::kAnswered) {
        core.release_answer(os, core.pool().handle(index));
      }
    }
    EXPECT_EQ(free_held(os), before) << static_cast<int>(from);
  }
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
