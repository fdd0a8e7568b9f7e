// Data lent with a message, copies through nucleusd, and regret, between
// real processes through a real nucleusd (docs/data-and-regret.md). Every
// test asserts on the bytes that arrived and the answers that came, not on
// what nucleusd says.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <numeric>
#include <vector>

#include "harness.h"

namespace nucleus::test {
namespace {

using std::chrono::seconds;

constexpr uint64_t kArea = 1 << 20;  // channel.data_bytes' default

std::span<const std::byte> bytes_of(const std::vector<uint8_t> &v) {
  return std::as_bytes(std::span(v));
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 8));
  return v;
}

// A server that takes `count` messages, and for each copies the whole lend
// into its own area, adds 1 to every byte and copies it back (when it may),
// then answers with word 0 = the copy_from result, word 1 = copy_to's.
pid_t spawn_adder(const std::string &name, int count, Signal *up) {
  return spawn([=]() {
    auto n = nucleus::Nucleus::attach(name);
    if (!n) return 10;
    up->notify();
    for (int i = 0; i < count; ++i) {
      auto m = n->wait_message(seconds(20));
      if (!m) return 11;
      std::span<std::byte> area = n->data();
      uint64_t len = m->lend.bytes;
      if (m->lend.offset != 0 || len > area.size()) return 12;
      auto from = n->copy_from(m->buffer, 0, area.first(len));
      for (uint64_t k = 0; k < len; ++k) area[k] = static_cast<std::byte>(uint8_t(area[k]) + 1);
      auto to = n->copy_to(m->buffer, 0, area.first(len));
      auto a = words(static_cast<uint64_t>(from.error()), static_cast<uint64_t>(to.error()));
      a.word[2] = m->lend.rights;
      if (!n->send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, a)) return 13;
    }
    return 0;
  });
}

int64_t err(uint64_t w) {
  return static_cast<int64_t>(w);
}

TEST(DataLend, AMessageCarriesDataThereAndBackInOneRoundTrip) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  Signal up;
  pid_t server = spawn_adder("adder", 3, &up);
  ASSERT_EQ(up.wait(), 'x');
  auto n = attach("client");
  ASSERT_EQ(n.data().size(), kArea);
  for (size_t size : {size_t{1}, size_t{4096}, size_t{65536}}) {
    std::vector<uint8_t> value = pattern(size, static_cast<uint8_t>(size));
    auto b = n.send_data("adder", words(1),
                         nucleus::Lend{100, size, NUCLEUS_LEND_READ | NUCLEUS_LEND_WRITE, 0},
                         bytes_of(value));
    ASSERT_TRUE(b.ok()) << b.message();
    auto a = n.wait_answer(b.value(), seconds(20));
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(err(a->message.word[0]), 0);
    EXPECT_EQ(err(a->message.word[1]), 0);
    EXPECT_EQ(a->message.word[2], uint64_t{NUCLEUS_LEND_READ | NUCLEUS_LEND_WRITE});
    auto area = n.data_area();
    for (size_t k = 0; k < size; ++k) {
      ASSERT_EQ(area[100 + k], static_cast<uint8_t>(value[k] + 1)) << "byte " << k;
    }
  }
  EXPECT_EQ(exit_code(wait_exit(server)), 0);
}

