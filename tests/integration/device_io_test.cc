// Device I/O runs with its namer's rights (issue 20, finding 9; DESIGN.md,
// "Principals, privilege and bounds"; docs/devices.md, "Whose rights a
// device's I/O has"). nucleusd opens a device's files as the process that
// names it; these tests show that the reads and writes after the open are
// that process's too, not a root nucleusd's. Each attacks a root nucleusd as
// uid 65534 and decides from what the kernel did to the files: a set-user-ID
// bit that only a writer with CAP_FSETID keeps, blocks taken from the space
// an ext4 file system reserves for root. They need root and skip without it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness.h"
#include "run_program.h"

namespace nucleus::test {
namespace {

using json = nlohmann::json;

constexpr uint64_t kBlock = 4096;
constexpr uint64_t kDiskBytes = 256 * kBlock;  // 1 MiB
constexpr uint64_t kDataBytes = kDiskBytes;

// A directory that uid 65534 owns, removed at the end.
class TheirDir {
 public:
  TheirDir() {
    char tmpl[] = "/tmp/nucleus-device-io-XXXXXX";
    if (mkdtemp(tmpl) != nullptr) dir_ = tmpl;
    EXPECT_FALSE(dir_.empty());
    EXPECT_EQ(chown(dir_.c_str(), kNobody, kNobody), 0);
  }
  ~TheirDir() { std::filesystem::remove_all(dir_); }
  TheirDir(const TheirDir &) = delete;
  TheirDir &operator=(const TheirDir &) = delete;
  std::string path(const std::string &name) const { return dir_ + "/" + name; }

