// The phases of a hot swap (docs/hot-swap.md) as a table: what each event
// does in each phase. Swaps (swaps.cc) looks every event of a
// swap up here and does what the cell says; the unit tests run every cell
// (core_swap_test.cc). Pure: no Server, no Core.
//
//   starting   --attached-->     handover   (the old OS is asked for its state)
//   handover   --handed over-->  ready      (the state is copied across)
//   ready      --ready asked-->  committing (the takeover at the end of the turn)
//   committing --turn-->         commit: the answer DONE
//   any but ending --hung up-->  ending     (waiting for its exit status)
//
// and in any phase the swap can end, rolled back, with the outcome the cell
// names (the answer's SwapOutcome word). Every other cell is nothing: the
// event does not concern that phase (a late handover answer, a second
// attach), or the swap waits on.
#pragma once

#include <nucleus/wire.h>

#include <cerrno>
#include <cstdint>

namespace nucleus::daemon {

enum class SwapPhase : uint8_t {
  kStarting,    // the new program runs and has not attached yet
  kHandover,    // it attached; the old OS was asked for its state
  kReady,       // it has the state; waiting for it to say ready
  kCommitting,  // it said ready: the takeover at the end of this loop turn
  // The new program hung up: the swap fails; nucleusd waits for its exit
  // status (the answer's detail), at most wire::kSwapHungUpGraceMs. Its
  // connection closes before the kernel has made it a zombie, so the
  // status is not there yet when the hang-up is seen.
  kEnding,
};
inline constexpr int kSwapPhaseCount = 5;

enum class SwapEvent : uint8_t {
  kStartFailed,     // the new program could not be run (detail: start_failed_detail)
  kAttached,        // it attached on its bound connection
  kNoNoticeBuffer,  // the handover message could not be sent (detail: EBUSY)
  kHandedOver,      // the old OS answered normal, within both data areas
  kRefused,         // it answered otherwise (detail: the result), or outside them (EFAULT)
  kReadyAsked,      // the new program sent kSwapReady
  kTurn,            // a loop turn, the phase's deadline not passed
  kDeadline,        // the phase's deadline passed
  kNewExited,       // the new program ended (detail: new_exited_detail)
  kOldExited,       // the old OS ended or hung up
  kRemoved,         // its parent removes the OS
  kNewHungUp,       // the new program's connection ended (its exit status follows)
};
inline constexpr int kSwapEventCount = 12;

// kStartFailed's detail: the errno, and above it the wire::StartStep that
// failed (the answer's words kSwapDetail and kSwapStartStep).
inline uint64_t start_failed_detail(int error, uint64_t step) {
  return static_cast<uint32_t>(error) | step << 32;
}

// kNewExited's detail: the answer's word kSwapDetail (the exit code, or
// 0x100 + the signal) and above it the wire::ExitKind (word kSwapExitKind;
// a detail of 0 is kNone: it was ended after it hung up).
inline uint64_t new_exited_detail(wire::ExitKind kind, int value) {
  uint64_t detail = kind == wire::ExitKind::kSignal ? 0x100U | static_cast<uint32_t>(value)
                                                    : static_cast<uint32_t>(value);
  return detail | static_cast<uint64_t>(kind) << 32;
}

enum class SwapAction : uint8_t {
  kNone,     // nothing changes
  kRefuse,   // the request that made the event is refused (-error)
  kAdvance,  // on to `next`; its deadline starts
  kFail,     // rolled back: the answer REJECTED with `outcome`
  kCommit,   // the takeover: the answer DONE
};

struct SwapStep {
  SwapAction action = SwapAction::kNone;
  SwapPhase next = SwapPhase::kStarting;  // kAdvance
  uint64_t outcome = 0;                   // kFail: wire::kSwap*
  int error = 0;                          // kRefuse: an errno
};

// Which deadline a phase runs under (its configured timeout, from when the
// phase begins).
enum class SwapTimer : uint8_t {
  kReady,     // swap.ready_timeout_ms
  kHandover,  // swap.handover_timeout_ms
  kHungUp,    // wire::kSwapHungUpGraceMs: for the exit status of a program that hung up
  kNone,      // no deadline of its own (the takeover is this turn)
};

namespace swap_cells {

using P = SwapPhase;
constexpr SwapStep kNothing{};
constexpr SwapStep to(P next) {
  return SwapStep{SwapAction::kAdvance, next, 0, 0};
}
constexpr SwapStep fail(uint64_t outcome) {
  return SwapStep{SwapAction::kFail, P::kStarting, outcome, 0};
}
constexpr SwapStep refuse(int error) {
  return SwapStep{SwapAction::kRefuse, P::kStarting, 0, error};
}
constexpr SwapStep kCommit{SwapAction::kCommit, P::kStarting, wire::kSwapDone, 0};

// kTable[event][phase]: a row per event, columns in SwapPhase order.
// clang-format off
constexpr SwapStep kTable[kSwapEventCount][kSwapPhaseCount] = {
  //                      starting                      handover                      ready                       committing                  ending
  /* start failed */     {fail(wire::kSwapStartFailed), kNothing,                     kNothing,                   kNothing,                   kNothing},
  /* attached */         {to(P::kHandover),             kNothing,                     kNothing,                   kNothing,                   kNothing},
  /* no notice buffer */ {kNothing,                     fail(wire::kSwapNoHandover),  kNothing,                   kNothing,                   kNothing},
  /* handed over */      {kNothing,                     to(P::kReady),                kNothing,                   kNothing,                   kNothing},
  /* refused */          {kNothing,                     fail(wire::kSwapRefused),     kNothing,                   kNothing,                   kNothing},
  /* ready asked */      {refuse(EINVAL),               refuse(EINVAL),               to(P::kCommitting),         refuse(EALREADY),           refuse(EINVAL)},
  /* turn */             {kNothing,                     kNothing,                     kNothing,                   kCommit,                    kNothing},
  /* deadline */         {fail(wire::kSwapNotReady),    fail(wire::kSwapNoHandover),  fail(wire::kSwapNotReady),  kCommit,                    fail(wire::kSwapNewExited)},
  /* new exited */       {fail(wire::kSwapNewExited),   fail(wire::kSwapNewExited),   fail(wire::kSwapNewExited), fail(wire::kSwapNewExited), fail(wire::kSwapNewExited)},
  /* old exited */       {fail(wire::kSwapOldExited),   fail(wire::kSwapOldExited),   fail(wire::kSwapOldExited), fail(wire::kSwapOldExited), fail(wire::kSwapOldExited)},
  /* removed */          {fail(wire::kSwapCancelled),   fail(wire::kSwapCancelled),   fail(wire::kSwapCancelled), fail(wire::kSwapCancelled), fail(wire::kSwapCancelled)},
  /* new hung up */      {to(P::kEnding),               to(P::kEnding),               to(P::kEnding),             to(P::kEnding),             kNothing},
};
// clang-format on

constexpr SwapTimer kTimer[kSwapPhaseCount] = {SwapTimer::kReady, SwapTimer::kHandover,
                                               SwapTimer::kReady, SwapTimer::kNone,
                                               SwapTimer::kHungUp};

}  // namespace swap_cells

constexpr const SwapStep &swap_step(SwapPhase phase, SwapEvent event) {
  return swap_cells::kTable[static_cast<int>(event)][static_cast<int>(phase)];
}

constexpr SwapTimer swap_timer(SwapPhase phase) {
  return swap_cells::kTimer[static_cast<int>(phase)];
}

// The event does something in this phase.
constexpr bool swap_expects(SwapPhase phase, SwapEvent event) {
  return swap_step(phase, event).action != SwapAction::kNone;
}

constexpr const char *to_string(SwapPhase phase) {
  switch (phase) {
    case SwapPhase::kStarting: return "starting";
    case SwapPhase::kHandover: return "handover";
    case SwapPhase::kReady: return "ready";
    case SwapPhase::kCommitting: return "committing";
    case SwapPhase::kEnding: return "ending";
  }
  return "?";
}

constexpr const char *to_string(SwapEvent event) {
  switch (event) {
    case SwapEvent::kStartFailed: return "start-failed";
    case SwapEvent::kAttached: return "attached";
    case SwapEvent::kNoNoticeBuffer: return "no-notice-buffer";
    case SwapEvent::kHandedOver: return "handed-over";
    case SwapEvent::kRefused: return "refused";
    case SwapEvent::kReadyAsked: return "ready-asked";
    case SwapEvent::kTurn: return "turn";
    case SwapEvent::kDeadline: return "deadline";
    case SwapEvent::kNewExited: return "new-exited";
    case SwapEvent::kOldExited: return "old-exited";
    case SwapEvent::kRemoved: return "removed";
    case SwapEvent::kNewHungUp: return "new-hung-up";
  }
  return "?";
}

}  // namespace nucleus::daemon
