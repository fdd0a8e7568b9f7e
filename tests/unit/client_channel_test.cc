// The library's half of a channel (client-lib/src/client.cc) against a
// nucleusd half the test plays itself: a memfd laid out as wire.h says, with
// no daemon and no socket. The fake writes every word as nucleusd's
// daemon/channel.cc does (entries, then slot_high, then slots_version, each
// with release; events, then events_tail) and reads what the library wrote:
// its requests, its events_head, and its doorbell (an eventfd, so a ring is
// counted).
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "testing.h"

namespace nucleus::client {
namespace {

// Small, so that the rings wrap and the table's end is near.
constexpr uint32_t kSlotCount = 16;
constexpr uint32_t kRequestEntries = 8;
constexpr uint32_t kEventEntries = 4;
constexpr uint64_t kDataBytes = 4096;

// nucleusd's half of one channel.
class FakeNucleus {
 public:
  FakeNucleus() {
    layout_ = wire::compute_layout(kSlotCount, kRequestEntries, kEventEntries, kDataBytes);
    memfd_ = sys::UniqueFd(memfd_create("fake-nucleus", MFD_CLOEXEC));
    EXPECT_TRUE(memfd_);
    EXPECT_EQ(ftruncate(memfd_.get(), static_cast<off_t>(layout_.channel_bytes)), 0);
    void *base =
        mmap(nullptr, layout_.channel_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, memfd_.get(), 0);
    EXPECT_NE(base, MAP_FAILED);
    base_ = static_cast<uint8_t *>(base);
    header_ = new (base_) wire::ChannelHeader{};
    wire::ChannelHeader &h = *header_;
    h.magic = wire::kMagic;
    h.abi_version = wire::kAbiVersion;
    h.doorbell = static_cast<uint32_t>(wire::Doorbell::kEventfd);
    h.request_entries = kRequestEntries;
    h.event_entries = kEventEntries;
    h.slot_count = kSlotCount;
    h.channel_bytes = layout_.channel_bytes;
    h.slots_offset = layout_.slots_offset;
    h.requests_offset = layout_.requests_offset;
    h.events_offset = layout_.events_offset;
    h.data_offset = layout_.data_offset;
    h.data_bytes = kDataBytes;
    h.daemon_armed.store(1, std::memory_order_relaxed);
    h.state.store(static_cast<uint32_t>(wire::ChannelState::kAttached), std::memory_order_relaxed);
    doorbell_ = sys::UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    EXPECT_TRUE(doorbell_);
  }
  ~FakeNucleus() { munmap(base_, layout_.channel_bytes); }
  FakeNucleus(const FakeNucleus &) = delete;
  FakeNucleus &operator=(const FakeNucleus &) = delete;

  wire::ChannelHeader &header() { return *header_; }

  // The library's half over this channel, as attach would make it (with or
  // without the doorbell eventfd nucleusd sends with the memfd).
  int attach(std::unique_ptr<Channel> *out, bool doorbell = true) {
    return ChannelForTesting::open(memfd_.get(), layout_.channel_bytes,
                                   sys::UniqueFd(doorbell ? dup(doorbell_.get()) : -1), out);
  }

  // ---- slot table ----
  // Writes entry `position` (0: the buffer is taken from the claim). The
  // library sees it only once announce() moves slots_version.
  void write_slot(uint32_t position, uint64_t handle) {
    ASSERT_LT(position * sizeof(uint64_t), layout_.requests_offset - layout_.slots_offset);
    // Release pairs with the library's acquire load when it rescans.
    __atomic_store_n(&slots()[position], handle, __ATOMIC_RELEASE);
    if (handle != 0) slot_high_ = std::max(slot_high_, position + 1);
  }
  void announce() {
    header_->slot_high.store(slot_high_, std::memory_order_release);
    // Release pairs with the library's acquire load of slots_version.
    header_->slots_version.fetch_add(1, std::memory_order_release);
  }
  void set_slot(uint32_t position, uint64_t handle) {
    write_slot(position, handle);
    announce();
  }

  // ---- events (nucleus -> process) ----
  void publish(const wire::Event &e) {
    ASSERT_LT(event_tail_ - header_->events_head.load(std::memory_order_acquire), kEventEntries)
        << "the test overfills the event ring";
    events()[event_tail_ & (kEventEntries - 1)] = e;
    ++event_tail_;
    // Release pairs with the library's acquire load of events_tail.
    header_->events_tail.store(event_tail_, std::memory_order_release);
  }
  uint32_t events_head() const { return header_->events_head.load(std::memory_order_acquire); }