 private:
  std::string dir_;
};

std::string config(const std::string &devices = "[]") {
  return R"({"attach": {"uids": [65534]},
             "default_claims": {"buffers": 64, "devices": 4},
             "channel": {"data_bytes": )" +
         std::to_string(kDataBytes) + R"(},
             "devices": )" +
         devices + "}";
}

// Sends `m` to `device` and waits for its answer; result 0 when it could not.
nucleus::Answer ask(nucleus::Nucleus &n, const std::string &device, const nucleus::Message &m) {
  auto b = n.send_message(device, m);
  if (!b) return nucleus::Answer{};
  auto a = n.wait_answer(b.value(), kDeadline);
  return a ? a.value() : nucleus::Answer{};
}

// A file of `bytes` (sparse) with `mode`, created by this process.
bool make_file(const std::string &path, uint64_t bytes, mode_t mode) {
  int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  bool ok = ftruncate(fd, static_cast<off_t>(bytes)) == 0 && fchmod(fd, mode) == 0;
  close(fd);
  return ok;
}

mode_t mode_of(const std::string &path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

json status(const Daemon &d) {
  Ran r = run_program(NUCLEUSCTL_PATH, {"--socket", d.socket_path(), "--json", "status"});
  EXPECT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out, nullptr, false);
  EXPECT_TRUE(j.is_object()) << r.out;
  return j;
}

// The io_uring credentials nucleusd holds for device namers other than itself.
uint64_t namer_credentials(const Daemon &d) {
  json s = status(d);
  if (!s.contains("device_io")) return UINT64_MAX;
  return s["device_io"].value("credentials", UINT64_MAX);
}

// The kernel drops a file's set-user-ID bit on a write unless the writer has
// CAP_FSETID (root has it). uid 65534 may set the bit on its own file: when
// its disk and console write there through a root nucleusd, the bit must go,
// as it would for its own write(). A disk of the configuration is the
// root's and writes with nucleusd's rights: its file keeps the bit.
TEST(DeviceIo, AWriteThroughADeviceHasTheNamersRightsNotNucleusds) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to attack a root nucleusd as another uid";
  TheirDir dir;
  std::string roots = dir.path("root.img");
  ASSERT_TRUE(make_file(roots, kDiskBytes, 04755));
  Daemon d(config(R"([{"name": "root-disk", "kind": "disk", "path": ")" + roots +
                  R"(", "block_size": 4096}])"));
  ASSERT_TRUE(d.ready()) << d.log();
  d.let_others_in();
  std::string disk = dir.path("disk.img");
  std::string console = dir.path("console.out");
  pid_t attacker = spawn([&]() {
    if (!become()) return 10;
    if (!make_file(disk, kDiskBytes, 04755) || !make_file(console, 0, 04755)) return 11;
    auto n = nucleus::Nucleus::attach("attacker");
    if (!n.ok()) return 12;
    nucleus::DeviceParameters p;
    p.path = disk;
    p.block_size = kBlock;
    if (!n.value().create_external_process("their-disk", nucleus::DeviceKind::kDisk, p).ok()) {
      return 13;
    }
    p = nucleus::DeviceParameters{};
    p.path = console;
    if (!n.value()
             .create_external_process("their-console", nucleus::DeviceKind::kConsole, p)
             .ok()) {
      return 14;
    }
    std::span<uint8_t> area = n.value().data_area();
    std::memset(area.data(), 'x', kBlock);
    if (ask(n.value(), "their-disk", nucleus::device::disk_write(0, 1, 0)).result !=
        NUCLEUS_RESULT_NORMAL) {
      return 15;
    }
    if (ask(n.value(), "their-console", nucleus::device::console_write(0, 6)).result !=
        NUCLEUS_RESULT_NORMAL) {
      return 16;
    }
    return 0;
  });
  ASSERT_EQ(exit_code(wait_exit(attacker)), 0) << d.log();
  // The bytes landed, and the writes had no CAP_FSETID.
  struct stat st {};
  ASSERT_EQ(stat(console.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 6);
  EXPECT_EQ(std::ifstream(disk, std::ios::binary).get(), 'x');
  EXPECT_EQ(mode_of(disk), 0755U) << std::oct << mode_of(disk)
                                  << ": the disk's write kept the set-user-ID bit: root's rights";
  EXPECT_EQ(mode_of(console), 0755U)
      << std::oct << mode_of(console)
      << ": the console's write kept the set-user-ID bit: root's rights";
  // The root's disk writes as nucleusd.
  auto n = attach("root-client");
  std::memset(n.data_area().data(), 'r', kBlock);
  EXPECT_EQ(ask(n, "root-disk", nucleus::device::disk_write(0, 1, 0)).result,
            NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(mode_of(roots), 04755U) << std::oct << mode_of(roots);
  std::ifstream in(roots, std::ios::binary);
  EXPECT_EQ(in.get(), 'r');
}

// A small ext4 file system on a loop device with blocks reserved for root,
// mounted with its root directory owned by uid 65534; `why` says why not.
class ReservedFs {
 public:
  ReservedFs() {
    char tmpl[] = "/tmp/nucleus-reserved-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      why_ = std::string("mkdtemp: ") + std::strerror(errno);
      return;
    }
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755);  // uid 65534 reaches the mount through it
    std::string image = dir_ + "/fs.img";
    mount_ = dir_ + "/mnt";
    if (!make_file(image, 32 << 20, 0600) || mkdir(mount_.c_str(), 0755) != 0) {
      why_ = "cannot make the image";
      return;
    }
    const char *mkfs =
        access("/usr/sbin/mkfs.ext4", X_OK) == 0 ? "/usr/sbin/mkfs.ext4" : "/sbin/mkfs.ext4";
    // 20 % of the blocks for root (-m), the root directory uid 65534's.
    Ran r = run_program(
        mkfs, {"-q", "-F", "-b", "4096", "-m", "20", "-E", "root_owner=65534:65534", image});
    if (r.code != 0) {
      why_ = std::string(mkfs) + " failed: " + r.err;
      return;
    }
    r = run_program("/usr/bin/mount", {"-o", "loop", image, mount_});
    if (r.code != 0) {
      why_ = "cannot loop-mount an ext4 image here: mount: " + r.err;
      return;
    }
    mounted_ = true;
  }
  ~ReservedFs() {
    if (mounted_) umount2(mount_.c_str(), MNT_DETACH);
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  ReservedFs(const ReservedFs &) = delete;
  ReservedFs &operator=(const ReservedFs &) = delete;

  bool mounted() const { return mounted_; }
  const std::string &why() const { return why_; }
  std::string path(const std::string &name) const { return mount_ + "/" + name; }
  // Its blocks once what is written is on disk: f_bfree counts root's
  // reserve, f_bavail only what others may still take.
  struct statvfs blocks() const {
    int fd = open(mount_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    syncfs(fd);
    close(fd);
    struct statvfs s {};
    statvfs(mount_.c_str(), &s);
    return s;
  }

 private:
  std::string dir_;
  std::string mount_;
  bool mounted_ = false;
  std::string why_;
};

uint64_t blocks_of(const std::string &path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_blocks) : UINT64_MAX;
}

