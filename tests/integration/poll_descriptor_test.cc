// A descriptor to poll (nucleus_poll_descriptor, docs/data-and-regret.md):
// readable exactly when an event waits, served from poll, epoll and asyncio
// together with other descriptors, and what uid 65534 can do with it.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "harness.h"

namespace nucleus::test {
namespace {

using std::chrono::milliseconds;

// Readable (or hung up: end of file), as a poll loop takes it.
bool readable_now(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP)) != 0;
}

// Waits on the descriptor itself, up to the deadline.
bool readable_within(int fd, milliseconds deadline = kDeadline) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(deadline.count())) == 1 &&
         (p.revents & (POLLIN | POLLHUP)) != 0;
}

// Descriptors nucleusd holds (it runs as root, as the tests do).
int descriptors_of(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/fd";
  DIR *dir = opendir(path.c_str());
  if (dir == nullptr) return -1;
  int count = 0;
  while (dirent *e = readdir(dir)) {
    if (e->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count;
}

// Whichever way processes ring nucleusd (the doorbell: a futex word, or an
// eventfd per process), the descriptor says the same.
class PollDescriptorDoorbell : public ::testing::TestWithParam<std::string> {};

TEST_P(PollDescriptorDoorbell, ReadableExactlyWhenAnEventWaits) {
  Daemon d(R"({"doorbell": ")" + GetParam() + R"("})");
  ASSERT_TRUE(d.ready()) << d.log();
  auto srv = attach("srv");
  auto cli = attach("cli");

  // Two messages wait before the descriptor exists: it is readable at once.
  auto b1 = cli.send_message("srv", words(1));
  auto b2 = cli.send_message("srv", words(2));
  ASSERT_TRUE(b1.ok() && b2.ok());
  auto first = srv.wait_event(0, kDeadline);
  ASSERT_TRUE(first.ok()) << first.message();
  ASSERT_TRUE(srv.wait_event(first->buffer, kDeadline).ok());
  auto fd = srv.poll_descriptor();
  ASSERT_TRUE(fd.ok()) << fd.message();
  EXPECT_EQ(srv.poll_descriptor().value(), fd.value()) << "one descriptor per handle";
  EXPECT_TRUE(readable_within(fd.value()));
  // One taken, one waits: still readable. Both taken: not readable.
  auto m1 = srv.wait_message(kPoll);
  ASSERT_TRUE(m1.ok()) << m1.message();
  EXPECT_EQ(m1->message.word[0], 1U);
  EXPECT_TRUE(readable_now(fd.value()));
  auto m2 = srv.wait_message(kPoll);
  ASSERT_TRUE(m2.ok()) << m2.message();
  EXPECT_EQ(m2->message.word[0], 2U);
  EXPECT_FALSE(readable_now(fd.value()));
  ASSERT_TRUE(srv.send_answer(m1->buffer, NUCLEUS_RESULT_NORMAL, words(11)).ok());
  ASSERT_TRUE(srv.send_answer(m2->buffer, NUCLEUS_RESULT_NORMAL, words(12)).ok());
  EXPECT_EQ(cli.wait_answer(b1.value(), kDeadline)->message.word[0], 11U);
  EXPECT_EQ(cli.wait_answer(b2.value(), kDeadline)->message.word[0], 12U);
  EXPECT_FALSE(readable_now(fd.value()));

  // Nothing waits, then a message arrives: readable when it is published;
  // not readable again after the call that took it.
  auto empty = srv.wait_message(kPoll);
  EXPECT_EQ(empty.error(), -ETIMEDOUT);
  EXPECT_FALSE(readable_now(fd.value()));
  for (uint64_t i = 0; i < 20; ++i) {
    auto b = cli.send_message("srv", words(100 + i));
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE(readable_within(fd.value())) << i;
    auto m = srv.wait_message(kPoll);
    ASSERT_TRUE(m.ok()) << i << ": " << m.message();
    EXPECT_EQ(m->message.word[0], 100 + i);
    EXPECT_FALSE(readable_now(fd.value())) << i;
    ASSERT_TRUE(srv.send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, words(i)).ok());
    ASSERT_TRUE(cli.wait_answer(b.value(), kDeadline).ok());
  }

  // An answer is an event too.
  auto out = srv.send_message("cli", words(7));
  ASSERT_TRUE(out.ok());
  EXPECT_FALSE(readable_now(fd.value()));
  auto got = cli.wait_message(kDeadline);
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(cli.send_answer(got->buffer, NUCLEUS_RESULT_NORMAL, words(8)).ok());
  ASSERT_TRUE(readable_within(fd.value()));
  auto answer = srv.wait_answer(out.value(), kPoll);
  ASSERT_TRUE(answer.ok()) << answer.message();
  EXPECT_EQ(answer->message.word[0], 8U);
  EXPECT_FALSE(readable_now(fd.value()));
}

INSTANTIATE_TEST_SUITE_P(PollDescriptor, PollDescriptorDoorbell,
                         ::testing::Values("auto", "eventfd"),
                         [](const auto &info) { return info.param; });

// The descriptor is closed with the handle, and nucleusd's write end with
// the connection: nucleusd holds one descriptor per connection that asked,
// and none after it detached.
TEST(PollDescriptor, ClosedAtDetachOnBothSides) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  {
    // What a first attach makes nucleusd open for good is not counted.
    auto warm = attach("warm");
  }
  // Its name is free again once nucleusd has ended its connection.
  std::optional<nucleus::Nucleus> again;
  ASSERT_TRUE(eventually([&] {
    auto r = nucleus::Nucleus::attach("warm");
    if (!r.ok()) return false;
    again.emplace(std::move(r).value());
    return true;
  }));
  int before = descriptors_of(d.pid());
  int fd = -1;
  {
    auto n = attach("p");
    int attached = descriptors_of(d.pid());
    auto got = n.poll_descriptor();
    ASSERT_TRUE(got.ok()) << got.message();
    fd = got.value();
    EXPECT_EQ(descriptors_of(d.pid()), attached + 1);
    EXPECT_GE(fcntl(fd, F_GETFD), 0);
  }
  EXPECT_EQ(fcntl(fd, F_GETFD), -1) << "the handle's descriptor outlived it";
  EXPECT_TRUE(eventually([&] { return descriptors_of(d.pid()) == before; }))
      << descriptors_of(d.pid()) << " descriptors, " << before << " before";
}

