// Bounds of nucleusd's event loop against a client of another uid
// (DESIGN.md, "Principals, privilege and bounds"): replies queued per
// connection, work per loop turn, pending attaches and inspection
// connections (nucleusctl's JSON ones) per uid, and accept when nucleusd
// has no descriptor left. Each attacker runs as uid 65534 against a root
// nucleusd; the tests assert on effects (the victim's round trips complete,
// nucleusd's memory and descriptors stay bounded, nothing is lost), never
// on time.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <dirent.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nucleus_internal/sys.h>

#include "harness.h"
#include "run_program.h"

namespace nucleus::test {
namespace {

using namespace std::chrono_literals;

// nucleusd's resident memory, in kB (VmRSS of /proc/PID/status).
uint64_t vm_rss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

// The numbers of the descriptors nucleusd has open.
std::vector<int> fd_numbers(pid_t pid) {
  std::vector<int> numbers;
  std::string path = "/proc/" + std::to_string(pid) + "/fd";
  DIR *dir = opendir(path.c_str());
  if (dir == nullptr) return numbers;
  while (dirent *e = readdir(dir)) {
    if (e->d_name[0] != '.') numbers.push_back(std::atoi(e->d_name));
  }
  closedir(dir);
  return numbers;
}

size_t count_of(const std::string &text, const std::string &needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Waits until nucleusd's log holds `needle`: woken by inotify on the file.
bool wait_log(const Daemon &d, const std::string &needle) {
  int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (fd < 0) return false;
  inotify_add_watch(fd, (d.dir() + "/nucleusd.log").c_str(), IN_MODIFY);
  auto until = std::chrono::steady_clock::now() + kDeadline;
  bool found = false;
  while (!(found = d.log().find(needle) != std::string::npos)) {
    int ms = support::remaining_ms(until);
    if (ms == 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, ms) > 0) {
      char events[4096];
      while (read(fd, events, sizeof(events)) > 0) {
      }
    }
  }
  close(fd);
  return found;
}

// Waits for the next packet on `fd`; its length, 0 at its end, -1 at the
// deadline or on an error.
ssize_t next_packet(int fd, void *buffer, size_t size) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kDeadline).count())) <= 0) return -1;
  return recv(fd, buffer, size, 0);
}

// One message to itself and its answer: a round trip through nucleusd.
bool round_trip(nucleus::Nucleus &n, const std::string &self, uint64_t i) {
  auto b = n.send_message(self, words(i));
  if (!b.ok()) return false;
  auto m = n.wait_message(kDeadline);
  if (!m.ok() || m->message.word[0] != i) return false;
  if (!n.send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, words(i + 1)).ok()) return false;
  auto a = n.wait_answer(b.value(), kDeadline);
  return a.ok() && a->message.word[0] == i + 1;
}

wire::Request act_for_self(uint32_t seq) {
  wire::Request r{};
  r.op = static_cast<uint32_t>(wire::Op::kActFor);
  r.arg = wire::kActForSelf;
  r.seq = seq;
  return r;
}