// The issue's own attack: a uid that has filled a file system up to the
// blocks reserved for root writes on through a disk device on its own
// (sparse) file. It must get the malfunction answer with ENOSPC, as its own
// write() would, and no block of the reserve. A disk the configuration names
// (the root's) is nucleusd's and keeps root's right to the reserve.
TEST(DeviceIo, AUidAtEnospcWritesNothingIntoTheBlocksReservedForRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a file system and attack as a uid";
  ReservedFs fs;
  if (!fs.mounted()) GTEST_SKIP() << fs.why();
  std::string roots = fs.path("root.img");
  ASSERT_TRUE(make_file(roots, kDiskBytes, 0600));
  Daemon d(config(R"([{"name": "root-disk", "kind": "disk", "path": ")" + roots +
                  R"(", "block_size": 4096}])"));
  ASSERT_TRUE(d.ready()) << d.log();
  d.let_others_in();
  std::string disk = fs.path("disk.img");
  // uid 65534 takes every block it may have.
  pid_t filler = spawn([&]() {
    if (!become()) return 10;
    if (!make_file(disk, kDiskBytes, 0644)) return 11;
    int fd = open(fs.path("fill").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) return 12;
    std::vector<char> block(kBlock, 'f');
    while (write(fd, block.data(), block.size()) > 0) {
    }
    int err = errno;
    fsync(fd);
    close(fd);
    return err == ENOSPC ? 0 : 13;
  });
  ASSERT_EQ(exit_code(wait_exit(filler)), 0);
  // ext4 may still count a block or so as available after the last ENOSPC:
  // those the attacker may take, nothing more.
  struct statvfs before = fs.blocks();
  uint64_t disk_before = blocks_of(disk);
  ASSERT_GT(before.f_bfree, kDiskBytes / kBlock) << "the reserve should hold the whole disk";
  pid_t attacker = spawn([&]() {
    if (!become()) return 10;
    auto n = nucleus::Nucleus::attach("attacker");
    if (!n.ok()) return 11;
    nucleus::DeviceParameters p;
    p.path = disk;
    p.block_size = kBlock;
    if (!n.value().create_external_process("their-disk", nucleus::DeviceKind::kDisk, p).ok()) {
      return 12;
    }
    std::memset(n.value().data_area().data(), 'x', kDiskBytes);
    nucleus::Answer a =
        ask(n.value(), "their-disk", nucleus::device::disk_write(0, kDiskBytes / kBlock, 0));
    if (a.result == NUCLEUS_RESULT_MALFUNCTION && a.message.word[0] == ENOSPC) return 0;
    std::fprintf(stderr, "answer %d, word 0 %llu\n", a.result,
                 static_cast<unsigned long long>(a.message.word[0]));
    return a.result == NUCLEUS_RESULT_NORMAL ? 20 : 21;
  });
  EXPECT_EQ(exit_code(wait_exit(attacker)), 0)
      << "20: the write landed in root's reserve; 21: another answer";
  EXPECT_LE(blocks_of(disk), disk_before + before.f_bavail * (before.f_frsize / 512))
      << "blocks of the reserve went to uid 65534's file";
  EXPECT_GE(fs.blocks().f_bfree + before.f_bavail, before.f_bfree);
  // The root's disk writes on, into the reserve.
  auto n = attach("root-client");
  std::memset(n.data_area().data(), 'r', kDiskBytes);
  nucleus::Answer a = ask(n, "root-disk", nucleus::device::disk_write(0, kDiskBytes / kBlock, 0));
  EXPECT_EQ(a.result, NUCLEUS_RESULT_NORMAL) << a.message.word[0];
  EXPECT_LT(fs.blocks().f_bfree + kDiskBytes / kBlock / 2, before.f_bfree);
}

