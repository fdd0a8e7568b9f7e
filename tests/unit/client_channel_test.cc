// The library's half of a channel (client-lib/src/client.cc) against
// nucleusd's half, daemon::Channel (daemon/channel.cc) itself, with no
// server and no socket: the test drives nucleusd's half by hand (its slot
// table, its events, the requests it takes) and reads what the library
// wrote: its requests, its events_head, and its doorbell (an eventfd, so a
// ring is counted). What nucleusd never writes (a header that disagrees
// with wire.h, a slot entry not yet announced) the test writes through a
// mapping of its own.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "channel.h"
#include "testing.h"

namespace nucleus::client {
namespace {

// Small rings, so that they wrap.
constexpr uint32_t kRequestEntries = 8;
constexpr uint32_t kEventEntries = 4;
constexpr uint64_t kDataBytes = 4096;

// nucleusd's half of one channel, as nucleusd makes it for an attach with an
// eventfd doorbell.
class Nucleusd {
 public:
  Nucleusd() {
    auto made = daemon::Channel::create("client-test", {kRequestEntries, kEventEntries, kDataBytes},
                                        wire::Doorbell::kEventfd, {});
    EXPECT_TRUE(made.ok());
    channel_ = std::move(made.value());
    void *view =
        mmap(nullptr, channel_->bytes(), PROT_READ | PROT_WRITE, MAP_SHARED, channel_->fd(), 0);
    EXPECT_NE(view, MAP_FAILED);
    view_ = static_cast<uint8_t *>(view);
    doorbell_ = sys::UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    EXPECT_TRUE(doorbell_);
  }
  ~Nucleusd() { munmap(view_, channel_->bytes()); }
  Nucleusd(const Nucleusd &) = delete;
  Nucleusd &operator=(const Nucleusd &) = delete;

  daemon::Channel &channel() { return *channel_; }
  // The header through the test's own mapping: for reading what the library
  // wrote, and for writing what nucleusd never would.
  wire::ChannelHeader &header() { return *reinterpret_cast<wire::ChannelHeader *>(view_); }

  // The library's half over this channel, as attach would make it from the
  // memfd and (with or without) the doorbell eventfd nucleusd sends.
  int attach(std::unique_ptr<Channel> *out, bool doorbell = true) {
    return ChannelForTesting::open(channel_->fd(), channel_->bytes(),
                                   sys::UniqueFd(doorbell ? dup(doorbell_.get()) : -1), out);
  }

  // ---- slot table ----
  // Shows exactly these buffers as the claim, as nucleusd does after a
  // change to it: entries first, then slot_high and slots_version.
  void show(std::initializer_list<uint64_t> handles) {
    std::vector<daemon::SlotEntry> visible;
    for (uint64_t h : handles) visible.push_back({wire::handle_index(h), h});
    channel_->sync_slots(visible);
  }
  // Writes the word at `position` of the slot table (at slot_count: the
  // word after it) and nothing else: slots_version does not move.
  void write_slot(uint32_t position, uint64_t handle) {
    auto *slots = reinterpret_cast<uint64_t *>(view_ + header().slots_offset);
    __atomic_store_n(&slots[position], handle, __ATOMIC_RELEASE);
  }

  // ---- events (nucleus -> process) ----
  void publish(const wire::Event &e) {
    ASSERT_GT(channel_->event_space(), 0) << "the test overfills the event ring";
    channel_->push_event(e);
    channel_->commit_events();
  }
  uint32_t events_head() { return header().events_head.load(std::memory_order_acquire); }

  // ---- requests (process -> nucleus) ----
  // Takes every request the library published, in order.
  std::vector<wire::Request> take_requests() {
    std::vector<wire::Request> out;
    int64_t pending = channel_->pending_requests();
    EXPECT_GE(pending, 0) << "the library wrote an impossible tail";
    for (int64_t i = 0; i < pending; ++i) out.push_back(channel_->take_request());
    channel_->commit_requests();
    return out;
  }

