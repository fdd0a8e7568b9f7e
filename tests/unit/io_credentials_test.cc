// IoCredentials (io_credentials.h) with a real ring: a namer's registered
// credentials are its own and hold none of nucleusd's capabilities (decided
// from what the kernel does with an I/O that names them), one principal has
// one registration, the last release gives it back to the kernel, and the
// loop thread has its own ids back after each registration. They need root
// (a nucleusd that switches to another uid) and skip without it.
#include "io_credentials.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

namespace nucleus::daemon {
namespace {

constexpr uint32_t kNobody = 65534;

std::vector<gid_t> my_groups() {
  std::vector<gid_t> groups(static_cast<size_t>(getgroups(0, nullptr)));
  if (!groups.empty()) getgroups(static_cast<int>(groups.size()), groups.data());
  std::sort(groups.begin(), groups.end());
  return groups;
}

uint64_t my_effective_capabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  syscall(SYS_capget, &header, data);
  return uint64_t{data[1].effective} << 32 | data[0].effective;
}

// A ring, the credentials registered on it, and the completions of kDevice.
class IoCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to register another uid's credentials";
    std::string error;
    ASSERT_TRUE(loop_.setup(false, &error)) << error;
    loop_.route(Kind::kDevice, [this](const Completion &c) { result_ = c.result; });
    credentials_.setup();
    ASSERT_TRUE(credentials_.available());
    char tmpl[] = "/tmp/nucleus-io-credentials-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) std::system(("rm -rf " + dir_).c_str());
  }

  // Submits `sqe`'s operation with credentials `id` and returns its result.
  int run(io_uring_sqe *sqe, uint16_t id) {
    sqe->personality = id;
    Loop::set_tag(sqe, Kind::kDevice, 1, 1);
    result_ = 1 << 30;
    while (result_ == 1 << 30) loop_.turn(true);
    return result_;
  }
  int write_as(int fd, uint16_t id) {
    io_uring_sqe *sqe = loop_.sqe();
    io_uring_prep_write(sqe, fd, "x", 1, 0);
    return run(sqe, id);
  }
  int open_as_io(const std::string &path, uint16_t id) {
    io_uring_sqe *sqe = loop_.sqe();
    io_uring_prep_openat(sqe, AT_FDCWD, path.c_str(), O_RDONLY | O_CLOEXEC, 0);
    int fd = run(sqe, id);
    if (fd >= 0) close(fd);
    return fd;
  }
  // A file of `uid`'s with the set-user-ID bit, opened for writing by root.
  int setuid_file(const std::string &name, uid_t uid) {
    std::string path = dir_ + "/" + name;
    int fd = open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(fchown(fd, uid, uid), 0);
    EXPECT_EQ(fchmod(fd, 04755), 0);
    return fd;
  }
  static mode_t mode(int fd) {
    struct stat st {};
    fstat(fd, &st);
    return st.st_mode & 07777;
  }

  Loop loop_;
  IoCredentials credentials_{loop_};
  int result_ = 0;
  std::string dir_;
};