TEST(DataLend, RangesAtTheEdges) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  Signal up;
  pid_t server = spawn([&]() {
    auto n = nucleus::Nucleus::attach("edges");
    if (!n) return 10;
    up.notify();
    for (int i = 0; i < 2; ++i) {
      auto m = n->wait_message(seconds(20));
      if (!m) return 11;
      nucleus::Message a{};
      uint64_t len = m->lend.bytes;
      a.word[0] = len;
      // Nothing, at the very end of the lend: fine. One byte past: EFAULT.
      a.word[1] = static_cast<uint64_t>(nucleus_copy_from(n->c_handle(), m->buffer, len, 0, 0));
      a.word[2] = static_cast<uint64_t>(nucleus_copy_from(n->c_handle(), m->buffer, len, 0, 1));
      a.word[3] = static_cast<uint64_t>(nucleus_copy_from(n->c_handle(), m->buffer, 0, 0, len + 1));
      // The whole lend: the whole area, one request's worth.
      a.word[4] = static_cast<uint64_t>(nucleus_copy_from(n->c_handle(), m->buffer, 0, 0, len));
      const uint8_t *own = static_cast<uint8_t *>(nucleus_data_area(n->c_handle(), nullptr));
      bool arrived = len != 0 && own[0] == 'F' && own[len - 1] == 'L';
      // Into its own area past its end: ERANGE; up to its end: fine.
      a.word[5] =
          static_cast<uint64_t>(nucleus_copy_from(n->c_handle(), m->buffer, 0, kArea - 1, 2));
      a.word[6] =
          static_cast<uint64_t>(nucleus_copy_from(n->c_handle(), m->buffer, 0, kArea - 1, 1));
      // Offsets that would overflow: EFAULT, never a wrapped copy.
      a.word[7] =
          static_cast<uint64_t>(nucleus_copy_from(n->c_handle(), m->buffer, UINT64_MAX - 1, 0, 4));
      if (len != 0) a.word[0] = arrived ? len : 0;
      if (!n->send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, a)) return 12;
    }
    return 0;
  });
  ASSERT_EQ(up.wait(), 'x');
  auto n = attach("client");
  auto area = n.data_area();
  // One past the area, and past it by overflow: refused here, nothing sent.
  nucleus::Lend past{1, kArea, NUCLEUS_LEND_READ, 0};
  EXPECT_EQ(n.send_message("edges", words(0), past).error(), -EFAULT);
  EXPECT_EQ(
      n.send_message("edges", words(0), nucleus::Lend{kArea, 1, NUCLEUS_LEND_READ, 0}).error(),
      -EFAULT);
  EXPECT_EQ(
      n.send_message("edges", words(0), nucleus::Lend{UINT64_MAX, 2, NUCLEUS_LEND_READ, 0}).error(),
      -EFAULT);
  EXPECT_EQ(n.send_message("edges", words(0), nucleus::Lend{0, 1, 4, 0}).error(), -EINVAL);
  EXPECT_EQ(n.send_message("edges", words(0), nucleus::Lend{0, 1, 0, 0}).error(), -EINVAL);
  auto stats = n.get_stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->claim_used, 0U);  // no refused send took a buffer
  // 0 bytes: no lend at all.
  auto none = n.send_message("edges", words(0), nucleus::Lend{5, 0, NUCLEUS_LEND_READ, 0});
  ASSERT_TRUE(none.ok());
  auto a0 = n.wait_answer(none.value(), seconds(20));
  ASSERT_TRUE(a0.ok());
  EXPECT_EQ(a0->message.word[0], 0U);
  EXPECT_EQ(err(a0->message.word[4]), -ENODATA);
  // The whole area.
  area[0] = 'F';
  area[kArea - 1] = 'L';
  auto whole = n.send_message("edges", words(0), nucleus::Lend{0, kArea, NUCLEUS_LEND_READ, 0});
  ASSERT_TRUE(whole.ok());
  auto a = n.wait_answer(whole.value(), seconds(20));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->message.word[0], kArea) << "the bytes did not arrive";
  EXPECT_EQ(err(a->message.word[1]), 0);
  EXPECT_EQ(err(a->message.word[2]), -EFAULT);
  EXPECT_EQ(err(a->message.word[3]), -EFAULT);
  EXPECT_EQ(err(a->message.word[4]), 0);
  EXPECT_EQ(err(a->message.word[5]), -ERANGE);
  EXPECT_EQ(err(a->message.word[6]), 0);
  EXPECT_EQ(err(a->message.word[7]), -EFAULT);
  EXPECT_EQ(exit_code(wait_exit(server)), 0);
}

TEST(DataLend, ReadOnlyLendIsNotWrittenAndACopyAfterTheAnswerIsRefused) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  Signal up;
  pid_t server = spawn([&]() {
    auto n = nucleus::Nucleus::attach("reader");
    if (!n) return 10;
    up.notify();
    auto m = n->wait_message(seconds(20));
    if (!m || m->lend.rights != NUCLEUS_LEND_READ) return 11;
    auto area = n->data();
    std::memset(area.data(), 'X', 64);
    nucleus::Message a{};
    auto refused = n->copy_to(m->buffer, 0, area.first(64));
    a.word[0] = static_cast<uint64_t>(refused.error());
    // The failure names its cause, not errno's general text.
    a.word[3] =
        refused.message().find("the lend does not give that right") != std::string_view::npos;
    a.word[1] = static_cast<uint64_t>(n->copy_from(m->buffer, 0, area.first(64)).error());
    // A span that is not in the data area.
    std::byte outside[8];
    a.word[2] = static_cast<uint64_t>(n->copy_from(m->buffer, 0, std::span(outside)).error());
    if (!n->send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, a)) return 12;
    // Answered: the lend is over (the library and nucleusd both refuse).
    if (n->copy_from(m->buffer, 0, area.first(1)).error() != -EBADF) return 13;
    if (n->copy_to(m->buffer, 0, area.first(1)).error() != -EBADF) return 14;
    return 0;
  });
  ASSERT_EQ(up.wait(), 'x');
  auto n = attach("client");
  std::vector<uint8_t> value = pattern(64, 3);
  auto b = n.send_data("reader", words(0), bytes_of(value));  // read only
  ASSERT_TRUE(b.ok());
  auto a = n.wait_answer(b.value(), seconds(20));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(err(a->message.word[0]), -EACCES);
  EXPECT_EQ(err(a->message.word[1]), 0);
  EXPECT_EQ(err(a->message.word[2]), -EINVAL);
  EXPECT_EQ(a->message.word[3], 1U) << "copy_to's failure did not name the lend's rights";
  EXPECT_EQ(std::memcmp(n.data_area().data(), value.data(), value.size()), 0)
      << "a read-only lend was written";
  EXPECT_EQ(exit_code(wait_exit(server)), 0);
}

