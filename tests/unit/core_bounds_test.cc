// The Core's bounds and rights (DESIGN.md, "Principals, privilege and
// bounds"): what each uid may own, names nucleusd hands out, exit notices
// per parent, and who may reserve a device.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "core.h"
#include "core_helpers.h"

namespace nucleus::daemon {
namespace {

using testing::take_events;
using wire::DeviceKind;

constexpr uint32_t kUser = 65534;
constexpr uint32_t kOther = 1000;

Program program() {
  return Program{"/bin/true", "", {}, {}};
}

// What the accounts say must be what a scan of the table finds.
void expect_accounts_match_table(const Core &core) {
  std::map<uint32_t, UidUsage> scan;
  for (uint32_t id = 0; id < core.processes().capacity(); ++id) {
    if (!core.processes().live(id)) continue;
    const Process &p = core.processes().at(id);
    if (p.hidden || (p.is_device() && p.parent == kNone)) continue;
    UidUsage &u = scan[p.uid];
    u.names += 1;
    if (!p.is_device()) u.processes += 1;
    u.buffers += p.slots.size();
  }
  size_t owning = 0;
  for (const auto &[uid, u] : scan) {
    if (u.names == 0 && u.buffers == 0) continue;
    ++owning;
    UidUsage got = core.uid_accounts().usage(uid);
    EXPECT_EQ(got.processes, u.processes) << "uid " << uid;
    EXPECT_EQ(got.names, u.names) << "uid " << uid;
    EXPECT_EQ(got.buffers, u.buffers) << "uid " << uid;
  }
  EXPECT_EQ(core.uid_accounts().size(), owning);
}

class CoreBounds : public ::testing::Test {
 protected:
  // A child of `parent` whose program ran and exited with `value`.
  uint32_t exited_child(uint32_t parent, const std::string &name, int32_t value) {
    auto c = core.create(parent, name, program(), Claims{});
    EXPECT_TRUE(c.ok()) << name;
    StartPlan plan;
    EXPECT_EQ(core.start(parent, c.value(), &plan), Error::kNone);
    core.program_started(c.value(), 100 + value);
    core.program_exited(c.value(), wire::ExitKind::kCode, value);
    return c.value();
  }
  // The exit notices published to `id` since the last call, by exit value.
  std::vector<int32_t> notices(uint32_t id, std::vector<uint64_t> *handles = nullptr) {
    std::vector<int32_t> out;
    for (const wire::Event &e : take_events(core, id)) {
      if (e.kind != static_cast<uint32_t>(wire::EventKind::kMessage) ||
          e.message.word[wire::kNoticeKind] != wire::kNoticeChildExited) {
        continue;
      }
      out.push_back(static_cast<int32_t>(e.message.word[wire::kNoticeExitValue]));
      if (handles != nullptr) handles->push_back(e.handle);
    }
    return out;
  }
  void answer(uint32_t id, uint64_t handle) {
    ASSERT_EQ(core.get_event(id, handle), Error::kNone);
    ASSERT_EQ(core.send_answer(id, handle, wire::kResultNormal, wire::Message{}), Error::kNone);
  }

  Core core{1024, 64, 10000};
  UidBudget budget{3, 5, 20};
};

// ---- per uid --------------------------------------------------------------

TEST_F(CoreBounds, AttachesAreBoundedPerUidAndARefusalChangesNothing) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        core.attach("u" + std::to_string(i), Claims{2, 0, 0}, kUser, kUser, 0, budget).ok());
  }
  uint32_t free_before = core.pool().free_count();
  uint32_t count_before = core.processes().count();
  EXPECT_EQ(core.attach("u3", Claims{2, 0, 0}, kUser, kUser, 0, budget).error(), Error::kUidQuota);
  EXPECT_EQ(core.pool().free_count(), free_before);
  EXPECT_EQ(core.processes().count(), count_before);
  EXPECT_EQ(core.processes().find("u3"), kNone);
  // Another uid, and an operator (unbounded), still attach.
  EXPECT_TRUE(core.attach("o0", Claims{2, 0, 0}, kOther, kOther, 0, budget).ok());
  EXPECT_TRUE(core.attach("root", Claims{2, 0, 0}, 0, 0, 0, UidBudget::unbounded()).ok());
  // One leaves: the uid may attach again.
  core.detach(core.processes().find("u0"));
  EXPECT_TRUE(core.attach("u3", Claims{2, 0, 0}, kUser, kUser, 0, budget).ok());
  expect_accounts_match_table(core);
}

