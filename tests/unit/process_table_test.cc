#include "process_table.h"

#include <gtest/gtest.h>

namespace nucleus::daemon {
namespace {

TEST(ProcessTable, NamesAreUnique) {
  ProcessTable t;
  auto a = t.add("alpha");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(t.add("alpha").error(), Error::kNameTaken);
  EXPECT_EQ(t.find("alpha"), a.value());
  EXPECT_EQ(t.find("beta"), kNone);
  EXPECT_EQ(t.count(), 1U);
}

TEST(ProcessTable, InvalidNamesAreRefused) {
  ProcessTable t;
  EXPECT_EQ(t.add("").error(), Error::kInvalid);
  EXPECT_EQ(t.add(std::string(32, 'a')).error(), Error::kInvalid);
  EXPECT_EQ(t.add("with space").error(), Error::kInvalid);
  EXPECT_EQ(t.add(std::string_view("nul\0x", 5)).error(), Error::kInvalid);
  EXPECT_TRUE(t.add(std::string(31, 'a')).ok());
}

TEST(ProcessTable, RemoveFreesTheNameAndNewUseHasNewGeneration) {
  ProcessTable t;
  uint32_t id = t.add("x").value();
  uint32_t gen = t.at(id).generation;
  t.remove(id);
  EXPECT_FALSE(t.live(id));
  EXPECT_EQ(t.find("x"), kNone);
  uint32_t again = t.add("x").value();
  EXPECT_EQ(again, id);                    // index reused ...
  EXPECT_NE(t.at(again).generation, gen);  // ... under a new generation
}

}  // namespace
}  // namespace nucleus::daemon

namespace nucleus::daemon {
namespace {

// A swap's new program: an entry under the same name that the name space
// never returns, and whose removal leaves the name to the entry that has it.
TEST(ProcessTableHidden, IsNotFoundAndLeavesTheNameAlone) {
  ProcessTable t;
  auto os = t.add("os");
  ASSERT_TRUE(os.ok());
  uint32_t hidden = t.add_hidden("os");
  EXPECT_NE(hidden, os.value());
  EXPECT_TRUE(t.live(hidden));
  EXPECT_EQ(t.find("os"), os.value());
  EXPECT_EQ(t.count(), 2U);
  t.remove(hidden);
  EXPECT_EQ(t.find("os"), os.value());
  EXPECT_EQ(t.count(), 1U);
  EXPECT_EQ(t.add("os").error(), Error::kNameTaken);
}

}  // namespace
}  // namespace nucleus::daemon