  // How often the library rang the doorbell since the last look.
  uint64_t rings() {
    uint64_t n = 0;
    return read(doorbell_.get(), &n, sizeof(n)) == sizeof(n) ? n : 0;
  }

 private:
  std::shared_ptr<daemon::Channel> channel_;
  uint8_t *view_ = nullptr;
  sys::UniqueFd doorbell_;
};

wire::Event message_event(uint64_t handle, const char *sender, uint64_t word0) {
  wire::Event e{};
  e.kind = static_cast<uint32_t>(wire::EventKind::kMessage);
  e.handle = handle;
  std::strncpy(e.sender, sender, sizeof(e.sender) - 1);
  e.message.word[0] = word0;
  // A principal the test can tell apart per message: uid = 1000 + word0.
  e.principal = wire::Principal{static_cast<uint32_t>(1000 + word0), 7, 4000,
                                static_cast<uint32_t>(wire::PrincipalKind::kProcess)};
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
  void attach() { ASSERT_EQ(nucleusd.attach(&ch), 0); }
  // Sends a message to "peer" on a free buffer of the claim.
  int send(nucleus_buffer_t *out, uint64_t word0 = 0) {
    nucleus_message_t m{};
    m.word[0] = word0;
    return ch->send_message("peer", &m, out);
  }

  Nucleusd nucleusd;
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
    Nucleusd n;
    c.spoil(n.header());
    std::unique_ptr<Channel> refused;
    EXPECT_EQ(n.attach(&refused), -EPROTO) << c.what;
    EXPECT_FALSE(refused) << c.what;
  }
  // An eventfd doorbell, and no eventfd came with the memfd.
  std::unique_ptr<Channel> refused;
  EXPECT_EQ(nucleusd.attach(&refused, false), -EPROTO);
  EXPECT_FALSE(refused);
}

// ---- slot mirroring ------------------------------------------------------

TEST_F(ClientChannelTest, MirrorsTheSlotTableItFindsAtAttach) {
  nucleusd.show({kBufferA, kBufferB});
  attach();
  // Each send is the next use of a buffer of the claim, in table order.
  nucleus_buffer_t a = 0, b = 0, none = 0;
  ASSERT_EQ(send(&a, 1), 0);
  ASSERT_EQ(send(&b, 2), 0);
  EXPECT_EQ(a, wire::next_handle(kBufferA));
  EXPECT_EQ(b, wire::next_handle(kBufferB));
  EXPECT_EQ(send(&none), -ENOBUFS) << "two buffers, both out";
  auto requests = nucleusd.take_requests();
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
  nucleusd.show({kBufferA});
  attach();
  nucleus_buffer_t a = 0, b = 0;
  ASSERT_EQ(send(&a), 0);
  // Written, slot_high too, but slots_version has not moved: not yet the
  // process's (the library looks between nucleusd's writes).
  nucleusd.write_slot(1, kBufferB);
  nucleusd.header().slot_high.store(2, std::memory_order_release);
  EXPECT_EQ(send(&b), -ENOBUFS);
  nucleusd.show({kBufferA, kBufferB});  // the same entry, and the version moves
  ASSERT_EQ(send(&b), 0);
  EXPECT_EQ(b, wire::next_handle(kBufferB));
}

TEST_F(ClientChannelTest, ReadsNoEntryPastTheTable) {
  nucleusd.show({kBufferA});
  attach();
  // A slot_high past the table's capacity: the library reads slot_count
  // entries, not the word after them (the request ring's first).
  nucleusd.write_slot(nucleusd.header().slot_count, kBufferB);
  nucleusd.header().slot_high.store(UINT32_MAX);
  nucleusd.header().slots_version.fetch_add(1);
  nucleus_buffer_t a = 0, none = 0;
  ASSERT_EQ(send(&a), 0);
  EXPECT_EQ(a, wire::next_handle(kBufferA));
  EXPECT_EQ(send(&none), -ENOBUFS);
}

TEST_F(ClientChannelTest, AnEntryThatNowNamesAnotherBufferIsThatBuffer) {
  nucleusd.show({kBufferA});
  attach();
  nucleusd.show({kBufferC});  // A taken away, C given, in the same entry
  nucleus_buffer_t c = 0, none = 0;
  ASSERT_EQ(send(&c), 0);
  EXPECT_EQ(c, wire::next_handle(kBufferC));
  EXPECT_EQ(send(&none), -ENOBUFS);
}

// ---- withdrawn buffers ---------------------------------------------------

TEST_F(ClientChannelTest, AFreeBufferWithdrawnIsNotUsed) {
  nucleusd.show({kBufferA, kBufferB});
  attach();
  nucleusd.show({kBufferB});  // A taken from the claim
  nucleus_buffer_t b = 0, none = 0;
  ASSERT_EQ(send(&b), 0);
  EXPECT_EQ(b, wire::next_handle(kBufferB));
  EXPECT_EQ(send(&none), -ENOBUFS);
}

TEST_F(ClientChannelTest, ABufferWithdrawnUnderASendGetsADummyAnswerAndIsNotReused) {
  nucleusd.show({kBufferA});
  attach();
  nucleus_buffer_t a = 0;
  ASSERT_EQ(send(&a), 0);
  // The buffer was taken from the claim as the send went: nucleusd refuses
  // the send.
  nucleusd.show({});
  nucleusd.publish(error_event(a));
  ASSERT_EQ(nucleusd.take_requests().size(), 1U);
  int result = 0;
  nucleus_message_t answer{};
  ASSERT_EQ(ch->wait_answer(a, 0, &result, &answer), 0);
  EXPECT_EQ(result, NUCLEUS_RESULT_DUMMY);
  // Nothing to release on a buffer that is no longer ours, nothing to send on.
  EXPECT_TRUE(nucleusd.take_requests().empty());
  EXPECT_EQ(ch->wait_answer(a, 0, &result, &answer), -EBADF);
  nucleus_buffer_t none = 0;
  EXPECT_EQ(send(&none), -ENOBUFS);
}

TEST_F(ClientChannelTest, ARefusalOfNoBufferOutIsIgnored) {
  nucleusd.show({kBufferA});
  attach();
  nucleusd.publish(error_event(wire::next_handle(kBufferA)));  // never sent
  nucleus_event_t e{};
  EXPECT_EQ(ch->wait_event(0, 0, &e), -ETIMEDOUT);
  EXPECT_EQ(nucleusd.events_head(), 1U) << "drained all the same";
}

// ---- draining ------------------------------------------------------------

TEST_F(ClientChannelTest, MessagesAreTakenInTheOrderTheyCame) {
  attach();
  const uint64_t m1 = wire::make_handle(20, 1), m2 = wire::make_handle(21, 1),
                 m3 = wire::make_handle(22, 1);
  nucleusd.publish(message_event(m1, "a", 1));
  nucleusd.publish(message_event(m2, "b", 2));
  nucleusd.publish(message_event(m3, "c", 3));
  // Looking takes nothing: wait_event walks the queue from `previous`.
  nucleus_event_t e{};
  ASSERT_EQ(ch->wait_event(0, 0, &e), 0);
  EXPECT_EQ(e.buffer, m1);
  EXPECT_EQ(nucleusd.events_head(), 3U) << "all three drained";
  ASSERT_EQ(ch->wait_event(m1, 0, &e), 0);
  EXPECT_EQ(e.buffer, m2);
  ASSERT_EQ(ch->wait_event(m2, 0, &e), 0);
  EXPECT_EQ(e.buffer, m3);
  EXPECT_EQ(ch->wait_event(m3, 0, &e), -ETIMEDOUT);
  // Taking: in order, each with its sender, its principal as nucleusd wrote
  // it and its words, each told to nucleusd.
  const char *senders[] = {"a", "b", "c"};
  const uint64_t handles[] = {m1, m2, m3};
  for (uint64_t i = 0; i < 3; ++i) {
    nucleus_sender_t sender{};
    nucleus_message_t m{};
    nucleus_buffer_t b = 0;
    ASSERT_EQ(ch->wait_message(0, &sender, &m, &b), 0);
    EXPECT_EQ(b, handles[i]);
    EXPECT_STREQ(sender.name, senders[i]);
    EXPECT_EQ(sender.principal.uid, 1001 + i);
    EXPECT_EQ(sender.principal.gid, 7U);
    EXPECT_EQ(sender.principal.pid, 4000);
    EXPECT_EQ(sender.principal.kind, static_cast<uint32_t>(NUCLEUS_FROM_PROCESS));
    EXPECT_EQ(m.word[0], i + 1);
  }
  nucleus_buffer_t b = 0;
  EXPECT_EQ(ch->wait_message(0, nullptr, nullptr, &b), -ETIMEDOUT);
  auto requests = nucleusd.take_requests();
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
      nucleusd.publish(
          message_event(wire::make_handle(static_cast<uint32_t>(100 + next), 1), "s", next));
      ++next;
    }
    for (uint64_t want = next - 3; want < next; ++want) {
      nucleus_message_t m{};
      nucleus_buffer_t b = 0;
      ASSERT_EQ(ch->wait_message(0, nullptr, &m, &b), 0);
      EXPECT_EQ(m.word[0], want);
    }
    nucleusd.take_requests();
  }
  EXPECT_EQ(nucleusd.events_head(), 15U);
}

