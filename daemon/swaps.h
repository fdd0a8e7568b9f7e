// Hot swap's Linux side (docs/hot-swap.md). The Core keeps the rules
// (core_swaps.cc); this starts the new program as a hidden entry, holds its
// attach reply until the old OS has handed over its state, copies the state
// across, and in commit() moves the new program's connection and run onto
// the OS's entry in one step of the event loop. Until then the old OS is
// untouched: every failure ends the new program and serves the old OS
// again (fail()).
//
// The phases and what each event does in each are the table in
// swap_phases.h: every event of a swap goes through event(), which does what
// its cell says (on to the next phase, roll back, commit).
//
// Owns: the swaps in progress (their phase, deadline and figures).
// Asks of others: the Core (handover, commit, end; the decoder began the
// swap in it); Programs for the
// new program's run; Connections for the channels; Attach for the new
// program's attach reply.
//
// Threading: nucleusd's loop thread only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nucleus/wire.h>
#include <nucleus_internal/sys.h>

#include "attach.h"
#include "config.h"
#include "connections.h"
#include "core.h"
#include "programs.h"
#include "requests.h"
#include "swap_phases.h"

namespace nucleus::daemon {

class Swaps {
 public:
  Swaps(const Config &config, Core &core, Programs &programs, Connections &connections,
        Attach &attach)
      : config_(config),
        core_(core),
        programs_(programs),
        connections_(connections),
        attach_(attach) {}
  Swaps(const Swaps &) = delete;
  Swaps &operator=(const Swaps &) = delete;

  // The Core began a swap of `child` to the hidden entry `cand` (the
  // decoder parsed and checked the new program): starts the new program.
  void begin(uint32_t requester, uint32_t child, uint32_t cand);
  // The new program attached through its bound connection: serve it (it
  // bears no name yet) and ask the old OS for its state.
  void attached(uint32_t cand, sys::UniqueFd socket);
  // kSwapReady from `cand`: 0, or -errno when it is not a swap's new program
  // that has its state.
  int ready(uint32_t cand, uint32_t seq);
  // Each loop turn while any is in progress: handovers answered, ready
  // programs to commit, deadlines passed.
  bool any() const { return !swaps_.empty(); }
  void advance();
  // Does what the phase table says of `event` for the swap of `id` (none:
  // nothing) and returns it.
  SwapAction event(uint32_t id, SwapEvent what, uint64_t detail = 0);
  // The earliest deadline of a swap in progress (0: none).
  int64_t next_deadline() const;

 private:
  struct Swap {
    uint32_t id = kNone;  // the OS
    uint32_t generation = 0;
    uint32_t cand = kNone;  // the hidden entry of the new program
    uint32_t cand_generation = 0;
    SwapPhase phase = SwapPhase::kStarting;
    int64_t began_ns = 0;
    int64_t deadline_ns = 0;
    int64_t handed_ns = 0;  // when the old OS answered the handover
    pid_t old_pid = 0;
    uint64_t state_bytes = 0;
    uint32_t ready_seq = 0;  // its kSwapReady (phase committing)
  };

  void commit(Swap &s);
  // Ends the swap without changing the OS; the request is answered.
  void fail(uint32_t id, uint64_t outcome, uint64_t detail);
  Swap *swap_of(uint32_t id);

  const Config &config_;
  Core &core_;
  Programs &programs_;
  Connections &connections_;
  Attach &attach_;
  std::vector<std::unique_ptr<Swap>> swaps_;
};

}  // namespace nucleus::daemon