TEST(LoopBounds, UnreadRepliesHoldRequestsBackAndLoseNone) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to attack as another uid";
  // Before: replies of process control were queued without bound (1 GB in
  // 7 s for a client that acts for itself in a loop and reads no event),
  // and the message path dropped those beyond 64.
  constexpr uint32_t kReplies = 64;
  Daemon d(R"({"attach": {"uids": [65534]},
               "limits": {"per_connection": {"replies": 64}}})");
  ASSERT_TRUE(d.ready());
  d.let_others_in();
  auto victim = attach("victim");
  uint64_t rss_before = vm_rss_kb(d.pid());
  ASSERT_GT(rss_before, 0U);

  Signal flooding;
  Signal stop;
  pid_t attacker = spawn([&]() {
    if (!become()) return 10;
    RawClient raw(d.socket_path(), "flood");
    if (raw.status() != 0) return 11;
    wire::ChannelHeader *h = raw.header();
    uint32_t ring = h->request_entries;
    uint32_t pushed = 0;
    bool told = false;
    // Acts for itself as fast as its request ring takes it, reading no
    // event, until told to stop.
    auto room = [&] { return pushed - h->requests_head.load(std::memory_order_acquire) < ring; };
    for (;;) {
      if (room()) {
        raw.push(act_for_self(++pushed));
        continue;
      }
      if (!told) {
        flooding.notify();
        told = true;
      }
      // Full: until nucleusd takes one, or we are told to stop.
      bool stopping = false;
      bool moved = eventually([&] {
        stopping = stop.wait(0ms) != 0;
        return stopping || room();
      });
      if (!moved) return 16;
      if (stopping) break;
    }
    // nucleusd took no more than fit in the event ring and its replies.
    uint32_t taken = h->requests_head.load(std::memory_order_acquire);
    if (taken > h->event_entries + kReplies) return 12;
    // Every request gets exactly one reply, in order, once it drains.
    for (uint32_t seq = 1; seq <= pushed; ++seq) {
      wire::Event e{};
      if (!raw.next_event(&e)) return 13;
      if (e.kind != static_cast<uint32_t>(wire::EventKind::kReply) || e.seq != seq ||
          e.result != 0) {
        return 14;
      }
    }
    wire::Event extra{};
    if (raw.next_event(&extra, 0ms)) return 15;
    return 0;
  });
  ASSERT_EQ(flooding.wait(), 'x');
  // Others are served meanwhile.
  for (uint64_t i = 0; i < 2000; ++i) ASSERT_TRUE(round_trip(victim, "victim", i)) << i;
  uint64_t rss_flooded = vm_rss_kb(d.pid());
  stop.notify();
  EXPECT_EQ(exit_code(wait_exit(attacker)), 0);
  // Generous: before, this flood grew nucleusd by about 140 MB a second.
  EXPECT_LT(rss_flooded, rss_before + 32 * 1024) << "kB";
  EXPECT_NE(d.log().find("replies wait for room in its event ring"), std::string::npos);
  EXPECT_TRUE(round_trip(victim, "victim", 1));
}

// An inspection connection that always has a request waiting (JSON status):
// one thread sends as fast as nucleusd takes them, another reads the
// replies, so that its socket never runs dry.
int flood_inspection(const std::string &socket_path, Signal *flooding, Signal *stop) {
  const std::string request = R"({"op":"status"})";
  int fd = connect_to(socket_path);
  if (fd < 0) return 20;
  std::atomic<uint64_t> replies{0};
  std::thread reader([&] {
    char reply[65536];
    while (recv(fd, reply, sizeof(reply), 0) > 0) ++replies;
  });
  int rc = 0;
  bool told = false;
  while (stop->wait(0ms) == 0) {
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) < 0) {
      rc = 21;  // nucleusd closed it: it did not keep up with its replies
      break;
    }
    if (!told && replies.load() > 0) {
      flooding->notify();
      told = true;
    }
  }
  shutdown(fd, SHUT_RDWR);
  reader.join();
  close(fd);
  return rc;
}

// A channel that always has requests waiting (acting for itself), reading
// its replies.
int flood_channel(const std::string &socket_path, Signal *flooding, Signal *stop) {
  RawClient raw(socket_path, "chflood");
  if (raw.status() != 0) return 30;
  wire::ChannelHeader *h = raw.header();
  uint32_t ring = h->request_entries;
  uint32_t pushed = 0;
  uint32_t replies = 0;
  bool told = false;
  while (stop->wait(0ms) == 0) {
    while (pushed - h->requests_head.load(std::memory_order_acquire) < ring) {
      raw.push(act_for_self(++pushed));
    }
    if (!told) {
      flooding->notify();
      told = true;
    }
    wire::Event e{};
    while (raw.next_event(&e, 0ms)) ++replies;
  }
  return replies > 0 ? 0 : 31;
}

