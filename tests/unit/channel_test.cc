// The daemon's half of a channel never trusts what the process wrote.
#include "channel.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

namespace nucleus::daemon {
namespace {

class ChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<SlotEntry> slots{{3, wire::make_handle(3, 1)}};
    auto r = Channel::create("t", {8, 8, 4096}, wire::Doorbell::kFutex, slots);
    ASSERT_TRUE(r.ok());
    ch = std::move(r.value());
    // The process's view: a second mapping of the same memfd.
    view = mmap(nullptr, ch->bytes(), PROT_READ | PROT_WRITE, MAP_SHARED, ch->fd(), 0);
    ASSERT_NE(view, MAP_FAILED);
    hdr = static_cast<wire::ChannelHeader *>(view);
  }
  void TearDown() override { munmap(view, ch->bytes()); }

  std::shared_ptr<Channel> ch;
  void *view = nullptr;
  wire::ChannelHeader *hdr = nullptr;
};

TEST_F(ChannelTest, HeaderDescribesTheLayout) {
  wire::Layout l = wire::compute_layout(wire::kMaxBufferClaim, 8, 8, 4096);
  EXPECT_EQ(hdr->magic, wire::kMagic);
  EXPECT_EQ(hdr->channel_bytes, l.channel_bytes);
  EXPECT_EQ(hdr->events_offset, l.events_offset);
  EXPECT_EQ(hdr->slot_count, wire::kMaxBufferClaim);
  EXPECT_EQ(hdr->slot_high.load(), 1U);
  const auto *slots =
      reinterpret_cast<const uint64_t *>(static_cast<char *>(view) + hdr->slots_offset);
  EXPECT_EQ(slots[0], wire::make_handle(3, 1));
}

TEST_F(ChannelTest, SlotTableFollowsTheClaim) {
  const auto *slots =
      reinterpret_cast<const uint64_t *>(static_cast<char *>(view) + hdr->slots_offset);
  uint32_t version = hdr->slots_version.load();
  // Unchanged: no new version.
  ch->sync_slots({{3, wire::make_handle(3, 1)}});
  EXPECT_EQ(hdr->slots_version.load(), version);
  // Two given: entries written after the first, version moves.
  ch->sync_slots(
      {{3, wire::make_handle(3, 1)}, {5, wire::make_handle(5, 2)}, {6, wire::make_handle(6, 1)}});
  EXPECT_NE(hdr->slots_version.load(), version);
  EXPECT_EQ(hdr->slot_high.load(), 3U);
  EXPECT_EQ(slots[1], wire::make_handle(5, 2));
  EXPECT_EQ(slots[2], wire::make_handle(6, 1));
  EXPECT_TRUE(ch->shows(5));
  // One taken away: its entry is 0 and is reused by the next one given.
  ch->sync_slots({{3, wire::make_handle(3, 1)}, {6, wire::make_handle(6, 1)}});
  EXPECT_EQ(slots[1], 0U);
  EXPECT_FALSE(ch->shows(5));
  ch->sync_slots(
      {{3, wire::make_handle(3, 1)}, {6, wire::make_handle(6, 1)}, {9, wire::make_handle(9, 4)}});
  EXPECT_EQ(slots[1], wire::make_handle(9, 4));
  EXPECT_EQ(hdr->slot_high.load(), 3U);
}

TEST_F(ChannelTest, RequestsAreCopiedOutInOrder) {
  auto *req = reinterpret_cast<wire::Request *>(static_cast<char *>(view) + hdr->requests_offset);
  for (uint32_t i = 0; i < 3; ++i) req[i].seq = i + 10;
  hdr->requests_tail.store(3);
  ASSERT_EQ(ch->pending_requests(), 3);
  for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(ch->take_request().seq, i + 10);
  ch->commit_requests();
  EXPECT_EQ(hdr->requests_head.load(), 3U);
  EXPECT_EQ(ch->pending_requests(), 0);
}

TEST_F(ChannelTest, ImpossibleRequestTailIsAViolation) {
  hdr->requests_tail.store(9);  // more than the ring holds
  EXPECT_EQ(ch->pending_requests(), -1);
  hdr->requests_tail.store(UINT32_MAX);  // behind our head
  EXPECT_EQ(ch->pending_requests(), -1);
}

TEST_F(ChannelTest, ImpossibleEventHeadIsAViolation) {
  EXPECT_EQ(ch->event_space(), 8);
  wire::Event e{};
  ch->push_event(e);
  ch->push_event(e);
  ch->commit_events();
  EXPECT_EQ(ch->event_space(), 6);
  hdr->events_head.store(3);  // past our tail
  EXPECT_EQ(ch->event_space(), -1);
  hdr->events_head.store(2);
  EXPECT_EQ(ch->event_space(), 8);
  hdr->events_head.store(1);  // moved backwards
  EXPECT_EQ(ch->event_space(), -1);
}

TEST_F(ChannelTest, ProcessCannotShrinkTheMemfd) {
  EXPECT_LT(ftruncate(ch->fd(), 0), 0);
  EXPECT_EQ(errno, EPERM);
}

}  // namespace
}  // namespace nucleus::daemon
