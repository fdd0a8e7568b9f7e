// Where the processes of a kernel baseline run. On a machine of few CPUs a
// round trip between two processes takes about half as long when both run
// on one CPU as across two, and an unpinned pair lands on either from run to
// run; so each baseline is measured pinned both ways and unpinned.
//
// The processes of a baseline form a path: the measuring process (hop 0),
// then each process a message reaches in turn (hop 1, 2, ...; a relay's
// receiver is hop 2). same_cpu puts every hop on one CPU; two_cpus
// alternates two CPUs along the path, so that every hop crosses between
// CPUs; unpinned leaves them all to the scheduler.
#pragma once

#include <sched.h>

#include <string>
#include <vector>

namespace nucleus::bench {

enum class Placement { kUnpinned, kSameCpu, kTwoCpus };

// "unpinned", "same_cpu", "two_cpus": the "placement" of the JSON lines.
const char *placement_name(Placement placement);

// `base` for unpinned (the name the figure had before there were
// placements), `base@same_cpu` and `base@two_cpus` for the others.
std::string placed_name(const std::string &base, Placement placement);

// The CPUs this process may run on (sched_getaffinity), lowest first.
std::vector<int> allowed_cpus();

// A placement and the CPUs it uses.
struct Placing {
  Placement placement = Placement::kUnpinned;
  std::vector<int> cpus;  // from allowed_cpus(): same_cpu uses [0], two_cpus [0] and [1]

  // The CPU of hop `hop`, or -1 (unpinned).
  int cpu(int hop) const;
  std::string name(const std::string &base) const { return placed_name(base, placement); }
};

// Pins the calling thread on `cpu` (nothing for -1), and puts its previous
// affinity back when it goes.
class ScopedPin {
 public:
  explicit ScopedPin(int cpu);
  ~ScopedPin();
  ScopedPin(const ScopedPin &) = delete;
  ScopedPin &operator=(const ScopedPin &) = delete;

  bool ok() const { return ok_; }

 private:
  cpu_set_t saved_{};
  bool pinned_ = false;
  bool ok_ = true;
};

// Pins the calling thread on `cpu` for good (a forked child); true for -1.
bool pin_self(int cpu);

}  // namespace nucleus::bench
