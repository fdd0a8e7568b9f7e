#include "launch_deadlines.h"

#include <algorithm>

namespace nucleus::daemon {

LaunchDeadlines::LaunchDeadlines(size_t slots, int64_t grace_ns)
    : slots_(slots), grace_ns_(grace_ns) {}

bool LaunchDeadlines::arm(size_t slot, int64_t deadline_ns) {
  if (stopping_) return false;
  slots_[slot] = Slot{State::kArmed, deadline_ns, 0};
  return true;
}

LaunchDeadlines::State LaunchDeadlines::disarm(size_t slot) {
  State was = slots_[slot].state;
  slots_[slot] = Slot{};
  return was;
}

std::vector<size_t> LaunchDeadlines::due(int64_t now) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot &s = slots_[i];
    if (s.state == State::kArmed && (stopping_ || now >= s.deadline_ns)) out.push_back(i);
  }
  return out;
}

void LaunchDeadlines::killed(size_t slot, int64_t now) {
  if (slots_[slot].state != State::kArmed) return;
  slots_[slot].state = State::kKilled;
  slots_[slot].killed_ns = now;
}

std::vector<size_t> LaunchDeadlines::abandon(int64_t now) {
  std::vector<size_t> out;
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot &s = slots_[i];
    if (s.state == State::kKilled && now - s.killed_ns >= grace_ns_) {
      s.state = State::kAbandoned;
      out.push_back(i);
    }
  }
  return out;
}

int64_t LaunchDeadlines::next(int64_t now) const {
  int64_t at = kNever;
  for (const Slot &s : slots_) {
    switch (s.state) {
      case State::kArmed:
        // Due and not yet killed: the kill is tried again shortly.
        at = std::min(at, stopping_ || now >= s.deadline_ns ? now + kRetryNs : s.deadline_ns);
        break;
      case State::kKilled: at = std::min(at, s.killed_ns + grace_ns_); break;
      case State::kIdle:
      case State::kAbandoned: break;
    }
  }
  return at;
}

}  // namespace nucleus::daemon