TEST_F(ClientChannelTest, AnAnswerGoesToItsBufferWhicheverCameFirst) {
  nucleusd.show({kBufferA, kBufferB});
  attach();
  nucleus_buffer_t a = 0, b = 0;
  ASSERT_EQ(send(&a), 0);
  ASSERT_EQ(send(&b), 0);
  nucleusd.take_requests();
  nucleusd.publish(answer_event(b, NUCLEUS_RESULT_REJECTED, 22));
  nucleusd.publish(answer_event(a, NUCLEUS_RESULT_NORMAL, 11));
  int result = 0;
  nucleus_message_t answer{};
  ASSERT_EQ(ch->wait_answer(a, 0, &result, &answer), 0);
  EXPECT_EQ(result, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(answer.word[0], 11U);
  ASSERT_EQ(ch->wait_answer(b, 0, &result, &answer), 0);
  EXPECT_EQ(result, NUCLEUS_RESULT_REJECTED);
  EXPECT_EQ(answer.word[0], 22U);
  // Each answer taken is released, and its buffer is free for its next use.
  auto requests = nucleusd.take_requests();
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
  nucleusd.publish(message_event(wire::make_handle(20, 1), "a", 0));
  nucleus_buffer_t b = 0;
  ASSERT_EQ(ch->wait_message(0, nullptr, nullptr, &b), 0);
  m.word[0] = 5;
  ASSERT_EQ(ch->send_answer(b, NUCLEUS_RESULT_NORMAL, &m), 0);
  EXPECT_EQ(ch->send_answer(b, NUCLEUS_RESULT_NORMAL, &m), -EBADF) << "answered twice";
  auto requests = nucleusd.take_requests();
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
  nucleusd.channel().set_backlog(true);
  nucleusd.publish(message_event(wire::make_handle(20, 1), "a", 0));
  nucleus_event_t e{};
  ASSERT_EQ(ch->wait_event(0, 0, &e), 0);
  EXPECT_EQ(nucleusd.rings(), 1U);
  // Nothing new drained: nothing to say, even with the backlog bit still set.
  ASSERT_EQ(ch->wait_event(0, 0, &e), 0);
  EXPECT_EQ(nucleusd.rings(), 0U);
  // No backlog: draining rings nothing.
  nucleusd.channel().set_backlog(false);
  nucleusd.publish(message_event(wire::make_handle(21, 1), "a", 0));
  ASSERT_EQ(ch->wait_event(e.buffer, 0, &e), 0);
  EXPECT_EQ(nucleusd.rings(), 0U);
}

TEST_F(ClientChannelTest, RingsOnlyANucleusThatAskedForIt) {
  nucleusd.show({kBufferA, kBufferB});
  attach();
  nucleus_buffer_t b = 0;
  nucleusd.channel().set_armed(false);  // nucleusd is polling the ring
  ASSERT_EQ(send(&b), 0);
  EXPECT_EQ(nucleusd.rings(), 0U);
  nucleusd.channel().set_backlog(true);
  nucleusd.publish(message_event(wire::make_handle(20, 1), "a", 0));
  nucleus_event_t e{};
  ASSERT_EQ(ch->wait_event(0, 0, &e), 0);
  EXPECT_EQ(nucleusd.rings(), 0U);
  nucleusd.channel().set_armed(true);  // nucleusd sleeps
  ASSERT_EQ(send(&b), 0);
  EXPECT_EQ(nucleusd.rings(), 1U);
}

// ---- closing -------------------------------------------------------------

TEST_F(ClientChannelTest, AClosedChannelRefusesEveryCall) {
  for (auto state : {wire::ChannelState::kShutdown, wire::ChannelState::kDetached}) {
    Nucleusd n;
    n.show({kBufferA});
    std::unique_ptr<Channel> c;
    ASSERT_EQ(n.attach(&c), 0);
    n.channel().close(state);
    nucleus_message_t m{};
    nucleus_buffer_t b = 0;
    EXPECT_EQ(c->send_message("peer", &m, &b), -ESHUTDOWN);
    nucleus_event_t e{};
    EXPECT_EQ(c->wait_event(0, 0, &e), -ESHUTDOWN);
    EXPECT_EQ(c->wait_message(0, nullptr, nullptr, &b), -ESHUTDOWN);
    EXPECT_EQ(c->get_event(wire::make_handle(20, 1)), -ESHUTDOWN);
    EXPECT_TRUE(n.take_requests().empty());
  }
}

}  // namespace
}  // namespace nucleus::client

