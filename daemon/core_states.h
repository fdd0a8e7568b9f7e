// The state table of a process (docs/process-control.md, "States"): what
// each event does in each state, where a state is its program's RunState
// and the StopState its parent asked for. The Core's process control
// (ProcessTree) looks every step up here and does what the cell says; the
// unit tests run every cell (core_tree_test.cc).
//
// A refused cell changes nothing and its error is the request's. A cell
// nucleusd never brings about (`reachable` false: a program that never ran
// cannot exit) is refused with kInvalid, so that a mistake changes nothing.
#pragma once

#include <nucleus/wire.h>

#include <cstdint>

#include "error.h"
#include "process_table.h"

namespace nucleus::daemon {

inline constexpr int kRunStateCount = 3;
inline constexpr int kStopStateCount = 3;

enum class ProcessEvent : uint8_t {
  kStart,        // its parent starts it (Core::start)
  kSpawned,      // its program was started (Core::program_started)
  kStop,         // its parent asks for a stop (Core::begin_stop)
  kStopped,      // its subtree is really stopped (Core::finish_stop)
  kStopTimeout,  // the stop did not complete in time (Core::fail_stop)
  kModify,       // its parent modifies it (Core::modify)
  kRemove,       // it leaves the table (Core::remove, and every other removal)
  kExit,         // its program ended (Core::program_exited)
};
inline constexpr int kProcessEventCount = 8;

// What a cell asks for besides its state (bits).
enum ProcessAction : uint8_t {
  kActSpawn = 1 << 0,   // run its program (StartPlan::spawn)
  kActResume = 1 << 1,  // let its subtree run (StartPlan::resume)
  kActNotice = 1 << 2,  // an exit notice to its parent
  kActLeave = 1 << 3,   // the entry leaves the table: it has no state after
};

inline constexpr int32_t kNoStopAnswer = 0;

struct ProcessCell {
  Error error = Error::kNone;         // kNone: it applies; else refused, nothing changes
  RunState run = RunState::kCreated;  // the state after (unless it leaves)
  StopState stop = StopState::kNone;
  uint8_t actions = 0;
  // The stop in progress (or the one asked now) is answered with this result
  // (wire::kResult*; a dummy answer when the entry leaves).
  int32_t stop_answer = kNoStopAnswer;
  bool reachable = true;  // nucleusd brings this event about in this state
  bool has(ProcessAction a) const { return (actions & a) != 0; }
};

namespace process_cells {

using R = RunState;
using S = StopState;
constexpr uint8_t kSpawn = kActSpawn, kResume = kActResume, kNotice = kActNotice;

constexpr ProcessCell to(R run, S stop, uint8_t actions = 0, int32_t answer = kNoStopAnswer) {
  return ProcessCell{Error::kNone, run, stop, actions, answer, true};
}
constexpr ProcessCell no(Error e) {
  return ProcessCell{e, R::kCreated, S::kNone, 0, 0, true};
}
constexpr ProcessCell leaves(int32_t answer = kNoStopAnswer) {
  return ProcessCell{Error::kNone, R::kCreated, S::kNone, kActLeave, answer, true};
}
constexpr ProcessCell kNever{Error::kInvalid, R::kCreated, S::kNone, 0, 0, false};

constexpr int32_t kNormal = wire::kResultNormal;
constexpr int32_t kRejected = wire::kResultRejected;
constexpr int32_t kMalfunction = wire::kResultMalfunction;
constexpr int32_t kDummy = wire::kResultDummy;

// kTable[run][stop][event]; columns in ProcessEvent order.
// clang-format off
constexpr ProcessCell kTable[kRunStateCount][kStopStateCount][kProcessEventCount] = {
  {  // created: its program never ran
    /* -        */ {to(R::kCreated, S::kNone, kSpawn), to(R::kRunning, S::kNone),
                    to(R::kCreated, S::kStopping), kNever, kNever,
                    to(R::kCreated, S::kNone), leaves(), kNever},
    /* stopping */ {to(R::kCreated, S::kNone, kResume | kSpawn, kRejected), kNever,
                    no(Error::kBusy), to(R::kCreated, S::kStopped, 0, kNormal),
                    to(R::kCreated, S::kNone, 0, kMalfunction),
                    no(Error::kBusy), leaves(kDummy), kNever},
    /* stopped  */ {to(R::kCreated, S::kNone, kResume | kSpawn), kNever,
                    to(R::kCreated, S::kStopped, 0, kNormal), kNever, kNever,
                    to(R::kCreated, S::kStopped), leaves(), kNever},
  },
  {  // running: its program runs
    /* -        */ {no(Error::kAlready), kNever,
                    to(R::kRunning, S::kStopping), kNever, kNever,
                    no(Error::kBusy), leaves(), to(R::kExited, S::kNone, kNotice)},
    /* stopping */ {to(R::kRunning, S::kNone, kResume, kRejected), kNever,
                    no(Error::kBusy), to(R::kRunning, S::kStopped, 0, kNormal),
                    to(R::kRunning, S::kNone, 0, kMalfunction),
                    no(Error::kBusy), leaves(kDummy), to(R::kExited, S::kStopping, kNotice)},
    /* stopped  */ {to(R::kRunning, S::kNone, kResume), kNever,
                    to(R::kRunning, S::kStopped, 0, kNormal), kNever, kNever,
                    to(R::kRunning, S::kStopped), leaves(), to(R::kExited, S::kStopped, kNotice)},
  },
  {  // exited: its program ended (its children may run on)
    /* -        */ {to(R::kExited, S::kNone, kSpawn), to(R::kRunning, S::kNone),
                    to(R::kExited, S::kStopping), kNever, kNever,
                    to(R::kExited, S::kNone), leaves(), kNever},
    /* stopping */ {to(R::kExited, S::kNone, kResume | kSpawn, kRejected), kNever,
                    no(Error::kBusy), to(R::kExited, S::kStopped, 0, kNormal),
                    to(R::kExited, S::kNone, 0, kMalfunction),
                    no(Error::kBusy), leaves(kDummy), kNever},
    /* stopped  */ {to(R::kExited, S::kNone, kResume | kSpawn), kNever,
                    to(R::kExited, S::kStopped, 0, kNormal), kNever, kNever,
                    to(R::kExited, S::kStopped), leaves(), kNever},
  },
};

// What nucleus_get_process reports in each state: a stop in progress shows
// as stopping; a stopped entry whose program then died shows as exited
// (start runs it anew).
constexpr wire::ProcessState kShown[kRunStateCount][kStopStateCount] = {
  /* created */ {wire::ProcessState::kCreated, wire::ProcessState::kStopping, wire::ProcessState::kStopped},
  /* running */ {wire::ProcessState::kRunning, wire::ProcessState::kStopping, wire::ProcessState::kStopped},
  /* exited  */ {wire::ProcessState::kExited,  wire::ProcessState::kStopping, wire::ProcessState::kExited},
};
// clang-format on

}  // namespace process_cells

constexpr const ProcessCell &process_cell(RunState run, StopState stop, ProcessEvent event) {
  return process_cells::kTable[static_cast<int>(run)][static_cast<int>(stop)]
                              [static_cast<int>(event)];
}

constexpr wire::ProcessState shown_state(RunState run, StopState stop) {
  return process_cells::kShown[static_cast<int>(run)][static_cast<int>(stop)];
}

constexpr const char *to_string(RunState run) {
  switch (run) {
    case RunState::kCreated: return "created";
    case RunState::kRunning: return "running";
    case RunState::kExited: return "exited";
  }
  return "?";
}

constexpr const char *to_string(StopState stop) {
  switch (stop) {
    case StopState::kNone: return "none";
    case StopState::kStopping: return "stopping";
    case StopState::kStopped: return "stopped";
  }
  return "?";
}

constexpr const char *to_string(ProcessEvent event) {
  switch (event) {
    case ProcessEvent::kStart: return "start";
    case ProcessEvent::kSpawned: return "spawned";
    case ProcessEvent::kStop: return "stop";
    case ProcessEvent::kStopped: return "stopped";
    case ProcessEvent::kStopTimeout: return "stop-timeout";
    case ProcessEvent::kModify: return "modify";
    case ProcessEvent::kRemove: return "remove";
    case ProcessEvent::kExit: return "exit";
  }
  return "?";
}

}  // namespace nucleus::daemon
