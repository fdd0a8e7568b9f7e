// How long nucleusd keeps polling its channels after work before it sleeps.
//
// A round trip through nucleusd costs four sleeps and wake-ups; polling for
// the receiver's turnaround saves two of them. The window is derived from
// what the loop sees: each time a process makes a request after nucleusd
// gave it an event, the gap between the two is a turnaround sample. The
// window is the gap that covers nine in ten of the recent samples, doubled;
// no longer than the configured bound; 0 (no polling) while most gaps are
// longer than that bound, since then a wake-up is cheap next to the wait.
// Polling time (loop turns that found no work, less what their
// sched_yield gave to other tasks) is capped per second at a share of one
// CPU; past the cap every channel sleeps until the next second. With no traffic
// nothing is polled: the loop sleeps in io_uring_enter.
//
// Threading: nucleusd's loop thread only. Pure: times are passed in.
#pragma once

#include <array>
#include <cstdint>

namespace nucleus::daemon {

enum class PollMode : uint8_t { kAdaptive, kFixed, kOff };

struct PollSettings {
  PollMode mode = PollMode::kAdaptive;
  // kFixed: the window; kAdaptive: the longest window it may derive.
  int64_t window_ns = 250000;
  // The most polling may take, in percent of one CPU over each second.
  uint32_t cpu_percent = 50;
};

class PollWindow {
 public:
  // Half-octave buckets from 1 µs up to the bound, one beyond.
  static constexpr int kBuckets = 64;
  static constexpr uint32_t kDecayAt = 1024;  // samples; then every count halves
  static constexpr uint32_t kRecomputeEvery = 32;
  static constexpr int64_t kSecondNs = 1000000000;

  explicit PollWindow(PollSettings settings = {}) { configure(settings); }
  // New settings (a reload): the samples are kept, the window recomputed.
  void configure(PollSettings settings);
  const PollSettings &settings() const { return settings_; }

  // A process made a request gap_ns after nucleusd last gave it an event.
  void turnaround(int64_t gap_ns);
  // How long a channel stays polled after its last request; 0: not at all.
  int64_t window_ns() const { return window_ns_; }
  // Whether polling may go on at now_ns (false: this second's share is spent).
  bool may_poll(int64_t now_ns);
  // The loop polled without finding work from from_ns to to_ns.
  void polled(int64_t from_ns, int64_t to_ns);

  // For status: polling time in the second before the current one.
  int64_t polled_last_second_ns() const { return last_second_ns_; }
  uint64_t samples() const { return samples_; }

 private:
  void recompute();
  int bucket_of(int64_t gap_ns) const;

  PollSettings settings_;
  std::array<int64_t, kBuckets> bounds_{};  // upper bound of each bucket, ns
  int buckets_ = 0;                         // in use; the last counts the longer gaps
  std::array<uint32_t, kBuckets> counts_{};
  uint32_t total_ = 0;
  uint32_t since_recompute_ = 0;
  uint64_t samples_ = 0;
  int64_t window_ns_ = 0;
  int64_t second_start_ns_ = 0;
  int64_t second_used_ns_ = 0;
  int64_t last_second_ns_ = 0;
};

}  // namespace nucleus::daemon