TEST(DataLend, TheSenderKilledWhileTheReceiverCopiesEndsTheLendNotTheReceiver) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  auto server = attach("server");
  Signal sent;
  pid_t sender = spawn([&]() {
    auto n = nucleus::Nucleus::attach("doomed");
    if (!n) return 10;
    std::memset(n->data().data(), 'd', 4096);
    if (!n->send_message("server", words(1),
                         nucleus::Lend{0, 4096, NUCLEUS_LEND_READ | NUCLEUS_LEND_WRITE, 0})) {
      return 11;
    }
    sent.notify();
    pause();  // until killed
    return 0;
  });
  ASSERT_EQ(sent.wait(), 'x');
  auto m = server.wait_message(seconds(20));
  ASSERT_TRUE(m.ok());
  auto area = server.data();
  ASSERT_TRUE(server.copy_from(m->buffer, 0, area.first(4096)).ok());
  EXPECT_EQ(area[4095], std::byte{'d'});
  ASSERT_EQ(kill(sender, SIGKILL), 0);
  ASSERT_TRUE(gone(sender));
  wait_exit(sender);
  // nucleusd hears of it on the sender's pidfd; from then on every copy is
  // refused, and none before it touched anything but the sender's area.
  EXPECT_TRUE(eventually([&] {
    auto r = server.copy_to(m->buffer, 0, area.first(4096));
    return r.error() == -ESTALE;
  }));
  EXPECT_EQ(server.copy_from(m->buffer, 0, area.first(1)).error(), -ESTALE);
  // An answer with data to the ended lend goes, without the data (nobody
  // is there to take either): no error, no protocol error.
  EXPECT_TRUE(
      server.send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, words(2), area.first(4096)).ok());
  EXPECT_EQ(server.get_stats()->protocol_errors, 0U);
  // nucleusd serves on.
  auto c = attach("after");
  auto b = c.send_message("server", words(3));
  ASSERT_TRUE(b.ok());
  auto again = server.wait_message(seconds(20));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->lend.bytes, 0U);
  ASSERT_TRUE(server.send_answer(again->buffer, NUCLEUS_RESULT_NORMAL, words(4)).ok());
  ASSERT_TRUE(c.wait_answer(b.value(), seconds(20)).ok());
}

// ---- a receive window and an answer with data ---------------------------------
// A round trip with data both ways in the four hand-offs of one without: the
// message's bytes come into the receiver's window as it is delivered, and
// the answer takes the reply's bytes back in its own request.

std::vector<uint8_t> bytes_at(std::span<const std::byte> s) {
  const auto *p = reinterpret_cast<const uint8_t *>(s.data());
  return {p, p + s.size()};
}

