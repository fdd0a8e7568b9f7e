// Messages between processes, and the queues they wait in: the nucleus's
// side of the six message primitives (send, take, answer, release; the
// waits are the library's), the nucleus as a party to messages (requests to
// it, its answers, dummy answers), and each process's two queues. Owns
// those queues and the lists of processes the server must look at each
// turn:
// - its inbox: messages queued to it or received by it and not yet answered,
//   in arrival order (linked through Buffer::inbox_*);
// - its fifo: events for it (a message to it, an answer to it) not yet
//   published to its event ring, in order (linked through Buffer::fifo_next);
// - take_dirty(): processes whose fifo got entries; take_slot_changes():
//   processes whose slot table must be written.
//
// Events go into a process's fifo only while it is attached; one that is
// not attached keeps its inbox, published again when a run of it attaches.
// An answer on one of the nucleus's own buffers (owner kNoticeOwner: an
// exit notice, a handover) goes to CoreReactions::nucleus_buffer_answered.
//
// Threading: nucleusd's loop thread only.
#pragma once

#include <nucleus/wire.h>

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "core_reactions.h"
#include "error.h"
#include "pool.h"
#include "process_table.h"
#include "trace.h"

namespace nucleus::daemon {

inline constexpr uint32_t kNoticeOwner = kNone - 1;  // owner of the nucleus's notice buffers

// What a message lends (wire::LendRights; bytes 0: nothing), checked by
// the decoder against the sender's data area.
struct Lend {
  uint32_t offset = 0;
  uint32_t bytes = 0;
  uint8_t rights = 0;
};

// A live lend a receiver may copy with: the sender (its data area) and the
// range in it.
struct LentRange {
  uint32_t sender = kNone;
  uint32_t offset = 0;
  uint32_t bytes = 0;
};

struct ProcessStats {
  uint32_t claim_buffers = 0;
  uint32_t claim_used = 0;
  uint32_t queue_length = 0;
};

class Messages {
 public:
  Messages(Pool &pool, ProcessTable &processes, Trace &trace, CoreReactions &reactions)
      : pool_(pool), processes_(processes), trace_(trace), reactions_(reactions) {}
  Messages(const Messages &) = delete;
  Messages &operator=(const Messages &) = delete;

  // ---- the primitives (Core's) ----
  Error send_message(uint32_t id, uint64_t handle, std::string_view receiver,
                     const wire::Message &message, const Lend &lend = {});
  // A take (or an answer, send_answer) of a message the sender withdrew
  // before it came (the receiver's library took it from its ring as the
  // regret was served) is void: no error, nothing changes. Any other
  // refusal is a protocol error.
  Error get_event(uint32_t id, uint64_t handle);
  // The sender withdraws a message it sent on `handle`: queued (not taken)
  // -> free in its claim at once, and the receiver to tell (kNone: none;
  // the message was published to it, so its library must drop it:
  // wire::EventKind::kWithdrawn). kBusy: taken (answered as usual);
  // kAlready: answered; kBadHandle: not a buffer `id` has out.
  Result<uint32_t> regret_message(uint32_t id, uint64_t handle);
  // The lend of the message `id` holds on `handle` (taken, not answered),
  // for a copy in `direction`: kBadHandle not held, kNoLend it lends
  // nothing, kLendEnded its sender's run is gone, kDenied no such right.
  Result<LentRange> lent_range(uint32_t id, uint64_t handle, wire::CopyDirection direction) const;
  // For a receive window (Connections::flush): the message at the head of
  // `id`'s fifo, about to be published, if it lends with the read right and
  // its sender's run that lent it lasts; its handle in *handle.
  std::optional<LentRange> head_read_lend(uint32_t id, uint64_t *handle) const;
  // `handle` names a message queued to or received by `id`, not answered.
  bool holds(uint32_t id, uint64_t handle) const;
  // The run of `id` that lent what its buffers out lend is over (a swap's
  // new program has another data area): their lends end.
  void end_lends(uint32_t id);
  // `copied`: the bytes the answer copied to the start of the lent range
  // (Requests::send_answer did), which its event says.
  Error send_answer(uint32_t id, uint64_t handle, int32_t result, const wire::Message &words,
                    uint32_t copied = 0);
  Error release_answer(uint32_t id, uint64_t handle);

