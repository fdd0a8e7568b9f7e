// The launcher's watchdog book (Launcher, decision 62): for each launching
// thread (a slot), by when its child must have exec'd, and what the watchdog
// has done about it. A child still before its exec at its deadline (its
// owner stopped or froze it, or its path or working directory hangs) is
// killed: SIGKILL through its pidfd, which ends a stopped task and one
// frozen by cgroup v2. A child that SIGKILL does not end within the grace (a
// wait the kernel cannot interrupt) is abandoned: its start is answered
// without it, and its thread replaced. At shutdown every launch is due at
// once, and none may begin.
//
// Pure: it reads no clock and makes no system call; every call is given the
// time (monotonic ns), so its tests use a fake clock. Threading: none of its
// own; the Launcher calls it under its mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace nucleus::daemon {

class LaunchDeadlines {
 public:
  enum class State : uint8_t {
    kIdle,       // no launch on this slot
    kArmed,      // a launch waits for its child's exec
    kKilled,     // past its deadline (or at shutdown): SIGKILL delivered
    kAbandoned,  // killed and not back within the grace: answered without it
  };
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  // A kill that could not be delivered yet (the kernel has not yet shown
  // the child) is tried again this much later.
  static constexpr int64_t kRetryNs = 1000000;

  LaunchDeadlines(size_t slots, int64_t grace_ns);

  // A launch begins on `slot`; its child must have exec'd by `deadline_ns`.
  // False after stop(): it must not begin.
  bool arm(size_t slot, int64_t deadline_ns);
  // The launch on `slot` came back: the slot is idle again; returns what
  // the watchdog had done to it (kArmed: nothing).
  State disarm(size_t slot);
  // Shutdown: every armed launch is due now, and none may begin.
  void stop() { stopping_ = true; }
  bool stopping() const { return stopping_; }

  // The slots whose child is to be killed at `now`: armed, and past their
  // deadline or stopping. The watchdog calls killed() for each kill it
  // delivered; the others come back from due() until then.
  std::vector<size_t> due(int64_t now) const;
  void killed(size_t slot, int64_t now);
  // The slots killed more than the grace ago and still not back: marked
  // abandoned and returned (once each).
  std::vector<size_t> abandon(int64_t now);
  // When the watchdog should look again: the nearest deadline, a kill to
  // retry, the end of a grace; kNever when nothing is armed or killed.
  int64_t next(int64_t now) const;

  State state(size_t slot) const { return slots_[slot].state; }
  size_t size() const { return slots_.size(); }

 private:
  struct Slot {
    State state = State::kIdle;
    int64_t deadline_ns = 0;
    int64_t killed_ns = 0;
  };
  std::vector<Slot> slots_;
  int64_t grace_ns_;
  bool stopping_ = false;
};

}  // namespace nucleus::daemon