  // ---- requests (process -> nucleus) ----
  // Takes every request the library published, in order.
  std::vector<wire::Request> take_requests() {
    std::vector<wire::Request> out;
    uint32_t tail = header_->requests_tail.load(std::memory_order_acquire);
    for (; request_head_ != tail; ++request_head_) {
      out.push_back(requests()[request_head_ & (kRequestEntries - 1)]);
    }
    header_->requests_head.store(request_head_, std::memory_order_release);
    return out;
  }

  // How often the library rang the doorbell since the last look.
  uint64_t rings() {
    uint64_t n = 0;
    return read(doorbell_.get(), &n, sizeof(n)) == sizeof(n) ? n : 0;
  }

 private:
  uint64_t *slots() { return reinterpret_cast<uint64_t *>(base_ + layout_.slots_offset); }
  wire::Request *requests() {
    return reinterpret_cast<wire::Request *>(base_ + layout_.requests_offset);
  }
  wire::Event *events() { return reinterpret_cast<wire::Event *>(base_ + layout_.events_offset); }

  wire::Layout layout_{};
  sys::UniqueFd memfd_;
  sys::UniqueFd doorbell_;
  uint8_t *base_ = nullptr;
  wire::ChannelHeader *header_ = nullptr;
  uint32_t slot_high_ = 0;
  uint32_t event_tail_ = 0;
  uint32_t request_head_ = 0;
};

wire::Event message_event(uint64_t handle, const char *sender, uint64_t word0) {
  wire::Event e{};
  e.kind = static_cast<uint32_t>(wire::EventKind::kMessage);
  e.handle = handle;
  std::strncpy(e.sender, sender, sizeof(e.sender) - 1);
  e.message.word[0] = word0;
  return e;
}

wire::Event answer_event(uint64_t handle, int32_t result, uint64_t word0) {
  wire::Event e{};
  e.kind = static_cast<uint32_t>(wire::EventKind::kAnswer);
  e.handle = handle;
  e.result = result;
  e.message.word[0] = word0;
  return e;
}

// nucleusd refused the send on `handle` (its buffer was taken from the claim).
wire::Event error_event(uint64_t handle) {
  wire::Event e{};
  e.kind = static_cast<uint32_t>(wire::EventKind::kError);
  e.handle = handle;
  e.result = -EBADF;
  return e;
}

wire::Op op_of(const wire::Request &r) {
  return static_cast<wire::Op>(r.op);
}

const uint64_t kBufferA = wire::make_handle(3, 1);
const uint64_t kBufferB = wire::make_handle(7, 4);
const uint64_t kBufferC = wire::make_handle(9, 2);

class ClientChannelTest : public ::testing::Test {
 protected:
  void attach() { ASSERT_EQ(fake.attach(&ch), 0); }
  // Sends a message to "peer" on a free buffer of the claim.
  int send(nucleus_buffer_t *out, uint64_t word0 = 0) {
    nucleus_message_t m{};
    m.word[0] = word0;
    return ch->send_message("peer", &m, out);
  }

