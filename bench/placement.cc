#include "placement.h"

namespace nucleus::bench {

const char *placement_name(Placement placement) {
  switch (placement) {
    case Placement::kUnpinned: return "unpinned";
    case Placement::kSameCpu: return "same_cpu";
    case Placement::kTwoCpus: return "two_cpus";
  }
  return "unpinned";
}

std::string placed_name(const std::string &base, Placement placement) {
  if (placement == Placement::kUnpinned) return base;
  return base + "@" + placement_name(placement);
}

std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

int Placing::cpu(int hop) const {
  switch (placement) {
    case Placement::kUnpinned: return -1;
    case Placement::kSameCpu: return cpus.empty() ? -1 : cpus[0];
    case Placement::kTwoCpus: return cpus.size() < 2 ? -1 : cpus[static_cast<size_t>(hop % 2)];
  }
  return -1;
}

bool pin_self(int cpu) {
  if (cpu < 0) return true;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;
}

ScopedPin::ScopedPin(int cpu) {
  if (cpu < 0) return;
  CPU_ZERO(&saved_);
  ok_ = sched_getaffinity(0, sizeof(saved_), &saved_) == 0 && pin_self(cpu);
  pinned_ = ok_;
}

ScopedPin::~ScopedPin() {
  if (pinned_) sched_setaffinity(0, sizeof(saved_), &saved_);
}

}  // namespace nucleus::bench
