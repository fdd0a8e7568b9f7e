#include "trace.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace nucleus::daemon {

void Trace::set_on(bool on) {
  on_ = on;
  if (!on) events_.clear();
}

TraceBatch Trace::take() {
  TraceBatch batch{std::exchange(events_, {}), std::exchange(dropped_, 0)};
  return batch;
}

void Trace::record(TraceKind kind, uint32_t index, std::string_view from, std::string_view to) {
  if (events_.size() >= kMaxTrace) {
    ++dropped_;
    return;
  }
  TraceEvent &e = events_.emplace_back();
  e.kind = kind;
  e.handle = pool_.handle(index);
  e.result = kind == TraceKind::kAnswer ? pool_.at(index).result : 0;
  e.words = pool_.at(index).words;
  std::memcpy(e.from, from.data(), std::min(from.size(), sizeof(e.from) - 1));
  std::memcpy(e.to, to.data(), std::min(to.size(), sizeof(e.to) - 1));
}

}  // namespace nucleus::daemon