// A server that waits with epoll on its nucleus descriptor and on a socket
// together, and serves both: nucleus messages from one process and bytes on
// a socketpair from another, in any order.
TEST(PollDescriptor, EpollServesTheNucleusAndASocketTogether) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  constexpr int kEach = 50;
  Signal up;
  pid_t server = spawn([&]() {
    close(pair[1]);
    auto n = nucleus::Nucleus::attach("epoll-srv");
    if (!n) return 10;
    auto fd = n->poll_descriptor();
    if (!fd) return 11;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd.value();
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd.value(), &ev) < 0) return 12;
    ev.data.fd = pair[0];
    if (epoll_ctl(ep, EPOLL_CTL_ADD, pair[0], &ev) < 0) return 13;
    up.notify();
    int messages = 0;
    int bytes = 0;
    while (messages < kEach || bytes < kEach) {
      epoll_event ready[2];
      int count = epoll_wait(ep, ready, 2, static_cast<int>(milliseconds(kDeadline).count()));
      if (count <= 0) return 14;  // nothing came within the deadline
      for (int i = 0; i < count; ++i) {
        if (ready[i].data.fd == pair[0]) {
          char byte = 0;
          ssize_t got = read(pair[0], &byte, 1);
          if (got == 0 && bytes == kEach) {  // the peer is done and gone
            epoll_ctl(ep, EPOLL_CTL_DEL, pair[0], nullptr);
            continue;
          }
          if (got != 1) return 15;
          ++bytes;
          if (write(pair[0], &byte, 1) != 1) return 16;  // echo
          continue;
        }
        // Take what waits, then wait again.
        for (;;) {
          auto m = n->wait_message(nucleus::kPoll);
          if (!m) {
            if (m.error() != -ETIMEDOUT) return 17;
            break;
          }
          ++messages;
          auto a = words(m->message.word[0] * 2);
          if (!n->send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, a)) return 18;
        }
      }
    }
    return 0;
  });
  close(pair[0]);
  ASSERT_EQ(up.wait(), 'x');
  // The socket's peer, in a process of its own.
  pid_t peer = spawn([&]() {
    for (int i = 0; i < kEach; ++i) {
      char byte = static_cast<char>(i);
      char back = 0;
      if (write(pair[1], &byte, 1) != 1 || read(pair[1], &back, 1) != 1 || back != byte) return 20;
    }
    return 0;
  });
  close(pair[1]);
  auto cli = attach("epoll-cli");
  for (uint64_t i = 1; i <= kEach; ++i) {
    auto b = cli.send_message("epoll-srv", words(i));
    ASSERT_TRUE(b.ok()) << b.message();
    auto a = cli.wait_answer(b.value(), kDeadline);
    ASSERT_TRUE(a.ok()) << a.message();
    EXPECT_EQ(a->message.word[0], 2 * i);
  }
  EXPECT_EQ(exit_code(wait_exit(peer)), 0);
  EXPECT_EQ(exit_code(wait_exit(server)), 0);
}

