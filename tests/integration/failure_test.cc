// What dies, misbehaves or is refused: death of receivers and senders, bad
// credentials, garbage in a channel, malformed requests, and shutdown.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include "harness.h"

namespace nucleus::test {
namespace {

using std::chrono::seconds;

TEST(Failure, ReceiverKilledHoldingMessagesGivesDummyAnswers) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  Signal up;
  Signal took;
  pid_t receiver = spawn([&]() {
    auto n = nucleus::Nucleus::attach("receiver");
    if (!n) return 10;
    up.notify();
    auto m = n->wait_message(seconds(20));  // received, never answered
    if (!m) return 11;
    took.notify();
    pause();
    return 0;
  });
  ASSERT_EQ(up.wait(), 'x');
  auto n = attach("client");
  nucleus::Buffer b[3];
  for (uint64_t i = 0; i < 3; ++i) b[i] = n.send_message("receiver", words(i)).value();
  ASSERT_EQ(took.wait(), 'x');
  kill(receiver, SIGKILL);
  for (auto h : b) {
    auto a = n.wait_answer(h, seconds(20));
    ASSERT_TRUE(a.ok()) << a.message();
    EXPECT_EQ(a->result, NUCLEUS_RESULT_DUMMY);
  }
  EXPECT_TRUE(WIFSIGNALED(wait_exit(receiver)));
  nucleus::Stats s{};
  EXPECT_TRUE(wait_stats(
      n, [](const nucleus::Stats &st) { return st.processes == 1; }, &s));
  EXPECT_EQ(s.pool_free, s.pool_buffers - s.claim_buffers);
}

TEST(Failure, SenderKilledWithMessagesOutLeaksNothing) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  auto receiver = attach("receiver");
  Signal sent;
  pid_t sender = spawn([&]() {
    auto n = nucleus::Nucleus::attach("sender");
    if (!n) return 10;
    for (uint64_t i = 0; i < 5; ++i) {
      if (!n->send_message("receiver", words(i))) return 11;
    }
    if (!n->send_message("nobody", words(9))) return 12;  // answered, never taken
    // Make sure all six reached the nucleus before we are killed.
    if (!n->get_stats()) return 13;
    sent.notify();
    pause();
    return 0;
  });
  ASSERT_EQ(sent.wait(), 'x');
  kill(sender, SIGKILL);
  EXPECT_TRUE(WIFSIGNALED(wait_exit(sender)));
  ASSERT_TRUE(wait_stats(receiver, [](const nucleus::Stats &s) { return s.processes == 1; }));
  // The messages of the dead sender are still delivered and can be answered.
  for (uint64_t i = 0; i < 5; ++i) {
    auto m = receiver.wait_message(seconds(20));
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->sender, "sender");
    EXPECT_EQ(m->message.word[0], i);
    if (i == 4) {
      // Until the last is answered, one buffer is still out.
      auto s = receiver.get_stats();
      ASSERT_TRUE(s.ok());
      EXPECT_EQ(s->pool_free, s->pool_buffers - s->claim_buffers - 1);
    }
    ASSERT_TRUE(receiver.send_answer(m->buffer, 1, words(0)).ok());
  }
  nucleus::Stats s{};
  ASSERT_TRUE(wait_stats(
      receiver,
      [](const nucleus::Stats &st) { return st.pool_free + st.claim_buffers == st.pool_buffers; },
      &s));
  EXPECT_EQ(s.queue_length, 0U);
}

TEST(Failure, DisallowedUidIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  Daemon d(R"({"attach": {"allow_own_uid": true, "uids": [], "gids": []}})");
  ASSERT_TRUE(d.ready());
  ASSERT_EQ(chmod((d.dir()).c_str(), 0755), 0);
  ASSERT_EQ(chmod((d.dir() + "/run").c_str(), 0755), 0);
  pid_t stranger = spawn([]() {
    if (setgid(65534) != 0 || setuid(65534) != 0) return 10;
    nucleus_t *n = nullptr;
    int rc = nucleus_attach("stranger", &n);
    return rc == -EACCES ? 0 : 11;
  });
  EXPECT_EQ(exit_code(wait_exit(stranger)), 0);
  EXPECT_NE(d.log().find("attach refused"), std::string::npos);
  // Allowed by uid in the configuration.
  Daemon d2(R"({"attach": {"allow_own_uid": true, "uids": [65534]}})");
  ASSERT_TRUE(d2.ready());
  ASSERT_EQ(chmod(d2.dir().c_str(), 0755), 0);
  pid_t friendly = spawn([]() {
    if (setgid(65534) != 0 || setuid(65534) != 0) return 10;
    auto n = nucleus::Nucleus::attach("friend");
    return n.ok() ? 0 : 11;
  });
  EXPECT_EQ(exit_code(wait_exit(friendly)), 0);
}

