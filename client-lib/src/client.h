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

class Channel {
 public:
  static int attach(const char *name, std::unique_ptr<Channel> *out);
  // A channel over a channel memfd of `bytes` bytes that the caller made,
  // with no socket: the library's unit tests play nucleusd's half
  // (tests/unit/client_channel_test.cc). Defined in testing.cc, which only
  // the nucleus_client_internal target builds; the installed libraries do
  // not have it.
  static int for_testing(int channel_fd, uint64_t bytes, sys::UniqueFd doorbell,
                         std::unique_ptr<Channel> *out);
  ~Channel();
  Channel(const Channel &) = delete;
  Channel &operator=(const Channel &) = delete;

  int send_message(const char *receiver, const nucleus_message_t *message, nucleus_buffer_t *out);
  int wait_message(int64_t timeout_ns, char sender[32], nucleus_message_t *message,
                   nucleus_buffer_t *out);
  int send_answer(nucleus_buffer_t buffer, int result, const nucleus_message_t *answer);
  int wait_answer(nucleus_buffer_t buffer, int64_t timeout_ns, int *result,
                  nucleus_message_t *answer);
  int wait_event(nucleus_buffer_t previous, int64_t timeout_ns, nucleus_event_t *out);
  int get_event(nucleus_buffer_t buffer);
  int get_stats(nucleus_stats_t *out);
  void *data_area(size_t *size);

  // Process control (control.cc).
  int create_process(const char *name, const nucleus_program_t *program,
                     const nucleus_claims_t *claims);
  int act_for(const char *name);
  int start_process(const char *name);
  int stop_process(const char *name, nucleus_buffer_t *out);
  int modify_process(const char *name, const nucleus_program_t *program,
                     const nucleus_claims_t *claims);
  int remove_process(const char *name);
  int get_process(const char *name, nucleus_process_t *out);
  int list_children(nucleus_process_t *out, size_t capacity, size_t *count);
  int create_external_process(const char *name, int kind,
                              const nucleus_device_parameters_t *parameters);
  // Hot swap (control.cc).
  int swap_process(const char *name, const nucleus_program_t *program, nucleus_buffer_t *out);
  int hand_over(nucleus_buffer_t handover, const void *state, size_t size);
  const void *handover_state(size_t *size);
  int swap_ready();
  const std::vector<nucleus_event_t> &inherited() const { return inherited_; }
  // kRemoveExternal, kReserveProcess or kReleaseProcess of `name`.
  int device_request(wire::Op op, const char *name);
  const std::string &name() const { return name_; }

 private:
  struct Slot {
    uint64_t handle = 0;   // the last handle used on this buffer
    bool out = false;      // sent and not yet waited for
    bool present = false;  // the slot table shows it (part of the claim)
  };

  Channel() = default;
  // Maps the channel memfd and checks its layout (attach, for_testing).
  static int map_channel(int channel_fd, uint64_t bytes, sys::UniqueFd doorbell,
                         std::unique_ptr<Channel> *out);
  int map_layout();
  int closed_error() const;
  void ring_doorbell();
  int push_request(const wire::Request &r, bool doorbell);
  void drain();
  int wait_progress(int64_t deadline_ns, int64_t request_head);
  static int64_t deadline(int64_t timeout_ns);
  template <typename Pred>
  int wait_for(int64_t timeout_ns, Pred pred);
  Slot *out_slot(nucleus_buffer_t buffer);
  int release_slot(nucleus_buffer_t buffer);
  int take_message(nucleus_buffer_t buffer);
  void inherit(const wire::Event &e);
  // Re-reads the slot table when nucleusd says it changed.
  void rescan_slots();
  int take_free_slot(uint32_t *slot);
  // Sends a control request and waits for its kReply; 0 or -errno.
  int control(wire::Request r, wire::Event *reply);
  // A control request on the next use of the free buffer in `slot` (stop,
  // swap): nucleusd answers that buffer later, like any message.
  int control_on_slot(wire::Request r, uint32_t slot, nucleus_buffer_t *out);
  int stage_program(const nucleus_program_t *program);
  int stage_bytes(const std::string &bytes);
  int checked_name(const char *name, wire::Request *r);

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
  std::unordered_set<uint64_t> received_;                 // answers owed
  std::deque<nucleus_event_t> queue_;                     // published, not yet taken
  std::deque<wire::Event> replies_;
  // Hot swap: a swap's new program, until it takes over.
  bool successor_ = false;
  bool have_state_ = false;  // the kHandover event came
  uint64_t handover_bytes_ = 0;
  std::vector<nucleus_event_t> inherited_;  // received by the old program, not answered
};

// Drains, asks pred (1: not yet), and sleeps until something may have
// changed, the channel closes or the timeout passes.
template <typename Pred>
int Channel::wait_for(int64_t timeout_ns, Pred pred) {
  int64_t dl = deadline(timeout_ns);
  for (;;) {
    drain();
    if (int rc = pred(); rc != 1) return rc;
    if (int rc = closed_error(); rc < 0) return rc;
    if (timeout_ns == 0) return -ETIMEDOUT;
    if (int rc = wait_progress(dl, -1); rc < 0) return rc;
  }
}

}  // namespace nucleus::client
