// The supervisor's spec: its children, their restart types and the
// strategy, read from JSON and written back as canonical JSON (the text a
// handed-over state carries). docs/personalities.md.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <nucleus/nucleus.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace nucleus::supervisor {

enum class Strategy { kOneForOne, kOneForAll, kRestForOne };
enum class Restart { kPermanent, kTransient, kTemporary };

struct ChildSpec {
  std::string name;
  nucleus::Program program;
  nucleus::Claims claims{};
  Restart restart = Restart::kPermanent;
  bool wait_ready = false;
};

struct Spec {
  Strategy strategy = Strategy::kOneForOne;
  uint64_t intensity = 3;  // restarts allowed within period_ms ...
  uint64_t period_ms = 5000;
  uint64_t backoff_ms = 0;  // before a restart; doubles with each restart in the period
  uint64_t backoff_max_ms = 5000;
  std::vector<ChildSpec> children;
};

// Reads a spec; throws std::runtime_error naming the field on bad input.
Spec parse_spec(const nlohmann::json &j);
// The canonical JSON of a spec: every field, in a fixed order.
nlohmann::json spec_json(const Spec &s);
// FNV-1a, 64 bits: the same on every build, so two versions agree on it.
uint64_t fnv1a(std::string_view text);

}  // namespace nucleus::supervisor
