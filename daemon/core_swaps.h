// Hot swap (docs/hot-swap.md): the parent's request, the hidden entry of
// the new program, the handover, and the one step in which the new program
// takes over the entry. The Linux side (starting the new program, its
// channel, ending the old one, deadlines) is Swaps' (swaps.cc).
// Owns the handovers answered since the server last looked; each entry's
// swap fields (Process::swap_*, handover_buffer, handed_over) change here.
//
// The entry itself never moves: its name, children, devices, claims, queue
// and every buffer it holds stay where they are, so "moving them to the new
// program" is rebinding the entry to the new program's channel and pid, and
// telling the new program what it inherits.
//
// Threading: nucleusd's loop thread only.
#pragma once

#include <nucleus/wire.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "error.h"
#include "messages.h"
#include "notices.h"
#include "pool.h"
#include "process_table.h"
#include "process_tree.h"

namespace nucleus::daemon {

// The old OS answered the nucleus's handover message (Core::take_handovers).
struct HandoverAnswer {
  uint32_t id = kNone;
  uint32_t generation = 0;
  int32_t result = 0;
  wire::Message words{};
};

// What the new program of a swap takes over besides the queue (buffer
// indices): messages received and not answered, in arrival order, and
// buffers of the claim that are out.
struct Inheritance {
  std::vector<uint32_t> received;
  std::vector<uint32_t> out;
};

class CoreSwaps {
 public:
  CoreSwaps(Pool &pool, ProcessTable &processes, Messages &messages, Notices &notices,
            ProcessTree &tree)
      : pool_(pool), processes_(processes), messages_(messages), notices_(notices), tree_(tree) {}
  CoreSwaps(const CoreSwaps &) = delete;
  CoreSwaps &operator=(const CoreSwaps &) = delete;

  // The operations are documented on the Core's surface (core.h).
  Result<uint32_t> begin_swap(uint32_t requester, uint32_t id, uint64_t handle, Program program);
  Error request_handover(uint32_t id, uint64_t data_bytes);
  std::vector<HandoverAnswer> take_handovers() { return std::exchange(handovers_, {}); }
  Inheritance commit_swap(uint32_t id, int32_t pid);
  void end_swap(uint32_t id, int32_t result, const wire::Message &words);
  wire::Event inherit_event(uint32_t index, int32_t kind) const;

  // A buffer of the notice reserve was answered: if it was the handover
  // message of a swap, the OS being swapped answered it.
  void handover_answered(uint32_t index);
  // `id` leaves the table: a swap of it in progress ends, cancelled.
  void leaving(uint32_t id);

 private:
  Pool &pool_;
  ProcessTable &processes_;
  Messages &messages_;
  Notices &notices_;
  ProcessTree &tree_;
  std::vector<HandoverAnswer> handovers_;
};

}  // namespace nucleus::daemon
