// Who may ask an OS what (os-personalities/authority/): every cell of the
// shipped personalities' authorisation decisions (a sender of another uid,
// a root sender, the owner, a uid the spec allows; a device named by
// another, by root, by the owner; a process answering as a device), the
// wait before a held name is tried again, the bounded refusal log, and the
// reading of a job file with its sender's rights (the last needs root to
// take another uid, and skips without it).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "authority.h"
#include "read_as.h"
#include "refusal_log.h"
#include "users.h"

namespace nucleus::os {
namespace {

constexpr uint32_t kNobody = 65534;
constexpr uint32_t kOwner = 1000;

nucleus_principal_t process(uint32_t uid, uint32_t gid = 0, int32_t pid = 4242) {
  return {uid, gid == 0 ? uid : gid, pid, NUCLEUS_FROM_PROCESS};
}
nucleus_principal_t device(uint32_t namer_uid) {
  return {namer_uid, namer_uid, 1, NUCLEUS_FROM_DEVICE};
}
nucleus_principal_t the_nucleus() {
  return {0, 0, 1, NUCLEUS_FROM_NUCLEUS};
}

// ---- batch ------------------------------------------------------------------

TEST(BatchAuthority, ARootBatchRunsEachJobAsItsSender) {
  BatchPolicy root{0, 0, {}};
  JobAuthority a = job_authority(process(kNobody), root);
  EXPECT_TRUE(a.take);
  EXPECT_EQ(a.user, "65534");
  EXPECT_EQ(a.group, "65534");
  EXPECT_EQ(a.file, JobFile::kAsSender);
  // Another group than the user's primary one: the sender's, not a default.
  a = job_authority(process(kOwner, 27), root);
  EXPECT_TRUE(a.take);
  EXPECT_EQ(a.user, "1000");
  EXPECT_EQ(a.group, "27");
  // Root's own jobs run as root, named as such.
  a = job_authority(process(0), root);
  EXPECT_TRUE(a.take);
  EXPECT_EQ(a.user, "0");
  EXPECT_EQ(a.group, "0");
  EXPECT_EQ(a.file, JobFile::kAsSender);
}

TEST(BatchAuthority, ARootBatchWithAnAllowListTakesOnlyThoseAndRoot) {
  BatchPolicy root{0, 0, {kOwner}};
  JobAuthority a = job_authority(process(kNobody), root);
  EXPECT_FALSE(a.take);
  EXPECT_EQ(a.take.error, EACCES);
  EXPECT_NE(a.take.why.find("uid 65534"), std::string::npos) << a.take.why;
  EXPECT_TRUE(a.user.empty());
  a = job_authority(process(kOwner), root);
  EXPECT_TRUE(a.take);
  EXPECT_EQ(a.user, "1000");
  EXPECT_TRUE(job_authority(process(0), root).take);
}

TEST(BatchAuthority, ABatchOfAnotherUidTakesItsOwnerAndRootAndRunsThemAsItsOwner) {
  BatchPolicy mine{kOwner, kOwner, {}};
  JobAuthority a = job_authority(process(kNobody), mine);
  EXPECT_FALSE(a.take);
  EXPECT_EQ(a.take.error, EACCES);
  EXPECT_NE(a.take.why.find("not the batch's owner (uid 1000)"), std::string::npos) << a.take.why;

  a = job_authority(process(kOwner), mine);
  EXPECT_TRUE(a.take);
  EXPECT_TRUE(a.user.empty()) << "it cannot name a user: the job runs as its owner";
  EXPECT_TRUE(a.group.empty());
  EXPECT_EQ(a.file, JobFile::kOwnRights);

  // Its own uid with another group: the batch's group is not the sender's.
  a = job_authority(process(kOwner, 27), mine);
  EXPECT_TRUE(a.take);
  EXPECT_EQ(a.file, JobFile::kRefused);

  a = job_authority(process(0), mine);
  EXPECT_TRUE(a.take);
  EXPECT_TRUE(a.user.empty());
  EXPECT_EQ(a.file, JobFile::kOwnRights) << "root could read whatever the batch can";
}

TEST(BatchAuthority, ABatchOfAnotherUidTakesTheUidsItsSpecAllowsButReadsNoFileForThem) {
  BatchPolicy mine{kOwner, kOwner, {kNobody}};
  JobAuthority a = job_authority(process(kNobody), mine);
  EXPECT_TRUE(a.take);
  EXPECT_TRUE(a.user.empty());
  EXPECT_EQ(a.file, JobFile::kRefused) << "it cannot take uid 65534's rights";
  EXPECT_FALSE(job_authority(process(kNobody + 1), mine).take);
}

TEST(BatchAuthority, OnlyAProcessSendsJobs) {
  for (const BatchPolicy &p : {BatchPolicy{0, 0, {}}, BatchPolicy{kOwner, kOwner, {}}}) {
    EXPECT_FALSE(job_authority(device(0), p).take);
    EXPECT_FALSE(job_authority(device(kOwner), p).take);
    EXPECT_FALSE(job_authority(the_nucleus(), p).take);
    EXPECT_EQ(job_authority(device(0), p).take.error, EACCES);
  }
}

// ---- console ----------------------------------------------------------------

TEST(ConsoleAuthority, ADeviceNamedByAnotherUidIsRefused) {
  Decision d = console_device(device(kNobody), 0, "console");
  EXPECT_FALSE(d);
  EXPECT_EQ(d.error, EACCES);
  EXPECT_NE(d.why.find("named by uid 65534"), std::string::npos) << d.why;
  EXPECT_NE(d.why.find("its owner (uid 0) or root"), std::string::npos) << d.why;
  EXPECT_FALSE(console_device(device(kNobody), kOwner, "console"));
}

TEST(ConsoleAuthority, ADeviceNamedByRootOrByItsOwnerIsTaken) {
  EXPECT_TRUE(console_device(device(0), 0, "console"));
  EXPECT_TRUE(console_device(device(0), kOwner, "console"));
  EXPECT_TRUE(console_device(device(kOwner), kOwner, "console"));
}

TEST(ConsoleAuthority, AProcessAnsweringAsTheDeviceIsRefusedWhoeverItIs) {
  for (uint32_t uid : {kNobody, kOwner, 0U}) {
    Decision d = console_device(process(uid), kOwner, "console");
    EXPECT_FALSE(d) << uid;
    EXPECT_EQ(d.error, EACCES);
    EXPECT_NE(d.why.find("not a device"), std::string::npos) << d.why;
  }
}

TEST(ConsoleAuthority, NoDeviceOfThatNameIsSaidSo) {
  Decision d = console_device(the_nucleus(), 0, "tty9");
  EXPECT_FALSE(d);
  EXPECT_EQ(d.error, ESRCH);
  EXPECT_NE(d.why.find("no device is named \"tty9\""), std::string::npos) << d.why;
}

// ---- supervisor -------------------------------------------------------------

TEST(SupervisorAuthority, ControlComesFromItsOwnerRootOrItsControllers) {
  std::vector<uint32_t> none;
  Decision other = supervisor_control(process(kNobody), 0, none);
  EXPECT_FALSE(other);
  EXPECT_EQ(other.error, EACCES);
  EXPECT_NE(other.why.find("uid 65534 is not the supervisor's owner (uid 0)"), std::string::npos)
      << other.why;
  EXPECT_TRUE(supervisor_control(process(0), 0, none));
  EXPECT_TRUE(supervisor_control(process(0), kOwner, none));
  EXPECT_TRUE(supervisor_control(process(kOwner), kOwner, none));
  EXPECT_FALSE(supervisor_control(process(kNobody), kOwner, none));
  std::vector<uint32_t> controllers{kNobody};
  EXPECT_TRUE(supervisor_control(process(kNobody), 0, controllers));
  EXPECT_FALSE(supervisor_control(process(kNobody + 1), 0, controllers));
  // Only processes send control messages.
  EXPECT_FALSE(supervisor_control(device(0), 0, none));
  EXPECT_FALSE(supervisor_control(the_nucleus(), 0, none));
}

TEST(SupervisorAuthority, ReadyComesFromTheChildsOwnProgram) {
  EXPECT_TRUE(child_ready(process(kNobody, 0, 700), 700));
  Decision d = child_ready(process(kNobody, 0, 701), 700);
  EXPECT_FALSE(d) << "a process bearing the child's name with another pid";
  EXPECT_NE(d.why.find("pid 700"), std::string::npos) << d.why;
  EXPECT_FALSE(child_ready(process(0, 0, 700), 0)) << "no pid known: nobody is the child";
  EXPECT_FALSE(child_ready(device(0), 1));
  EXPECT_FALSE(child_ready(the_nucleus(), 1));
}

TEST(SupervisorAuthority, OnlyATakenNameIsHeld) {
  EXPECT_TRUE(name_held(-EEXIST));
  for (int e : {0, -ENOENT, -EPERM, -EACCES, -ENOBUFS, -EDQUOT, -EINVAL}) {
    EXPECT_FALSE(name_held(e)) << e;
  }
}

TEST(SupervisorAuthority, AHeldNameIsTriedAgainWithADoublingWaitThatHasAFloorAndACap) {
  // No back-off in the spec: the floor, doubled, up to backoff_max_ms.
  EXPECT_EQ(held_retry_ms(0, 5000, 1), kHeldRetryMinMs);
  EXPECT_EQ(held_retry_ms(0, 5000, 2), 2 * kHeldRetryMinMs);
  EXPECT_EQ(held_retry_ms(0, 5000, 3), 4 * kHeldRetryMinMs);
  EXPECT_EQ(held_retry_ms(0, 5000, 7), 5000U);
  EXPECT_EQ(held_retry_ms(0, 5000, 1000), 5000U) << "no overflow";
  EXPECT_EQ(held_retry_ms(0, 5000, 0), kHeldRetryMinMs);
  // The spec's back-off when it is longer than the floor.
  EXPECT_EQ(held_retry_ms(300, 5000, 1), 300U);
  EXPECT_EQ(held_retry_ms(300, 5000, 2), 600U);
  EXPECT_EQ(held_retry_ms(10, 5000, 1), kHeldRetryMinMs);
  // A cap below the floor is the floor: it never retries sooner.
  EXPECT_EQ(held_retry_ms(0, 10, 1), kHeldRetryMinMs);
  EXPECT_EQ(held_retry_ms(0, 10, 5), kHeldRetryMinMs);
  EXPECT_EQ(held_retry_ms(UINT64_MAX, UINT64_MAX, 17), UINT64_MAX);
}

TEST(PrincipalText, SaysWhatKindAndWho) {
  EXPECT_EQ(describe(process(kNobody, 0, 812)), "a process of uid 65534 (gid 65534, pid 812)");
  EXPECT_EQ(describe(device(0)), "a device named by uid 0");
  EXPECT_EQ(describe(the_nucleus()), "the nucleus");
  EXPECT_EQ(describe(nucleus_principal_t{0, 0, 0, 9}), "a sender of unknown kind 9");
}

// ---- the refusal log ----------------------------------------------------------

TEST(RefusalLog, LogsABoundedNumberOfLinesAWindowAndCountsTheRest) {
  RefusalLog log;
  int64_t t = 5 * RefusalLog::kWindowNs;
  for (uint64_t i = 0; i < RefusalLog::kLinesPerWindow; ++i) EXPECT_EQ(log.line(t, "no"), "no");
  EXPECT_EQ(log.line(t, "no"), "");
  EXPECT_EQ(log.line(t + RefusalLog::kWindowNs - 1, "no"), "");
  EXPECT_EQ(log.line(t + RefusalLog::kWindowNs, "no"), "no (and 2 refusals not logged before)");
  EXPECT_EQ(log.line(t + RefusalLog::kWindowNs, "no"), "no");
}

// ---- user names ---------------------------------------------------------------

TEST(ResolveUid, TakesNumbersAndUserNames) {
  uint32_t uid = 7;
  EXPECT_TRUE(resolve_uid("0", &uid));
  EXPECT_EQ(uid, 0U);
  EXPECT_TRUE(resolve_uid("root", &uid));
  EXPECT_EQ(uid, 0U);
  EXPECT_TRUE(resolve_uid("123456", &uid));
  EXPECT_EQ(uid, 123456U) << "a number needs no entry in the user database";
  for (const char *bad : {"", "no-such-user-here", "4294967295", "-1", "12x"}) {
    EXPECT_FALSE(resolve_uid(bad, &uid)) << bad;
  }
}

// ---- reading a job file as its sender -------------------------------------------

class ReadAsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nucleus-read-as-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string &name, const std::string &text, mode_t mode) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    EXPECT_EQ(chmod(path.c_str(), mode), 0);
    return path;
  }

  std::string dir_;
};

