// UidAccounts: what each uid owns and the per-uid bounds.
#include "uid_accounts.h"

#include <gtest/gtest.h>

namespace nucleus::daemon {
namespace {

TEST(UidAccounts, FitsChecksEveryKindAgainstTheBudget) {
  UidAccounts a;
  UidBudget budget{2, 3, 10};
  EXPECT_EQ(a.fits(7, UidUsage{2, 3, 10}, budget), Error::kNone);
  EXPECT_EQ(a.fits(7, UidUsage{3, 0, 0}, budget), Error::kUidQuota);
  EXPECT_EQ(a.fits(7, UidUsage{0, 4, 0}, budget), Error::kUidQuota);
  EXPECT_EQ(a.fits(7, UidUsage{0, 0, 11}, budget), Error::kUidQuota);
  a.add_entry(7, true);
  a.add_entry(7, false);
  a.move_buffers(7, 8);
  EXPECT_EQ(a.usage(7).processes, 1U);
  EXPECT_EQ(a.usage(7).names, 2U);
  EXPECT_EQ(a.usage(7).buffers, 8U);
  EXPECT_EQ(a.fits(7, UidUsage{1, 1, 2}, budget), Error::kNone);
  EXPECT_EQ(a.fits(7, UidUsage{0, 0, 3}, budget), Error::kUidQuota);
  EXPECT_EQ(a.fits(7, UidUsage{0, 2, 0}, budget), Error::kUidQuota);
  // Another uid has its own counts; the unbounded budget takes anything.
  EXPECT_EQ(a.fits(8, UidUsage{2, 3, 10}, budget), Error::kNone);
  EXPECT_EQ(a.fits(7, UidUsage{100, 100, 100}, UidBudget::unbounded()), Error::kNone);
}

TEST(UidAccounts, ABudgetLoweredBelowWhatIsHeldRefusesMoreAndNothingElse) {
  UidAccounts a;
  for (int i = 0; i < 5; ++i) a.add_entry(1, true);
  UidBudget lower{2, 2, 2};  // a reload lowered it
  EXPECT_EQ(a.fits(1, UidUsage{1, 0, 0}, lower), Error::kUidQuota);
  EXPECT_EQ(a.fits(1, UidUsage{0, 0, 0}, lower), Error::kNone);  // a step that adds nothing
}

TEST(UidAccounts, AUidThatOwnsNothingIsForgotten) {
  UidAccounts a;
  a.add_entry(3, true);
  a.move_buffers(3, 4);
  a.add_entry(3, false);
  EXPECT_EQ(a.size(), 1U);
  a.move_buffers(3, -4);
  a.remove_entry(3, false);
  a.remove_entry(3, true);
  EXPECT_EQ(a.size(), 0U);
  EXPECT_EQ(a.usage(3).names, 0U);
}

}  // namespace
}  // namespace nucleus::daemon