  FakeNucleus fake;
  std::unique_ptr<Channel> ch;
};

// ---- the layout ----------------------------------------------------------

TEST_F(ClientChannelTest, RefusesAHeaderThatDisagreesWithWireH) {
  struct Case {
    const char *what;
    void (*spoil)(wire::ChannelHeader &);
  };
  const Case cases[] = {
      {"magic", [](wire::ChannelHeader &h) { h.magic = 0; }},
      {"abi version", [](wire::ChannelHeader &h) { h.abi_version = wire::kAbiVersion + 1; }},
      {"ring not a power of two", [](wire::ChannelHeader &h) { h.event_entries = 6; }},
      {"offset", [](wire::ChannelHeader &h) { h.data_offset += 4096; }},
      {"size", [](wire::ChannelHeader &h) { h.data_bytes += 4096; }},
  };
  for (const Case &c : cases) {
    FakeNucleus f;
    c.spoil(f.header());
    std::unique_ptr<Channel> refused;
    EXPECT_EQ(f.attach(&refused), -EPROTO) << c.what;
    EXPECT_FALSE(refused) << c.what;
  }
  // An eventfd doorbell, and no eventfd came with the memfd.
  std::unique_ptr<Channel> refused;
  EXPECT_EQ(fake.attach(&refused, false), -EPROTO);
  EXPECT_FALSE(refused);
}

// ---- slot mirroring ------------------------------------------------------

TEST_F(ClientChannelTest, MirrorsTheSlotTableItFindsAtAttach) {
  fake.write_slot(0, kBufferA);
  fake.write_slot(1, kBufferB);
  fake.announce();
  attach();
  // Each send is the next use of a buffer of the claim, in table order.
  nucleus_buffer_t a = 0, b = 0, none = 0;
  ASSERT_EQ(send(&a, 1), 0);
  ASSERT_EQ(send(&b, 2), 0);
  EXPECT_EQ(a, wire::next_handle(kBufferA));
  EXPECT_EQ(b, wire::next_handle(kBufferB));
  EXPECT_EQ(send(&none), -ENOBUFS) << "two buffers, both out";
  auto requests = fake.take_requests();
  ASSERT_EQ(requests.size(), 2U);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(op_of(requests[i]), wire::Op::kSendMessage);
    EXPECT_STREQ(requests[i].name, "peer");
    EXPECT_EQ(requests[i].message.word[0], i + 1);
  }
  EXPECT_EQ(requests[0].handle, a);
  EXPECT_EQ(requests[1].handle, b);
}

TEST_F(ClientChannelTest, SeesANewEntryOnlyOnceTheVersionMoves) {
  fake.set_slot(0, kBufferA);
  attach();
  nucleus_buffer_t a = 0, b = 0;
  ASSERT_EQ(send(&a), 0);
  // Written, slot_high too, but slots_version has not moved: not yet the
  // process's.
  fake.write_slot(1, kBufferB);
  fake.header().slot_high.store(2, std::memory_order_release);
  EXPECT_EQ(send(&b), -ENOBUFS);
  fake.announce();
  ASSERT_EQ(send(&b), 0);
  EXPECT_EQ(b, wire::next_handle(kBufferB));
}

TEST_F(ClientChannelTest, ReadsNoEntryPastTheTable) {
  fake.set_slot(0, kBufferA);
  attach();
  // A slot_high past the table's capacity: the library reads slot_count
  // entries, not the word after them (the table's page goes on).
  fake.write_slot(kSlotCount, kBufferB);
  fake.header().slot_high.store(UINT32_MAX);
  fake.header().slots_version.fetch_add(1);
  nucleus_buffer_t a = 0, none = 0;
  ASSERT_EQ(send(&a), 0);
  EXPECT_EQ(a, wire::next_handle(kBufferA));
  EXPECT_EQ(send(&none), -ENOBUFS);
}

TEST_F(ClientChannelTest, AnEntryThatNowNamesAnotherBufferIsThatBuffer) {
  fake.set_slot(0, kBufferA);
  attach();
  fake.set_slot(0, kBufferC);  // A taken away, C given, in the same entry
  nucleus_buffer_t c = 0, none = 0;
  ASSERT_EQ(send(&c), 0);
  EXPECT_EQ(c, wire::next_handle(kBufferC));
  EXPECT_EQ(send(&none), -ENOBUFS);
}

// ---- withdrawn buffers ---------------------------------------------------

TEST_F(ClientChannelTest, AFreeBufferWithdrawnIsNotUsed) {
  fake.write_slot(0, kBufferA);
  fake.write_slot(1, kBufferB);
  fake.announce();
  attach();
  fake.set_slot(0, 0);  // A taken from the claim
  nucleus_buffer_t b = 0, none = 0;
  ASSERT_EQ(send(&b), 0);
  EXPECT_EQ(b, wire::next_handle(kBufferB));
  EXPECT_EQ(send(&none), -ENOBUFS);
}

TEST_F(ClientChannelTest, ABufferWithdrawnUnderASendGetsADummyAnswerAndIsNotReused) {
  fake.set_slot(0, kBufferA);
  attach();
  nucleus_buffer_t a = 0;
  ASSERT_EQ(send(&a), 0);
  // The buffer was taken from the claim as the send went: nucleusd refuses
  // the send.
  fake.set_slot(0, 0);
  fake.publish(error_event(a));
  ASSERT_EQ(fake.take_requests().size(), 1U);
  int result = 0;
  nucleus_message_t answer{};
  ASSERT_EQ(ch->wait_answer(a, 0, &result, &answer), 0);
  EXPECT_EQ(result, NUCLEUS_RESULT_DUMMY);
  // Nothing to release on a buffer that is no longer ours, nothing to send on.
  EXPECT_TRUE(fake.take_requests().empty());
  EXPECT_EQ(ch->wait_answer(a, 0, &result, &answer), -EBADF);
  nucleus_buffer_t none = 0;
  EXPECT_EQ(send(&none), -ENOBUFS);
}

TEST_F(ClientChannelTest, ARefusalOfNoBufferOutIsIgnored) {
  fake.set_slot(0, kBufferA);
  attach();
  fake.publish(error_event(wire::next_handle(kBufferA)));  // never sent
  nucleus_event_t e{};
  EXPECT_EQ(ch->wait_event(0, 0, &e), -ETIMEDOUT);
  EXPECT_EQ(fake.events_head(), 1U) << "drained all the same";
}

// ---- draining ------------------------------------------------------------

TEST_F(ClientChannelTest, MessagesAreTakenInTheOrderTheyCame) {
  attach();
  const uint64_t m1 = wire::make_handle(20, 1), m2 = wire::make_handle(21, 1),
                 m3 = wire::make_handle(22, 1);
  fake.publish(message_event(m1, "a", 1));
  fake.publish(message_event(m2, "b", 2));
  fake.publish(message_event(m3, "c", 3));
  // Looking takes nothing: wait_event walks the queue from `previous`.
  nucleus_event_t e{};
  ASSERT_EQ(ch->wait_event(0, 0, &e), 0);
  EXPECT_EQ(e.buffer, m1);
  EXPECT_EQ(fake.events_head(), 3U) << "all three drained";
  ASSERT_EQ(ch->wait_event(m1, 0, &e), 0);
  EXPECT_EQ(e.buffer, m2);
  ASSERT_EQ(ch->wait_event(m2, 0, &e), 0);
  EXPECT_EQ(e.buffer, m3);
  EXPECT_EQ(ch->wait_event(m3, 0, &e), -ETIMEDOUT);
  // Taking: in order, each with its sender and words, each told to nucleusd.
  const char *senders[] = {"a", "b", "c"};
  const uint64_t handles[] = {m1, m2, m3};
  for (uint64_t i = 0; i < 3; ++i) {
    char sender[32] = {};
    nucleus_message_t m{};
    nucleus_buffer_t b = 0;
    ASSERT_EQ(ch->wait_message(0, sender, &m, &b), 0);
    EXPECT_EQ(b, handles[i]);
    EXPECT_STREQ(sender, senders[i]);
    EXPECT_EQ(m.word[0], i + 1);
  }
  nucleus_buffer_t b = 0;
  EXPECT_EQ(ch->wait_message(0, nullptr, nullptr, &b), -ETIMEDOUT);
  auto requests = fake.take_requests();
  ASSERT_EQ(requests.size(), 3U);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(op_of(requests[i]), wire::Op::kGetEvent);
    EXPECT_EQ(requests[i].handle, handles[i]);
  }
}

