#include "spec.h"

#include "users.h"

namespace nucleus::supervisor {

using json = nlohmann::json;

uint64_t fnv1a(std::string_view text) {
  uint64_t h = 14695981039346656037ULL;
  for (char c : text) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

Spec parse_spec(const json &j) {
  spec::Value top(j, "");
  top.only({"strategy", "intensity", "period_ms", "backoff_ms", "backoff_max_ms", "controllers",
            "children"});
  Spec s;
  if (spec::Value v = top["strategy"]; v.present()) s.strategy = v.choice<Strategy>();
  for (auto [key, out] :
       {std::pair{"intensity", &s.intensity}, std::pair{"period_ms", &s.period_ms},
        std::pair{"backoff_ms", &s.backoff_ms}, std::pair{"backoff_max_ms", &s.backoff_max_ms}}) {
    if (spec::Value v = top[key]; v.present()) *out = v.count(UINT64_MAX);
  }
  if (spec::Value list = top["controllers"]; list.present()) {
    size_t count = list.array_size("an array of uids or user names");
    for (size_t i = 0; i < count; ++i) {
      spec::Value c = list[i];
      uint32_t uid = 0;
      if (c.json().is_number_unsigned()) {
        uid = static_cast<uint32_t>(c.count(UINT32_MAX - 1));
      } else if (c.json().is_string()) {
        if (!os::resolve_uid(c.text(), &uid)) c.fail("a uid or a user name in the user database");
      } else {
        c.fail("a uid or a user name");
      }
      s.controllers.push_back(uid);
    }
  }
  spec::Value kids = top["children"];
  if (!kids.present()) return s;
  spec::Rules rules;
  rules.default_buffers = 4;
  rules.zero_buffers_default = true;
  rules.own_keys = {"restart", "wait_ready"};
  spec::Names names;
  size_t count = kids.array_size("an array of objects");
  for (size_t i = 0; i < count; ++i) {
    spec::Value c = kids[i];
    spec::Entry e = spec::parse_entry(c, rules, &names);
    ChildSpec cs{std::move(e.name), std::move(e.program), e.claims};
    if (spec::Value v = c["restart"]; v.present()) cs.restart = v.choice<Restart>();
    if (spec::Value v = c["wait_ready"]; v.present()) cs.wait_ready = v.boolean();
    s.children.push_back(std::move(cs));
  }
  return s;
}

json spec_json(const Spec &s) {
  json j;
  j["strategy"] = s.strategy;
  j["intensity"] = s.intensity;
  j["period_ms"] = s.period_ms;
  j["backoff_ms"] = s.backoff_ms;
  j["backoff_max_ms"] = s.backoff_max_ms;
  if (!s.controllers.empty()) j["controllers"] = s.controllers;
  j["children"] = json::array();
  for (const ChildSpec &c : s.children) {
    json cj = c.program;  // program, argv, env, and cwd, user, group when set
    cj["name"] = c.name;
    cj["claims"] = c.claims;
    cj["restart"] = c.restart;
    cj["wait_ready"] = c.wait_ready;
    j["children"].push_back(cj);
  }
  return j;
}

namespace {

// What runs for a child: its program and claims, as canonical JSON.
json what_runs(const ChildSpec &c) {
  json j = c.program;
  j["claims"] = c.claims;
  return j;
}

}  // namespace

bool SpecChange::any() const {
  if (!removed.empty()) return true;
  for (size_t i = 0; i < from.size(); ++i) {
    if (!from[i] || replaced[i] || *from[i] != i) return true;
  }
  return false;
}

SpecChange diff_specs(const Spec &before, const Spec &now) {
  SpecChange d;
  std::vector<bool> kept(before.children.size(), false);
  for (const ChildSpec &c : now.children) {
    std::optional<size_t> at;
    for (size_t j = 0; j < before.children.size(); ++j) {
      if (before.children[j].name == c.name) at = j;
    }
    d.from.push_back(at);
    d.replaced.push_back(at && what_runs(before.children[*at]) != what_runs(c));
    if (at) kept[*at] = true;
  }
  for (size_t j = 0; j < kept.size(); ++j) {
    if (!kept[j]) d.removed.push_back(j);
  }
  return d;
}

}  // namespace nucleus::supervisor