TEST(ReceiveWindow, AMessagesBytesComeWithItAndTheAnswerTakesThemBack) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  auto server = attach("server");
  auto n = attach("client");
  std::span<std::byte> window = server.data().subspan(4096, 8192);
  ASSERT_TRUE(server.set_receive_window(window).ok());
  std::vector<uint8_t> value = pattern(4000, 9);
  auto b = n.send_data("server", words(1), bytes_of(value), NUCLEUS_LEND_READ | NUCLEUS_LEND_WRITE);
  ASSERT_TRUE(b.ok()) << b.message();
  auto m = server.wait_message(seconds(20));
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_EQ(m->lend.bytes, 4000U);
  ASSERT_EQ(m->lend.copied, 4000U);
  EXPECT_EQ(bytes_at(window.first(4000)), value);
  // Each byte + 1, sent back with the answer.
  for (size_t i = 0; i < 4000; ++i) window[i] = std::byte(uint8_t(window[i]) + 1);
  ASSERT_TRUE(
      server.send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, words(2), window.first(4000)).ok());
  auto a = n.wait_answer(b.value(), seconds(20));
  ASSERT_TRUE(a.ok()) << a.message();
  EXPECT_EQ(a->message.word[0], 2U);
  EXPECT_EQ(a->copied, 4000U);
  std::vector<uint8_t> back = bytes_at(n.data().first(4000));
  for (size_t i = 0; i < 4000; ++i) ASSERT_EQ(back[i], uint8_t(value[i] + 1)) << i;
  // A plain answer says it copied nothing.
  auto b2 = n.send_message("server", words(3));
  auto m2 = server.wait_message(seconds(20));
  ASSERT_TRUE(b2.ok() && m2.ok());
  EXPECT_EQ(m2->lend.copied, 0U);
  ASSERT_TRUE(server.send_answer(m2->buffer, NUCLEUS_RESULT_NORMAL, words(4)).ok());
  EXPECT_EQ(n.wait_answer(b2.value(), seconds(20))->copied, 0U);
}

// The window holds one message's bytes from its delivery to its answer: a
// message delivered meanwhile is not copied (its receiver copies it as
// usual), and the one after the answer is.
TEST(ReceiveWindow, OneMessageHoldsTheWindowUntilItIsAnswered) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  auto server = attach("server");
  auto n = attach("client");
  std::span<std::byte> window = server.data().first(1024);
  ASSERT_TRUE(server.set_receive_window(window).ok());
  std::vector<uint8_t> a = pattern(100, 1);
  std::vector<uint8_t> b = pattern(100, 2);
  auto m1 =
      n.send_data("server", words(1), nucleus::Lend{0, 100, NUCLEUS_LEND_READ, 0}, bytes_of(a));
  auto m2 =
      n.send_data("server", words(2), nucleus::Lend{100, 100, NUCLEUS_LEND_READ, 0}, bytes_of(b));
  ASSERT_TRUE(m1.ok() && m2.ok());
  auto r1 = server.wait_message(seconds(20));
  auto r2 = server.wait_message(seconds(20));
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(r1->message.word[0], 1U);
  EXPECT_EQ(r1->lend.copied, 100U);
  EXPECT_EQ(r2->lend.copied, 0U) << "the second overwrote the window the first holds";
  EXPECT_EQ(bytes_at(window.first(100)), a);
  std::span<std::byte> elsewhere = server.data().subspan(2048, 100);
  ASSERT_TRUE(server.copy_from(r2->buffer, 0, elsewhere).ok());
  EXPECT_EQ(bytes_at(elsewhere), b);
  ASSERT_TRUE(server.send_answer(r1->buffer, NUCLEUS_RESULT_NORMAL, words(1)).ok());
  ASSERT_TRUE(server.send_answer(r2->buffer, NUCLEUS_RESULT_NORMAL, words(2)).ok());
  ASSERT_TRUE(n.wait_answer(m1.value(), seconds(20)).ok());
  ASSERT_TRUE(n.wait_answer(m2.value(), seconds(20)).ok());
  // Answered: free again.
  std::vector<uint8_t> c = pattern(50, 3);
  auto m3 = n.send_data("server", words(3), bytes_of(c));
  auto r3 = server.wait_message(seconds(20));
  ASSERT_TRUE(m3.ok() && r3.ok());
  EXPECT_EQ(r3->lend.copied, 50U);
  EXPECT_EQ(bytes_at(window.first(50)), c);
  ASSERT_TRUE(server.send_answer(r3->buffer, NUCLEUS_RESULT_NORMAL, words(3)).ok());
}

