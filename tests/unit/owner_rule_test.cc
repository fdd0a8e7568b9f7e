// The owner rule (owner_rule.h) on every path through the decoder by which
// a program comes to run under an owner: a table of requester x owner x
// operation, the cases of issue 20 it closes (a modify that kept a root
// owner, act_for with another group), and the names section.
#include "owner_rule.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core_helpers.h"
#include "requests_helpers.h"

namespace nucleus::daemon {
namespace {

using namespace std::string_literals;
using testing::program_bytes;
using testing::RequestsTest;

TEST(OwnerRuleAllows, RootOrExactlyTheOwner) {
  EXPECT_TRUE(owner_rule_allows(Owner{0, 0}, Owner{1000, 42}));
  EXPECT_TRUE(owner_rule_allows(Owner{0, 5}, Owner{0, 0}));  // root, whatever its group
  EXPECT_TRUE(owner_rule_allows(Owner{1000, 1000}, Owner{1000, 1000}));
  EXPECT_FALSE(owner_rule_allows(Owner{1000, 1000}, Owner{1000, 42}));
  EXPECT_FALSE(owner_rule_allows(Owner{1000, 1000}, Owner{0, 1000}));
  EXPECT_FALSE(owner_rule_allows(Owner{1000, 1000}, Owner{2000, 1000}));
}

TEST(OwnerNamed, EachPartTheProgramNamesElseTheCurrentOwners) {
  Program p;
  EXPECT_EQ(owner_named(p, Owner{1000, 1000}), (Owner{1000, 1000}));
  p.gid = 42;
  EXPECT_EQ(owner_named(p, Owner{1000, 1000}), (Owner{1000, 42}));
  p.uid = 0;
  EXPECT_EQ(owner_named(p, Owner{1000, 1000}), (Owner{0, 42}));
}

// ---- the table ----------------------------------------------------------

enum class Who { kRoot, kSame, kSameUidOtherGid, kOtherUid };
enum class Op { kCreate, kModify, kSwap, kStart };

const char *name_of(Who w) {
  switch (w) {
    case Who::kRoot: return "Root";
    case Who::kSame: return "SameUidAndGid";
    case Who::kSameUidOtherGid: return "SameUidOtherGid";
    case Who::kOtherUid: return "OtherUid";
  }
  return "?";
}

const char *name_of(Op o) {
  switch (o) {
    case Op::kCreate: return "Create";
    case Op::kModify: return "Modify";
    case Op::kSwap: return "Swap";
    case Op::kStart: return "Start";
  }
  return "?";
}

constexpr Owner kRootOwner{0, 0};
constexpr Owner kUserOwner{1000, 1000};

// The requester's principal, relative to the owner.
Owner requester_for(Who who, Owner owner) {
  switch (who) {
    case Who::kRoot: return Owner{0, 0};
    case Who::kSame: return owner;
    case Who::kSameUidOtherGid: return Owner{owner.uid, owner.gid + 4242};
    case Who::kOtherUid: return Owner{owner.uid + 3000, owner.gid + 3000};
  }
  return owner;
}

// One cell: a requester asks for `op` on a program that would run as
// `owner`; it is done (0) or refused (-EPERM), nothing else.
struct Cell {
  Who who;
  Owner owner;
  Op op;
  bool allowed;
};

// The rule as a table, written out rather than computed from the rule.
// Root is uid 0 whatever its group, so root with another group may name
// root.
constexpr Cell kCells[] = {
    {Who::kRoot, kRootOwner, Op::kCreate, true},
    {Who::kRoot, kRootOwner, Op::kModify, true},
    {Who::kRoot, kRootOwner, Op::kSwap, true},
    {Who::kRoot, kRootOwner, Op::kStart, true},
    {Who::kSameUidOtherGid, kRootOwner, Op::kCreate, true},
    {Who::kSameUidOtherGid, kRootOwner, Op::kModify, true},
    {Who::kSameUidOtherGid, kRootOwner, Op::kSwap, true},
    {Who::kSameUidOtherGid, kRootOwner, Op::kStart, true},
    {Who::kOtherUid, kRootOwner, Op::kCreate, false},
    {Who::kOtherUid, kRootOwner, Op::kModify, false},
    {Who::kOtherUid, kRootOwner, Op::kSwap, false},
    {Who::kOtherUid, kRootOwner, Op::kStart, false},
    {Who::kRoot, kUserOwner, Op::kCreate, true},
    {Who::kRoot, kUserOwner, Op::kModify, true},
    {Who::kRoot, kUserOwner, Op::kSwap, true},
    {Who::kRoot, kUserOwner, Op::kStart, true},
    {Who::kSame, kUserOwner, Op::kCreate, true},
    {Who::kSame, kUserOwner, Op::kModify, true},
    {Who::kSame, kUserOwner, Op::kSwap, true},
    {Who::kSame, kUserOwner, Op::kStart, true},
    {Who::kSameUidOtherGid, kUserOwner, Op::kCreate, false},
    {Who::kSameUidOtherGid, kUserOwner, Op::kModify, false},
    {Who::kSameUidOtherGid, kUserOwner, Op::kSwap, false},
    {Who::kSameUidOtherGid, kUserOwner, Op::kStart, false},
    {Who::kOtherUid, kUserOwner, Op::kCreate, false},
    {Who::kOtherUid, kUserOwner, Op::kModify, false},
    {Who::kOtherUid, kUserOwner, Op::kSwap, false},
    {Who::kOtherUid, kUserOwner, Op::kStart, false},
};

// The requester acts for `parent` (owned by the cell's owner), whose child
// `child` it asks about. It is an operator, so that act_for lets it act for
// any process and the owner rule alone decides: acting for another gives
// authority over its children, not its owner.
class OwnerRuleTable : public RequestsTest, public ::testing::WithParamInterface<Cell> {
 protected:
  void SetUp() override {
    const Cell &c = GetParam();
    Owner r = requester_for(c.who, c.owner);
    config_.operator_uids = {0, r.uid};
    os_ = core_.attach("requester", Claims{8, 0, 0, 0, 0}, r.uid, r.gid, 20).value();
    parent_ = core_
                  .create(kNone, "parent", Program{"/bin/os", "", {}, {}}, Claims{8, 4, 0, 0, 0},
                          c.owner.uid, c.owner.gid)
                  .value();
    child_ = core_.create(parent_, "child", Program{"/bin/true", "", {}, {}}, Claims{2, 0, 0, 0, 0})
                 .value();
    ASSERT_EQ(owner_of(core_.processes().at(child_)), c.owner);  // inherited
    ASSERT_EQ(control(request(wire::Op::kActFor, "parent", wire::kActForProcess)), 0);
  }

