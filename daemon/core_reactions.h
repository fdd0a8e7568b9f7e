// What one part of the Core does that another part must react to, where
// the other part is built on the first and so is not called from it
// directly. The Core wires its parts and answers these by calling the part
// concerned (core.cc).
//
// Threading: nucleusd's loop thread only.
#pragma once

#include <cstdint>

namespace nucleus::daemon {

class CoreReactions {
 public:
  // One of the nucleus's own buffers (an exit notice, a swap's handover) was
  // answered (Messages): the swap takes a handover's answer, and the buffer
  // goes back to the notice reserve.
  virtual void nucleus_buffer_answered(uint32_t index) = 0;
  // `id` is about to leave the table (ProcessTree): a swap of it in progress
  // ends first.
  virtual void entry_leaving(uint32_t id) = 0;

 protected:
  CoreReactions() = default;
  ~CoreReactions() = default;
  CoreReactions(const CoreReactions &) = default;
  CoreReactions &operator=(const CoreReactions &) = default;
};

}  // namespace nucleus::daemon