TEST_F(CoreBounds, BuffersHeldAreBoundedPerUid) {
  ASSERT_TRUE(core.attach("a", Claims{16, 0, 0}, kUser, kUser, 0, budget).ok());
  EXPECT_EQ(core.attach("b", Claims{8, 0, 0}, kUser, kUser, 0, budget).error(), Error::kUidQuota);
  EXPECT_TRUE(core.attach("b", Claims{4, 0, 0}, kUser, kUser, 0, budget).ok());
  EXPECT_EQ(core.uid_accounts().usage(kUser).buffers, 20U);
  expect_accounts_match_table(core);
}

TEST_F(CoreBounds, AChildGivenToAnotherUserCountsForThatUser) {
  // A root-owned OS names the user of its child (the server checked that it
  // may): the entry and the buffers it is given are that user's.
  auto os = core.attach("os", Claims{10, 8, 0, 0, 0}, 0, 0, 0, UidBudget::unbounded());
  ASSERT_TRUE(os.ok());
  Program theirs = program();
  theirs.uid = kUser;
  theirs.gid = kUser;
  auto c = core.create(os.value(), "c", theirs, Claims{4, 0, 0}, 0, 0, budget);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(core.processes().at(c.value()).uid, kUser);
  EXPECT_EQ(core.processes().at(c.value()).gid, kUser);
  UidUsage u = core.uid_accounts().usage(kUser);
  EXPECT_EQ(u.processes, 1U);
  EXPECT_EQ(u.buffers, 4U);
  EXPECT_EQ(core.uid_accounts().usage(0).buffers, 6U);
  expect_accounts_match_table(core);
  // That user's bound applies to it (20 buffers).
  Program big = theirs;
  EXPECT_EQ(core.create(kNone, "big", big, Claims{21, 0, 0}, 0, 0, budget).error(),
            Error::kUidQuota);
  // Given to another user again (a modify of the stopped child).
  Program other = program();
  other.uid = kOther;
  ASSERT_EQ(core.modify(os.value(), c.value(), &other, nullptr), Error::kNone);
  EXPECT_EQ(core.processes().at(c.value()).uid, kOther);
  EXPECT_EQ(core.uid_accounts().usage(kUser).processes, 0U);
  EXPECT_EQ(core.uid_accounts().usage(kOther).buffers, 4U);
  expect_accounts_match_table(core);
}

TEST_F(CoreBounds, ChildrenAndDevicesCountForTheirCreatorsOwner) {
  auto os = core.attach("os", Claims{10, 8, 0, 4, 0}, kUser, kUser, 0, budget);
  ASSERT_TRUE(os.ok());
  // Buffers given to a child stay the owner's: only the entry counts.
  auto a = core.create(os.value(), "a", program(), Claims{4, 1, 0}, 0, 0, budget);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(core.processes().at(a.value()).uid, kUser);
  auto g = core.create(a.value(), "g", program(), Claims{2, 0, 0}, 0, 0, budget);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(core.processes().at(g.value()).uid, kUser);
  UidUsage u = core.uid_accounts().usage(kUser);
  EXPECT_EQ(u.processes, 3U);
  EXPECT_EQ(u.names, 3U);
  EXPECT_EQ(u.buffers, 10U);
  // Processes: 3 of 3.
  EXPECT_EQ(core.create(os.value(), "b", program(), Claims{}, 0, 0, budget).error(),
            Error::kUidQuota);
  // Names: devices count too (5 in all).
  auto d1 = core.create_device(os.value(), "d1", DeviceKind::kNull, budget);
  ASSERT_TRUE(d1.ok());
  EXPECT_EQ(core.processes().at(d1.value()).uid, kUser);
  ASSERT_TRUE(core.create_device(os.value(), "d2", DeviceKind::kNull, budget).ok());
  EXPECT_EQ(core.create_device(os.value(), "d3", DeviceKind::kNull, budget).error(),
            Error::kUidQuota);
  EXPECT_EQ(core.processes().find("d3"), kNone);
  expect_accounts_match_table(core);
  // Removing gives everything back.
  ASSERT_EQ(core.remove_device(os.value(), d1.value()), Error::kNone);
  ASSERT_TRUE(core.create_device(os.value(), "d3", DeviceKind::kNull, budget).ok());
  ASSERT_EQ(core.remove(os.value(), a.value()), Error::kNone);
  EXPECT_EQ(core.uid_accounts().usage(kUser).processes, 1U);
  EXPECT_EQ(core.uid_accounts().usage(kUser).buffers, 10U);
  expect_accounts_match_table(core);
  while (!core.processes().at(os.value()).devices.empty()) {
    core.remove_device(os.value(), core.processes().at(os.value()).devices.front());
  }
  core.detach(os.value());
  EXPECT_EQ(core.uid_accounts().size(), 0U);
}