// examples/poll_asyncio.py: a Python 3 server over libnucleus's C API with
// ctypes, its descriptor on an asyncio loop (loop.add_reader) beside a
// timer; it answers the messages it gets and ends after kCount.
TEST(PollDescriptor, AsyncioServesThroughTheDescriptor) {
#ifdef NUCLEUS_TSAN_BUILD
  GTEST_SKIP() << "python3 cannot load a ThreadSanitizer build of libnucleus (its runtime "
                  "must be in the program; preloaded, python3 crashes): run in the other builds";
#endif
  if (system("python3 -c 'import asyncio, ctypes' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "python3 (with asyncio and ctypes) is not installed: "
                    "scripts/install-deps installs it";
  }
  Daemon d;
  ASSERT_TRUE(d.ready());
  constexpr int kCount = 20;
  std::string script = std::string(NUCLEUS_SOURCE_DIR) + "/examples/poll_asyncio.py";
  pid_t server = spawn([&]() {
    setenv("NUCLEUS_LIBRARY", NUCLEUS_LIBRARY_PATH, 1);
#ifdef NUCLEUS_SANITIZER_RUNTIME
    // The library is built with a sanitizer whose runtime must come first;
    // Python's own allocations are not ours to check for leaks.
    setenv("LD_PRELOAD", NUCLEUS_SANITIZER_RUNTIME, 1);
    setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
#endif
    std::string count = std::to_string(kCount);
    execlp("python3", "python3", script.c_str(), "py-srv", count.c_str(),
           static_cast<char *>(nullptr));
    return 127;
  });
  auto cli = attach("py-cli");
  // It attaches when it has started: until then a message to it has a
  // dummy answer.
  // A python3 that ends first (it could not load the library, say) fails
  // the test at once, with its status (its errors are on stderr).
  int status = 0;
  bool ended = false;
  ASSERT_TRUE(eventually([&] {
    if (waitpid(server, &status, WNOHANG) == server) return ended = true;
    auto b = cli.send_message("py-srv", words(0));
    if (!b.ok()) return false;
    auto a = cli.wait_answer(b.value(), kDeadline);
    return a.ok() && a->result == NUCLEUS_RESULT_NORMAL;
  }));
  ASSERT_FALSE(ended) << "python3 ended before it served, status " << status;
  for (uint64_t i = 1; i < kCount; ++i) {
    auto b = cli.send_message("py-srv", words(i));
    ASSERT_TRUE(b.ok()) << b.message();
    auto a = cli.wait_answer(b.value(), kDeadline);
    ASSERT_TRUE(a.ok()) << a.message();
    EXPECT_EQ(a->result, NUCLEUS_RESULT_NORMAL);
    EXPECT_EQ(a->message.word[0], i + 1000);
  }
  EXPECT_EQ(exit_code(wait_exit(server)), 0);
}

// ---- uid 65534 against a root nucleusd ---------------------------------------

// It asks again and again and never reads its socket; it rings and never
// drains; it sets the wait bit and gets messages it never reads. nucleusd
// answers every request at once, holds one descriptor for it, serves
// others meanwhile, and holds none once it is gone.
TEST(PollDescriptor, AHostileProcessThatAsksAndNeverReadsCostsOneDescriptor) {
  Daemon d(R"({"attach": {"uids": [65534]}})");
  ASSERT_TRUE(d.ready());
  d.let_others_in();
  Signal asked;
  Signal done;
  pid_t attacker = spawn([&]() {
    if (!become()) return 10;
    RawClient raw(d.socket_path(), "hostile");
    if (raw.status() != 0) return 11;
    std::vector<wire::Request> requests;
    for (uint32_t i = 0; i < 32; ++i) {
      wire::Request r{};
      r.op = static_cast<uint32_t>(wire::Op::kPollDescriptor);
      r.seq = i + 1;
      r.arg = wire::kPollOpen;
      requests.push_back(r);
    }
    raw.push_all(requests);
    int opened = 0;
    int refused = 0;
    for (int i = 0; i < 32; ++i) {
      wire::Event e{};
      if (!raw.next_event(&e)) return 12;
      if (e.kind != static_cast<uint32_t>(wire::EventKind::kReply)) return 13;
      if (e.result == 0) ++opened;
      if (e.result == -EEXIST) ++refused;
    }
    if (opened != 1 || refused != 31) return 14;
    // Rings by the hundred (as many as its request ring holds), never
    // drained; then the bit set, for good.
    for (int round = 0; round < 3; ++round) {
      std::vector<wire::Request> rings(64);
      for (auto &r : rings) {
        r.op = static_cast<uint32_t>(wire::Op::kPollDescriptor);
        r.arg = wire::kPollRing;
      }
      raw.push_all(rings);
    }
    wire::Request stats{};
    stats.op = static_cast<uint32_t>(wire::Op::kGetStats);
    stats.seq = 99;
    raw.push(stats);
    wire::Event e{};
    if (!raw.next_event(&e) || e.seq != 99) return 15;
    raw.header()->process_waiting.store(wire::kWaitingOnDescriptor);
    asked.notify();
    done.wait();
    return 0;
  });
  ASSERT_EQ(asked.wait(), 'x');
  // What a connection holds in nucleusd. (Counts before the first attach
  // include descriptors nucleusd closes later: the comparisons are with
  // what it holds from here.)
  int with_hostile = descriptors_of(d.pid());
  auto cli = attach("bystander");
  int per_connection = descriptors_of(d.pid()) - with_hostile;
  // Messages to the hostile one publish events with its bit set: nucleusd
  // rings a descriptor nobody reads, and serves the bystander meanwhile.
  for (uint64_t i = 0; i < 8; ++i) {
    ASSERT_TRUE(cli.send_message("hostile", words(i)).ok());  // never answered
  }
  auto self = cli.send_message("bystander", words(5));
  ASSERT_TRUE(self.ok());
  auto m = cli.wait_message(kDeadline);
  ASSERT_TRUE(m.ok()) << m.message();
  ASSERT_TRUE(cli.send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, words(6)).ok());
  EXPECT_TRUE(cli.wait_answer(self.value(), kDeadline).ok());
  // Still one pipe end for it, however much it rang.
  EXPECT_EQ(descriptors_of(d.pid()), with_hostile + per_connection);
  done.notify();
  EXPECT_EQ(exit_code(wait_exit(attacker)), 0);
  // Gone: its connection and its pipe end with it.
  EXPECT_TRUE(eventually([&] { return descriptors_of(d.pid()) <= with_hostile - 1; }))
      << descriptors_of(d.pid()) << " descriptors, " << with_hostile << " with it";
}