// A lend longer than the window: its first bytes come, the rest is copied.
// A lend without the read right, or none, brings nothing. Turned off, the
// window takes nothing.
TEST(ReceiveWindow, ALongerLendFillsItAndOnlyTheReadRightBringsBytes) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  auto server = attach("server");
  auto n = attach("client");
  std::span<std::byte> area = server.data();
  ASSERT_TRUE(server.set_receive_window(area.first(1024)).ok());
  std::vector<uint8_t> value = pattern(4096, 5);
  auto b = n.send_data("server", words(1), bytes_of(value));
  auto m = server.wait_message(seconds(20));
  ASSERT_TRUE(b.ok() && m.ok());
  ASSERT_EQ(m->lend.copied, 1024U);
  ASSERT_TRUE(server.copy_from(m->buffer, 1024, area.subspan(1024, 4096 - 1024)).ok());
  EXPECT_EQ(bytes_at(area.first(4096)), value);
  ASSERT_TRUE(server.send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, words(1)).ok());
  ASSERT_TRUE(n.wait_answer(b.value(), seconds(20)).ok());
  // Write only: the receiver may not read it, so nothing comes.
  std::memset(area.data(), 0, 1024);
  auto w = n.send_message("server", words(2), nucleus::Lend{0, 512, NUCLEUS_LEND_WRITE, 0});
  auto mw = server.wait_message(seconds(20));
  ASSERT_TRUE(w.ok() && mw.ok());
  EXPECT_EQ(mw->lend.copied, 0U);
  EXPECT_EQ(bytes_at(area.first(512)), std::vector<uint8_t>(512, 0));
  ASSERT_TRUE(server.send_answer(mw->buffer, NUCLEUS_RESULT_NORMAL, words(2)).ok());
  ASSERT_TRUE(n.wait_answer(w.value(), seconds(20)).ok());
  // Off.
  ASSERT_TRUE(server.set_receive_window({}).ok());
  auto off = n.send_data("server", words(3), bytes_of(value));
  auto moff = server.wait_message(seconds(20));
  ASSERT_TRUE(off.ok() && moff.ok());
  EXPECT_EQ(moff->lend.copied, 0U);
  ASSERT_TRUE(server.send_answer(moff->buffer, NUCLEUS_RESULT_NORMAL, words(3)).ok());
}

// A message withdrawn after its bytes came frees the window: the next one
// fills it.
TEST(ReceiveWindow, ARegretOfTheMessageInItFreesIt) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  auto server = attach("server");
  auto n = attach("client");
  std::span<std::byte> window = server.data().first(256);
  ASSERT_TRUE(server.set_receive_window(window).ok());
  auto m1 = n.send_data("server", words(1), bytes_of(pattern(64, 1)));
  ASSERT_TRUE(m1.ok());
  // Delivered (the server's library has read it: wait_event looks without
  // taking), with its bytes in the window.
  auto e = server.wait_event(0, seconds(20));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->lend.copied, 64U);
  ASSERT_TRUE(n.regret(m1.value()).ok());
  // The server's library reads kWithdrawn before the reply to a call it
  // makes after the regret (its replies come in order): then it has
  // dropped the message.
  ASSERT_TRUE(server.get_stats().ok());
  std::vector<uint8_t> next = pattern(64, 2);
  auto m2 =
      n.send_data("server", words(2), nucleus::Lend{512, 64, NUCLEUS_LEND_READ, 0}, bytes_of(next));
  ASSERT_TRUE(m2.ok());
  auto r = server.wait_message(seconds(20));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->message.word[0], 2U) << "the regretted message was delivered";
  EXPECT_EQ(r->lend.copied, 64U);
  EXPECT_EQ(bytes_at(window.first(64)), next);
  ASSERT_TRUE(server.send_answer(r->buffer, NUCLEUS_RESULT_NORMAL, words(2)).ok());
}