TEST(LoopBounds, FloodingConnectionsDoNotStarveOthers) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to attack as another uid";
  // Before: one inspection connection with a packet always waiting kept
  // nucleusd in its receive loop, and a channel was served to its last
  // request, while others waited.
  Daemon d(R"({"attach": {"uids": [65534]}})");
  ASSERT_TRUE(d.ready());
  d.let_others_in();
  auto victim = attach("victim");
  Signal inspection_flooding, channel_flooding, stop_inspection, stop_channel;
  std::string path = d.socket_path();
  pid_t inspection = spawn([&]() {
    if (!become()) return 10;
    return flood_inspection(path, &inspection_flooding, &stop_inspection);
  });
  pid_t channel = spawn([&]() {
    if (!become()) return 10;
    return flood_channel(path, &channel_flooding, &stop_channel);
  });
  ASSERT_EQ(inspection_flooding.wait(), 'x');
  ASSERT_EQ(channel_flooding.wait(), 'x');
  // Progress, not time: the victim's round trips all complete while both
  // floods go on.
  for (uint64_t i = 0; i < 200; ++i) ASSERT_TRUE(round_trip(victim, "victim", i)) << i;
  stop_inspection.notify();
  stop_channel.notify();
  EXPECT_EQ(exit_code(wait_exit(inspection)), 0);
  EXPECT_EQ(exit_code(wait_exit(channel)), 0);
}

TEST(LoopBounds, UidThatMayNotAttachHoldsNoPendingSlot) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to attack as another uid";
  // Before: each connection took one of 256 pending slots until its attach
  // timed out, whoever it was: 300 connections of a stranger kept everyone
  // out.
  Daemon d(R"({"attach": {"uids": [], "timeout_ms": 60000}})");
  ASSERT_TRUE(d.ready());
  d.let_others_in();
  constexpr int kConnections = 300;
  Signal holding, done;
  std::string path = d.socket_path();
  pid_t stranger = spawn([&]() {
    if (!become()) return 10;
    std::vector<int> fds;
    for (int i = 0; i < kConnections; ++i) {
      int fd = connect_to(path);
      if (fd < 0) return 11;
      fds.push_back(fd);
    }
    // Each is refused at once, told why, and ended.
    for (int fd : fds) {
      wire::AttachReply reply{};
      if (next_packet(fd, &reply, sizeof(reply)) != sizeof(reply)) return 12;
      if (reply.magic != wire::kMagic || reply.status != -EACCES) return 13;
      char byte = 0;
      if (next_packet(fd, &byte, 1) != 0) return 14;
    }
    holding.notify();  // and holds them all
    done.wait();
    for (int fd : fds) close(fd);
    return 0;
  });
  ASSERT_EQ(holding.wait(), 'x');
  auto root = nucleus::Nucleus::attach("root-attaches");
  EXPECT_TRUE(root.ok()) << root.message();
  EXPECT_LT(fd_numbers(d.pid()).size(), 100U);  // nucleusd holds nothing of the stranger's
  // The refusals are logged, rate-limited.
  std::string log = d.log();
  EXPECT_GE(count_of(log, "not allowed to attach"), 1U);
  EXPECT_LE(count_of(log, "not allowed to attach"), 20U);
  done.notify();
  EXPECT_EQ(exit_code(wait_exit(stranger)), 0);
  // A stranger's attach through libnucleus says why.
  pid_t attach_once = spawn([&]() {
    if (!become()) return 10;
    auto n = nucleus::Nucleus::attach("stranger");
    return !n.ok() && n.error() == -EACCES ? 0 : 11;
  });
  EXPECT_EQ(exit_code(wait_exit(attach_once)), 0);
}

