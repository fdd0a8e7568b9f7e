// The message primitives between real processes through a real nucleusd.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include "harness.h"

namespace nucleus::test {
namespace {

using std::chrono::milliseconds;

// A child that answers `count` messages with word0+1 and word1 = the number
// of messages it saw before, and says when it is attached.
pid_t spawn_echo(const std::string &name, int count, Signal *attached) {
  return spawn([=]() {
    auto n = nucleus::Nucleus::attach(name);
    if (!n) return 10;
    attached->notify();
    for (int i = 0; i < count; ++i) {
      auto m = n->wait_message(std::chrono::seconds(20));
      if (!m) return 11;
      auto a = words(m->message.word[0] + 1, static_cast<uint64_t>(i));
      std::memcpy(&a.word[2], m->sender.c_str(), m->sender.size());
      if (!n->send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, a)) return 12;
    }
    return 0;
  });
}

TEST(Messaging, EchoRoundTrip) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  Signal up;
  pid_t echo = spawn_echo("echo", 3, &up);
  ASSERT_EQ(up.wait(), 'x');
  auto n = attach("client");
  for (uint64_t i = 0; i < 3; ++i) {
    auto b = n.send_message("echo", words(100 + i));
    ASSERT_TRUE(b.ok()) << b.message();
    auto a = n.wait_answer(b.value(), std::chrono::seconds(20));
    ASSERT_TRUE(a.ok()) << a.message();
    EXPECT_EQ(a->result, NUCLEUS_RESULT_NORMAL);
    EXPECT_EQ(a->message.word[0], 101 + i);
    EXPECT_STREQ(reinterpret_cast<const char *>(&a->message.word[2]), "client");
  }
  EXPECT_EQ(exit_code(wait_exit(echo)), 0);
}

TEST(Messaging, QueueIsFifo) {
  Daemon d(R"({"default_claims": {"buffers": 200}})");
  ASSERT_TRUE(d.ready());
  Signal up;
  pid_t echo = spawn_echo("sink", 200, &up);
  ASSERT_EQ(up.wait(), 'x');
  auto n = attach("client");
  std::vector<nucleus::Buffer> sent;
  for (uint64_t i = 0; i < 200; ++i) {
    auto b = n.send_message("sink", words(i));
    ASSERT_TRUE(b.ok()) << b.message();
    sent.push_back(b.value());
  }
  for (uint64_t i = 0; i < 200; ++i) {
    auto a = n.wait_answer(sent[i]);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->message.word[0], i + 1);
    EXPECT_EQ(a->message.word[1], i) << "message " << i << " was not served in order";
  }
  EXPECT_EQ(exit_code(wait_exit(echo)), 0);
}

TEST(Messaging, WaitEventServesOutOfOrder) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  Signal up;
  // A server that looks at three messages without taking them, then takes
  // and answers them last first.
  pid_t server = spawn([&]() {
    auto n = nucleus::Nucleus::attach("server");
    if (!n) return 10;
    up.notify();
    std::vector<nucleus::Event> seen;
    nucleus::Buffer prev = 0;
    while (seen.size() < 3) {
      auto e = n->wait_event(prev, std::chrono::seconds(20));
      if (!e || e->kind != NUCLEUS_EVENT_MESSAGE) return 11;
      seen.push_back(e.value());
      prev = e->buffer;
    }
    // Looking did not take: wait_event from the start finds the first again.
    auto first = n->wait_event(0, kPoll);
    if (!first || first->buffer != seen[0].buffer) return 12;
    for (int i = 2; i >= 0; --i) {
      if (!n->get_event(seen[i].buffer)) return 13;
      if (n->get_event(seen[i].buffer).error() != -ENOENT) return 14;
      if (!n->send_answer(seen[i].buffer, NUCLEUS_RESULT_NORMAL,
                          words(seen[i].message.word[0] * 10))) {
        return 15;
      }
    }
    return 0;
  });
  ASSERT_EQ(up.wait(), 'x');
  auto n = attach("client");
  nucleus::Buffer b[3];
  for (uint64_t i = 0; i < 3; ++i) b[i] = n.send_message("server", words(i + 1)).value();
  // Answers arrive last first; wait_event sees them in that order.
  auto e = n.wait_event(0, std::chrono::seconds(20));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->kind, NUCLEUS_EVENT_ANSWER);
  EXPECT_EQ(e->buffer, b[2]);
  EXPECT_EQ(e->message.word[0], 30U);
  ASSERT_TRUE(n.get_event(b[2]).ok());
  // get_event took the answer: the buffer is back, wait_answer refuses it.
  EXPECT_EQ(n.wait_answer(b[2], kPoll).error(), -EBADF);
  for (int i : {0, 1}) {
    auto a = n.wait_answer(b[i], std::chrono::seconds(20));
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->message.word[0], (i + 1) * 10U);
  }
  EXPECT_EQ(n.wait_event(b[0], kPoll).error(), -ENOENT);
  EXPECT_EQ(exit_code(wait_exit(server)), 0);
}