  // ---- the nucleus as a party ----
  // A request to the nucleus on the next use of a free buffer of the caller
  // (a stop, a swap): request_buffer checks `handle` and changes nothing;
  // send_to_nucleus sends on it and the nucleus takes it at once (received,
  // answered when what it asks for is done).
  Result<uint32_t> request_buffer(uint32_t caller, uint64_t handle) const;
  void send_to_nucleus(uint32_t caller, uint32_t index, uint64_t handle);
  // The message received on `index` is answered by `by` (a receiver whose
  // inbox it has left, a device; kNone: the nucleus) and the answer
  // delivered, stamped with `by`'s principal.
  void answer(uint32_t index, int32_t result, const wire::Message &words, uint32_t by,
              uint32_t copied = 0);
  // Its receiver will never answer: the nucleus does, with a dummy answer.
  void dummy_answer(uint32_t index);
  // Its owner's run ended: an answer not taken is dropped, a buffer still
  // out comes back when it is answered.
  void disown(uint32_t index);

  // ---- principals (wire::Principal) ----
  // The nucleus's own: nucleusd's uid, gid and pid (the server sets them
  // at start; 0 until then, as in unit tests).
  void set_nucleus_principal(uint32_t uid, uint32_t gid, int32_t pid) {
    nucleus_ = wire::Principal{uid, gid, pid, static_cast<uint32_t>(wire::PrincipalKind::kNucleus)};
  }
  const wire::Principal &nucleus_principal() const { return nucleus_; }
  // Who `id` is to a receiver (kNone: the nucleus), from its entry: its
  // owner and its program's pid, or a device's namer's owner.
  wire::Principal principal_of(uint32_t id) const;
  // Marks the event on `b` as from `id` (kNone: the nucleus): name and
  // principal.
  void stamp(Buffer &b, uint32_t id) const;

  // ---- queues ----
  void inbox_append(Process &p, uint32_t index);
  void inbox_prepend(Process &p, uint32_t index);
  void inbox_remove(Process &p, uint32_t index);
  void fifo_push(uint32_t id, uint32_t index);
  // Takes `index` out of `p`'s fifo (a walk: only a regret does it).
  void fifo_remove(Process &p, uint32_t index);
  void fifo_clear(Process &p);
  // A run of `id` attached: the messages that waited for it are published
  // to it, in queue order.
  void publish_inbox(uint32_t id);
  // The run of `id` ended: messages it received get dummy answers (nobody
  // will answer them); those still queued wait for its next run.
  void dummy_answer_received(uint32_t id);
  // `id` leaves the table: every message in its inbox gets a dummy answer
  // (orphans among them are simply freed).
  void dummy_answer_inbox(uint32_t id);

  // The first event waiting to be published to `id`, as an event record;
  // every field of *out is written (it may be an entry of the event ring).
  bool next_event(uint32_t id, wire::Event *out) const;
  void pop_event(uint32_t id);
  // Processes whose fifo got entries since the last call: the caller
  // publishes them (each is named again when its fifo gets more).
  std::vector<uint32_t> take_dirty();
  // Its slot table must be written (its claim changed).
  void mark_slots(uint32_t id);
  // Processes whose slot table must be written since the last call: the
  // caller writes them (each is named again when its claim changes again).
  std::vector<uint32_t> take_slot_changes();

  ProcessStats stats(uint32_t id) const;

 private:
  // After an answer (or dummy answer): to the sender, or freed if it is gone.
  void deliver_answer(uint32_t index);
  // `handle` names a use of a buffer whose message was withdrawn (regret):
  // a take or an answer of it that was on its way is void.
  bool withdrawn_use(uint32_t id, uint64_t handle) const;
  // The sender's run that lent what `b` lends lasts (it may still be copied).
  bool lend_lasts(const Buffer &b) const;

  Pool &pool_;
  ProcessTable &processes_;
  Trace &trace_;
  CoreReactions &reactions_;
  wire::Principal nucleus_{0, 0, 0, static_cast<uint32_t>(wire::PrincipalKind::kNucleus)};
  std::vector<uint32_t> dirty_;
  std::vector<uint32_t> slot_changes_;
};

}  // namespace nucleus::daemon
