// The supervisor's spec: its children, their restart types and the
// strategy, read from JSON and written back as canonical JSON (the text a
// handed-over state carries). docs/personalities.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "program_spec.h"

namespace nucleus::supervisor {

enum class Strategy { kOneForOne, kOneForAll, kRestForOne };
enum class Restart { kPermanent, kTransient, kTemporary };

// Their names in the spec (read through spec::Value::choice, which refuses
// names that are not here).
NLOHMANN_JSON_SERIALIZE_ENUM(Strategy, {{Strategy::kOneForOne, "one_for_one"},
                                        {Strategy::kOneForAll, "one_for_all"},
                                        {Strategy::kRestForOne, "rest_for_one"}})
NLOHMANN_JSON_SERIALIZE_ENUM(Restart, {{Restart::kPermanent, "permanent"},
                                       {Restart::kTransient, "transient"},
                                       {Restart::kTemporary, "temporary"}})

struct ChildSpec {
  std::string name;
  spec::Program program;
  spec::Claims claims;
  Restart restart = Restart::kPermanent;
  bool wait_ready = false;
};

struct Spec {
  Strategy strategy = Strategy::kOneForOne;
  uint64_t intensity = 3;  // restarts allowed within period_ms ...
  uint64_t period_ms = 5000;
  uint64_t backoff_ms = 0;  // before a restart; doubles with each restart in the period
  uint64_t backoff_max_ms = 5000;
  // Uids besides its owner's and root's whose processes it takes control
  // messages from (status, restart): "controllers", uids or user names,
  // resolved when the spec is read (docs/personalities.md, "Who may ask an
  // OS what").
  std::vector<uint32_t> controllers;
  std::vector<ChildSpec> children;
};

// Reads a spec; throws spec::Error (a std::runtime_error) naming the JSON
// path on bad input. A child is an entry of the shape boot entries and
// spawn files share (common/program_spec.h) plus "restart" and
// "wait_ready"; without claims it gets 4 buffers. "controllers" holds uids
// or user names (a name not in the user database is an error).
Spec parse_spec(const nlohmann::json &j);
// The canonical JSON of a spec: every field, the whole argv under "argv"
// (format 3 of the handed-over state, which every version reads), and
// "controllers" as uids only when there are any (so that a spec without
// them is the text an older supervisor wrote and reads).
nlohmann::json spec_json(const Spec &s);
// How a spec changed, matched by child name (a swap to a new spec applies
// it: docs/personalities.md, "A changed spec"). A child of `now` whose name
// `before` has carries on unless its program (path, argv, env, cwd, user,
// group) or claims changed; then it is replaced (its old program ended, the
// new one started). A change of only "restart" or "wait_ready" is not a
// change of what runs.
struct SpecChange {
  std::vector<std::optional<size_t>> from;  // per child of now: its index in before (none: added)
  std::vector<bool> replaced;               // per child of now: program or claims changed
  std::vector<size_t> removed;              // children of before that now does not have
  bool any() const;
};
SpecChange diff_specs(const Spec &before, const Spec &now);

// FNV-1a, 64 bits: the same on every build, so two versions agree on it.
uint64_t fnv1a(std::string_view text);

}  // namespace nucleus::supervisor