TEST(LoopBounds, PendingAttachesAreBoundedPerUid) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to attack as another uid";
  Daemon d(R"({"attach": {"uids": [65534], "timeout_ms": 60000},
               "limits": {"per_uid": {"pending_attaches": 4}}})");
  ASSERT_TRUE(d.ready());
  d.let_others_in();
  constexpr int kConnections = 40;
  constexpr int kHeld = 4;
  Signal holding, done;
  std::string path = d.socket_path();
  pid_t holder = spawn([&]() {
    if (!become()) return 10;
    std::vector<pollfd> fds;
    for (int i = 0; i < kConnections; ++i) {
      int fd = connect_to(path);
      if (fd < 0) return 11;
      fds.push_back({fd, POLLIN, 0});
    }
    // Idle connections beyond its bound are refused; the first kHeld wait
    // for their attach request (until attach.timeout_ms).
    auto until = std::chrono::steady_clock::now() + kDeadline;
    int refused = 0;
    while (refused < kConnections - kHeld) {
      int ms = support::remaining_ms(until);
      if (ms == 0 || poll(fds.data(), fds.size(), ms) <= 0) return 12;
      for (pollfd &p : fds) {
        if (p.fd < 0 || p.revents == 0) continue;
        wire::AttachReply reply{};
        if (recv(p.fd, &reply, sizeof(reply), 0) != sizeof(reply)) return 13;
        if (reply.magic != wire::kMagic || reply.status != -EAGAIN) return 14;
        close(p.fd);
        p.fd = -1;
        ++refused;
      }
    }
    std::vector<int> held;
    for (pollfd &p : fds) {
      if (p.fd >= 0) held.push_back(p.fd);
    }
    if (held.size() != kHeld) return 15;
    if (poll(fds.data(), fds.size(), 0) != 0) return 16;  // the held ones hear nothing
    holding.notify();
    done.wait();
    // A connection it holds still attaches.
    wire::AttachRequest request{};
    request.magic = wire::kMagic;
    request.abi_version = wire::kAbiVersion;
    std::strcpy(request.name, "held");
    if (send(held[0], &request, sizeof(request), MSG_NOSIGNAL) != sizeof(request)) return 17;
    wire::AttachReply reply{};
    if (next_packet(held[0], &reply, sizeof(reply)) != sizeof(reply)) return 18;
    if (reply.status != 0) return 19;
    for (int fd : held) close(fd);
    return 0;
  });
  ASSERT_EQ(holding.wait(), 'x');
  auto root = nucleus::Nucleus::attach("root-attaches");
  EXPECT_TRUE(root.ok()) << root.message();
  std::string log = d.log();
  EXPECT_GE(count_of(log, "limits.per_uid.pending_attaches"), 1U);
  EXPECT_LE(count_of(log, "limits.per_uid.pending_attaches"), 10U);
  done.notify();
  EXPECT_EQ(exit_code(wait_exit(holder)), 0);
}

TEST(LoopBounds, InspectionConnectionsAreBoundedPerUid) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to attack as another uid";
  // Before: 64 inspection connections in all, whoever held them: 70 idle ones
  // of one uid locked nucleusctl out.
  Daemon d(R"({"attach": {"uids": [65534]},
               "limits": {"per_uid": {"control_connections": 3}}})");
  ASSERT_TRUE(d.ready());
  d.let_others_in();
  constexpr int kConnections = 70;
  constexpr int kAllowed = 3;
  Signal holding, done;
  std::string path = d.socket_path();
  pid_t holder = spawn([&]() {
    if (!become()) return 10;
    std::vector<int> fds;
    const std::string request = R"({"op":"status"})";
    for (int i = 0; i < kConnections; ++i) {
      int fd = connect_to(path);
      if (fd < 0) return 11;
      fds.push_back(fd);
      if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) < 0) return 12;
      char text[65536];
      ssize_t n = next_packet(fd, text, sizeof(text));
      if (n <= 0) return 13;
      auto reply = nlohmann::json::parse(text, text + n, nullptr, false);
      if (!reply.is_object()) return 14;
      if (i < kAllowed) {
        if (reply.value("ok", false) != true) return 15;
      } else {
        if (reply.value("ok", true) || reply.value("errno", 0) != EUSERS) return 16;
        if (next_packet(fd, text, sizeof(text)) != 0) return 17;  // and closed
      }
    }
    holding.notify();  // holds its allowed ones, idle, and the refused ones
    done.wait();
    for (int fd : fds) close(fd);
    return 0;
  });
  ASSERT_EQ(holding.wait(), 'x') << exit_code(wait_exit(holder, 0ms));
  Ran status = run_program(NUCLEUSCTL_PATH, {"--socket", d.socket_path(), "status"});
  EXPECT_EQ(status.code, 0) << status.out << status.err;
  std::string log = d.log();
  EXPECT_GE(count_of(log, "limits.per_uid.control_connections"), 1U);
  EXPECT_LE(count_of(log, "limits.per_uid.control_connections"), 10U);
  done.notify();
  EXPECT_EQ(exit_code(wait_exit(holder)), 0);
}