// It closes its read end, or makes it blocking and fills the pipe through
// a write end of its own, or passes it on to another process and detaches:
// nucleusd never blocks, and the process it passed it to reads end of file.
TEST(PollDescriptor, AHostileHolderCannotBlockNucleusd) {
  Daemon d(R"({"attach": {"uids": [65534]}})");
  ASSERT_TRUE(d.ready());
  d.let_others_in();
  Signal ready;
  Signal done;
  Signal heir_saw_eof;
  pid_t attacker = spawn([&]() {
    if (!become()) return 10;
    // The process it passes the descriptor to, forked before it attaches
    // (it holds nothing of the attacker's connection), gets it over a
    // socketpair, and reads until end of file.
    int pass[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pass) < 0) return 20;
    pid_t heir = fork();
    if (heir == 0) {
      close(pass[0]);
      char data = 0;
      iovec iov{&data, 1};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      if (recvmsg(pass[1], &msg, MSG_CMSG_CLOEXEC) != 1 || CMSG_FIRSTHDR(&msg) == nullptr) {
        heir_saw_eof.notify('r');
        _exit(1);
      }
      int kept = -1;
      std::memcpy(&kept, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof(kept));
      fcntl(kept, F_SETFL, O_NONBLOCK);
      char result = 'n';
      for (;;) {  // bytes of the messages to the giver, then end of file
        pollfd p{kept, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(milliseconds(kDeadline).count())) != 1) break;
        char byte = 0;
        ssize_t got = read(kept, &byte, 1);
        if (got == 0) result = 'e';
        if (got <= 0) break;
      }
      heir_saw_eof.notify(result);
      _exit(0);
    }
    close(pass[1]);
    auto closer = nucleus::Nucleus::attach("closer");
    auto filler = nucleus::Nucleus::attach("filler");
    auto giving = nucleus::Nucleus::attach("giver");
    if (!closer || !filler || !giving) return 11;
    std::optional<nucleus::Nucleus> giver(std::move(giving).value());
    auto c = closer->poll_descriptor();
    auto f = filler->poll_descriptor();
    auto g = giver->poll_descriptor();
    if (!c || !f || !g) return 12;
    close(c.value());  // the handle's own, closed behind its back
    // Blocking, and full through a write end of its own if it can open
    // one: the pipe is root's (nucleusd made it), mode 0600, so uid 65534
    // cannot (the unit test of PollDescriptor does it as root).
    if (fcntl(f.value(), F_SETFL, 0) < 0) return 13;
    std::string path = "/proc/self/fd/" + std::to_string(f.value());
    int own = open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NONBLOCK);
    if (own < 0 && errno != EACCES) return 14;
    char page[4096] = {};
    while (own >= 0 && write(own, page, sizeof(page)) > 0) {
    }
    // Passed on.
    char data = 'd';
    iovec iov{&data, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    int given = g.value();
    std::memcpy(CMSG_DATA(cm), &given, sizeof(given));
    if (sendmsg(pass[0], &msg, 0) != 1) return 15;
    ready.notify();
    done.wait();
    giver.reset();  // detaches: nucleusd closes its write end
    int status = 0;
    waitpid(heir, &status, 0);
    return 0;
  });
  ASSERT_EQ(ready.wait(), 'x');
  auto cli = attach("sender");
  // Every message publishes to a process with its bit set; none answers.
  for (const char *to : {"closer", "filler", "giver"}) {
    for (int i = 0; i < 3; ++i) {
      auto b = cli.send_message(to, words(1));
      ASSERT_TRUE(b.ok()) << b.message();
    }
  }
  // nucleusd serves on.
  auto self = cli.send_message("sender", words(5));
  ASSERT_TRUE(self.ok());
  auto m = cli.wait_message(kDeadline);
  ASSERT_TRUE(m.ok()) << m.message();
  ASSERT_TRUE(cli.send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, words(6)).ok());
  EXPECT_TRUE(cli.wait_answer(self.value(), kDeadline).ok());
  done.notify();
  EXPECT_EQ(heir_saw_eof.wait(), 'e');
  EXPECT_EQ(exit_code(wait_exit(attacker)), 0);
}

}  // namespace
}  // namespace nucleus::test
