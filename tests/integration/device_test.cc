// External processes against a real nucleusd: clock, console, disk and null
// with real files, reserve and release, malformed messages, and what happens
// to operations in flight when their sender or their device goes away.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <vector>

#include "harness.h"
#include "test_program.h"

namespace nucleus::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr uint64_t kBlock = 4096;
constexpr uint64_t kDiskBlocks = 256;     // a 1 MiB backing file
constexpr uint64_t kDataBytes = 1 << 20;  // every socket client's data area here

// Files the devices use, in a directory of their own.
class Files {
 public:
  Files() {
    char tmpl[] = "/tmp/nucleus-devices-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  ~Files() { std::system(("rm -rf " + dir_).c_str()); }
  Files(const Files &) = delete;
  Files &operator=(const Files &) = delete;
  std::string path(const std::string &name) const { return dir_ + "/" + name; }
  void write(const std::string &name, const std::string &bytes) const {
    std::ofstream(path(name), std::ios::binary) << bytes;
  }
  std::string read(const std::string &name) const {
    std::ifstream in(path(name), std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  std::string dir_;
};

class Devices : public ::testing::Test {
 protected:
  Devices() {
    files_.write("console.in", "");
    files_.write("disk.img", std::string(kDiskBlocks * kBlock, '\0'));
  }
  // clock, null, a console on files and a disk, as the configuration names them.
  std::string config(const std::string &extra = "") const {
    return R"({"default_claims": {"buffers": 256, "devices": 2},
               "channel": {"data_bytes": )" +
           std::to_string(kDataBytes) + R"(},
               "devices": [{"name": "clock", "kind": "clock"}, {"name": "null", "kind": "null"},
                 {"name": "console", "kind": "console", "output": ")" +
           files_.path("console.out") + R"(", "input": ")" + files_.path("console.in") +
           R"("},
                 {"name": "disk", "kind": "disk", "path": ")" +
           files_.path("disk.img") + R"(", "block_size": 4096}])" + extra + "}";
  }

  Files files_;
};

Message msg(uint64_t w0, uint64_t w1 = 0, uint64_t w2 = 0, uint64_t w3 = 0) {
  Message m{};
  m.word[0] = w0;
  m.word[1] = w1;
  m.word[2] = w2;
  m.word[3] = w3;
  return m;
}

Answer ask(Nucleus &n, const std::string &device, const Message &m) {
  auto b = n.send_message(device, m);
  EXPECT_TRUE(b) << b.message();
  if (!b) return Answer{};
  auto a = n.wait_answer(b.value(), kDeadline);
  EXPECT_TRUE(a) << a.message();
  return a ? a.value() : Answer{};
}

int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

TEST_F(Devices, DefaultConfigurationNamesClockNullAndConsole) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  auto n = attach("user");
  auto s = n.get_stats();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->devices, 3U);
  EXPECT_EQ(s->processes, 1U);
  EXPECT_EQ(ask(n, "null", msg(42)).result, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(ask(n, "clock", device::clock_now()).result, NUCLEUS_RESULT_NORMAL);
  // A socket client gets no devices claim by default.
  EXPECT_EQ(n.create_external_process("mine", DeviceKind::kNull).error(), -ENOBUFS);
}

