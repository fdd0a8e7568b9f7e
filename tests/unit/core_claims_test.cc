// Claims accounts (claims.h): every operation, the loans that undo
// themselves unless committed, and the root's account in the Core.
#include <gtest/gtest.h>

#include <string>

#include "claims.h"
#include "core.h"
#include "core_helpers.h"

namespace nucleus::daemon {
namespace {

bool same(const Claims &a, const Claims &b) {
  return a.buffers == b.buffers && a.processes == b.processes && a.memory == b.memory &&
         a.devices == b.devices && a.data_bytes == b.data_bytes;
}

// ---- the type ------------------------------------------------------------------

TEST(ClaimsAccount, AChildCostsItsClaimsAndOneProcessButNotItsDataArea) {
  EXPECT_TRUE(same(child_cost(Claims{4, 2, 100, 3, 8192}), Claims{4, 3, 100, 3, 0}));
  EXPECT_TRUE(same(kDeviceCost, Claims{0, 0, 0, 1, 0}));
}

TEST(ClaimsAccount, FitsPartByPart) {
  ClaimsAccount a{Claims{10, 5, 1000, 2, 0}};
  EXPECT_TRUE(a.fits(Claims{10, 5, 1000, 2, 0}, 10));
  EXPECT_FALSE(a.fits(Claims{0, 6, 0, 0, 0}, 10));
  EXPECT_FALSE(a.fits(Claims{0, 0, 1001, 0, 0}, 10));
  EXPECT_FALSE(a.fits(Claims{0, 0, 0, 3, 0}, 10));
  // Buffers: only the free ones it holds can move.
  EXPECT_FALSE(a.fits(Claims{4, 0, 0, 0, 0}, 3));
  EXPECT_TRUE(a.fits(Claims{3, 0, 0, 0, 0}, 3));
  // The data area is not lent.
  EXPECT_TRUE(a.fits(Claims{0, 0, 0, 0, UINT64_MAX}, 0));
}

TEST(ClaimsAccount, MemoryIsUnboundedWithoutALimitOfItsOwn) {
  ClaimsAccount a{Claims{0, 0, 0, 0, 0}};
  EXPECT_TRUE(a.fits(Claims{0, 0, UINT64_MAX / 2, 0, 0}, 0));
  a.lend(Claims{0, 0, UINT64_MAX / 2, 0, 0});
  EXPECT_TRUE(a.fits(Claims{0, 0, 1000, 0, 0}, 0));
  EXPECT_EQ(a.lent().memory, UINT64_MAX / 2);
}

TEST(ClaimsAccount, LendAndRepayCountWhatIsLeft) {
  ClaimsAccount a{Claims{10, 5, 1000, 2, 4096}};
  a.lend(Claims{4, 3, 600, 1, 4096});
  EXPECT_TRUE(same(a.lent(), Claims{4, 3, 600, 1, 0})) << "the data area is not lent";
  EXPECT_TRUE(same(a.given(), Claims{10, 5, 1000, 2, 4096})) << "lending leaves its own claims";
  EXPECT_FALSE(a.fits(Claims{0, 3, 0, 0, 0}, 10));
  EXPECT_TRUE(a.fits(Claims{0, 2, 400, 1, 0}, 10));
  EXPECT_FALSE(a.fits(Claims{0, 0, 401, 0, 0}, 10));
  a.repay(Claims{4, 3, 600, 1, 0});
  EXPECT_TRUE(same(a.lent(), Claims{}));
}

TEST(ClaimsAccount, CoversClaimsThatHoldWhatItLent) {
  ClaimsAccount a{Claims{10, 5, 1000, 2, 0}};
  a.lend(Claims{4, 3, 600, 1, 0});
  EXPECT_TRUE(a.covers(Claims{4, 3, 600, 1, 0}));
  EXPECT_TRUE(a.covers(Claims{4, 3, 0, 1, 0})) << "no limit of its own";
  EXPECT_FALSE(a.covers(Claims{3, 3, 600, 1, 0}));
  EXPECT_FALSE(a.covers(Claims{4, 2, 600, 1, 0}));
  EXPECT_FALSE(a.covers(Claims{4, 3, 599, 1, 0}));
  EXPECT_FALSE(a.covers(Claims{4, 3, 600, 0, 0}));
}

TEST(ClaimsAccount, ALoanIsUndoneUnlessCommitted) {
  ClaimsAccount a{Claims{10, 5, 0, 2, 0}};
  {
    ClaimsAccount::Loan loan = a.try_lend(Claims{4, 2, 0, 1, 0}, 10);
    ASSERT_TRUE(loan);
    EXPECT_TRUE(same(a.lent(), Claims{4, 2, 0, 1, 0})) << "lent while it lives";
  }
  EXPECT_TRUE(same(a.lent(), Claims{})) << "undone";
  {
    ClaimsAccount::Loan loan = a.try_lend(Claims{4, 2, 0, 1, 0}, 10);
    ASSERT_TRUE(loan);
    loan.commit();
    EXPECT_FALSE(loan) << "nothing left to undo";
  }
  EXPECT_TRUE(same(a.lent(), Claims{4, 2, 0, 1, 0})) << "kept";
}

TEST(ClaimsAccount, ARefusedLoanChangesNothing) {
  ClaimsAccount a{Claims{10, 5, 0, 2, 0}};
  a.lend(Claims{0, 4, 0, 0, 0});
  {
    ClaimsAccount::Loan loan = a.try_lend(Claims{1, 2, 0, 0, 0}, 10);
    EXPECT_FALSE(loan);
    EXPECT_TRUE(same(a.lent(), Claims{0, 4, 0, 0, 0}));
  }
  EXPECT_TRUE(same(a.lent(), Claims{0, 4, 0, 0, 0}));
}

TEST(ClaimsAccount, LoansUndoOnlyTheirOwnStep) {
  ClaimsAccount a{Claims{10, 5, 0, 2, 0}};
  ClaimsAccount::Loan first = a.try_lend(Claims{2, 1, 0, 0, 0}, 10);
  {
    ClaimsAccount::Loan second = a.try_lend(Claims{3, 1, 0, 1, 0}, 10);
    ASSERT_TRUE(first && second);
    second.commit();
  }
  { ClaimsAccount::Loan gone = std::move(first); }  // moved out, then undone once
  EXPECT_TRUE(same(a.lent(), Claims{3, 1, 0, 1, 0}));
}

TEST(ClaimsAccount, RelendSwapsOneClaimForAnother) {
  ClaimsAccount a{Claims{10, 5, 1000, 2, 0}};
  a.lend(Claims{4, 2, 600, 1, 0});
  // Growing: only the growth of buffers must be free.
  {
    ClaimsAccount::Loan more = a.try_relend(Claims{4, 2, 600, 1, 0}, Claims{6, 5, 1000, 2, 0}, 2);
    ASSERT_TRUE(more);
    EXPECT_TRUE(same(a.lent(), Claims{6, 5, 1000, 2, 0}));
  }
  EXPECT_TRUE(same(a.lent(), Claims{4, 2, 600, 1, 0})) << "undone";
  EXPECT_FALSE(a.try_relend(Claims{4, 2, 600, 1, 0}, Claims{7, 2, 600, 1, 0}, 2));
  EXPECT_FALSE(a.try_relend(Claims{4, 2, 600, 1, 0}, Claims{4, 6, 600, 1, 0}, 10));
  EXPECT_FALSE(a.try_relend(Claims{4, 2, 600, 1, 0}, Claims{4, 2, 1001, 1, 0}, 10));
  EXPECT_FALSE(a.try_relend(Claims{4, 2, 600, 1, 0}, Claims{4, 2, 600, 3, 0}, 10));
  EXPECT_TRUE(same(a.lent(), Claims{4, 2, 600, 1, 0}));
  // Shrinking always fits, with no buffer free.
  ClaimsAccount::Loan less = a.try_relend(Claims{4, 2, 600, 1, 0}, Claims{1, 1, 0, 0, 0}, 0);
  ASSERT_TRUE(less);
  less.commit();
  EXPECT_TRUE(same(a.lent(), Claims{1, 1, 0, 0, 0}));
}

TEST(ClaimsAccount, ResizeChangesItsOwnClaimsWhenTheyCoverWhatItLent) {
  ClaimsAccount a{Claims{10, 5, 1000, 2, 4096}};
  a.lend(Claims{4, 3, 600, 1, 0});
  // Giving back buffers: they must be free ones.
  EXPECT_FALSE(a.try_resize(Claims{6, 5, 1000, 2, 0}, 3));
  EXPECT_FALSE(a.try_resize(Claims{10, 2, 1000, 2, 0}, 6)) << "it lent 3 processes";
  EXPECT_FALSE(a.try_resize(Claims{10, 5, 500, 2, 0}, 6)) << "it lent 600 bytes";
  EXPECT_FALSE(a.try_resize(Claims{10, 5, 1000, 0, 0}, 6)) << "it lent a device";
  EXPECT_TRUE(same(a.given(), Claims{10, 5, 1000, 2, 4096}));
  {
    ClaimsAccount::Loan smaller = a.try_resize(Claims{6, 3, 0, 1, 0}, 4);
    ASSERT_TRUE(smaller);
    EXPECT_TRUE(same(a.given(), Claims{6, 3, 0, 1, 0}));
  }
  EXPECT_TRUE(same(a.given(), Claims{10, 5, 1000, 2, 4096})) << "undone";
  ClaimsAccount::Loan larger = a.try_resize(Claims{20, 9, 0, 4, 8192}, 0);
  ASSERT_TRUE(larger);
  larger.commit();
  EXPECT_TRUE(same(a.given(), Claims{20, 9, 0, 4, 8192}));
  EXPECT_TRUE(same(a.lent(), Claims{4, 3, 600, 1, 0})) << "what it lent stays";
}

// A loan holds its account where it is: the table makes room before an add.
TEST(ClaimsAccount, TheTableKeepsEntriesInPlaceAfterMakeRoom) {
  ProcessTable table;
  for (int i = 0; i < 100; ++i) {
    table.make_room();
    const Process *first = table.live(0) ? &table.at(0) : nullptr;
    ASSERT_TRUE(table.add("p" + std::to_string(i)).ok());
    if (first != nullptr) {
      ASSERT_EQ(first, &table.at(0)) << i;
    }
  }
}

// ---- in the Core: the root's account, and all or nothing -------------------------

class CoreClaims : public testing::SmallCore {};

TEST_F(CoreClaims, TheRootIsAnAccountOfThePoolAndTheTable) {
  const ClaimsAccount &root = core.account(kNone);
  EXPECT_EQ(root.given().buffers, kPool - kNotices) << "the pool but the notice reserve";
  EXPECT_EQ(root.given().processes, 10U) << "processes.max";
  EXPECT_EQ(root.given().memory, 0U) << "no memory limit of its own";
  EXPECT_EQ(root.given().devices, UINT64_MAX) << "no devices limit of its own";
  EXPECT_TRUE(same(root.lent(), Claims{}));
}

TEST_F(CoreClaims, TheRootLendsToWhatAttachesWhatItCreatesAndItsDevices) {
  auto a = core.attach("a", Claims{8, 2, 0, 1, 0});
  ASSERT_TRUE(a.ok());
  auto c = core.create(kNone, "c", program, Claims{4, 1, 1000, 0, 0});
  ASSERT_TRUE(c.ok());
  auto d = core.create_device(kNone, "disk", wire::DeviceKind::kNull);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(same(core.account(kNone).lent(), Claims{12, 5, 1000, 2, 0}));
  EXPECT_EQ(core.pool().free_count(), kPool - kNotices - 12);
  core.remove_device(kNone, d.value());
  core.remove(kNone, c.value());
  core.detach(a.value());
  EXPECT_TRUE(same(core.account(kNone).lent(), Claims{}));
  EXPECT_EQ(core.pool().free_count(), kPool - kNotices);
}

TEST_F(CoreClaims, ARefusedCreateLeavesTheParentsAccountAsItWas) {
  auto a = core.attach("a", Claims{8, 4, 0, 1, 0});
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(core.create(a.value(), "c", program, Claims{2, 0, 0}).ok());
  Claims lent = core.account(a.value()).lent();
  Claims root = core.account(kNone).lent();
  // The claims fit but the name is taken, or not a name: nothing was lent.
  EXPECT_EQ(core.create(a.value(), "c", program, Claims{2, 0, 0}).error(), Error::kNameTaken);
  EXPECT_EQ(core.create(a.value(), "no/name", program, Claims{2, 0, 0}).error(), Error::kInvalid);
  EXPECT_EQ(core.attach("a", Claims{2, 0, 0}).error(), Error::kNameTaken);
  EXPECT_EQ(core.attach("", Claims{2, 0, 0}).error(), Error::kInvalid);
  EXPECT_EQ(core.create_device(a.value(), "c", wire::DeviceKind::kNull).error(), Error::kNameTaken);
  EXPECT_TRUE(same(core.account(a.value()).lent(), lent));
  EXPECT_TRUE(same(core.account(kNone).lent(), root));
  // A uid over its budget after the device claim fit: not lent either.
  UidBudget none{0, 0, 0};
  EXPECT_EQ(core.create_device(a.value(), "d", wire::DeviceKind::kNull, none).error(),
            Error::kUidQuota);
  EXPECT_TRUE(same(core.account(a.value()).lent(), lent));
}

TEST_F(CoreClaims, ARefusedModifyLeavesBothAccountsAsTheyWere) {
  auto a = core.attach("a", Claims{8, 4, 0, 1, 0});
  ASSERT_TRUE(a.ok());
  auto c = core.create(a.value(), "c", program, Claims{2, 2, 0, 1, 0});
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(core.create(c.value(), "g", program, Claims{1, 1, 0}).ok());
  ASSERT_TRUE(core.create_device(c.value(), "d", wire::DeviceKind::kNull).ok());
  Claims parent = core.account(a.value()).lent();
  Claims child = core.account(c.value()).given();
  // The parent could lend it, but the child lent more than the new claims
  // hold (its processes, its device); or the parent cannot lend it.
  for (Claims to : {Claims{4, 1, 0, 1, 0}, Claims{4, 2, 0, 0, 0}, Claims{4, 4, 0, 1, 0},
                    Claims{9, 2, 0, 1, 0}}) {
    EXPECT_EQ(core.modify(a.value(), c.value(), nullptr, &to), Error::kNoBuffers) << to.buffers;
    EXPECT_TRUE(same(core.account(a.value()).lent(), parent));
    EXPECT_TRUE(same(core.account(c.value()).given(), child));
    EXPECT_EQ(core.processes().at(c.value()).slots.size(), 1U);
  }
  Claims ok{4, 2, 0, 1, 0};
  EXPECT_EQ(core.modify(a.value(), c.value(), nullptr, &ok), Error::kNone);
  EXPECT_EQ(core.account(a.value()).lent().buffers, 4U);
  EXPECT_EQ(core.processes().at(c.value()).slots.size(), 3U);
}

}  // namespace
}  // namespace nucleus::daemon