constexpr std::chrono::milliseconds kDeadline{10000};

TEST_F(ReadAsTest, ReadsAFileWithItsOwnRights) {
  std::string path = write("job.json", R"({"program": "/bin/true"})", 0644);
  ReadAs r = read_file_as(path, std::nullopt, 1024, kDeadline);
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.bytes, R"({"program": "/bin/true"})");
}

TEST_F(ReadAsTest, RefusesRelativePathsNonRegularFilesProcfsAndMoreThanTheLimit) {
  EXPECT_EQ(read_file_as("job.json", std::nullopt, 1024, kDeadline).error, EINVAL);
  EXPECT_EQ(read_file_as(dir_, std::nullopt, 1024, kDeadline).error, EINVAL) << "a directory";
  std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0666), 0);
  EXPECT_EQ(read_file_as(fifo, std::nullopt, 1024, kDeadline).error, EINVAL)
      << "a FIFO with no writer: refused, not waited on";
  EXPECT_EQ(read_file_as("/proc/self/status", std::nullopt, 1 << 20, kDeadline).error, EACCES);
  EXPECT_EQ(read_file_as("/proc/self/exe", std::nullopt, 1 << 20, kDeadline).error, ELOOP)
      << "a magic link";
  std::string big = write("big", std::string(2000, 'x'), 0644);
  EXPECT_EQ(read_file_as(big, std::nullopt, 1999, kDeadline).error, EFBIG);
  ReadAs exact = read_file_as(big, std::nullopt, 2000, kDeadline);
  EXPECT_EQ(exact.error, 0);
  EXPECT_EQ(exact.bytes.size(), 2000U);
  EXPECT_EQ(read_file_as(dir_ + "/missing", std::nullopt, 1024, kDeadline).error, ENOENT);
}