TEST_F(ClientChannelTest, DrainsInOrderAcrossTheRingsWrap) {
  attach();
  uint64_t next = 0;
  for (int round = 0; round < 5; ++round) {  // 15 events through a ring of 4
    for (int i = 0; i < 3; ++i) {
      fake.publish(
          message_event(wire::make_handle(static_cast<uint32_t>(100 + next), 1), "s", next));
      ++next;
    }
    for (uint64_t want = next - 3; want < next; ++want) {
      nucleus_message_t m{};
      nucleus_buffer_t b = 0;
      ASSERT_EQ(ch->wait_message(0, nullptr, &m, &b), 0);
      EXPECT_EQ(m.word[0], want);
    }
    fake.take_requests();
  }
  EXPECT_EQ(fake.events_head(), 15U);
}

TEST_F(ClientChannelTest, AnAnswerGoesToItsBufferWhicheverCameFirst) {
  fake.write_slot(0, kBufferA);
  fake.write_slot(1, kBufferB);
  fake.announce();
  attach();
  nucleus_buffer_t a = 0, b = 0;
  ASSERT_EQ(send(&a), 0);
  ASSERT_EQ(send(&b), 0);
  fake.take_requests();
  fake.publish(answer_event(b, NUCLEUS_RESULT_REJECTED, 22));
  fake.publish(answer_event(a, NUCLEUS_RESULT_NORMAL, 11));
  int result = 0;
  nucleus_message_t answer{};
  ASSERT_EQ(ch->wait_answer(a, 0, &result, &answer), 0);
  EXPECT_EQ(result, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(answer.word[0], 11U);
  ASSERT_EQ(ch->wait_answer(b, 0, &result, &answer), 0);
  EXPECT_EQ(result, NUCLEUS_RESULT_REJECTED);
  EXPECT_EQ(answer.word[0], 22U);
  // Each answer taken is released, and its buffer is free for its next use.
  auto requests = fake.take_requests();
  ASSERT_EQ(requests.size(), 2U);
  EXPECT_EQ(op_of(requests[0]), wire::Op::kReleaseAnswer);
  EXPECT_EQ(requests[0].handle, a);
  EXPECT_EQ(op_of(requests[1]), wire::Op::kReleaseAnswer);
  EXPECT_EQ(requests[1].handle, b);
  nucleus_buffer_t again = 0;
  ASSERT_EQ(send(&again), 0);
  EXPECT_TRUE(again == wire::next_handle(a) || again == wire::next_handle(b)) << again;
}

TEST_F(ClientChannelTest, AnswersOnlyWhatItReceived) {
  attach();
  nucleus_message_t m{};
  EXPECT_EQ(ch->send_answer(wire::make_handle(20, 1), NUCLEUS_RESULT_NORMAL, &m), -EBADF);
  fake.publish(message_event(wire::make_handle(20, 1), "a", 0));
  nucleus_buffer_t b = 0;
  ASSERT_EQ(ch->wait_message(0, nullptr, nullptr, &b), 0);
  m.word[0] = 5;
  ASSERT_EQ(ch->send_answer(b, NUCLEUS_RESULT_NORMAL, &m), 0);
  EXPECT_EQ(ch->send_answer(b, NUCLEUS_RESULT_NORMAL, &m), -EBADF) << "answered twice";
  auto requests = fake.take_requests();
  ASSERT_EQ(requests.size(), 2U);
  EXPECT_EQ(op_of(requests[1]), wire::Op::kSendAnswer);
  EXPECT_EQ(requests[1].handle, b);
  EXPECT_EQ(requests[1].arg, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(requests[1].message.word[0], 5U);
}

// ---- doorbell ------------------------------------------------------------

TEST_F(ClientChannelTest, BacklogRingsTheDoorbellOnceDrained) {
  attach();
  // Events wait for room in nucleusd: once the library has made room it rings.
  fake.header().backlog.store(1);
  fake.publish(message_event(wire::make_handle(20, 1), "a", 0));
  nucleus_event_t e{};
  ASSERT_EQ(ch->wait_event(0, 0, &e), 0);
  EXPECT_EQ(fake.rings(), 1U);
  // Nothing new drained: nothing to say, even with the backlog bit still set.
  ASSERT_EQ(ch->wait_event(0, 0, &e), 0);
  EXPECT_EQ(fake.rings(), 0U);
  // No backlog: draining rings nothing.
  fake.header().backlog.store(0);
  fake.publish(message_event(wire::make_handle(21, 1), "a", 0));
  ASSERT_EQ(ch->wait_event(e.buffer, 0, &e), 0);
  EXPECT_EQ(fake.rings(), 0U);
}

TEST_F(ClientChannelTest, RingsOnlyANucleusThatAskedForIt) {
  fake.write_slot(0, kBufferA);
  fake.write_slot(1, kBufferB);
  fake.announce();
  attach();
  nucleus_buffer_t b = 0;
  fake.header().daemon_armed.store(0);  // nucleusd is polling the ring
  ASSERT_EQ(send(&b), 0);
  EXPECT_EQ(fake.rings(), 0U);
  fake.header().backlog.store(1);
  fake.publish(message_event(wire::make_handle(20, 1), "a", 0));
  nucleus_event_t e{};
  ASSERT_EQ(ch->wait_event(0, 0, &e), 0);
  EXPECT_EQ(fake.rings(), 0U);
  fake.header().daemon_armed.store(1);  // nucleusd sleeps
  ASSERT_EQ(send(&b), 0);
  EXPECT_EQ(fake.rings(), 1U);
}

// ---- closing -------------------------------------------------------------

TEST_F(ClientChannelTest, AClosedChannelRefusesEveryCall) {
  for (auto state : {wire::ChannelState::kShutdown, wire::ChannelState::kDetached}) {
    FakeNucleus f;
    f.set_slot(0, kBufferA);
    std::unique_ptr<Channel> c;
    ASSERT_EQ(f.attach(&c), 0);
    f.header().state.store(static_cast<uint32_t>(state));
    nucleus_message_t m{};
    nucleus_buffer_t b = 0;
    EXPECT_EQ(c->send_message("peer", &m, &b), -ESHUTDOWN);
    nucleus_event_t e{};
    EXPECT_EQ(c->wait_event(0, 0, &e), -ESHUTDOWN);
    EXPECT_EQ(c->wait_message(0, nullptr, nullptr, &b), -ESHUTDOWN);
    EXPECT_EQ(c->get_event(wire::make_handle(20, 1)), -ESHUTDOWN);
    EXPECT_TRUE(f.take_requests().empty());
  }
}

}  // namespace
}  // namespace nucleus::client
