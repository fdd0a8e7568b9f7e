// What the monitor sees (`nucleusctl monitor`, inspector.cc): while
// someone watches, each message sent and each answer delivered (by its
// receiver, or a dummy answer by the nucleus) is kept as an event until the
// server takes them. Owns the events kept and the count of those not kept:
// at most kMaxTrace are kept between takes. The parts of the Core that send
// or answer record here.
//
// Threading: nucleusd's loop thread only.
#pragma once

#include <nucleus/wire.h>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "pool.h"

namespace nucleus::daemon {

// kRegret: its sender withdrew the message (from the sender, to the receiver).
enum class TraceKind : uint8_t { kMessage, kAnswer, kRegret };
struct TraceEvent {
  TraceKind kind = TraceKind::kMessage;
  int32_t result = 0;  // an answer's
  uint64_t handle = 0;
  char from[wire::kNameBytes] = {};
  char to[wire::kNameBytes] = {};
};
inline constexpr size_t kMaxTrace = 65536;

struct TraceBatch {
  std::vector<TraceEvent> events;
  uint64_t dropped = 0;
};

class Trace {
 public:
  explicit Trace(const Pool &pool) : pool_(pool) {}
  Trace(const Trace &) = delete;
  Trace &operator=(const Trace &) = delete;

  // Off: the events kept are dropped (the count of those not kept stays).
  void set_on(bool on);
  bool on() const { return on_; }
  // The message or answer now on buffer `index`, from one name to another.
  // Callers record only while on().
  void record(TraceKind kind, uint32_t index, std::string_view from, std::string_view to);
  const std::vector<TraceEvent> &events() const { return events_; }
  uint64_t dropped() const { return dropped_; }
  TraceBatch take();

 private:
  const Pool &pool_;
  bool on_ = false;
  std::vector<TraceEvent> events_;
  uint64_t dropped_ = 0;
};

}  // namespace nucleus::daemon