TEST_F(CoreBounds, TheRootsChildrenAreTheRequestersAndItsBudgetBoundsThem) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(core.create(kNone, "c" + std::to_string(i), program(), Claims{2, 0, 0}, kUser,
                            kUser, budget)
                    .ok());
  }
  EXPECT_EQ(core.create(kNone, "c3", program(), Claims{}, kUser, kUser, budget).error(),
            Error::kUidQuota);
  EXPECT_EQ(core.uid_accounts().usage(kUser).buffers, 6U);  // from the root's: counted
  // An operator is not bounded.
  EXPECT_TRUE(core.create(kNone, "c3", program(), Claims{}, kUser, kUser).ok());
  // Claims moved by modify follow the buffers.
  Claims more{6, 0, 0};
  ASSERT_EQ(core.modify(kNone, core.processes().find("c0"), nullptr, &more), Error::kNone);
  EXPECT_EQ(core.uid_accounts().usage(kUser).buffers, 10U);
  expect_accounts_match_table(core);
  for (uint32_t c : std::vector<uint32_t>(core.children_of(kNone))) core.remove(kNone, c);
  EXPECT_EQ(core.uid_accounts().size(), 0U);
}

TEST_F(CoreBounds, ADeadSocketEntryWithChildrenStaysCounted) {
  auto os = core.attach("os", Claims{4, 2, 0}, kUser, kUser, 0, budget);
  ASSERT_TRUE(os.ok());
  ASSERT_TRUE(core.create(os.value(), "a", program(), Claims{1, 0, 0}, 0, 0, budget).ok());
  core.detach(os.value());  // its children keep it in the table
  EXPECT_EQ(core.uid_accounts().usage(kUser).processes, 2U);
  ASSERT_TRUE(core.attach("u1", Claims{}, kUser, kUser, 0, budget).ok());
  EXPECT_EQ(core.attach("u2", Claims{}, kUser, kUser, 0, budget).error(), Error::kUidQuota);
  // Its new run takes no new entry.
  EXPECT_EQ(core.attach("os", Claims{}, kUser, kUser, 0, budget).value(), os.value());
  expect_accounts_match_table(core);
}

// ---- names nucleusd hands out ---------------------------------------------