TEST(Messaging, UnknownReceiverGetsDummyAnswer) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  auto n = attach("client");
  auto b = n.send_message("nobody", words(1));
  ASSERT_TRUE(b.ok());
  auto a = n.wait_answer(b.value(), std::chrono::seconds(20));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->result, NUCLEUS_RESULT_DUMMY);
}

TEST(Messaging, TimeoutsLeaveTheQueueAsItWas) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  auto n = attach("a");
  auto peer = attach("b");
  EXPECT_EQ(n.wait_message(kPoll).error(), -ETIMEDOUT);
  EXPECT_EQ(n.wait_message(milliseconds(5)).error(), -ETIMEDOUT);
  EXPECT_EQ(n.wait_event(0, milliseconds(5)).error(), -ETIMEDOUT);
  auto b = n.send_message("b", words(7));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(n.wait_answer(b.value(), kPoll).error(), -ETIMEDOUT);
  EXPECT_EQ(n.wait_answer(b.value(), milliseconds(5)).error(), -ETIMEDOUT);
  // The message is still there for b, and the answer still reaches a.
  auto m = peer.wait_message(std::chrono::seconds(20));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->sender, "a");
  ASSERT_TRUE(peer.send_answer(m->buffer, NUCLEUS_RESULT_REJECTED, words(8)).ok());
  auto a = n.wait_answer(b.value(), std::chrono::seconds(20));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->result, NUCLEUS_RESULT_REJECTED);
  EXPECT_EQ(a->message.word[0], 8U);
}

TEST(Messaging, StaleForgedAndForeignHandlesAreRefused) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  auto a = attach("a");
  auto b = attach("b");
  auto c = attach("c");
  auto h = a.send_message("b", words(1)).value();
  auto m = b.wait_message(std::chrono::seconds(20));
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->buffer, h);
  // Foreign: c did not receive it; a sent it; neither may answer it.
  EXPECT_EQ(c.send_answer(h, 1, words(0)).error(), -EBADF);
  EXPECT_EQ(a.send_answer(h, 1, words(0)).error(), -EBADF);
  EXPECT_EQ(c.wait_answer(h, kPoll).error(), -EBADF);
  EXPECT_EQ(b.wait_answer(h, kPoll).error(), -EBADF);
  // Forged.
  EXPECT_EQ(b.send_answer(h ^ (1ULL << 40), 1, words(0)).error(), -EBADF);
  EXPECT_EQ(a.wait_answer(0x123456789, kPoll).error(), -EBADF);
  EXPECT_EQ(b.send_answer(h, 0, words(0)).error(), -EINVAL);
  EXPECT_EQ(b.send_answer(h, NUCLEUS_RESULT_DUMMY, words(0)).error(), -EINVAL);
  ASSERT_TRUE(b.send_answer(h, 1, words(2)).ok());
  EXPECT_EQ(b.send_answer(h, 1, words(2)).error(), -EBADF);  // answered twice
  ASSERT_TRUE(a.wait_answer(h, std::chrono::seconds(20)).ok());
  // Stale: the buffer went back to the claim.
  EXPECT_EQ(a.wait_answer(h, kPoll).error(), -EBADF);
  // The daemon refused nothing: libnucleus caught all of these itself.
  auto s = a.get_stats();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->protocol_errors, 0U);
}