// What a root-owned OS reads for uid 65534 is what uid 65534 could read,
// and the answer for a file in a directory it may not search is the same
// whether the file is there or not.
TEST_F(ReadAsTest, AsAnotherUidItHasThatUidsRightsAndLearnsNothingMore) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to take another uid";
  std::string open_file = write("open.json", "{}", 0644);
  std::string own = write("mine.json", "secret", 0600);
  ASSERT_EQ(chown(own.c_str(), kNobody, kNobody), 0);
  std::string root_only = write("root.json", "secret", 0600);
  std::string closed = dir_ + "/closed";
  ASSERT_EQ(mkdir(closed.c_str(), 0700), 0);
  std::ofstream(closed + "/there.json") << "secret";

  Identity nobody{kNobody, kNobody};
  ReadAs r = read_file_as(open_file, nobody, 1024, kDeadline);
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.bytes, "{}");
  r = read_file_as(own, nobody, 1024, kDeadline);
  EXPECT_EQ(r.error, 0) << "its own file";
  EXPECT_EQ(r.bytes, "secret");
  r = read_file_as(root_only, nobody, 1024, kDeadline);
  EXPECT_EQ(r.error, EACCES);
  EXPECT_TRUE(r.bytes.empty());
  ReadAs there = read_file_as(closed + "/there.json", nobody, 1024, kDeadline);
  ReadAs missing = read_file_as(closed + "/missing.json", nobody, 1024, kDeadline);
  EXPECT_EQ(there.error, EACCES);
  EXPECT_EQ(missing.error, there.error) << "the same answer: existence is not revealed";
  EXPECT_TRUE(there.bytes.empty());
  // Root's own rights are root's: the same files read.
  r = read_file_as(root_only, Identity{0, 0}, 1024, kDeadline);
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.bytes, "secret");
}

}  // namespace
}  // namespace nucleus::os