TEST_F(CoreBounds, NucleusctlNamesAreOnlyForThePeerWithThatPid) {
  EXPECT_EQ(Core::may_take_name("nucleusctl-42", 42), Error::kNone);
  EXPECT_EQ(Core::may_take_name("nucleusctl-42", 43), Error::kNotPermitted);
  EXPECT_EQ(Core::may_take_name("nucleusctl-42", 0), Error::kNotPermitted);
  EXPECT_EQ(Core::may_take_name("nucleusctl-042", 42), Error::kNotPermitted);
  EXPECT_EQ(Core::may_take_name("nucleusctl-", 42), Error::kNotPermitted);
  EXPECT_EQ(Core::may_take_name("nucleusctl-x", 42), Error::kNotPermitted);
  EXPECT_EQ(Core::may_take_name("nucleusctl", 42), Error::kNone);
  EXPECT_EQ(Core::may_take_name("my-nucleusctl-1", 42), Error::kNone);

  EXPECT_EQ(core.attach("nucleusctl-42", Claims{}, kUser, kUser, 43, budget).error(),
            Error::kNotPermitted);
  EXPECT_EQ(core.processes().find("nucleusctl-42"), kNone);
  auto ctl = core.attach("nucleusctl-42", Claims{1, 1, 0, 1, 0}, kUser, kUser, 42, budget);
  ASSERT_TRUE(ctl.ok());
  // Neither a child nor a device may bear one.
  EXPECT_EQ(core.create(ctl.value(), "nucleusctl-7", program(), Claims{}).error(),
            Error::kNotPermitted);
  EXPECT_EQ(core.create(kNone, "nucleusctl-7", program(), Claims{}).error(), Error::kNotPermitted);
  EXPECT_EQ(core.create_device(ctl.value(), "nucleusctl-7", DeviceKind::kNull).error(),
            Error::kNotPermitted);
  // A dead entry of that name (it left children) is not another pid's either.
  ASSERT_TRUE(core.create(ctl.value(), "kid", program(), Claims{}).ok());
  core.detach(ctl.value());
  EXPECT_EQ(core.attach("nucleusctl-42", Claims{}, kUser, kUser, 44, budget).error(),
            Error::kNotPermitted);
  EXPECT_EQ(core.attach("nucleusctl-42", Claims{}, kUser, kUser, 42, budget).value(), ctl.value());
}

// ---- exit notices per parent ----------------------------------------------