// What the library refuses before anything is sent, each with its errno
// and its own text; a refused answer leaves the message held, to be
// answered again.
TEST(ReceiveWindow, BadWindowsAndAnswersAreRefusedAndTheMessageIsStillHeld) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  auto server = attach("server");
  auto n = attach("client");
  nucleus_t *raw = server.c_handle();
  size_t area = 0;
  ASSERT_NE(nucleus_data_area(raw, &area), nullptr);
  EXPECT_EQ(nucleus_set_receive_window(raw, area - 8, 16), -ERANGE);
  EXPECT_EQ(nucleus_set_receive_window(raw, UINT64_MAX, 16), -ERANGE);
  EXPECT_EQ(nucleus_set_receive_window(raw, 0, NUCLEUS_COPY_MAX + 1), -EMSGSIZE);
  std::byte outside[16];
  EXPECT_EQ(server.set_receive_window(std::span(outside)).error(), -EINVAL);
  EXPECT_EQ(nucleus_set_receive_window(raw, area - 8, 16), -ERANGE);
  EXPECT_NE(std::string(nucleus_last_error()).find("own data area"), std::string::npos)
      << nucleus_last_error();

  auto ro = n.send_data("server", words(1), bytes_of(pattern(64, 1)));  // read only
  auto none = n.send_message("server", words(2));
  ASSERT_TRUE(ro.ok() && none.ok());
  auto mro = server.wait_message(seconds(20));
  auto mnone = server.wait_message(seconds(20));
  ASSERT_TRUE(mro.ok() && mnone.ok());
  std::span<std::byte> own = server.data();
  auto denied = server.send_answer(mro->buffer, NUCLEUS_RESULT_NORMAL, words(1), own.first(8));
  EXPECT_EQ(denied.error(), -EACCES);
  EXPECT_NE(denied.message().find("the lend does not give that right"), std::string_view::npos)
      << denied.message();
  EXPECT_EQ(
      server.send_answer(mnone->buffer, NUCLEUS_RESULT_NORMAL, words(2), own.first(8)).error(),
      -ENODATA);
  auto rw = n.send_message("server", words(3), nucleus::Lend{0, 32, NUCLEUS_LEND_WRITE, 0});
  auto mrw = server.wait_message(seconds(20));
  ASSERT_TRUE(rw.ok() && mrw.ok());
  EXPECT_EQ(server.send_answer(mrw->buffer, NUCLEUS_RESULT_NORMAL, words(3), own.first(33)).error(),
            -EFAULT);
  nucleus::Message w{};
  EXPECT_EQ(nucleus_send_answer_data(raw, mrw->buffer, NUCLEUS_RESULT_NORMAL, &w, area - 4, 8),
            -ERANGE);
  EXPECT_EQ(nucleus_send_answer_data(raw, mrw->buffer, NUCLEUS_RESULT_NORMAL, &w, 0,
                                     NUCLEUS_COPY_MAX + 1),
            -EMSGSIZE);
  std::byte stack[8];
  EXPECT_EQ(
      server.send_answer(mrw->buffer, NUCLEUS_RESULT_NORMAL, words(3), std::span(stack)).error(),
      -EINVAL);
  // All three still held: each answered now, and each answer comes.
  std::memset(own.data(), 'r', 32);
  ASSERT_TRUE(server.send_answer(mro->buffer, NUCLEUS_RESULT_NORMAL, words(10)).ok());
  ASSERT_TRUE(server.send_answer(mnone->buffer, NUCLEUS_RESULT_NORMAL, words(20)).ok());
  ASSERT_TRUE(
      server.send_answer(mrw->buffer, NUCLEUS_RESULT_NORMAL, words(30), own.first(32)).ok());
  EXPECT_EQ(n.wait_answer(ro.value(), seconds(20))->message.word[0], 10U);
  EXPECT_EQ(n.wait_answer(none.value(), seconds(20))->message.word[0], 20U);
  auto a = n.wait_answer(rw.value(), seconds(20));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->copied, 32U);
  EXPECT_EQ(bytes_at(n.data().first(32)), std::vector<uint8_t>(32, 'r'));
  EXPECT_EQ(server.get_stats()->protocol_errors, 0U);
}

// uid 65534 receives nothing of the victim's and names the victim's
// buffer anyway, with a raw request the library would never send: refused,
// nothing copied either way.
TEST(DataLend, AHostileReceiverCannotCopyWithABufferItDoesNotHold) {
  Daemon d(R"({"attach": {"uids": [65534]}})");
  ASSERT_TRUE(d.ready());
  d.let_others_in();
  auto victim = attach("victim");
  auto server = attach("server");
  std::memset(victim.data_area().data(), 's', 4096);
  auto b = victim.send_message("server", words(1),
                               nucleus::Lend{0, 4096, NUCLEUS_LEND_READ | NUCLEUS_LEND_WRITE, 0});
  ASSERT_TRUE(b.ok());
  auto m = server.wait_message(seconds(20));
  ASSERT_TRUE(m.ok());
  nucleus::Buffer held = m->buffer;  // the server holds it; the attacker does not
  pid_t attacker = spawn([&]() {
    if (!become()) return 10;
    RawClient raw(d.socket_path(), "attacker");
    if (raw.status() != 0) return 11;
    std::memset(raw.base() + raw.header()->data_offset, 'A', 4096);
    uint32_t seq = 0;
    int bad = 0;
    // The held buffer, its neighbours, and a forged one; both directions.
    for (uint64_t h : {held, held + 1, held - 1, wire::next_handle(held), uint64_t{0x123456789}}) {
      for (int64_t dir : {int64_t{wire::kCopyFrom}, int64_t{wire::kCopyTo}}) {
        wire::Request r{};
        r.op = static_cast<uint32_t>(wire::Op::kCopyData);
        r.seq = ++seq;
        r.handle = h;
        r.arg = dir;
        r.message.word[wire::kCopyBytes] = 4096;
        raw.push(r);
        wire::Event e{};
        if (!raw.next_event(&e) || e.kind != static_cast<uint32_t>(wire::EventKind::kReply) ||
            e.seq != seq || e.result != -EBADF) {
          ++bad;
        }
      }
    }
    // Nor can it regret what is not its own.
    wire::Request r{};
    r.op = static_cast<uint32_t>(wire::Op::kRegretMessage);
    r.seq = ++seq;
    r.handle = held;
    raw.push(r);
    wire::Event e{};
    if (!raw.next_event(&e) || e.result != -EBADF) ++bad;
    const uint8_t *own = raw.base() + raw.header()->data_offset;
    for (int i = 0; i < 4096; ++i) bad += own[i] != 'A';
    return bad == 0 ? 0 : 20;
  });
  EXPECT_EQ(exit_code(wait_exit(attacker)), 0);
  const uint8_t *area = victim.data_area().data();
  for (int i = 0; i < 4096; ++i) ASSERT_EQ(area[i], 's') << "byte " << i;
  // The real receiver still holds it and copies fine.
  auto own = server.data();
  ASSERT_TRUE(server.copy_from(held, 0, own.first(4096)).ok());
  EXPECT_EQ(own[0], std::byte{'s'});
  ASSERT_TRUE(server.send_answer(held, NUCLEUS_RESULT_NORMAL, words(2)).ok());
  ASSERT_TRUE(victim.wait_answer(b.value(), seconds(20)).ok());
}