  uint32_t parent_ = kNone;
  uint32_t child_ = kNone;
};

TEST_P(OwnerRuleTable, RunsAProgramOnlyAsAnOwnerTheRequesterCouldName) {
  const Cell &c = GetParam();
  int32_t expected = c.allowed ? 0 : -EPERM;
  switch (c.op) {
    case Op::kCreate: {
      // The new child inherits the parent's owner.
      stage(program_bytes("/bin/mine"));
      EXPECT_EQ(control(request(wire::Op::kCreateProcess, "new")), expected);
      Result<uint32_t> made = core_.child(parent_, "new");
      ASSERT_EQ(made.ok(), c.allowed);
      if (made.ok()) {
        EXPECT_EQ(owner_of(core_.processes().at(made.value())), c.owner);
      }
      break;
    }
    case Op::kModify: {
      stage(program_bytes("/bin/mine"));
      EXPECT_EQ(control(request(wire::Op::kModifyProcess, "child", wire::kModifyProgram)),
                expected);
      EXPECT_EQ(core_.processes().at(child_).program.path, c.allowed ? "/bin/mine" : "/bin/true");
      EXPECT_EQ(owner_of(core_.processes().at(child_)), c.owner);
      break;
    }
    case Op::kSwap: {
      StartPlan plan;
      ASSERT_EQ(core_.start(parent_, child_, &plan), Error::kNone);
      core_.program_started(child_, 4242);
      core_.attach_run(child_);
      stage(program_bytes("/bin/mine"));
      wire::Request swap = request(wire::Op::kSwapProcess, "child");
      swap.handle = testing::free_handle(core_, os_);
      EXPECT_EQ(control(swap), expected);
      EXPECT_EQ(core_.processes().at(child_).swap_candidate != kNone, c.allowed);
      EXPECT_EQ(linux_.calls.size(), c.allowed ? 1U : 0U);  // the new program's start
      break;
    }
    case Op::kStart:
      EXPECT_EQ(control(request(wire::Op::kStartProcess, "child")), expected);
      EXPECT_EQ(linux_.calls, c.allowed
                                  ? std::vector<std::string>{"spawn " + std::to_string(child_)}
                                  : std::vector<std::string>{});
      break;
  }
}

INSTANTIATE_TEST_SUITE_P(RequesterOwnerOperation, OwnerRuleTable, ::testing::ValuesIn(kCells),
                         [](const ::testing::TestParamInfo<Cell> &info) {
                           const Cell &c = info.param;
                           return std::string(name_of(c.who)) +
                                  (c.owner == kRootOwner ? "_RootOwner_" : "_UserOwner_") +
                                  name_of(c.op);
                         });

// ---- what the table closes -----------------------------------------------

// Issue 20, finding 3: a uid that owns an entry root gave it acts for it
// and replaces the program of a child root created as root, naming no
// user; the child, still owned by root, would start it as root.
TEST_F(RequestsTest, AUidActingForItsEntryCannotRunItsProgramInARootOwnedChild) {
  uint32_t given =
      core_
          .create(kNone, "given", Program{"/bin/os", "", {}, {}}, Claims{8, 4, 0, 0, 0}, 1000, 1000)
          .value();
  Program as_root{"/bin/true", "", {}, {}, 0, 0};
  uint32_t child = core_.create(given, "rootchild", as_root, Claims{2, 0, 0, 0, 0}).value();
  ASSERT_EQ(owner_of(core_.processes().at(child)), (Owner{0, 0}));
  // "os" is uid 1000 gid 1000, not an operator: it may act for its own entry.
  ASSERT_EQ(control(request(wire::Op::kActFor, "given", wire::kActForProcess)), 0);
  stage(program_bytes("/bin/mine"));
  EXPECT_EQ(control(request(wire::Op::kModifyProcess, "rootchild", wire::kModifyProgram)), -EPERM);
  EXPECT_EQ(core_.processes().at(child).program.path, "/bin/true");
  EXPECT_EQ(control(request(wire::Op::kStartProcess, "rootchild")), -EPERM);
  EXPECT_TRUE(linux_.calls.empty());
  // Claims are not a program: they still move.
  wire::Request claims = request(wire::Op::kModifyProcess, "rootchild", wire::kModifyClaims);
  claims.message.word[wire::kClaimBuffers] = 1;
  EXPECT_EQ(control(claims), 0);
  // Naming itself, it may: the child becomes its own and runs as it.
  stage(program_bytes("/bin/mine", 1000, 1000));
  EXPECT_EQ(control(request(wire::Op::kModifyProcess, "rootchild", wire::kModifyProgram)), 0);
  EXPECT_EQ(owner_of(core_.processes().at(child)), (Owner{1000, 1000}));
  EXPECT_EQ(control(request(wire::Op::kStartProcess, "rootchild")), 0);
  EXPECT_EQ(linux_.calls, std::vector<std::string>{"spawn " + std::to_string(child)});
}

// Issue 20, finding 5: root gives uid 1000 an entry with another group;
// acting for it would give that group to the children it creates.
TEST_F(RequestsTest, ActingForAnEntryNeedsItsWholePrincipalAndChildrenGetNoOtherGroup) {
  core_.create(kNone, "shadowed", Program{"/bin/os", "", {}, {}}, Claims{8, 4, 0, 0, 0}, 1000, 42);
  EXPECT_EQ(control(request(wire::Op::kActFor, "shadowed", wire::kActForProcess)), -EACCES);
  EXPECT_EQ(session_.acting, Session::kActSelf);
  // An operator (not root) may act for it, and still gives no child the group.
  config_.operator_uids = {0, 1000};
  ASSERT_EQ(control(request(wire::Op::kActFor, "shadowed", wire::kActForProcess)), 0);
  stage(program_bytes("/bin/mine"));
  EXPECT_EQ(control(request(wire::Op::kCreateProcess, "kid")), -EPERM);
  stage(program_bytes("/bin/mine", wire::kOwnerDefault, 42));
  EXPECT_EQ(control(request(wire::Op::kCreateProcess, "kid")), -EPERM);
  EXPECT_EQ(core_.processes().find("kid"), kNone);
  // Its own principal, named, it may give.
  stage(program_bytes("/bin/mine", 1000, 1000));
  ASSERT_EQ(control(request(wire::Op::kCreateProcess, "kid")), 0);
  EXPECT_EQ(owner_of(core_.processes().at(core_.processes().find("kid"))), (Owner{1000, 1000}));
}

TEST_F(RequestsTest, AnEntryGivenToAnotherOwnerEndsTheAuthorityOfWhoActedForIt) {
  uint32_t mine =
      core_.create(kNone, "mine", Program{"/bin/os", "", {}, {}}, Claims{8, 4, 0, 0, 0}, 1000, 1000)
          .value();
  ASSERT_EQ(control(request(wire::Op::kActFor, "mine", wire::kActForProcess)), 0);
  Program theirs{"/bin/os", "", {}, {}, 2000, 2000};
  ASSERT_EQ(core_.modify(kNone, mine, &theirs, nullptr), Error::kNone);  // root gives it away
  stage(program_bytes("/bin/mine"));
  EXPECT_EQ(control(request(wire::Op::kCreateProcess, "kid")), -EACCES);
  EXPECT_EQ(control(request(wire::Op::kGetProcess, "kid")), -EACCES);
}

TEST_F(RequestsTest, AResumeRunsNothingNewAndIsNotTheOwnerRules) {
  uint32_t given =
      core_
          .create(kNone, "given", Program{"/bin/os", "", {}, {}}, Claims{8, 4, 0, 0, 0}, 1000, 1000)
          .value();
  Program as_root{"/bin/true", "", {}, {}, 0, 0};
  uint32_t child = core_.create(given, "rootchild", as_root, Claims{2, 0, 0, 0, 0}).value();
  StartPlan plan;
  ASSERT_EQ(core_.start(given, child, &plan), Error::kNone);  // root started it
  core_.program_started(child, 4242);
  ASSERT_EQ(control(request(wire::Op::kActFor, "given", wire::kActForProcess)), 0);
  wire::Request stop = request(wire::Op::kStopProcess, "rootchild");
  stop.handle = testing::free_handle(core_, os_);
  ASSERT_EQ(control(stop), 0);
  core_.finish_stop(child);
  EXPECT_EQ(control(request(wire::Op::kStartProcess, "rootchild")), 0);
  EXPECT_EQ(linux_.calls.back(), "resume " + std::to_string(child));
  // Once it has exited, a start would run it again: refused.
  core_.program_exited(child, wire::ExitKind::kCode, 0);
  EXPECT_EQ(control(request(wire::Op::kStartProcess, "rootchild")), -EPERM);
}

TEST_F(RequestsTest, TheBootSectionIsRootsAndStartsEntriesOfAnyOwner) {
  uint32_t os2 =
      core_
          .create(kNone, "boot-os", Program{"/bin/os", "", {}, {}}, Claims{1, 0, 0, 0, 0}, 2000, 42)
          .value();
  uint64_t step = wire::kStartStepNone;
  EXPECT_EQ(requests_.start(kNone, kNone, os2, Waiter{}, &step), 0);
  EXPECT_EQ(linux_.calls, std::vector<std::string>{"spawn " + std::to_string(os2)});
}

TEST_F(RequestsTest, OnlyRootNamesAnotherOwnerAndTheRefusalComesBeforeTheUserDatabase) {
  for (auto [uid, gid] : std::vector<std::pair<uint32_t, uint32_t>>{{0, 0},
                                                                    {0, wire::kOwnerDefault},
                                                                    {wire::kOwnerDefault, 0},
                                                                    {1000, 42},
                                                                    {123456, 1000}}) {
    stage(program_bytes("/bin/mine", uid, gid));
    EXPECT_EQ(control(request(wire::Op::kCreateProcess, "kid")), -EPERM) << uid << " " << gid;
  }
  EXPECT_EQ(core_.processes().find("kid"), kNone);
}

// ---- the names section -----------------------------------------------------

TEST_F(RequestsTest, AReservedNameIsTakenOnlyByTheOwnersTheNamesSectionAllows) {
  config_.names = {NameRule{"web", false, {0}, {}}, NameRule{"sup.", true, {0}, {}},
                   NameRule{"team.", true, {}, {1000}}};
  stage(program_bytes("/bin/mine"));
  EXPECT_EQ(control(request(wire::Op::kCreateProcess, "web")), -EPERM);
  stage(program_bytes("/bin/mine"));
  EXPECT_EQ(control(request(wire::Op::kCreateProcess, "sup.db")), -EPERM);
  stage("/tmp/disk\0\0"s);
  EXPECT_EQ(control(request(wire::Op::kCreateExternal, "sup.disk",
                            static_cast<int64_t>(wire::DeviceKind::kDisk))),
            -EPERM);
  EXPECT_TRUE(linux_.calls.empty());  // no file opened for it
  stage(program_bytes("/bin/mine"));
  EXPECT_EQ(control(request(wire::Op::kCreateProcess, "team.a")), 0);  // its primary gid
  stage(program_bytes("/bin/mine"));
  EXPECT_EQ(control(request(wire::Op::kCreateProcess, "webby")), 0);  // no rule covers it
  // Root takes them; the name is checked against who chose it, not against
  // the owner the new entry runs as: root may name a child it runs as uid
  // 1000, and a modify that hands the entry on takes no name.
  os_ = core_.attach("root", Claims{8, 4, 0, 0, 0}, 0, 0, 30).value();
  stage(program_bytes("/bin/mine"));
  ASSERT_EQ(control(request(wire::Op::kCreateProcess, "sup.db")), 0);
  stage(program_bytes("/bin/mine", 1000, 1000));
  EXPECT_EQ(control(request(wire::Op::kModifyProcess, "sup.db", wire::kModifyProgram)), 0);
  EXPECT_EQ(owner_of(core_.processes().at(core_.processes().find("sup.db"))), (Owner{1000, 1000}));
  stage(program_bytes("/bin/mine", 1000, 1000));
  EXPECT_EQ(control(request(wire::Op::kCreateProcess, "web")), 0);
  EXPECT_EQ(owner_of(core_.processes().at(core_.processes().find("web"))), (Owner{1000, 1000}));
  // A name reserved for a group root is not in is refused to root too.
  stage(program_bytes("/bin/mine", 1000, 1000));
  EXPECT_EQ(control(request(wire::Op::kCreateProcess, "team.b")), -EPERM);
}

}  // namespace
}  // namespace nucleus::daemon