TEST(Messaging, ClaimExhaustionFailsAtOnceAndTakesNoOtherShare) {
  Daemon d(R"({"default_claims": {"buffers": 4}})");
  ASSERT_TRUE(d.ready());
  auto a = attach("a");
  auto b = attach("b");
  auto sink = attach("sink");
  std::vector<nucleus::Buffer> out;
  for (int i = 0; i < 4; ++i) out.push_back(a.send_message("sink", words(i)).value());
  auto full = a.send_message("sink", words(4));
  EXPECT_EQ(full.error(), -ENOBUFS);
  EXPECT_NE(std::string(full.message()).find("claim"), std::string::npos);
  // b's share is its own.
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(b.send_message("sink", words(i)).ok());
  EXPECT_EQ(b.send_message("sink", words(4)).error(), -ENOBUFS);
  // One answer taken gives a one buffer back.
  auto m = sink.wait_message(std::chrono::seconds(20));
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(sink.send_answer(m->buffer, 1, words(0)).ok());
  ASSERT_TRUE(a.wait_answer(out[0], std::chrono::seconds(20)).ok());
  EXPECT_TRUE(a.send_message("sink", words(5)).ok());
  EXPECT_EQ(a.send_message("sink", words(6)).error(), -ENOBUFS);
  auto s = a.get_stats();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->claim_buffers, 4U);
  EXPECT_EQ(s->claim_used, 4U);
}

TEST(Messaging, NamesAreUniqueAndValid) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  auto a = attach("taken");
  nucleus_t *n = nullptr;
  EXPECT_EQ(nucleus_attach("taken", &n), -EEXIST);
  for (const char *bad :
       {"", "with space", "slash/", "0123456789012345678901234567890123", "caf\xc3\xa9"}) {
    EXPECT_EQ(nucleus_attach(bad, &n), -EINVAL) << bad;
  }
  RawClient raw(d.socket_path(), "taken");  // the daemon checks too
  EXPECT_EQ(raw.status(), -EEXIST);
  RawClient raw_bad(d.socket_path(), "bad name");
  EXPECT_EQ(raw_bad.status(), -EINVAL);
  // A freed name can be taken again.
  a = nucleus::Nucleus();
  auto again = nucleus::Nucleus::attach("taken");
  eventually([&] {  // the detach is seen asynchronously
    if (!again.ok() && again.error() == -EEXIST) again = nucleus::Nucleus::attach("taken");
    return again.ok() || again.error() != -EEXIST;
  });
  EXPECT_TRUE(again.ok()) << again.message();
}

TEST(Messaging, EventfdDoorbells) {
  Daemon d(R"({"doorbell": "eventfd"})");
  ASSERT_TRUE(d.ready());
  EXPECT_NE(d.log().find("eventfd per process"), std::string::npos);
  Signal up;
  pid_t echo = spawn_echo("echo", 50, &up);
  ASSERT_EQ(up.wait(), 'x');
  auto n = attach("client");
  for (uint64_t i = 0; i < 50; ++i) {
    auto a = n.wait_answer(n.send_message("echo", words(i)).value(), std::chrono::seconds(20));
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->message.word[0], i + 1);
  }
  EXPECT_EQ(exit_code(wait_exit(echo)), 0);
}

TEST(Messaging, SmallRingsBackPressureLosesNothing) {
  // Rings of 4 entries and 1000 messages in flight: the event ring backlog
  // and the full request ring both get exercised.
  Daemon d(R"({"default_claims": {"buffers": 1000},
               "channel": {"request_entries": 4, "event_entries": 4}})");
  ASSERT_TRUE(d.ready());
  Signal up;
  pid_t echo = spawn_echo("echo", 1000, &up);
  ASSERT_EQ(up.wait(), 'x');
  auto n = attach("client");
  std::vector<nucleus::Buffer> sent;
  for (uint64_t i = 0; i < 1000; ++i) {
    auto b = n.send_message("echo", words(i));
    ASSERT_TRUE(b.ok()) << b.message();
    sent.push_back(b.value());
  }
  for (uint64_t i = 0; i < 1000; ++i) {
    auto a = n.wait_answer(sent[i], std::chrono::seconds(20));
    ASSERT_TRUE(a.ok()) << i;
    EXPECT_EQ(a->message.word[0], i + 1);
    EXPECT_EQ(a->message.word[1], i);
  }
  EXPECT_EQ(exit_code(wait_exit(echo)), 0);
}

