#include "program_spec.h"

#include <nucleus/wire.h>

#include <algorithm>

namespace nucleus::spec {

using nlohmann::json;

Error::Error(std::string path, std::string message)
    : std::runtime_error((path.empty() ? "(top level)" : path) + ": " + message),
      path_(std::move(path)),
      message_(std::move(message)) {}

Error Error::within(const std::string &outer) const {
  if (outer.empty()) return *this;
  if (path_.empty()) return Error(outer, message_);
  return Error(outer + (path_[0] == '[' ? "" : ".") + path_, message_);
}

std::string Value::child(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

Value Value::operator[](std::string_view key) const {
  if (present() && json_->is_object()) {
    auto it = json_->find(key);
    if (it != json_->end()) return Value(*it, child(key));
  }
  return Value(nullptr, child(key));
}

Value Value::operator[](size_t index) const {
  std::string at = path_ + "[" + std::to_string(index) + "]";
  if (present() && json_->is_array() && index < json_->size()) return Value((*json_)[index], at);
  return Value(nullptr, at);
}

void Value::fail(std::string_view expected) const {
  throw Error(path_, "expected " + std::string(expected) + ", got " +
                         (present() ? json_->dump() : std::string("null")));
}

std::string Value::text() const {
  if (!present() || !json_->is_string()) fail("a string");
  return json_->get<std::string>();
}

bool Value::boolean() const {
  if (!present() || !json_->is_boolean()) fail("true or false");
  return json_->get<bool>();
}

uint64_t Value::count(uint64_t max) const {
  if (!present() || !json_->is_number_unsigned()) fail("a non-negative integer");
  uint64_t v = json_->get<uint64_t>();
  if (v > max) fail("an integer in [0, " + std::to_string(max) + "]");
  return v;
}

size_t Value::array_size(std::string_view expected) const {
  if (!present() || !json_->is_array()) fail(expected);
  return json_->size();
}

std::vector<std::string> Value::strings() const {
  std::vector<std::string> out(array_size("an array of strings"));
  for (size_t i = 0; i < out.size(); ++i) out[i] = (*this)[i].text();
  return out;
}

void Value::only(std::initializer_list<std::string_view> keys, std::string_view hint) const {
  if (!present() || !json_->is_object()) fail("an object");
  for (const auto &item : json_->items()) {
    if (std::find(keys.begin(), keys.end(), item.key()) != keys.end()) continue;
    throw Error(child(item.key()),
                "unknown field" + (hint.empty() ? std::string() : " (" + std::string(hint) + ")"));
  }
}

void Value::only(const std::vector<std::string> &keys, std::string_view hint) const {
  if (!present() || !json_->is_object()) fail("an object");
  for (const auto &item : json_->items()) {
    if (std::find(keys.begin(), keys.end(), item.key()) != keys.end()) continue;
    throw Error(child(item.key()),
                "unknown field" + (hint.empty() ? std::string() : " (" + std::string(hint) + ")"));
  }
}

bool valid_name(std::string_view name) {
  std::string s(name);
  return wire::name_length(s.c_str(), s.size() + 1) == static_cast<int>(s.size());
}

// ---- claims -------------------------------------------------------------------

void from_json(const json &j, Claims &c) {
  Value v(j, "");
  v.only({"buffers", "processes", "memory_bytes", "devices", "data_bytes"},
         "claims are buffers, processes, memory_bytes, devices, data_bytes");
  auto read = [&](const char *key, uint64_t max, uint64_t *out) {
    if (Value f = v[key]; f.present()) *out = f.count(max);
  };
  read("buffers", wire::kMaxBufferClaim, &c.buffers);
  read("processes", wire::kMaxProcessClaim, &c.processes);
  read("memory_bytes", UINT64_MAX, &c.memory_bytes);
  read("devices", wire::kMaxDeviceClaim, &c.devices);
  read("data_bytes", wire::kMaxDataAreaBytes, &c.data_bytes);
}

void to_json(json &j, const Claims &c) {
  j = {{"buffers", c.buffers},
       {"processes", c.processes},
       {"memory_bytes", c.memory_bytes},
       {"devices", c.devices},
       {"data_bytes", c.data_bytes}};
}

// ---- program ------------------------------------------------------------------

void from_json(const json &j, Program &p) {
  Value v(j, "");
  Value path = v["program"];
  if (!path.present() || !path.json().is_string() || path.json().get<std::string>().empty() ||
      path.json().get<std::string>()[0] != '/') {
    path.fail("an absolute path");
  }
  p.path = path.text();
  Value args = v["args"];
  Value argv = v["argv"];
  if (argv.present() && args.present()) argv.fail("args or argv (deprecated), not both");
  if (argv.present()) {
    p.argv = argv.strings();
  } else {
    p.argv = {p.path.substr(p.path.rfind('/') + 1)};
    if (args.present()) {
      std::vector<std::string> rest = args.strings();
      p.argv.insert(p.argv.end(), rest.begin(), rest.end());
    }
  }
  if (Value env = v["env"]; env.present()) {
    p.env = env.strings();
    for (size_t i = 0; i < p.env.size(); ++i) {
      if (p.env[i].find('=') == std::string::npos) env[i].fail("NAME=value");
    }
  }
  if (Value cwd = v["cwd"]; cwd.present()) p.cwd = cwd.text();
  // Whom it runs as (only root may name another user or group than its own).
  for (auto [key, out] : {std::pair{"user", &p.user}, std::pair{"group", &p.group}}) {
    Value who = v[key];
    if (!who.present()) continue;
    if (!who.json().is_string() || who.json().get<std::string>().empty()) {
      who.fail("a name or a number (as a string)");
    }
    *out = who.text();
  }
}

void to_json(json &j, const Program &p) {
  j = {{"program", p.path}, {"argv", p.argv}, {"env", p.env}};
  if (!p.cwd.empty()) j["cwd"] = p.cwd;
  if (!p.user.empty()) j["user"] = p.user;
  if (!p.group.empty()) j["group"] = p.group;
}

// ---- entries ------------------------------------------------------------------

Entry parse_entry(const Value &v, const Rules &rules, Names *names) {
  std::vector<std::string> keys{"name", "program", "args",  "argv",  "env",
                                "cwd",  "user",    "group", "claims"};
  if (rules.start) keys.emplace_back("start");
  if (rules.children) keys.emplace_back("children");
  keys.insert(keys.end(), rules.own_keys.begin(), rules.own_keys.end());
  v.only(keys);
  Entry e;
  e.where = v.path();
  Value name = v["name"];
  if (!name.present() || !name.json().is_string() || !valid_name(name.json().get<std::string>())) {
    name.fail("1 to 31 characters of [A-Za-z0-9._-]");
  }
  e.name = name.text();
  if (auto taken = names->find(e.name); taken != names->end()) name.fail(taken->second);
  names->emplace(e.name, rules.repeated_name);
  e.program = v.get<Program>("an object");
  if (Value claims = v["claims"]; claims.present()) {
    e.claims = claims.get<Claims>("an object");
    if (!claims["buffers"].present()) e.claims.buffers = rules.default_buffers;
  } else {
    e.claims.buffers = rules.default_buffers;
  }
  if (rules.zero_buffers_default && e.claims.buffers == 0) e.claims.buffers = rules.default_buffers;
  if (Value start = v["start"]; start.present()) e.start = start.boolean();
  if (Value children = v["children"]; children.present()) {
    e.children = parse_entries(children, rules, names);
  }
  if (rules.user_required && e.program.user.empty()) {
    v["user"].fail("the user (name or uid) its program runs as");
  }
  return e;
}

std::vector<Entry> parse_entries(const Value &v, const Rules &rules, Names *names) {
  std::vector<Entry> out(v.array_size("an array of objects"));
  for (size_t i = 0; i < out.size(); ++i) out[i] = parse_entry(v[i], rules, names);
  return out;
}

}  // namespace nucleus::spec