// A nucleusd that is not root has no other rights to give: it serves the
// disks of its own uid with its own credentials, as before.
TEST(DeviceIo, ANucleusdThatIsNotRootServesItsOwnUidsDisk) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run nucleusd as another uid";
  // Where uid 65534 can run it, whatever directory the tree is in (a 0700 home).
  const std::string program = for_others(NUCLEUSD_PATH);
  pid_t owner = spawn([&]() {
    if (!become()) return 10;
    support::DaemonProcess nucleusd;
    if (!nucleusd.start(program, config(), "debug", kDeadline)) return 11;
    std::string disk = nucleusd.dir() + "/disk.img";
    if (!make_file(disk, kDiskBytes, 0600)) return 12;
    auto n = nucleus::Nucleus::attach("owner");
    if (!n.ok()) return 13;
    nucleus::DeviceParameters p;
    p.path = disk;
    p.block_size = kBlock;
    if (!n.value().create_external_process("mine", nucleus::DeviceKind::kDisk, p).ok()) return 14;
    std::memset(n.value().data_area().data(), 'm', kBlock);
    if (ask(n.value(), "mine", nucleus::device::disk_write(0, 1, 0)).result !=
        NUCLEUS_RESULT_NORMAL) {
      return 15;
    }
    std::ifstream in(disk, std::ios::binary);
    if (in.get() != 'm') return 16;
    return nucleusd.stop(SIGTERM, kDeadline) == 0 ? 0 : 17;
  });
  EXPECT_EQ(exit_code(wait_exit(owner)), 0);
}

// nucleusd registers one io_uring credential per principal that has a disk
// or console named, and gives it back with that principal's last device: a
// uid that names and removes devices in a loop leaves nothing behind.
TEST(DeviceIo, ANamersCredentialIsReleasedWithItsLastDevice) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to attach as another uid";
  TheirDir dir;
  Daemon d(config());
  ASSERT_TRUE(d.ready()) << d.log();
  d.let_others_in();
  EXPECT_EQ(namer_credentials(d), 0U);
  Signal holding;
  Signal go_on;
  pid_t namer = spawn([&]() {
    if (!become()) return 10;
    if (!make_file(dir.path("disk.img"), kDiskBytes, 0644)) return 11;
    auto n = nucleus::Nucleus::attach("namer");
    if (!n.ok()) return 12;
    nucleus::DeviceParameters disk;
    disk.path = dir.path("disk.img");
    disk.block_size = kBlock;
    nucleus::DeviceParameters console;
    console.path = dir.path("console.out");
    for (int i = 0; i < 300; ++i) {
      if (!n.value().create_external_process("d", nucleus::DeviceKind::kDisk, disk).ok() ||
          !n.value().create_external_process("c", nucleus::DeviceKind::kConsole, console).ok()) {
        return 13;
      }
      if (ask(n.value(), "d", nucleus::device::disk_write(1, 1, 0)).result !=
          NUCLEUS_RESULT_NORMAL) {
        return 14;
      }
      if (!n.value().remove_external_process("d").ok() ||
          !n.value().remove_external_process("c").ok()) {
        return 15;
      }
    }
    // Two devices of one principal: one credential.
    if (!n.value().create_external_process("d", nucleus::DeviceKind::kDisk, disk).ok() ||
        !n.value().create_external_process("c", nucleus::DeviceKind::kConsole, console).ok() ||
        !n.value().create_external_process("clock", nucleus::DeviceKind::kClock).ok()) {
      return 16;
    }
    holding.notify();
    if (go_on.wait() == 0) return 17;
    if (!n.value().remove_external_process("d").ok()) return 18;
    holding.notify();
    if (go_on.wait() == 0) return 19;
    return n.value().remove_external_process("c").ok() ? 0 : 20;
  });
  ASSERT_EQ(holding.wait(), 'x');
  EXPECT_EQ(namer_credentials(d), 1U);
  go_on.notify();
  ASSERT_EQ(holding.wait(), 'x');
  EXPECT_EQ(namer_credentials(d), 1U) << "its console still needs it";
  go_on.notify();
  ASSERT_EQ(exit_code(wait_exit(namer)), 0) << d.log();
  // Its clock needs none; its last disk or console is gone.
  EXPECT_TRUE(eventually([&] { return namer_credentials(d) == 0; }));
}

}  // namespace
}  // namespace nucleus::test
