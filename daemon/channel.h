// nucleusd's side of one process's channel: the memfd, its mapping, and the
// daemon's halves of the two rings.
//
// Trust: the process can write anything, at any time, into every byte of
// the mapping. This class never reads back a word the daemon wrote: it keeps
// its own copies of requests_head and events_tail, and reads only the two
// process-written indices (checked against those copies) and request entries
// (copied out once, then checked by the caller). The memfd is sealed against
// shrinking, so the mapping cannot fault under the daemon.
//
// Threading: nucleusd's single thread only.
#pragma once

#include <nucleus/wire.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nucleus_internal/sys.h>

#include "error.h"

namespace nucleus::daemon {

struct ChannelSizes {
  uint32_t request_entries = 0;
  uint32_t event_entries = 0;
  uint64_t data_bytes = 0;
};

// A buffer of the process's claim as its slot table shows it.
struct SlotEntry {
  uint32_t index;   // in the pool
  uint64_t handle;  // its current handle
};

class Channel {
 public:
  // The slot table has room for wire::kMaxBufferClaim entries (pages of it
  // that are never written cost nothing); `slots` are the first entries.
  static Result<std::shared_ptr<Channel>> create(const std::string &name, const ChannelSizes &sizes,
                                                 wire::Doorbell doorbell,
                                                 const std::vector<SlotEntry> &slots);
  ~Channel();
  Channel(const Channel &) = delete;
  Channel &operator=(const Channel &) = delete;

  int fd() const { return memfd_.get(); }
  uint64_t bytes() const { return bytes_; }
  // The process's data area: devices read into and write from it. Its size
  // is nucleusd's own record, never the header's copy.
  uint8_t *data() const { return data_; }
  uint64_t data_bytes() const { return data_bytes_; }
  // Copies `length` bytes to `offset` of the data area (the caller checked
  // both) through the memfd: pages not yet there are allocated by the
  // write, without a page fault in nucleusd for each.
  void write_data(uint64_t offset, const uint8_t *from, uint64_t length);

  // Requests now in the ring, or -1 when the process wrote an impossible tail.
  int64_t pending_requests();
  // Copies the next request out (only after pending_requests() > 0).
  wire::Request take_request();
  // Tells the process the entries taken so far may be reused.
  void commit_requests();

  // Free event slots, or -1 when the process wrote an impossible head.
  int64_t event_space();
  void push_event(const wire::Event &event);
  // The next entry of the event ring (only after event_space() > 0), to be
  // written whole in place and then counted with event_written(): an event
  // the Core builds goes to the ring with no copy of its own.
  wire::Event *event_slot() { return &events_[event_tail_ & (event_entries_ - 1)]; }
  void event_written() { ++event_tail_; }
  void commit_events();

  // Doorbell state: armed means "ring me". See wire.h for the protocol.
  void set_armed(bool armed);
  void set_backlog(bool backlog);
  bool backlog() const { return backlog_; }
  // Why the process sleeps on events_tail, read after a fence (wire::WaitReason).
  uint32_t process_waiting();
  void wake_process();
  std::atomic<uint32_t> *doorbell_word() { return &header_->requests_tail; }
  uint32_t requests_tail_seen() const { return request_head_; }
  // Makes the slot table show exactly `visible` (buffers the process may
  // send on): entries of buffers no longer there become 0, new ones are
  // written, and slots_version moves. Cheap when nothing changed.
  void sync_slots(const std::vector<SlotEntry> &visible);
  bool shows(uint32_t index) const { return positions_.count(index) != 0; }

  // Closes the channel: every call of the process returns an error.
  void close(wire::ChannelState state);

 private:
  Channel() = default;

  sys::UniqueFd memfd_;
  uint8_t *base_ = nullptr;
  uint64_t bytes_ = 0;
  wire::ChannelHeader *header_ = nullptr;
  wire::Request *requests_ = nullptr;
  wire::Event *events_ = nullptr;
  uint8_t *data_ = nullptr;
  uint64_t data_offset_ = 0;
  uint64_t data_bytes_ = 0;
  uint32_t request_entries_ = 0;
  uint32_t event_entries_ = 0;
  uint32_t request_head_ = 0;     // ours; the shared copy is only written
  uint32_t event_tail_ = 0;       // ours
  uint32_t event_head_seen_ = 0;  // last valid head the process gave
  bool backlog_ = false;
  uint64_t *slots_ = nullptr;
  std::unordered_map<uint32_t, uint32_t> positions_;  // buffer index -> slot table entry
  std::vector<uint32_t> free_positions_;              // below slot_high_, highest first
  uint32_t slot_high_ = 0;
  uint32_t slots_version_ = 0;
};

}  // namespace nucleus::daemon
