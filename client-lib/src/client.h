// The process side of one channel (see client.cc). Internal to libnucleus.
#pragma once

#include <nucleus/nucleus.h>
#include <nucleus/wire.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nucleus_internal/sys.h>

namespace nucleus::client {

// The process's half of one channel: its mapping, the two rings, the mirror
// of its slot table (the claim), the events published to it and the replies
// to its requests. The message primitives are its own; requests about
// other processes (process_control.h) are built on call() and call_on_slot().
//
// Threading: one thread at a time (nucleus.h).
class Channel {
 public:
  static int attach(const char *name, std::unique_ptr<Channel> *out);
  ~Channel();
  Channel(const Channel &) = delete;
  Channel &operator=(const Channel &) = delete;

  int send_message(const char *receiver, const nucleus_message_t *message, nucleus_buffer_t *out,
                   const nucleus_lend_t *lend = nullptr);
  // The receiver's copy between a lent range and its own data area, split
  // into requests of at most wire::kMaxCopyBytes.
  int copy_data(nucleus_buffer_t received, wire::CopyDirection direction, uint64_t lend_offset,
                uint64_t own_offset, uint64_t bytes);
  int regret_message(nucleus_buffer_t sent);
  // nucleus_set_receive_window.
  int set_receive_window(uint64_t offset, uint64_t bytes);
  // `sender` and `from` may be null.
  int wait_message(int64_t timeout_ns, nucleus_sender_t *sender, nucleus_message_t *message,
                   nucleus_buffer_t *out);
  // With bytes != 0 the answer first copies `bytes` from `own_offset` to the
  // start of the lent range (nucleus_send_answer_data).
  int send_answer(nucleus_buffer_t buffer, int result, const nucleus_message_t *answer,
                  uint64_t own_offset = 0, uint64_t bytes = 0);
  int wait_answer(nucleus_buffer_t buffer, int64_t timeout_ns, int *result,
                  nucleus_message_t *answer, nucleus_sender_t *from = nullptr);
  int wait_event(nucleus_buffer_t previous, int64_t timeout_ns, nucleus_event_t *out);
  int get_event(nucleus_buffer_t buffer);
  int get_stats(nucleus_stats_t *out);
  void *data_area(size_t *size);
  const std::string &name() const { return name_; }
  // A descriptor readable when an event waits (docs/data-and-regret.md, "A
  // descriptor to poll"): asked of nucleusd once, then this handle's until
  // it is destroyed. The descriptor or -errno.
  int poll_descriptor();

  // Hot swap, the old program's side: answers the handover message with
  // `state` in the data area.
  int hand_over(nucleus_buffer_t handover, const void *state, size_t size);
  // Hot swap, the new program's side (a successor, until swap_ready).
  const void *handover_state(size_t *size);
  int swap_ready();
  const std::vector<nucleus_event_t> &inherited() const { return inherited_; }

  // ---- requests (process_control.cc builds on these) ----
  // 0 while attached; -ESHUTDOWN or -ECONNRESET once the channel closed.
  int closed_error() const;
  // Sends a request and waits for its kReply: the reply's result (0 or
  // -errno), or the channel's error.
  int call(wire::Request r, wire::Event *reply);
  // Sends a request that nucleusd replies to with several kReply events:
  // hands each to take(const wire::Event &) as it comes, until complete()
  // says the last has come. 0 or the channel's error.
  template <typename Take, typename Complete>
  int call_each(wire::Request r, Take take, Complete complete);
  // A free buffer of the claim for call_on_slot; -ENOBUFS when none is.
  int find_free_slot(uint32_t *slot);
  // call() on the next use of the free buffer in `slot` (stop, swap):
  // nucleusd answers that buffer later, like any message.
  int call_on_slot(wire::Request r, uint32_t slot, nucleus_buffer_t *out);
  // Queues a request nucleusd does not reply to (a staged chunk): it
  // reads it with the next request that rings.
  int push(const wire::Request &r) { return push_request(r, false); }

 private:
  struct Slot {
    uint64_t handle = 0;   // the last handle used on this buffer
    bool out = false;      // sent and not yet waited for
    bool present = false;  // the slot table shows it (part of the claim)
  };

  friend class ChannelForTesting;  // testing.h: a channel with no socket