TEST(LoopBounds, AcceptOutOfDescriptorsBacksOff) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to lower nucleusd's RLIMIT_NOFILE";
  // Before: accept failing with EMFILE was armed again at once: a busy loop
  // that wrote a log line per attempt (313 MB in 16 s).
  Daemon d(R"({"attach": {"timeout_ms": 60000}})");
  ASSERT_TRUE(d.ready());
  auto victim = attach("victim");
  // Room for a few descriptors more, then none: RLIMIT_NOFILE bounds the
  // numbers of new descriptors, so the limit is just past its 4th free one.
  std::vector<int> numbers = fd_numbers(d.pid());
  ASSERT_FALSE(numbers.empty());
  rlim_t limit = 0;
  for (int free = 0; free < 4; ++limit) {
    if (std::find(numbers.begin(), numbers.end(), static_cast<int>(limit)) == numbers.end()) ++free;
  }
  rlimit old{};
  ASSERT_EQ(prlimit(d.pid(), RLIMIT_NOFILE, nullptr, &old), 0);
  rlimit low{limit, old.rlim_max};
  ASSERT_EQ(prlimit(d.pid(), RLIMIT_NOFILE, &low, nullptr), 0);
  // Idle connections (the root's: an operator's are not bounded per uid)
  // take what is left.
  std::vector<int> idle;
  for (int i = 0; i < 16; ++i) {
    int fd = connect_to(d.socket_path());
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  ASSERT_TRUE(wait_log(d, "accept: Too many open files"));
  // nucleusd goes on serving who is attached.
  for (uint64_t i = 0; i < 1000; ++i) ASSERT_TRUE(round_trip(victim, "victim", i)) << i;
  // Tried again after a back-off, logged at most once a second: a few
  // attempts, not a loop (each line says how many it held back).
  std::istringstream log(d.log());
  uint64_t lines = 0, attempts = 0;
  for (std::string line; std::getline(log, line);) {
    if (line.find("accept: Too many open files") == std::string::npos) continue;
    ++lines;
    ++attempts;
    if (size_t held = line.find(" more like it not logged"); held != std::string::npos) {
      attempts += std::strtoull(line.c_str() + line.rfind('(', held) + 1, nullptr, 10);
    }
  }
  EXPECT_LE(lines, 20U);
  EXPECT_LE(attempts, 40U);
  // Once the descriptors are back, it attaches again.
  for (int fd : idle) close(fd);
  auto again = nucleus::Nucleus::attach("again");
  EXPECT_TRUE(again.ok()) << again.message();
}

TEST(LoopBounds, StagedProgramBytesAreBoundedPerConnection) {
  Daemon d(R"({"default_claims": {"processes": 2},
               "limits": {"per_connection": {"staged_bytes": 1024}}})");
  ASSERT_TRUE(d.ready());
  auto n = attach("stager");
  Claims claims{};
  Program big{"/bin/true", {"true", std::string(1100, 'x')}, {}, "", "", ""};
  EXPECT_EQ(n.create_process("big", big, claims).error(), -E2BIG);
  // Nothing of it is kept: the next program stands on its own.
  Program small{"/bin/true", {"true", std::string(900, 'x')}, {}, "", "", ""};
  EXPECT_TRUE(n.create_process("small", small, claims).ok());
}

}  // namespace
}  // namespace nucleus::test