TEST_F(CoreBounds, AParentThatNeverAnswersHoldsAtMostItsLimit) {
  core.set_notice_limit(4);
  auto hog = core.attach("hog", Claims{4, 40, 0}, kUser, kUser);
  auto other = core.attach("other", Claims{4, 4, 0}, kOther, kOther);
  ASSERT_TRUE(hog.ok() && other.ok());
  for (int i = 0; i < 40; ++i) exited_child(hog.value(), "h" + std::to_string(i), i);
  std::vector<uint64_t> out;
  EXPECT_EQ(notices(hog.value(), &out), (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(core.notice_free(), 60U);
  EXPECT_EQ(core.processes().at(hog.value()).notices_waiting.size(), 36U);
  // Another parent still gets its notices.
  exited_child(other.value(), "o0", 100);
  exited_child(other.value(), "o1", 101);
  EXPECT_EQ(notices(other.value()), (std::vector<int32_t>{100, 101}));
  // Answering one delivers the next, in exit order.
  answer(hog.value(), out[1]);
  EXPECT_EQ(notices(hog.value()), std::vector<int32_t>{4});
  answer(hog.value(), out[0]);
  EXPECT_EQ(notices(hog.value()), std::vector<int32_t>{5});
}

TEST_F(CoreBounds, AParentThatDetachesGivesItsNoticesBackAndGetsThemOnItsNextRun) {
  core.set_notice_limit(4);
  auto hog = core.attach("hog", Claims{4, 12, 0}, kUser, kUser);
  ASSERT_TRUE(hog.ok());
  for (int i = 0; i < 10; ++i) exited_child(hog.value(), "h" + std::to_string(i), i);
  std::vector<uint64_t> out;
  ASSERT_EQ(notices(hog.value(), &out).size(), 4U);
  ASSERT_EQ(core.get_event(hog.value(), out[0]), Error::kNone);  // one received, unanswered
  core.detach(hog.value());                                      // its children keep its entry
  EXPECT_EQ(core.notice_free(), 64U);                            // the reserve is whole again
  // Nothing is sent to it while no run of it is there.
  exited_child(hog.value(), "h10", 10);
  EXPECT_EQ(core.notice_free(), 64U);
  // Its next run gets the rest in order: the received one was delivered
  // (and dummy-answered when that run ended), the ones only queued come again.
  ASSERT_EQ(core.attach("hog", Claims{}, kUser, kUser).value(), hog.value());
  EXPECT_EQ(notices(hog.value()), (std::vector<int32_t>{1, 2, 3, 4}));
  EXPECT_EQ(core.processes().at(hog.value()).notices_waiting.size(), 6U);
}

TEST_F(CoreBounds, AStartedParentThatExitsGivesItsNoticesBack) {
  core.set_notice_limit(2);
  auto os = core.create(kNone, "os", program(), Claims{4, 4, 0});
  ASSERT_TRUE(os.ok());
  StartPlan plan;
  ASSERT_EQ(core.start(kNone, os.value(), &plan), Error::kNone);
  core.program_started(os.value(), 10);
  core.attach_run(os.value());
  for (int i = 0; i < 3; ++i) exited_child(os.value(), "k" + std::to_string(i), i);
  EXPECT_EQ(core.notice_free(), 62U);
  core.program_exited(os.value(), wire::ExitKind::kCode, 0);
  EXPECT_EQ(core.notice_free(), 64U);
  ASSERT_EQ(core.start(kNone, os.value(), &plan), Error::kNone);
  core.program_started(os.value(), 11);
  core.attach_run(os.value());
  EXPECT_EQ(notices(os.value()), (std::vector<int32_t>{0, 1}));
}

TEST_F(CoreBounds, WhenTheReserveRunsOutParentsTakeTurnsAndNothingIsLost) {
  Core small{256, 4, 1000};
  small.set_notice_limit(3);
  auto a = small.attach("a", Claims{4, 8, 0});
  auto b = small.attach("b", Claims{4, 8, 0});
  auto c = small.attach("c", Claims{4, 8, 0});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  auto exit_one = [&](uint32_t parent, const std::string &name, int32_t value) {
    auto k = small.create(parent, name, program(), Claims{});
    ASSERT_TRUE(k.ok());
    StartPlan plan;
    small.start(parent, k.value(), &plan);
    small.program_started(k.value(), 1);
    small.program_exited(k.value(), wire::ExitKind::kCode, value);
  };
  for (int i = 0; i < 5; ++i) exit_one(a.value(), "a" + std::to_string(i), i);
  for (int i = 0; i < 2; ++i) exit_one(b.value(), "b" + std::to_string(i), 10 + i);
  exit_one(c.value(), "c0", 20);
  EXPECT_EQ(small.notice_free(), 0U);
  auto take = [&](uint32_t id) {
    std::vector<uint64_t> handles;
    for (const wire::Event &e : take_events(small, id)) handles.push_back(e.handle);
    return handles;
  };
  auto ha = take(a.value());
  ASSERT_EQ(ha.size(), 3U);               // its limit
  ASSERT_EQ(take(b.value()).size(), 1U);  // the reserve ran out
  ASSERT_TRUE(take(c.value()).empty());
  // a answers: the buffer goes to one that waited (b first, then c), not back to a.
  small.get_event(a.value(), ha[0]);
  small.send_answer(a.value(), ha[0], wire::kResultNormal, wire::Message{});
  EXPECT_EQ(take(b.value()).size(), 1U);
  small.get_event(a.value(), ha[1]);
  small.send_answer(a.value(), ha[1], wire::kResultNormal, wire::Message{});
  EXPECT_EQ(take(c.value()).size(), 1U);
  small.get_event(a.value(), ha[2]);
  small.send_answer(a.value(), ha[2], wire::kResultNormal, wire::Message{});
  EXPECT_EQ(take(a.value()).size(), 1U);  // now its own turn
}

TEST_F(CoreBounds, NoticesLeaveTheHandoversShareOfTheReserve) {
  // 32 notice buffers: the last 2 are for swaps' handovers, whatever parents
  // leave unanswered.
  Core reserve{1024, 32, 1000};
  reserve.set_notice_limit(100);
  auto a = reserve.attach("a", Claims{4, 60, 0});
  ASSERT_TRUE(a.ok());
  for (int i = 0; i < 40; ++i) {
    auto k = reserve.create(a.value(), "k" + std::to_string(i), program(), Claims{});
    ASSERT_TRUE(k.ok());
    StartPlan plan;
    reserve.start(a.value(), k.value(), &plan);
    reserve.program_started(k.value(), 100 + i);
    reserve.program_exited(k.value(), wire::ExitKind::kCode, i);
  }
  EXPECT_EQ(reserve.notice_free(), 2U);
  EXPECT_EQ(take_events(reserve, a.value()).size(), 30U);
}

TEST_F(CoreBounds, RaisingTheLimitSendsWhatWaited) {
  core.set_notice_limit(1);
  auto p = core.attach("p", Claims{4, 4, 0});
  ASSERT_TRUE(p.ok());
  for (int i = 0; i < 3; ++i) exited_child(p.value(), "k" + std::to_string(i), i);
  EXPECT_EQ(notices(p.value()), std::vector<int32_t>{0});
  core.set_notice_limit(16);
  EXPECT_EQ(notices(p.value()), (std::vector<int32_t>{1, 2}));
}

TEST_F(CoreBounds, ARemovedChildsWaitingNoticeIsDropped) {
  core.set_notice_limit(1);
  auto p = core.attach("p", Claims{4, 4, 0});
  ASSERT_TRUE(p.ok());
  exited_child(p.value(), "k0", 0);
  uint32_t k1 = exited_child(p.value(), "k1", 1);
  exited_child(p.value(), "k2", 2);
  std::vector<uint64_t> out;
  EXPECT_EQ(notices(p.value(), &out), std::vector<int32_t>{0});
  ASSERT_EQ(core.remove(p.value(), k1), Error::kNone);
  answer(p.value(), out[0]);
  EXPECT_EQ(notices(p.value()), std::vector<int32_t>{2});
}

// ---- reserving devices ----------------------------------------------------

TEST_F(CoreBounds, TheRootsDevicesAreOnlyOperatorsToReserve) {
  auto console = core.create_device(kNone, "console", DeviceKind::kConsole);
  auto user = core.attach("user", Claims{2, 0, 0}, kUser, kUser);
  ASSERT_TRUE(console.ok() && user.ok());
  EXPECT_EQ(core.reserve(user.value(), console.value()), Error::kNotPermitted);
  EXPECT_EQ(core.processes().at(console.value()).reserver, kNone);
  EXPECT_EQ(core.reserve(user.value(), console.value(), true), Error::kNone);
}

TEST_F(CoreBounds, ANamersSubtreeAndAncestorsMayReserveItsDevicesAndNobodyElse) {
  auto os = core.attach("os", Claims{8, 4, 0, 2, 0}, kUser, kUser);
  auto stranger = core.attach("stranger", Claims{2, 0, 0}, kUser, kUser);
  ASSERT_TRUE(os.ok() && stranger.ok());
  auto mid = core.create(os.value(), "mid", program(), Claims{4, 2, 0, 1, 0});
  ASSERT_TRUE(mid.ok());
  auto leaf = core.create(mid.value(), "leaf", program(), Claims{1, 0, 0});
  auto sib = core.create(os.value(), "sib", program(), Claims{1, 0, 0});
  ASSERT_TRUE(leaf.ok() && sib.ok());
  auto disk = core.create_device(mid.value(), "disk", DeviceKind::kNull);
  ASSERT_TRUE(disk.ok());
  // The same uid is no right: the stranger and the namer's sibling are refused.
  EXPECT_EQ(core.reserve(stranger.value(), disk.value()), Error::kNotPermitted);
  EXPECT_EQ(core.reserve(sib.value(), disk.value()), Error::kNotPermitted);
  // A process reserving a device its parent named.
  EXPECT_EQ(core.reserve(leaf.value(), disk.value()), Error::kNone);
  EXPECT_EQ(core.release(leaf.value(), disk.value()), Error::kNone);
  EXPECT_EQ(core.reserve(mid.value(), disk.value()), Error::kNone);  // the namer
  EXPECT_EQ(core.release(mid.value(), disk.value()), Error::kNone);
  EXPECT_EQ(core.reserve(os.value(), disk.value()), Error::kNone);  // its ancestor
  EXPECT_EQ(core.reserve(leaf.value(), disk.value()), Error::kBusy);
}

}  // namespace
}  // namespace nucleus::daemon