  Channel() = default;
  // Maps the channel memfd and checks its layout (attach, ChannelForTesting).
  static int map_channel(int channel_fd, uint64_t bytes, sys::UniqueFd doorbell,
                         std::unique_ptr<Channel> *out);
  int map_layout();
  void ring_doorbell();
  // After a call that may have taken events: keeps the descriptor to poll
  // readable exactly while an event waits (client.cc says how).
  void arm_descriptor();
  // Asks nucleusd for a byte in the descriptor (it never writes ours).
  void ring_descriptor();
  // Reads what the descriptor holds, never blocking whatever its flags;
  // false at end of file (nucleusd closed its end).
  bool empty_descriptor();
  // What process_waiting holds between waits: kWaitingOnDescriptor when armed.
  uint32_t descriptor_bits() const {
    return poll_armed_ ? uint32_t{wire::kWaitingOnDescriptor} : 0U;
  }
  int push_request(const wire::Request &r, bool doorbell);
  void drain();
  int wait_progress(int64_t deadline_ns, int64_t request_head);
  static int64_t deadline(int64_t timeout_ns);
  template <typename Pred>
  int wait_for(int64_t timeout_ns, Pred pred);
  Slot *out_slot(nucleus_buffer_t buffer);
  int release_slot(nucleus_buffer_t buffer);
  int take_message(nucleus_buffer_t buffer, const nucleus_lend_t &lend);
  void inherit(const wire::Event &e);
  // The sender regretted a message published to us (wire::EventKind::kWithdrawn).
  void withdrawn(uint64_t handle);
  // Re-reads the slot table when nucleusd says it changed.
  void rescan_slots();

  uint8_t *base_ = nullptr;
  size_t bytes_ = 0;
  sys::UniqueFd socket_;
  sys::UniqueFd doorbell_fd_;
  bool eventfd_doorbell_ = false;
  bool lost_ = false;
  std::string name_;
  wire::ChannelHeader *hdr_ = nullptr;
  wire::Request *requests_ = nullptr;
  wire::Event *events_ = nullptr;
  uint32_t request_mask_ = 0;
  uint32_t event_mask_ = 0;
  uint32_t request_tail_ = 0;  // our copy; the shared one is only written
  uint32_t event_head_ = 0;
  uint32_t seq_ = 0;
  int64_t spin_ns_ = 0;

  const uint64_t *slot_table_ = nullptr;
  uint32_t slots_version_ = 0;
  std::vector<Slot> slots_;  // by slot table entry
  std::vector<uint32_t> free_slots_;
  std::unordered_set<uint64_t> withdrawn_out_;  // out when nucleusd took the buffer away
  Slot withdrawn_slot_;                         // what out_slot() returns for one of those
  std::unordered_map<uint32_t, uint32_t> slot_of_index_;  // buffer index -> slot
  // Answers owed, with what each message lends (send_answer checks an
  // answer's copy against it: nucleusd's refusal would come too late).
  std::unordered_map<uint64_t, nucleus_lend_t> received_;
  std::deque<nucleus_event_t> queue_;  // published, not yet taken
  std::deque<wire::Event> replies_;
  // Hot swap: a swap's new program, until it takes over.
  bool successor_ = false;
  bool have_state_ = false;  // the kHandover event came
  uint64_t handover_bytes_ = 0;
  std::vector<nucleus_event_t> inherited_;  // received by the old program, not answered
  // The descriptor to poll, once asked for. armed: kWaitingOnDescriptor is
  // set (nucleusd writes a byte when it publishes); signalled: a byte is in
  // the pipe, or owed by nucleusd, since we last emptied it.
  sys::UniqueFd poll_fd_;
  bool poll_armed_ = false;
  bool poll_signalled_ = false;
};

// Drains, asks pred (1: not yet), and sleeps until something may have
// changed, the channel closes or the timeout passes. With a descriptor to
// poll, re-arms it before returning.
template <typename Pred>
int Channel::wait_for(int64_t timeout_ns, Pred pred) {
  int64_t dl = deadline(timeout_ns);
  int rc = 0;
  for (;;) {
    drain();
    rc = pred();
    if (rc != 1) break;
    rc = closed_error();
    if (rc < 0) break;
    rc = -ETIMEDOUT;
    if (timeout_ns == 0) break;
    rc = wait_progress(dl, -1);
    if (rc < 0) break;
  }
  if (poll_fd_) arm_descriptor();
  return rc;
}

template <typename Take, typename Complete>
int Channel::call_each(wire::Request r, Take take, Complete complete) {
  r.seq = ++seq_;
  if (int rc = push_request(r, true); rc < 0) return rc;
  return wait_for(-1, [&]() -> int {
    for (auto it = replies_.begin(); it != replies_.end();) {
      if (it->seq != r.seq) {
        ++it;
        continue;
      }
      take(static_cast<const wire::Event &>(*it));
      it = replies_.erase(it);
    }
    return complete() ? 0 : 1;
  });
}

}  // namespace nucleus::client
