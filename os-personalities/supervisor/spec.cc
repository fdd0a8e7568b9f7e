#include "spec.h"

#include <stdexcept>

namespace nucleus::supervisor {

using json = nlohmann::json;

namespace {

const char *to_text(Strategy s) {
  switch (s) {
    case Strategy::kOneForOne: return "one_for_one";
    case Strategy::kOneForAll: return "one_for_all";
    case Strategy::kRestForOne: return "rest_for_one";
  }
  return "";
}
const char *to_text(Restart r) {
  switch (r) {
    case Restart::kPermanent: return "permanent";
    case Restart::kTransient: return "transient";
    case Restart::kTemporary: return "temporary";
  }
  return "";
}

}  // namespace

uint64_t fnv1a(std::string_view text) {
  uint64_t h = 14695981039346656037ULL;
  for (char c : text) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

Spec parse_spec(const json &j) {
  auto fail = [](const std::string &path, const std::string &what) {
    throw std::runtime_error(path + ": " + what);
  };
  if (!j.is_object()) fail("spec", "expected an object");
  Spec s;
  for (const auto &[key, value] : j.items()) {
    if (key == "strategy") {
      std::string v = value.is_string() ? value.get<std::string>() : "";
      if (v == "one_for_one") {
        s.strategy = Strategy::kOneForOne;
      } else if (v == "one_for_all") {
        s.strategy = Strategy::kOneForAll;
      } else if (v == "rest_for_one") {
        s.strategy = Strategy::kRestForOne;
      } else {
        fail("strategy", R"(one of "one_for_one", "one_for_all", "rest_for_one")");
      }
    } else if (key == "intensity" || key == "period_ms" || key == "backoff_ms" ||
               key == "backoff_max_ms") {
      if (!value.is_number_unsigned()) fail(key, "a number >= 0");
      uint64_t v = value.get<uint64_t>();
      if (key == "intensity") s.intensity = v;
      if (key == "period_ms") s.period_ms = v;
      if (key == "backoff_ms") s.backoff_ms = v;
      if (key == "backoff_max_ms") s.backoff_max_ms = v;
    } else if (key == "children") {
      if (!value.is_array()) fail("children", "an array");
    } else {
      fail(key, "not a field of a spec");
    }
  }
  const json &kids = j.contains("children") ? j["children"] : json::array();
  for (size_t i = 0; i < kids.size(); ++i) {
    std::string at = "children[" + std::to_string(i) + "]";
    const json &c = kids[i];
    if (!c.is_object()) fail(at, "an object");
    ChildSpec cs;
    for (const auto &[key, value] : c.items()) {
      std::string path = at;
      path += "." + key;
      if (key == "name" || key == "program" || key == "cwd") {
        if (!value.is_string()) fail(path, "a string");
        if (key == "name") cs.name = value.get<std::string>();
        if (key == "program") cs.program.path = value.get<std::string>();
        if (key == "cwd") cs.program.cwd = value.get<std::string>();
      } else if (key == "argv" || key == "env") {
        if (!value.is_array()) fail(path, "an array of strings");
        for (const json &a : value) {
          if (!a.is_string()) fail(path, "an array of strings");
          (key == "argv" ? cs.program.argv : cs.program.env).push_back(a.get<std::string>());
        }
      } else if (key == "claims") {
        if (!value.is_object()) fail(path, "an object");
        for (const auto &[ck, cv] : value.items()) {
          std::string claim = path;
          claim += "." + ck;
          if (!cv.is_number_unsigned()) fail(claim, "a number >= 0");
          uint64_t v = cv.get<uint64_t>();
          if (ck == "buffers") {
            cs.claims.buffers = v;
          } else if (ck == "processes") {
            cs.claims.processes = v;
          } else if (ck == "memory_bytes") {
            cs.claims.memory_bytes = v;
          } else if (ck == "devices") {
            cs.claims.devices = v;
          } else if (ck == "data_bytes") {
            cs.claims.data_bytes = v;
          } else {
            fail(claim, "not a claim");
          }
        }
      } else if (key == "restart") {
        std::string v = value.is_string() ? value.get<std::string>() : "";
        if (v == "permanent") {
          cs.restart = Restart::kPermanent;
        } else if (v == "transient") {
          cs.restart = Restart::kTransient;
        } else if (v == "temporary") {
          cs.restart = Restart::kTemporary;
        } else {
          fail(path, R"(one of "permanent", "transient", "temporary")");
        }
      } else if (key == "wait_ready") {
        if (!value.is_boolean()) fail(path, "true or false");
        cs.wait_ready = value.get<bool>();
      } else {
        fail(path, "not a field of a child");
      }
    }
    if (cs.name.empty()) fail(at + ".name", "a name is required");
    if (cs.program.path.empty()) fail(at + ".program", "a program is required");
    for (const ChildSpec &other : s.children) {
      if (other.name == cs.name) fail(at + ".name", "a name not used before: " + cs.name);
    }
    if (cs.claims.buffers == 0) cs.claims.buffers = 4;
    s.children.push_back(std::move(cs));
  }
  return s;
}

json spec_json(const Spec &s) {
  json j;
  j["strategy"] = to_text(s.strategy);
  j["intensity"] = s.intensity;
  j["period_ms"] = s.period_ms;
  j["backoff_ms"] = s.backoff_ms;
  j["backoff_max_ms"] = s.backoff_max_ms;
  j["children"] = json::array();
  for (const ChildSpec &c : s.children) {
    json cj;
    cj["name"] = c.name;
    cj["program"] = c.program.path;
    if (!c.program.cwd.empty()) cj["cwd"] = c.program.cwd;
    cj["argv"] = c.program.argv;
    cj["env"] = c.program.env;
    cj["claims"] = {{"buffers", c.claims.buffers},
                    {"processes", c.claims.processes},
                    {"memory_bytes", c.claims.memory_bytes},
                    {"devices", c.claims.devices},
                    {"data_bytes", c.claims.data_bytes}};
    cj["restart"] = to_text(c.restart);
    cj["wait_ready"] = c.wait_ready;
    j["children"].push_back(cj);
  }
  return j;
}

}  // namespace nucleus::supervisor