// ---- regret ---------------------------------------------------------------

TEST(Regret, BeforeTheTakeTheBufferComesBackAndTheReceiverNeverSeesIt) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  auto server = attach("server");
  auto n = attach("client");
  auto m1 = n.send_message("server", words(1));
  auto m2 = n.send_data("server", words(2), bytes_of(pattern(128, 1)));
  auto m3 = n.send_message("server", words(3));
  ASSERT_TRUE(m1.ok() && m2.ok() && m3.ok());
  // The server's library has read all three from its ring (wait_event
  // looks without taking); it has taken none.
  nucleus::Buffer prev = 0;
  for (int i = 0; i < 3; ++i) {
    auto e = server.wait_event(prev, seconds(20));
    ASSERT_TRUE(e.ok());
    prev = e->buffer;
  }
  EXPECT_EQ(prev, m3.value());
  ASSERT_TRUE(n.regret(m2.value()).ok());
  auto s = n.get_stats();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->claim_used, 2U);                                 // back in the claim at once
  EXPECT_EQ(n.wait_answer(m2.value(), kPoll).error(), -EBADF);  // the handle is stale
  // Twice: not out any more.
  EXPECT_EQ(n.regret(m2.value()).error(), -EBADF);
  // The server gets the other two, in order, and never the regretted one.
  for (uint64_t w : {1U, 3U}) {
    auto m = server.wait_message(seconds(20));
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->message.word[0], w);
    ASSERT_TRUE(server.send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, words(w * 10)).ok());
  }
  EXPECT_EQ(server.wait_message(kPoll).error(), -ETIMEDOUT);
  EXPECT_EQ(n.wait_answer(m1.value(), seconds(20))->message.word[0], 10U);
  EXPECT_EQ(n.wait_answer(m3.value(), seconds(20))->message.word[0], 30U);
  // Nothing was counted against anyone.
  EXPECT_EQ(server.get_stats()->protocol_errors, 0U);
  EXPECT_EQ(n.get_stats()->protocol_errors, 0U);
  // The buffer is used again as usual.
  auto m4 = n.send_message("server", words(4));
  ASSERT_TRUE(m4.ok());
  auto m = server.wait_message(seconds(20));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->message.word[0], 4U);
}

TEST(Regret, AfterTheTakeItIsBusyAndTheAnswerComesAsUsual) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  auto server = attach("server");
  auto n = attach("client");
  auto b = n.send_message("server", words(1));
  ASSERT_TRUE(b.ok());
  auto m = server.wait_message(seconds(20));
  ASSERT_TRUE(m.ok());
  // The take reaches nucleusd before the regret (its request ring is
  // served in order, and stats is a round trip behind it).
  ASSERT_TRUE(server.get_stats().ok());
  auto busy = n.regret(b.value());
  EXPECT_EQ(busy.error(), -EBUSY);
  EXPECT_NE(busy.message().find("its receiver has taken it"), std::string_view::npos)
      << busy.message();
  ASSERT_TRUE(server.send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, words(7)).ok());
  auto a = n.wait_answer(b.value(), seconds(20));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->message.word[0], 7U);
}