TEST(Failure, MalformedRequestsGetErrorsThenDetach) {
  Daemon d(R"({"protocol": {"max_errors": 5}})");
  ASSERT_TRUE(d.ready());
  auto other = attach("other");
  RawClient raw(d.socket_path(), "raw");
  ASSERT_EQ(raw.status(), 0);
  struct Case {
    wire::Request r;
    int expected;
  };
  wire::Request unknown_op{};
  unknown_op.op = 999;
  wire::Request bad_name{};
  bad_name.op = static_cast<uint32_t>(wire::Op::kSendMessage);
  bad_name.handle = wire::next_handle(raw.slot(0));
  std::memset(bad_name.name, 'x', sizeof(bad_name.name));  // no NUL
  wire::Request forged{};
  forged.op = static_cast<uint32_t>(wire::Op::kSendAnswer);
  forged.handle = 0xdeadbeef12345ULL;
  forged.arg = 1;
  wire::Request foreign_send{};  // a buffer that is not in raw's claim
  foreign_send.op = static_cast<uint32_t>(wire::Op::kSendMessage);
  foreign_send.handle = wire::make_handle(4000, 1);
  std::strcpy(foreign_send.name, "other");
  wire::Request bad_result{};
  bad_result.op = static_cast<uint32_t>(wire::Op::kSendAnswer);
  bad_result.arg = 5;
  Case cases[] = {{unknown_op, EPROTO},
                  {bad_name, EINVAL},
                  {forged, EBADF},
                  {foreign_send, EBADF},
                  {bad_result, EINVAL}};
  uint32_t seq = 0;
  for (Case &c : cases) {
    c.r.seq = ++seq;
    raw.push(c.r);
    wire::Event e{};
    ASSERT_TRUE(raw.next_event(&e));
    EXPECT_EQ(e.kind, static_cast<uint32_t>(wire::EventKind::kError));
    EXPECT_EQ(e.seq, seq);
    EXPECT_EQ(e.result, c.expected) << "case " << seq;
  }
  // The sixth strike detaches it; the others are unharmed.
  raw.push(unknown_op);
  EXPECT_TRUE(raw.wait_closed());
  EXPECT_EQ(raw.header()->state.load(), static_cast<uint32_t>(wire::ChannelState::kDetached));
  EXPECT_NE(d.log().find("too many malformed requests"), std::string::npos);
  ASSERT_TRUE(wait_stats(other, [](const nucleus::Stats &s) { return s.processes == 1; }));
  auto b = other.send_message("other", words(1));
  ASSERT_TRUE(b.ok());
  auto m = other.wait_message(seconds(20));
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(other.send_answer(m->buffer, 1, words(2)).ok());
  EXPECT_TRUE(other.wait_answer(b.value(), seconds(20)).ok());
}

TEST(Failure, GarbageInAChannelDoesNotHurtTheDaemonOrOthers) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  auto a = attach("a");
  auto b = attach("b");
  std::mt19937_64 rng(12345);
  for (int round = 0; round < 20; ++round) {
    RawClient raw(d.socket_path(), "vandal" + std::to_string(round));
    ASSERT_EQ(raw.status(), 0);
    // Scribble over everything the process can write, header included, then
    // ring the doorbell.
    auto *words64 = reinterpret_cast<uint64_t *>(raw.base());
    size_t count = raw.bytes() / 8;
    size_t from = round % 2 == 0 ? 0 : raw.header()->requests_offset / 8;
    for (size_t i = from; i < count; ++i) words64[i] = rng();
    if (round % 4 == 1) raw.header()->requests_tail.store(static_cast<uint32_t>(rng() % 8));
    syscall(SYS_futex, &raw.header()->requests_tail, FUTEX_WAKE, 1, nullptr, nullptr, 0);
    // A full round trip between a and b proves the daemon is serving.
    auto h = a.send_message("b", words(round));
    ASSERT_TRUE(h.ok());
    auto m = b.wait_message(seconds(20));
    ASSERT_TRUE(m.ok());
    ASSERT_TRUE(b.send_answer(m->buffer, 1, words(round + 1)).ok());
    auto ans = a.wait_answer(h.value(), seconds(20));
    ASSERT_TRUE(ans.ok());
    EXPECT_EQ(ans->message.word[0], static_cast<uint64_t>(round + 1));
  }
  // Every vandal is gone (detached or closed) and nothing leaked.
  nucleus::Stats s{};
  ASSERT_TRUE(wait_stats(
      a, [](const nucleus::Stats &st) { return st.processes == 2; }, &s));
  EXPECT_EQ(s.pool_free, s.pool_buffers - 2 * s.claim_buffers);
  EXPECT_EQ(kill(d.pid(), 0), 0);
}