// ---- the descriptor to poll ----------------------------------------------------
// The test plays nucleusd's part (daemon/connections.cc, flush): after it
// publishes, it writes a byte to the pipe when the library has set
// kWaitingOnDescriptor, and it serves kPollRing by writing one.

namespace nucleus::client {
namespace {

class PollDescriptorTest : public ClientChannelTest {
 protected:
  void SetUp() override {
    attach();
    nucleusd.show({kBufferA, kBufferB});
  }
  void give() {
    int fds[2];
    ASSERT_EQ(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    write_end.reset(fds[1]);
    read_end = fds[0];
    ChannelForTesting::give_poll_descriptor(*ch, sys::UniqueFd(fds[0]));
  }
  bool armed() {
    return (nucleusd.header().process_waiting.load() & wire::kWaitingOnDescriptor) != 0;
  }
  // nucleusd's flush: publish, then a byte if the bit is set.
  void publish(const wire::Event &e) {
    nucleusd.publish(e);
    if (armed()) ring();
  }
  void ring() {
    char byte = 1;
    ASSERT_EQ(write(write_end.get(), &byte, 1), 1);
  }
  // nucleusd serving the library's requests: kPollRing writes a byte.
  int serve_rings() {
    int rings = 0;
    for (const wire::Request &r : nucleusd.take_requests()) {
      if (op_of(r) == wire::Op::kPollDescriptor && r.arg == wire::kPollRing) {
        ring();
        ++rings;
      }
    }
    return rings;
  }
  // Readable, or hung up (end of file), as a poll loop takes it.
  bool readable() {
    pollfd p{read_end, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP)) != 0;
  }