TEST_F(Devices, NullAndClockAnswer) {
  Daemon d(config());
  ASSERT_TRUE(d.ready());
  auto n = attach("user");
  Answer a = ask(n, "null", msg(7, 8, 9));
  EXPECT_EQ(a.result, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(a.message.word[0], 0U);

  int64_t before = now_ns();
  a = ask(n, "clock", device::clock_now());
  EXPECT_EQ(a.result, NUCLEUS_RESULT_NORMAL);
  EXPECT_GE(static_cast<int64_t>(a.message.word[0]), before);
  EXPECT_GT(a.message.word[1], 1700000000ULL * 1000000000ULL);  // a real wall clock

  // Many waits outstanding at once; each answered, none before its delay.
  std::mt19937 rng(5);
  struct Wait {
    Buffer buffer;
    int64_t sent;
    int64_t delay;
  };
  std::vector<Wait> waits;
  for (int i = 0; i < 200; ++i) {
    int64_t delay = 1000000 + static_cast<int64_t>(rng() % 30) * 1000000;
    int64_t sent = now_ns();
    auto b = n.send_message("clock", device::clock_wait(std::chrono::nanoseconds(delay)));
    ASSERT_TRUE(b) << b.message();
    waits.push_back({b.value(), sent, delay});
  }
  for (const Wait &w : waits) {
    auto answer = n.wait_answer(w.buffer, kDeadline);
    ASSERT_TRUE(answer) << answer.message();
    EXPECT_EQ(answer->result, NUCLEUS_RESULT_NORMAL);
    EXPECT_GE(static_cast<int64_t>(answer->message.word[0]), w.sent + w.delay);
    EXPECT_GE(now_ns(), w.sent + w.delay);
  }
  // Zero waits answer at once.
  EXPECT_EQ(ask(n, "clock", device::clock_wait(std::chrono::nanoseconds(0))).result,
            NUCLEUS_RESULT_NORMAL);
}

TEST_F(Devices, ConsoleWritesAndReadsLines) {
  std::string longline(100, 'a');
  files_.write("console.in", "first line\nsecond\n" + longline + "\nlast");
  Daemon d(config());
  ASSERT_TRUE(d.ready());
  auto n = attach("user");
  auto area = n.data_area();
  ASSERT_EQ(area.size(), kDataBytes);
  std::string out = "hello\nworld\n";
  std::memcpy(area.data() + 100, out.data(), out.size());
  Answer a = ask(n, "console", device::console_write(100, 6));
  EXPECT_EQ(a.result, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(a.message.word[0], 6U);
  // Writes keep their order even when many are in flight.
  std::vector<Buffer> writes;
  for (int i = 0; i < 50; ++i) {
    std::string line = "line " + std::to_string(i) + "\n";
    std::memcpy(area.data() + 1000 + i * 16, line.data(), line.size());
    writes.push_back(
        n.send_message("console", device::console_write(1000 + i * 16, line.size())).value());
  }
  for (Buffer b : writes) EXPECT_EQ(n.wait_answer(b, kDeadline)->result, NUCLEUS_RESULT_NORMAL);
  std::string expected = "hello\n";
  for (int i = 0; i < 50; ++i) expected += "line " + std::to_string(i) + "\n";
  EXPECT_EQ(files_.read("console.out"), expected);

  auto read_line = [&](uint64_t capacity, bool *end) {
    Answer r = ask(n, "console", device::console_read(4096, capacity));
    EXPECT_EQ(r.result, NUCLEUS_RESULT_NORMAL);
    *end = r.message.word[1] == 1;
    return std::string(reinterpret_cast<char *>(area.data()) + 4096, r.message.word[0]);
  };
  bool end = false;
  EXPECT_EQ(read_line(64, &end), "first line\n");
  EXPECT_FALSE(end);
  EXPECT_EQ(read_line(64, &end), "second\n");
  EXPECT_EQ(read_line(64, &end), std::string(64, 'a'));  // longer than the room
  EXPECT_EQ(read_line(64, &end), std::string(36, 'a') + "\n");
  EXPECT_EQ(read_line(64, &end), "last");
  EXPECT_TRUE(end);
  EXPECT_EQ(read_line(64, &end), "");
  EXPECT_TRUE(end);
}

TEST_F(Devices, DiskDataWrittenIsReadBackWithManyInFlight) {
  Daemon d(config());
  ASSERT_TRUE(d.ready());
  auto n = attach("user");
  auto area = n.data_area();
  Answer info = ask(n, "disk", device::disk_info());
  EXPECT_EQ(info.message.word[0], kBlock);
  EXPECT_EQ(info.message.word[1], kDiskBlocks);

  // 64 one-block writes in flight, each from its own part of the data area,
  // to blocks in a shuffled order.
  constexpr uint64_t kCount = 64;
  std::vector<uint64_t> blocks(kDiskBlocks);
  for (uint64_t i = 0; i < kDiskBlocks; ++i) blocks[i] = i;
  std::shuffle(blocks.begin(), blocks.end(), std::mt19937(9));
  for (uint64_t i = 0; i < kCount; ++i) {
    std::memset(area.data() + i * kBlock, static_cast<int>('A' + i % 26), kBlock);
    std::memcpy(area.data() + i * kBlock, &blocks[i], sizeof(uint64_t));
  }
  std::vector<Buffer> out;
  for (uint64_t i = 0; i < kCount; ++i) {
    out.push_back(n.send_message("disk", device::disk_write(blocks[i], 1, i * kBlock)).value());
  }
  for (Buffer b : out) {
    auto a = n.wait_answer(b, kDeadline);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->result, NUCLEUS_RESULT_NORMAL);
    EXPECT_EQ(a->message.word[0], kBlock);
  }
  // The file has them, at the right places.
  std::string image = files_.read("disk.img");
  for (uint64_t i = 0; i < kCount; ++i) {
    uint64_t tag = 0;
    std::memcpy(&tag, image.data() + blocks[i] * kBlock, sizeof(tag));
    EXPECT_EQ(tag, blocks[i]);
    EXPECT_EQ(image[blocks[i] * kBlock + 100], static_cast<char>('A' + i % 26));
  }
  // Read back, again all in flight, into another part of the area.
  std::memset(area.data(), 0, area.size());
  out.clear();
  const uint64_t base = 512 * 1024;
  for (uint64_t i = 0; i < kCount; ++i) {
    out.push_back(
        n.send_message("disk", device::disk_read(blocks[i], 1, base + i * kBlock)).value());
  }
  for (Buffer b : out) EXPECT_EQ(n.wait_answer(b, kDeadline)->result, NUCLEUS_RESULT_NORMAL);
  for (uint64_t i = 0; i < kCount; ++i) {
    EXPECT_EQ(
        std::memcmp(area.data() + base + i * kBlock, image.data() + blocks[i] * kBlock, kBlock), 0)
        << "block " << blocks[i];
  }
  // A multi-block transfer: the last 8 blocks of the disk.
  std::memset(area.data(), 'z', 8 * kBlock);
  EXPECT_EQ(ask(n, "disk", device::disk_write(kDiskBlocks - 8, 8, 0)).message.word[0], 8 * kBlock);
  std::memset(area.data(), 0, 8 * kBlock);
  EXPECT_EQ(ask(n, "disk", device::disk_read(kDiskBlocks - 8, 8, 0)).message.word[0], 8 * kBlock);
  EXPECT_EQ(std::string(reinterpret_cast<char *>(area.data()), 8 * kBlock),
            std::string(8 * kBlock, 'z'));
}

TEST_F(Devices, MalformedMessagesAreUnintelligibleAndHarmNothing) {
  Daemon d(config());
  ASSERT_TRUE(d.ready());
  auto n = attach("user");
  auto area = n.data_area();
  std::memset(area.data(), 0x5a, area.size());
  struct Case {
    const char *device;
    Message m;
    uint64_t why;
  };
  const uint64_t end = kDataBytes;
  std::vector<Case> cases = {
      {"clock", msg(99), EOPNOTSUPP},
      {"clock", msg(wire::kClockWait, UINT64_MAX), EINVAL},
      {"console", msg(0), EOPNOTSUPP},
      {"console", msg(wire::kConsoleWrite, end, 1), EFAULT},
      {"console", msg(wire::kConsoleWrite, end - 10, 11), EFAULT},
      {"console", msg(wire::kConsoleWrite, 1, UINT64_MAX), EFAULT},
      {"console", msg(wire::kConsoleRead, UINT64_MAX, 2), EFAULT},
      {"console", msg(wire::kConsoleRead, 0, 0), EINVAL},
      {"disk", msg(7), EOPNOTSUPP},
      {"disk", msg(wire::kDiskRead, 0, 0, 0), EINVAL},
      {"disk", msg(wire::kDiskRead, 0, 1, end - kBlock + 1), EFAULT},
      {"disk", msg(wire::kDiskWrite, 0, UINT64_MAX, 0), EFAULT},
      {"disk", msg(wire::kDiskRead, 0, (end / kBlock) + 1, 0), EFAULT},
      {"disk", msg(wire::kDiskRead, kDiskBlocks, 1, 0), ENXIO},
      {"disk", msg(wire::kDiskWrite, kDiskBlocks - 1, 2, 0), ENXIO},
      {"disk", msg(wire::kDiskRead, UINT64_MAX, 1, 0), ENXIO},
  };
  for (const Case &c : cases) {
    Answer a = ask(n, c.device, c.m);
    EXPECT_EQ(a.result, NUCLEUS_RESULT_UNINTELLIGIBLE) << c.device << " op " << c.m.word[0];
    EXPECT_EQ(a.message.word[0], c.why) << c.device << " op " << c.m.word[0];
  }
  // Nothing was read into the area, and the devices serve on.
  for (size_t i = 0; i < area.size(); ++i) ASSERT_EQ(area[i], 0x5a) << i;
  EXPECT_EQ(ask(n, "disk", device::disk_read(0, 1, end - kBlock)).result, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(files_.read("console.out"), "");
  auto s = n.get_stats();
  EXPECT_EQ(s->protocol_errors, 0U);  // a bad message is not a protocol error
}

TEST_F(Devices, AnIoErrorIsAMalfunctionWithItsErrno) {
  Daemon d(config());
  ASSERT_TRUE(d.ready());
  auto n = attach("user");
  // A console whose output is a FIFO: with its reader gone, a write fails
  // with EPIPE.
  std::string fifo = files_.path("out.fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  int reader = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  DeviceParameters p;
  p.path = fifo;
  p.input_path = files_.path("console.in");
  auto created = n.create_external_process("pipe", DeviceKind::kConsole, p);
  ASSERT_TRUE(created) << created.message();
  std::memcpy(n.data_area().data(), "x\n", 2);
  EXPECT_EQ(ask(n, "pipe", device::console_write(0, 2)).result, NUCLEUS_RESULT_NORMAL);
  close(reader);
  Answer a = ask(n, "pipe", device::console_write(0, 2));
  EXPECT_EQ(a.result, NUCLEUS_RESULT_MALFUNCTION);
  EXPECT_EQ(a.message.word[0], static_cast<uint64_t>(EPIPE));
}

TEST_F(Devices, ReserveGivesExclusiveUseUntilReleaseOrDeath) {
  Daemon d(config());
  ASSERT_TRUE(d.ready());
  auto a = attach("a");
  auto b = attach("b");
  EXPECT_TRUE(a.reserve_process("null"));
  EXPECT_TRUE(a.reserve_process("null"));  // again: it has it
  EXPECT_EQ(ask(a, "null", msg(1)).result, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(ask(b, "null", msg(1)).result, NUCLEUS_RESULT_REJECTED);
  EXPECT_EQ(b.reserve_process("null").error(), -EBUSY);
  EXPECT_EQ(b.release_process("null").error(), -EPERM);
  EXPECT_EQ(b.reserve_process("nosuch").error(), -ESRCH);
  EXPECT_EQ(b.reserve_process("a").error(), -EINVAL);  // an internal process
  EXPECT_TRUE(a.release_process("null"));
  EXPECT_EQ(ask(b, "null", msg(1)).result, NUCLEUS_RESULT_NORMAL);

  // A reserver that dies releases what it reserved.
  Signal reserved;
  pid_t child = spawn([&] {
    auto c = Nucleus::attach("c");
    if (!c || !c->reserve_process("disk")) return 1;
    reserved.notify();
    return 0;  // exits holding the reservation
  });
  ASSERT_EQ(reserved.wait(), 'x');
  EXPECT_EQ(exit_code(wait_exit(child)), 0);
  ASSERT_TRUE(wait_stats(b, [](const Stats &s) { return s.processes == 2; }));
  EXPECT_TRUE(b.reserve_process("disk"));
  EXPECT_EQ(ask(a, "disk", device::disk_info()).result, NUCLEUS_RESULT_REJECTED);
  EXPECT_EQ(ask(b, "disk", device::disk_info()).result, NUCLEUS_RESULT_NORMAL);
}

TEST_F(Devices, NamingDevicesNeedsAClaimAndGoodParameters) {
  Daemon d(config());
  ASSERT_TRUE(d.ready());
  auto n = attach("user");
  DeviceParameters disk;
  disk.path = files_.path("disk.img");
  disk.block_size = 512;
  EXPECT_EQ(n.create_external_process("clock", DeviceKind::kClock).error(), -EEXIST);
  EXPECT_EQ(n.create_external_process("bad name", DeviceKind::kClock).error(), -EINVAL);
  EXPECT_EQ(nucleus_create_external_process(n.c_handle(), "k", 0, nullptr), -EINVAL);
  EXPECT_EQ(nucleus_create_external_process(n.c_handle(), "k", 99, nullptr), -EINVAL);
  EXPECT_EQ(n.create_external_process("k", DeviceKind::kDisk).error(), -EINVAL);  // no file
  EXPECT_EQ(n.create_external_process("k", DeviceKind::kClock, disk).error(), -EINVAL);
  DeviceParameters relative = disk;
  relative.path = "disk.img";
  EXPECT_EQ(n.create_external_process("k", DeviceKind::kDisk, relative).error(), -EINVAL);
  DeviceParameters missing = disk;
  missing.path = files_.path("nothing-here");
  EXPECT_EQ(n.create_external_process("k", DeviceKind::kDisk, missing).error(), -ENOENT);
  DeviceParameters odd = disk;
  odd.block_size = 1000;
  EXPECT_EQ(n.create_external_process("k", DeviceKind::kDisk, odd).error(), -EINVAL);
  odd.block_size = 1 << 17;
  EXPECT_EQ(n.create_external_process("k", DeviceKind::kDisk, odd).error(), -EINVAL);
  nucleus_device_parameters_t flags{disk.path.c_str(), nullptr, 512, 0x80};
  EXPECT_EQ(nucleus_create_external_process(n.c_handle(), "k", NUCLEUS_DEVICE_DISK, &flags),
            -EINVAL);
  // None of those used the claim: two devices may still be named.
  ASSERT_TRUE(n.create_external_process("d1", DeviceKind::kDisk, disk));
  ASSERT_TRUE(n.create_external_process("t1", DeviceKind::kClock));
  EXPECT_EQ(n.create_external_process("t2", DeviceKind::kClock).error(), -ENOBUFS);
  Answer info = ask(n, "d1", device::disk_info());
  EXPECT_EQ(info.message.word[0], 512U);
  EXPECT_EQ(info.message.word[1], kDiskBlocks * kBlock / 512);
  // Only its own devices; and devices are not children.
  EXPECT_EQ(n.remove_external_process("clock").error(), -ESRCH);
  EXPECT_EQ(n.remove_external_process("user").error(), -ESRCH);
  EXPECT_EQ(n.remove_process("t1").error(), -ESRCH);
  EXPECT_EQ(n.start_process("t1").error(), -ESRCH);
  EXPECT_EQ(n.get_process("t1").error(), -ESRCH);
  auto other = attach("other");
  EXPECT_EQ(other.remove_external_process("t1").error(), -ESRCH);
  EXPECT_TRUE(n.remove_external_process("t1"));
  EXPECT_EQ(ask(n, "t1", msg(1)).result, NUCLEUS_RESULT_DUMMY);
  EXPECT_TRUE(n.create_external_process("t2", DeviceKind::kClock));
  auto s = n.get_stats();
  EXPECT_EQ(s->devices, 6U);
}

TEST_F(Devices, ARemovedDeviceGivesItsPendingMessagesDummyAnswers) {
  Daemon d(config());
  ASSERT_TRUE(d.ready());
  auto n = attach("user");
  // A clock with long waits, and a console whose reads wait for input that
  // never comes (a FIFO nobody writes).
  std::string fifo = files_.path("in.fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  int writer_keepalive = open(fifo.c_str(), O_RDWR);  // so reads wait instead of ending
  ASSERT_GE(writer_keepalive, 0);
  ASSERT_TRUE(n.create_external_process("slow", DeviceKind::kClock));
  DeviceParameters console;
  console.path = files_.path("c2.out");
  console.input_path = fifo;
  ASSERT_TRUE(n.create_external_process("tty", DeviceKind::kConsole, console));
  std::vector<Buffer> pending;
  for (int i = 0; i < 20; ++i) {
    pending.push_back(n.send_message("slow", device::clock_wait(seconds(600))).value());
  }
  for (int i = 0; i < 3; ++i) {
    pending.push_back(n.send_message("tty", device::console_read(0, 100)).value());
  }
  // They are really pending: nothing is answered yet.
  nucleus_event_t e{};
  EXPECT_EQ(nucleus_wait_event(n.c_handle(), 0, 0, &e), -ETIMEDOUT);
  EXPECT_TRUE(n.remove_external_process("slow"));
  EXPECT_TRUE(n.remove_external_process("tty"));
  for (Buffer b : pending) {
    auto a = n.wait_answer(b, kDeadline);
    ASSERT_TRUE(a) << a.message();
    EXPECT_EQ(a->result, NUCLEUS_RESULT_DUMMY);
  }
  auto s = n.get_stats();
  EXPECT_EQ(s->claim_used, 0U);
  EXPECT_EQ(s->pool_free, s->pool_buffers - s->claim_buffers);
  close(writer_keepalive);
}

TEST_F(Devices, ASenderThatDiesHasItsOperationsCancelled) {
  Daemon d(config());
  ASSERT_TRUE(d.ready());
  auto n = attach("watcher");
  Signal sent;
  pid_t child = spawn([&] {
    auto c = Nucleus::attach("doomed");
    if (!c) return 1;
    for (int i = 0; i < 100; ++i) {
      if (!c->send_message("clock", device::clock_wait(seconds(600)))) return 2;
    }
    for (uint64_t i = 0; i < 64; ++i) {
      if (!c->send_message("disk", device::disk_read(i, 1, i * kBlock))) return 3;
    }
    for (int i = 0; i < 20; ++i) {
      if (!c->send_message("console", device::console_read(0, 10))) return 4;
    }
    if (!c->get_stats()) return 5;  // everything above has reached nucleusd
    sent.notify();
    kill(getpid(), SIGKILL);
    return 6;
  });
  ASSERT_EQ(sent.wait(), 'x');
  EXPECT_TRUE(WIFSIGNALED(wait_exit(child)));
  // Its buffers come back to the pool, which holds nothing for it after.
  Stats s{};
  EXPECT_TRUE(wait_stats(
      n,
      [](const Stats &st) {
        return st.processes == 1 && st.pool_free == st.pool_buffers - st.claim_buffers;
      },
      &s))
      << "pool free " << s.pool_free << " of " << s.pool_buffers;
  // And the devices serve on.
  EXPECT_EQ(ask(n, "clock", device::clock_wait(milliseconds(1))).result, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(ask(n, "disk", device::disk_read(0, 1, 0)).result, NUCLEUS_RESULT_NORMAL);
}

TEST_F(Devices, ACreatorThatDiesKeepsItsDevicesForItsNextRun) {
  Daemon d(config());
  ASSERT_TRUE(d.ready());
  pid_t child = spawn([&] {
    auto c = Nucleus::attach("owner");
    return c && c->create_external_process("ownclock", DeviceKind::kClock) ? 0 : 1;
  });
  EXPECT_EQ(exit_code(wait_exit(child)), 0);
  auto n = attach("user");
  EXPECT_EQ(ask(n, "ownclock", device::clock_wait(milliseconds(1))).result, NUCLEUS_RESULT_NORMAL);
  // The same uid attaching under that name is its next run, and owns it:
  // naming it as before keeps it (decision 73), otherwise the name is taken.
  auto again = attach("owner");
  EXPECT_TRUE(again.create_external_process("ownclock", DeviceKind::kClock));
  EXPECT_EQ(again.create_external_process("ownclock", DeviceKind::kNull).error(), -EEXIST);
  EXPECT_EQ(ask(n, "ownclock", device::clock_wait(milliseconds(1))).result, NUCLEUS_RESULT_NORMAL);
  EXPECT_TRUE(again.remove_external_process("ownclock"));
  EXPECT_EQ(ask(n, "ownclock", msg(wire::kClockNow)).result, NUCLEUS_RESULT_DUMMY);
}

// Issue 21, as met: a process names its device with its one devices claim,
// its program ends and is started again (the entry stays, so does the
// device), and it names the device again. That was -ENOBUFS (the claim the
// device holds); now it has its device, which serves. A name another holds
// is -EEXIST, whatever claim is left.
TEST_F(Devices, ARestartedNamerNamingItsDeviceAgainHasIt) {
  // os has one devices claim, which it gives its child.
  Daemon d(R"({"default_claims": {"buffers": 64, "processes": 2, "devices": 1}})");
  ASSERT_TRUE(d.ready());
  auto os = attach("os");
  const char *argv[] = {NUCLEUS_TEST_PROGRAM, "serve", nullptr};
  nucleus_program_t program{NUCLEUS_TEST_PROGRAM, argv, nullptr, nullptr};
  nucleus_claims_t one_device{8, 0, 0, 1, 0};
  ASSERT_EQ(nucleus_create_process(os.c_handle(), "namer", &program, &one_device), 0);
  ASSERT_TRUE(os.start_process("namer"));
  // A command to the test program: word 0 what, words 4.. a name.
  auto command = [&](::test::Command c, const std::string &name) {
    Message m{};
    m.word[0] = static_cast<uint64_t>(c);
    std::memcpy(&m.word[4], name.c_str(), std::min<size_t>(name.size(), 31));
    Answer a = ask(os, "namer", m);
    EXPECT_EQ(a.result, NUCLEUS_RESULT_NORMAL);
    return static_cast<int64_t>(a.message.word[0]);
  };
  auto name_clock = [&](const std::string &name) {
    return command(::test::Command::kNameClock, name);
  };
  ASSERT_EQ(name_clock("tick"), 0);
  EXPECT_EQ(ask(os, "tick", device::clock_wait(milliseconds(1))).result, NUCLEUS_RESULT_NORMAL);
  // Its program ends; its exit notice comes to os.
  (void)command(::test::Command::kExit, "");
  auto notice = os.wait_message(kDeadline);
  ASSERT_TRUE(notice) << notice.message();
  ASSERT_EQ(notice->sender, "nucleus");
  ASSERT_TRUE(os.send_answer(notice->buffer, NUCLEUS_RESULT_NORMAL, Message{}));
  // The device outlived the run.
  EXPECT_EQ(ask(os, "tick", device::clock_wait(milliseconds(1))).result, NUCLEUS_RESULT_NORMAL);
  ASSERT_TRUE(os.start_process("namer"));
  EXPECT_EQ(name_clock("tick"), 0);
  EXPECT_EQ(ask(os, "tick", device::clock_wait(milliseconds(1))).result, NUCLEUS_RESULT_NORMAL);
  auto info = os.get_process("namer");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->used.devices, 1U) << "naming it again took nothing";
  // Names others hold: the root's clock, a process; then a free name.
  EXPECT_EQ(name_clock("clock"), -EEXIST);
  EXPECT_EQ(name_clock("os"), -EEXIST);
  EXPECT_EQ(name_clock("tock"), -ENOBUFS);
  // And its name is the namer's: another naming it is told it is taken
  // (os gave its one devices claim away: the name is what refuses it).
  EXPECT_EQ(os.create_external_process("tick", DeviceKind::kClock).error(), -EEXIST);
}

TEST_F(Devices, ClaimsGiveAChildItsDataAreaAndDevices) {
  Daemon d(R"({"default_claims": {"buffers": 64, "processes": 4, "devices": 3}})");
  ASSERT_TRUE(d.ready());
  auto n = attach("os");
  const char *argv[] = {NUCLEUS_TEST_PROGRAM, "serve", nullptr};
  nucleus_program_t program{NUCLEUS_TEST_PROGRAM, argv, nullptr, nullptr};
  nucleus_claims_t claims{8, 0, 0, 2, 256 * 1024};
  ASSERT_EQ(nucleus_create_process(n.c_handle(), "kid", &program, &claims), 0);
  auto info = n.get_process("kid");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->given.devices, 2U);
  EXPECT_EQ(info->given.data_bytes, 256U * 1024);
  // More devices than are left, and data areas over the limit, are refused.
  nucleus_claims_t too_many{1, 0, 0, 2, 0};
  EXPECT_EQ(nucleus_create_process(n.c_handle(), "kid2", &program, &too_many), -ENOBUFS);
  nucleus_claims_t too_big{1, 0, 0, 0, wire::kMaxDataAreaBytes + 1};
  EXPECT_EQ(nucleus_create_process(n.c_handle(), "kid2", &program, &too_big), -EINVAL);
  nucleus_claims_t huge_processes{1, UINT64_MAX, 0, 0, 0};
  EXPECT_EQ(nucleus_create_process(n.c_handle(), "kid2", &program, &huge_processes), -EINVAL);
  EXPECT_TRUE(n.create_external_process("osclock", DeviceKind::kClock));
  EXPECT_EQ(n.create_external_process("osclock2", DeviceKind::kClock).error(), -ENOBUFS);
  auto self = n.get_stats();
  ASSERT_TRUE(self);
  // The child's data area is the size its claim says.
  ASSERT_TRUE(n.start_process("kid"));
  Message stats{};
  stats.word[0] = static_cast<uint64_t>(::test::Command::kStats);
  Answer a = ask(n, "kid", stats);
  EXPECT_EQ(a.message.word[3], 256U * 1024);
  // Claims come back with the child.
  EXPECT_TRUE(n.remove_process("kid"));
  ASSERT_TRUE(n.create_external_process("osclock2", DeviceKind::kClock));
}

}  // namespace
}  // namespace nucleus::test