TEST(Failure, SigtermReleasesEveryBlockedCaller) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  auto silent = attach("silent");  // receives, never answers
  Signal up;
  pid_t waiter = spawn([&]() {
    auto n = nucleus::Nucleus::attach("waiter");
    if (!n) return 10;
    up.notify();
    auto m = n->wait_message();  // forever
    if (m.error() != -ESHUTDOWN) std::fprintf(stderr, "waiter: %s\n", m.message().data());
    return m.error() == -ESHUTDOWN ? 0 : 11;
  });
  pid_t asker = spawn([&]() {
    auto n = nucleus::Nucleus::attach("asker");
    if (!n) return 10;
    auto b = n->send_message("silent", words(1));
    if (!b) return 12;
    up.notify();
    auto a = n->wait_answer(b.value());  // forever: waiter never answers
    if (a.error() != -ESHUTDOWN) {
      std::fprintf(stderr, "asker: %d %s\n", a.error(), a.message().data());
      return 11;
    }
    // Later calls fail the same way instead of hanging.
    return n->send_message("silent", words(2)).error() == -ESHUTDOWN ? 0 : 13;
  });
  ASSERT_EQ(up.wait(), 'x');
  ASSERT_EQ(up.wait(), 'x');
  int status = d.stop(SIGTERM);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(exit_code(wait_exit(waiter)), 0);
  EXPECT_EQ(exit_code(wait_exit(asker)), 0);
  struct stat st {};
  EXPECT_NE(stat(d.socket_path().c_str(), &st), 0) << "socket left behind";
}

TEST(Failure, VanishedDaemonIsNoticedByBlockedCallers) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  Signal up;
  pid_t waiter = spawn([&]() {
    auto n = nucleus::Nucleus::attach("waiter");
    if (!n) return 10;
    up.notify();
    auto m = n->wait_message();
    return m.error() == -ECONNRESET ? 0 : 11;
  });
  ASSERT_EQ(up.wait(), 'x');
  d.stop(SIGKILL);
  EXPECT_EQ(exit_code(wait_exit(waiter)), 0);
}

TEST(Failure, BadConfigurationIsRefusedWithTheFieldPath) {
  Daemon d(R"({"pool": {"buffers": -3}})");
  EXPECT_FALSE(d.ready());
  EXPECT_NE(d.log().find("pool.buffers: expected an integer in [1, 16777216], got -3"),
            std::string::npos)
      << d.log();
}

TEST(Failure, SilentConnectionIsClosedAfterTheAttachTimeout) {
  Daemon d(R"({"attach": {"timeout_ms": 50}})");
  ASSERT_TRUE(d.ready());
  int fd = connect_to(d.socket_path());
  ASSERT_GE(fd, 0);
  // Send nothing; wait for nucleusd to hang up.
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  ASSERT_EQ(poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kDeadline).count())), 1);
  char byte = 0;
  EXPECT_EQ(recv(fd, &byte, 1, MSG_DONTWAIT), 0);
  close(fd);
  EXPECT_NE(d.log().find("sent no attach request"), std::string::npos);
  auto n = attach("after");  // and it still serves
  EXPECT_TRUE(n.get_stats().ok());
}

TEST(Failure, SecondDaemonOnTheSameSocketIsRefused) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  pid_t second = spawn([&]() {
    std::string run = d.dir() + "/run";
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);
    execl(NUCLEUSD_PATH, "nucleusd", "--runtime-dir", run.c_str(), nullptr);
    return 127;
  });
  EXPECT_EQ(exit_code(wait_exit(second)), 1);
  auto n = attach("still-served");
  EXPECT_TRUE(n.get_stats().ok());
}

}  // namespace
}  // namespace nucleus::test