  sys::UniqueFd write_end;
  int read_end = -1;  // the channel's
};

TEST_F(PollDescriptorTest, NothingWaitingArmsAndLeavesItUnreadable) {
  give();
  EXPECT_TRUE(armed());
  EXPECT_FALSE(readable());
  EXPECT_EQ(serve_rings(), 0);
}

TEST_F(PollDescriptorTest, AMessagePublishedWhileArmedMakesItReadableUntilTaken) {
  give();
  publish(message_event(kBufferC, "peer", 1));
  EXPECT_TRUE(readable());
  nucleus_event_t e{};
  ASSERT_EQ(ch->wait_event(0, 0, &e), 0);  // looks, takes nothing
  EXPECT_TRUE(readable());
  EXPECT_FALSE(armed()) << "an event waits: nucleusd need not write";
  ASSERT_EQ(ch->get_event(kBufferC), 0);
  EXPECT_FALSE(readable());
  EXPECT_TRUE(armed());
  EXPECT_EQ(serve_rings(), 0);
}

TEST_F(PollDescriptorTest, StaysReadableWhileAnyEventWaits) {
  give();
  publish(message_event(kBufferC, "peer", 1));
  publish(message_event(wire::make_handle(11, 1), "peer", 2));
  nucleus_sender_t from{};
  nucleus_message_t m{};
  nucleus_buffer_t got = 0;
  ASSERT_EQ(ch->wait_message(0, &from, &m, &got), 0);
  EXPECT_TRUE(readable());
  // A third arrives while it is not armed: no byte is needed, none written.
  publish(message_event(wire::make_handle(12, 1), "peer", 3));
  ASSERT_EQ(ch->wait_message(0, &from, &m, &got), 0);
  EXPECT_TRUE(readable());
  ASSERT_EQ(ch->wait_message(0, &from, &m, &got), 0);
  EXPECT_EQ(m.word[0], 3U);
  EXPECT_FALSE(readable());
  EXPECT_TRUE(armed());
  EXPECT_EQ(ch->wait_message(0, &from, &m, &got), -ETIMEDOUT);
  EXPECT_FALSE(readable());
}

// Events that wait when the descriptor is given (or were found after the
// pipe was emptied) had no byte: the library asks nucleusd for one.
TEST_F(PollDescriptorTest, EventsWaitingBeforeItWasGivenAskForAByte) {
  nucleusd.publish(message_event(kBufferC, "peer", 1));
  give();
  EXPECT_FALSE(armed());
  EXPECT_EQ(serve_rings(), 1);
  EXPECT_TRUE(readable());
  nucleus_event_t e{};
  ASSERT_EQ(ch->wait_event(0, 0, &e), 0);
  EXPECT_EQ(serve_rings(), 0) << "one byte asked for, not one a call";
}

// A late byte (for an event already taken) makes it readable with nothing
// waiting; the next call that finds nothing empties it.
TEST_F(PollDescriptorTest, ALateByteIsClearedByACallThatFindsNothing) {
  give();
  ring();
  EXPECT_TRUE(readable());
  nucleus_event_t e{};
  EXPECT_EQ(ch->wait_event(0, 0, &e), -ETIMEDOUT);
  EXPECT_FALSE(readable());
  EXPECT_TRUE(armed());
}

// nucleusd closed its write end with the channel still attached (it died):
// the descriptor reads end of file, and the calls say the nucleus went away.
TEST_F(PollDescriptorTest, EndOfFileMeansTheNucleusWentAway) {
  give();
  publish(message_event(kBufferC, "peer", 1));
  write_end.reset();
  ASSERT_EQ(ch->get_event(kBufferC), 0);
  EXPECT_EQ(ch->closed_error(), -ECONNRESET);
  EXPECT_TRUE(readable());
}

// The wait bits of the library's own sleeps keep the descriptor's.
TEST_F(PollDescriptorTest, ABlockingWaitKeepsTheDescriptorBit) {
  give();
  nucleus_event_t e{};
  EXPECT_EQ(ch->wait_event(0, 1000, &e), -ETIMEDOUT);  // slept on the futex for 1 µs
  EXPECT_TRUE(armed());
  EXPECT_EQ(nucleusd.header().process_waiting.load(), wire::kWaitingOnDescriptor);
}

}  // namespace
}  // namespace nucleus::client