TEST_F(IoCredentialsTest, ANamersIoRunsWithItsRightsAndNoneOfNucleusds) {
  int id = credentials_.acquire(Principal{kNobody, kNobody, {kNobody}});
  ASSERT_GT(id, 0);
  EXPECT_NE(id, credentials_.own());
  // Without CAP_FSETID a write drops the set-user-ID bit; root's keeps it.
  int theirs = setuid_file("theirs", kNobody);
  EXPECT_EQ(write_as(theirs, static_cast<uint16_t>(id)), 1);
  EXPECT_EQ(mode(theirs), 0755U);
  int roots = setuid_file("roots", 0);
  EXPECT_EQ(write_as(roots, credentials_.own()), 1);
  EXPECT_EQ(mode(roots), 04755U);
  close(theirs);
  close(roots);
  // No CAP_DAC_OVERRIDE either: a root-only file stays shut to it.
  std::string secret = dir_ + "/secret";
  close(open(secret.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
  EXPECT_EQ(open_as_io(secret, static_cast<uint16_t>(id)), -EACCES);
  EXPECT_GE(open_as_io(secret, credentials_.own()), 0);
}

TEST_F(IoCredentialsTest, TheLoopThreadHasItsOwnIdsBackAfterARegistration) {
  std::vector<gid_t> groups = my_groups();
  uint64_t capabilities = my_effective_capabilities();
  ASSERT_GT(credentials_.acquire(Principal{kNobody, kNobody, {kNobody, 100}}), 0);
  uid_t r = 1, e = 1, s = 1;
  getresuid(&r, &e, &s);
  EXPECT_EQ(r + e + s, 0U);
  gid_t gr = 1, ge = 1, gs = 1;
  getresgid(&gr, &ge, &gs);
  EXPECT_EQ(gr + ge + gs, 0U);
  EXPECT_EQ(syscall(SYS_setfsuid, -1), 0);
  EXPECT_EQ(my_groups(), groups);
  EXPECT_EQ(my_effective_capabilities(), capabilities);
}

TEST_F(IoCredentialsTest, OnePrincipalHasOneRegistrationGivenBackWithItsLastDevice) {
  // The same groups in another order are the same principal.
  int a = credentials_.acquire(Principal{kNobody, kNobody, {kNobody, 100}});
  int b = credentials_.acquire(Principal{kNobody, kNobody, {100, kNobody}});
  ASSERT_GT(a, 0);
  EXPECT_EQ(a, b);
  EXPECT_EQ(credentials_.count(), 1U);
  // Another group is another principal.
  int c = credentials_.acquire(Principal{kNobody, 100, {100}});
  ASSERT_GT(c, 0);
  EXPECT_NE(c, a);
  EXPECT_EQ(credentials_.count(), 2U);
  // nucleusd's own principal is never counted.
  Principal own{geteuid(), getegid(), my_groups()};
  EXPECT_EQ(credentials_.acquire(own), credentials_.own());
  credentials_.release(credentials_.own());
  credentials_.release(0);
  EXPECT_EQ(credentials_.count(), 2U);
  int fd = setuid_file("file", kNobody);
  credentials_.release(static_cast<uint16_t>(a));
  EXPECT_EQ(credentials_.count(), 2U);
  EXPECT_EQ(write_as(fd, static_cast<uint16_t>(a)), 1) << "one device still uses it";
  credentials_.release(static_cast<uint16_t>(a));
  EXPECT_EQ(credentials_.count(), 1U);
  // Given back: the kernel no longer knows the id.
  EXPECT_EQ(write_as(fd, static_cast<uint16_t>(a)), -EINVAL);
  credentials_.release(static_cast<uint16_t>(c));
  EXPECT_EQ(credentials_.count(), 0U);
  EXPECT_EQ(write_as(fd, static_cast<uint16_t>(c)), -EINVAL);
  // The own registration stays.
  EXPECT_EQ(write_as(fd, credentials_.own()), 1);
  close(fd);
}

TEST_F(IoCredentialsTest, ManyDevicesNamedAndRemovedLeaveNoRegistrationBehind) {
  int first = 0;
  for (int i = 0; i < 66000; ++i) {  // more than the kernel's 65535 ids
    int id = credentials_.acquire(Principal{kNobody, kNobody, {}});
    ASSERT_GT(id, 0) << "round " << i;
    if (i == 0) first = id;
    credentials_.release(static_cast<uint16_t>(id));
  }
  EXPECT_EQ(credentials_.count(), 0U);
  int fd = setuid_file("file", kNobody);
  EXPECT_EQ(write_as(fd, static_cast<uint16_t>(first)), -EINVAL);
  close(fd);
}

TEST(IoCredentials, WithoutRegisteredCredentialsOnlyNucleusdsOwnPrincipalIsServed) {
  Loop closed;  // never set up: nothing can be registered on it
  IoCredentials credentials(closed);
  credentials.setup();
  EXPECT_FALSE(credentials.available());
  EXPECT_EQ(credentials.own(), 0);
  EXPECT_EQ(credentials.acquire(Principal{kNobody == geteuid() ? 1U : kNobody, kNobody, {}}),
            -EOPNOTSUPP);
  EXPECT_EQ(credentials.acquire(Principal{geteuid(), getegid(), my_groups()}), 0);
  EXPECT_EQ(credentials.count(), 0U);
}

}  // namespace
}  // namespace nucleus::daemon
