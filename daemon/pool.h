// The nucleus's fixed pool of message buffers.
//
// Ownership: every buffer is either unowned and free (in free_), or held by
// one process's claim (owner). A held buffer is free until its owner sends on
// it; it stays held while out, so a claim is exactly the buffers it holds and
// a process can never take another's share. Generations advance on every send
// (see wire::next_handle), so a handle names one use of one buffer.
//
// Threading: nucleusd's single thread only.
#pragma once

#include <nucleus/wire.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "buffer_state.h"

namespace nucleus::daemon {

inline constexpr uint32_t kNone = UINT32_MAX;

struct Buffer {
  uint64_t generation = 0;
  BufferState state = BufferState::kFree;
  bool sender_gone = false;  // its sender died while it was out: free it when answered
  bool published = false;    // the event now on it was written to the owner's event ring
  bool in_fifo = false;      // waiting to be published
  uint32_t owner = kNone;    // the process whose claim holds it (the sender while out)
  uint32_t receiver = kNone;
  uint32_t inbox_prev = kNone;  // receiver's inbox: messages queued or received
  uint32_t inbox_next = kNone;
  uint32_t fifo_next = kNone;  // a process's events waiting for ring space
  int32_t result = 0;
  // Who the event on it is from, stamped by the nucleus: the message's
  // sender while it is queued or received, then whoever answered it (a
  // process, a device, or the nucleus). Name and principal go together.
  char from_name[wire::kNameBytes] = {};
  wire::Principal from{};
  // The range of its sender's data area the message lends (lend_bytes 0:
  // none; both < wire::kMaxDataAreaBytes) and the receiver's rights
  // (wire::LendRights). Live while the buffer is queued or received and the
  // sender's run that lent it lasts: sender_gone or lend_rights 0 (the
  // sender was swapped) end it, as the answer does. lend_offset fills the
  // padding before `words`.
  uint32_t lend_offset = 0;
  wire::Message words{};  // the message, then the answer
  uint32_t lend_bytes = 0;
  uint8_t lend_rights = 0;
  // The receiver a message on it was last withdrawn from after it was
  // published there (kNone: none): that receiver's take or answer of a use
  // that has passed, which may be on the way before it reads kWithdrawn, is
  // void rather than refused (Messages::withdrawn_use); anyone else's is
  // refused.
  uint32_t withdrawn_from = kNone;
  // An answer: the bytes it copied to the start of the lent range (the
  // answer event's `copied`); 0 for any other answer.
  uint32_t copied = 0;
};
// 152 bytes before lends, 160 with them, 168 with withdrawn_from (three
// cache lines either way); every message's path touches it.
static_assert(sizeof(Buffer) <= 168, "a Buffer is on every message's path: keep it small");

class Pool {
 public:
  explicit Pool(uint32_t size);

  uint32_t size() const { return static_cast<uint32_t>(buffers_.size()); }
  // Buffers owned by nobody: what the root can still hand out as claims.
  uint32_t free_count() const { return static_cast<uint32_t>(free_.size()); }
  // Buffers in any state but free (out, or carrying an answer): counted as
  // apply() moves them, so that nucleusctl's status costs no walk of the
  // pool.
  uint32_t in_use() const { return in_use_; }

  Buffer &at(uint32_t index) { return buffers_[index]; }
  const Buffer &at(uint32_t index) const { return buffers_[index]; }
  uint64_t handle(uint32_t index) const {
    return wire::make_handle(index, buffers_[index].generation);
  }

  // Moves `count` unowned buffers to `owner`'s claim; all or none.
  bool take(uint32_t count, uint32_t owner, std::vector<uint32_t> *out);
  // Returns a free held buffer to the unowned pool.
  void give_back(uint32_t index);

  // The buffer a handle names now (index in range, current generation).
  std::optional<uint32_t> resolve(uint64_t handle) const;
  // The buffer a send on `handle` would use: in range and exactly the next
  // generation of that buffer.
  std::optional<uint32_t> resolve_next(uint64_t handle) const;

  // Applies a transition of the state table; false (and no change) when the
  // table has no such edge.
  bool apply(uint32_t index, BufferEvent event);

 private:
  std::vector<Buffer> buffers_;
  std::vector<uint32_t> free_;
  uint32_t in_use_ = 0;  // invariant: the buffers whose state is not kFree
};

}  // namespace nucleus::daemon