TEST(Messaging, DataAreaIsMappedAndPrivate) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  auto a = attach("a");
  auto b = attach("b");
  size_t size_a = 0;
  size_t size_b = 0;
  auto *pa = static_cast<char *>(nucleus_data_area(a.c_handle(), &size_a));
  auto *pb = static_cast<char *>(nucleus_data_area(b.c_handle(), &size_b));
  ASSERT_NE(pa, nullptr);
  EXPECT_EQ(size_a, 1U << 20);  // channel.data_bytes' default (decision 69)
  pa[0] = 'a';
  pb[0] = 'b';
  pa[size_a - 1] = 'z';
  EXPECT_EQ(pa[0], 'a');
}

// Every message and answer says who sent it, stamped by nucleusd from the
// peer's credentials (DESIGN.md, "An OS authorises by the sender's
// principal"): a root receiver learns that uid 65534 sent, with its real pid,
// and the uid 65534 sender learns who answered; the nucleus and devices say
// so. Nothing a sender writes in its channel changes it.
TEST(Messaging, EveryMessageAndAnswerCarriesItsSendersPrincipal) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  Daemon d(R"({"attach": {"uids": [65534]}})");
  ASSERT_TRUE(d.ready()) << d.log();
  d.let_others_in();
  auto root = attach("root-receiver");
  Signal answered;
  pid_t sender = spawn([&] {
    if (!become()) return 10;
    auto n = nucleus::Nucleus::attach("nobody-sender");
    if (!n) return 11;
    auto b = n->send_message("root-receiver", words(5));
    if (!b) return 12;
    auto a = n->wait_answer(b.value(), kDeadline);
    if (!a) return 13;
    // The answer is the root receiver's.
    if (a->from_name() != "root-receiver" || a->principal.kind != NUCLEUS_FROM_PROCESS ||
        a->principal.uid != 0 || a->principal.pid != static_cast<int32_t>(a->message.word[0])) {
      return 14;
    }
    // A dummy answer is the nucleus's, with nucleusd's pid.
    auto nobody = n->send_message("no-such-process", words(1));
    if (!nobody) return 15;
    auto dummy = n->wait_answer(nobody.value(), kDeadline);
    if (!dummy || dummy->result != NUCLEUS_RESULT_DUMMY ||
        dummy->principal.kind != NUCLEUS_FROM_NUCLEUS || dummy->from_name() != "nucleus" ||
        dummy->principal.pid != static_cast<int32_t>(a->message.word[1])) {
      return 16;
    }
    // A device of the configuration answers as a device.
    auto tick = n->send_message("null", words(0));
    if (!tick) return 17;
    auto null_answer = n->wait_answer(tick.value(), kDeadline);
    if (!null_answer || null_answer->principal.kind != NUCLEUS_FROM_DEVICE ||
        null_answer->from_name() != "null") {
      return 18;
    }
    return 0;
  });
  auto m = root.wait_message(kDeadline);
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_EQ(m->sender, "nobody-sender");
  EXPECT_EQ(m->principal.kind, static_cast<uint32_t>(NUCLEUS_FROM_PROCESS));
  EXPECT_EQ(m->principal.uid, kNobody);
  EXPECT_EQ(m->principal.gid, kNobody);
  EXPECT_EQ(m->principal.pid, sender);
  ASSERT_TRUE(
      root.send_answer(m->buffer, NUCLEUS_RESULT_NORMAL,
                       words(static_cast<uint64_t>(getpid()), static_cast<uint64_t>(d.pid())))
          .ok());
  EXPECT_EQ(exit_code(wait_exit(sender)), 0);
}

}  // namespace
}  // namespace nucleus::test
