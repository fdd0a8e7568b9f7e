// The nucleus's own messages (docs/decisions.md 28, 46): exit notices to
// parents and a swap's handover message, on a reserve of the pool's buffers
// (owner kNoticeOwner) shared by every parent. Owns the reserve, which
// notice is out on which buffer, the parents that wait for a buffer, and
// the limit of notices out per parent. What each parent has out and what
// waits for it are in its entry (Process::notices_*).
//
// No parent holds more than the limit unanswered, and a parent that is not
// running holds none: what cannot be sent now waits in the parent's entry,
// in exit order, and is never dropped while the child's entry lives. The
// last sixteenth of the reserve is for handovers only, so parents that
// never answer their notices cannot make every swap fail.
//
// Threading: nucleusd's loop thread only.
#pragma once

#include <nucleus/wire.h>

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <utility>
#include <vector>

#include "messages.h"
#include "pool.h"
#include "process_table.h"
#include "trace.h"

namespace nucleus::daemon {

class Notices {
 public:
  // Takes `buffers` of the pool (at most all of them) for the reserve.
  Notices(Pool &pool, ProcessTable &processes, Messages &messages, Trace &trace, uint32_t buffers);
  Notices(const Notices &) = delete;
  Notices &operator=(const Notices &) = delete;

  // Notices out (sent, unanswered) per parent (Core::set_notice_limit).
  void set_limit(uint32_t per_parent);
  // `n` is told to `parent` now, or when it can be.
  void child_exited(uint32_t parent, const ExitNotice &n);
  // Sends what waits for `parent` while it is attached, under its limit,
  // and a buffer is free (else it waits for one).
  void pump(uint32_t parent);
  // `parent` stopped running: its notices queued and not yet received go
  // back to the reserve and wait for its next run, first and in order.
  void withdraw(uint32_t parent);
  // A buffer of the reserve was answered: it serves the next notice.
  void answered(uint32_t index);
  // Sends a swap's handover message to `id`, first in its queue (the pause
  // a swap makes is the handover, not the backlog before it). Its buffer,
  // or kNone when none is free.
  uint32_t send_handover(uint32_t id, uint64_t data_bytes);
  uint32_t free_count() const { return static_cast<uint32_t>(free_.size()); }

 private:
  // Parents that waited for a buffer, now that one is free.
  void pump_starved();
  void send_notice(uint32_t parent, const ExitNotice &n);
  // Takes a free buffer and sends `words` on it from the nucleus to `to`,
  // last in its queue or `first`.
  uint32_t send(uint32_t to, const wire::Message &words, bool first);

  Pool &pool_;
  ProcessTable &processes_;
  Messages &messages_;
  Trace &trace_;
  std::vector<uint32_t> free_;
  uint32_t handover_reserve_ = 0;  // the last of free_, for handovers only
  // Notice buffers out, by buffer index: which notice (to send again when
  // its parent detaches before receiving it).
  std::unordered_map<uint32_t, std::pair<uint32_t, ExitNotice>> out_;  // (parent, notice)
  std::deque<std::pair<uint32_t, uint32_t>> starved_;                  // parents (id, generation)
  uint32_t limit_ = UINT32_MAX;
};

}  // namespace nucleus::daemon