TEST(Regret, AnAnsweredMessageIsAlreadyAndAfterTheReceiverDiedToo) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  auto n = attach("client");
  // Answered, not yet waited for.
  auto server = attach("server");
  auto b = n.send_message("server", words(1));
  ASSERT_TRUE(b.ok());
  auto m = server.wait_message(seconds(20));
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(server.send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, words(5)).ok());
  // The take and the answer reach nucleusd before the regret (stats is a
  // round trip behind them on the server's ring). Without this the regret
  // may come first: the message is withdrawn, and the server's take and
  // answer are void.
  ASSERT_TRUE(server.get_stats().ok());
  EXPECT_EQ(n.regret(b.value()).error(), -EALREADY);
  EXPECT_EQ(n.wait_answer(b.value(), seconds(20))->message.word[0], 5U);
  // A receiver that took a lent message and died: a dummy answer.
  Signal took;
  pid_t dying = spawn([&]() {
    auto r = nucleus::Nucleus::attach("dying");
    if (!r) return 10;
    took.notify('a');
    auto got = r->wait_message(seconds(20));
    if (!got) return 11;
    took.notify('t');
    _exit(0);  // with the message held, unanswered
  });
  ASSERT_EQ(took.wait(), 'a');
  auto before = n.get_stats();
  ASSERT_TRUE(before.ok());
  auto lent = n.send_data("dying", words(2), bytes_of(pattern(256, 9)),
                          NUCLEUS_LEND_READ | NUCLEUS_LEND_WRITE);
  ASSERT_TRUE(lent.ok());
  EXPECT_EQ(took.wait(), 't');
  EXPECT_EQ(exit_code(wait_exit(dying)), 0);
  ASSERT_TRUE(eventually([&] { return n.regret(lent.value()).error() == -EALREADY; }));
  auto a = n.wait_answer(lent.value(), seconds(20));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->result, NUCLEUS_RESULT_DUMMY);
  // Nothing leaked: the claim and the pool are as before.
  ASSERT_TRUE(wait_stats(n, [&](const nucleus::Stats &s) {
    return s.claim_used == 0 && s.pool_free == before->pool_free + 32 &&
           s.processes == before->processes - 1;
  }));
}

// The server's library took the message and answered it, but nucleusd
// serves the regret first: withdrawn; the take and the answer are void, no
// protocol error is counted, and the server goes on.
TEST(Regret, ARegretServedBeforeATakeAndAnswerOnTheirWayVoidsThem) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  auto server = attach("server");
  auto n = attach("client");
  int withdrawn = 0;
  for (uint64_t i = 0; i < 50; ++i) {
    auto b = n.send_message("server", words(i));
    ASSERT_TRUE(b.ok());
    auto m = server.wait_message(seconds(20));
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->message.word[0], i);
    ASSERT_TRUE(server.send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, words(i)).ok());
    auto r = n.regret(b.value());  // races with the server's take and answer
    if (r.ok()) {
      ++withdrawn;
      EXPECT_EQ(n.wait_answer(b.value(), kPoll).error(), -EBADF);
    } else {
      EXPECT_TRUE(r.error() == -EBUSY || r.error() == -EALREADY) << r.error();
      auto a = n.wait_answer(b.value(), seconds(20));
      ASSERT_TRUE(a.ok());
      EXPECT_EQ(a->message.word[0], i);
    }
  }
  EXPECT_EQ(server.get_stats()->protocol_errors, 0U);
  EXPECT_EQ(n.get_stats()->claim_used, 0U);
  std::printf("regrets that won the race: %d of 50\n", withdrawn);
}

TEST(Regret, ATimedOutRequestToAStoppedServerIsNeverApplied) {
  Daemon d;
  ASSERT_TRUE(d.ready());
  auto server = attach("server");  // attached, not serving (as if stopped)
  auto n = attach("client");
  auto stats = n.get_stats();
  ASSERT_TRUE(stats.ok());
  // More timed-out puts than the claim holds: each regretted, none lost.
  for (uint64_t i = 0; i < stats->claim_buffers + 4; ++i) {
    auto b = n.send_data("server", words(i), bytes_of(pattern(64, static_cast<uint8_t>(i))));
    ASSERT_TRUE(b.ok()) << "put " << i << ": " << b.message();
    EXPECT_EQ(n.wait_answer(b.value(), kPoll).error(), -ETIMEDOUT);
    ASSERT_TRUE(n.regret(b.value()).ok());
  }
  auto last = n.send_message("server", words(99));
  ASSERT_TRUE(last.ok());
  auto m = server.wait_message(seconds(20));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->message.word[0], 99U) << "a regretted put reached the server";
  EXPECT_EQ(server.wait_message(kPoll).error(), -ETIMEDOUT);
}

}  // namespace
}  // namespace nucleus::test
