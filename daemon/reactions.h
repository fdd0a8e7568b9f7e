// What one of nucleusd's objects tells the others when something ends or
// changes under it: the one named interface their reactions cross by.
// Server implements it by handing each to the objects it concerns; no
// object calls another's internals.
//
// Threading: nucleusd's loop thread only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string_view>

#include <nucleus_internal/sys.h>

#include "requests.h"
#include "swap_phases.h"

namespace nucleus::daemon {

class Reactions {
 public:
  virtual ~Reactions() = default;
  // A start's launch came back: its waiter's answer (0 or -errno, and the
  // wire::StartStep that failed). Its connection may be gone, or another at
  // that id.
  virtual void answer(const Waiter &waiter, int result, uint64_t step, std::string_view path) = 0;
  // The program of `id` ended: what it wrote before still counts, then its
  // connection ends.
  virtual void program_ended(uint32_t id) = 0;
  // The connection of `id` (of `generation`) ended: `old_os`, it was an OS
  // being swapped; `taken_over` (kNone: none), it was the new program of
  // that OS's swap.
  virtual void detached(uint32_t id, uint32_t generation, bool old_os, uint32_t taken_over) = 0;
  // `id`'s subtree is being removed: its connection ends.
  virtual void removed(uint32_t id) = 0;
  // A program nucleusd started (`pid`, `pidfd`) sent its attach request on
  // its bound NUCLEUS_FD connection.
  virtual void bound(uint32_t id, sys::UniqueFd socket, pid_t pid, int pidfd) = 0;
  // A swap's new program `cand` attached on its bound connection: its reply
  // waits for the old OS's state.
  virtual void candidate_attached(uint32_t cand, sys::UniqueFd socket) = 0;
  // The swap of OS `os` hears of `event` (swap_phases.h).
  virtual void tell_swap(uint32_t os, SwapEvent event, uint64_t detail) = 0;
  // The earliest deadline of a swap in progress (0: none): the progress
  // timer fires no later, and ticks while one is.
  virtual int64_t swap_deadline() const = 0;
};

}  // namespace nucleus::daemon
