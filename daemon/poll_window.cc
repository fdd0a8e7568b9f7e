#include "poll_window.h"

#include <algorithm>
#include <cmath>

namespace nucleus::daemon {

void PollWindow::configure(PollSettings settings) {
  settings_ = settings;
  settings_.cpu_percent = std::min<uint32_t>(settings_.cpu_percent, 100);
  // Bounds 1 µs, 1.41 µs, 2 µs, ... up to the first at or past the window
  // bound; the bucket after them takes every longer gap.
  std::array<uint32_t, kBuckets> old = counts_;
  int old_buckets = buckets_;
  buckets_ = 0;
  double bound = 1000.0;
  while (buckets_ < kBuckets - 1) {
    bounds_[buckets_] = static_cast<int64_t>(bound);
    ++buckets_;
    if (static_cast<int64_t>(bound) >= settings_.window_ns) break;
    bound *= M_SQRT2;
  }
  bounds_[buckets_] = INT64_MAX;
  ++buckets_;
  // Samples keep their place where the bounds did not move; the rest count
  // as long gaps.
  counts_.fill(0);
  total_ = 0;
  for (int i = 0; i < old_buckets; ++i) {
    int to = i == old_buckets - 1 ? buckets_ - 1 : std::min(i, buckets_ - 1);
    counts_[to] += old[i];
    total_ += old[i];
  }
  recompute();
}

int PollWindow::bucket_of(int64_t gap_ns) const {
  int i = 0;
  while (i < buckets_ - 1 && gap_ns > bounds_[i]) ++i;
  return i;
}

void PollWindow::turnaround(int64_t gap_ns) {
  ++counts_[bucket_of(std::max<int64_t>(gap_ns, 0))];
  ++total_;
  ++samples_;
  if (total_ >= kDecayAt) {  // recent samples weigh most
    total_ = 0;
    for (int i = 0; i < buckets_; ++i) {
      counts_[i] /= 2;
      total_ += counts_[i];
    }
  }
  if (++since_recompute_ >= kRecomputeEvery) recompute();
}

void PollWindow::recompute() {
  since_recompute_ = 0;
  if (settings_.mode == PollMode::kOff) {
    window_ns_ = 0;
    return;
  }
  if (settings_.mode == PollMode::kFixed) {
    window_ns_ = settings_.window_ns;
    return;
  }
  uint32_t longer = counts_[buckets_ - 1];
  uint32_t within = total_ - longer;
  // Most gaps longer than the bound (or none seen yet): polling would miss.
  if (within == 0 || within < longer) {
    window_ns_ = 0;
    return;
  }
  uint32_t need = within - within / 10;  // nine in ten
  uint32_t seen = 0;
  int i = 0;
  for (; i < buckets_ - 1; ++i) {
    seen += counts_[i];
    if (seen >= need) break;
  }
  window_ns_ = std::min(2 * bounds_[std::min(i, buckets_ - 2)], settings_.window_ns);
}

bool PollWindow::may_poll(int64_t now_ns) {
  if (now_ns - second_start_ns_ >= kSecondNs) {
    last_second_ns_ = now_ns - second_start_ns_ < 2 * kSecondNs ? second_used_ns_ : 0;
    second_start_ns_ = now_ns;
    second_used_ns_ = 0;
  }
  return second_used_ns_ < kSecondNs / 100 * settings_.cpu_percent;
}

void PollWindow::polled(int64_t from_ns, int64_t to_ns) {
  if (to_ns > from_ns) second_used_ns_ += to_ns - from_ns;
}

}  // namespace nucleus::daemon
