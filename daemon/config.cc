#include "config.h"

#include <nucleus/wire.h>

#include <nlohmann/json.hpp>
#include <set>

#include "program_spec.h"

namespace nucleus::daemon {

std::vector<DeviceConfig> default_devices() {
  std::vector<DeviceConfig> devices(3);
  devices[0].name = "clock";
  devices[0].kind = wire::DeviceKind::kClock;
  devices[1].name = "null";
  devices[1].kind = wire::DeviceKind::kNull;
  devices[2].name = "console";
  devices[2].kind = wire::DeviceKind::kConsole;
  devices[2].path = "stderr";
  devices[2].input = "stdin";
  return devices;
}

namespace {

using nlohmann::json;

// Reads fields of one JSON object, remembering its path for messages and
// refusing keys it does not know.
class Reader {
 public:
  Reader(const json &object, std::string path, std::string *error)
      : object_(object), path_(std::move(path)), error_(error) {
    if (!object_.is_object()) fail(path_.empty() ? "(top level)" : path_, "an object", object_);
  }

  bool ok() const { return error_->empty(); }

  template <typename Fn>
  void object(const char *key, Fn &&fn) {
    seen_.insert(key);
    if (!ok()) return;
    auto it = object_.find(key);
    if (it == object_.end()) return;  // keep the default
    Reader child(*it, field(key), error_);
    if (child.ok()) fn(child);
    if (child.ok()) child.finish();
  }

  void integer(const char *key, uint64_t lo, uint64_t hi, uint64_t *out) {
    seen_.insert(key);
    if (!ok()) return;
    auto it = object_.find(key);
    if (it == object_.end()) return;
    if (!it->is_number_unsigned() || it->get<uint64_t>() < lo || it->get<uint64_t>() > hi) {
      fail(field(key), "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]",
           *it);
      return;
    }
    *out = it->get<uint64_t>();
  }

  void boolean(const char *key, bool *out) {
    seen_.insert(key);
    if (!ok()) return;
    auto it = object_.find(key);
    if (it == object_.end()) return;
    if (!it->is_boolean()) return fail(field(key), "true or false", *it);
    *out = it->get<bool>();
  }

  void id_list(const char *key, std::vector<uint32_t> *out) {
    seen_.insert(key);
    if (!ok()) return;
    auto it = object_.find(key);
    if (it == object_.end()) return;
    if (!it->is_array()) return fail(field(key), "an array of numeric ids", *it);
    out->clear();
    for (size_t i = 0; i < it->size(); ++i) {
      const json &v = (*it)[i];
      if (!v.is_number_unsigned() || v.get<uint64_t>() > UINT32_MAX) {
        return fail(field(key) + "[" + std::to_string(i) + "]", "a numeric id in [0, 4294967295]",
                    v);
      }
      out->push_back(static_cast<uint32_t>(v.get<uint64_t>()));
    }
  }

  void choice(const char *key, const std::vector<std::string> &choices, std::string *out) {
    seen_.insert(key);
    if (!ok()) return;
    auto it = object_.find(key);
    if (it == object_.end()) return;
    std::string list;
    for (const auto &c : choices) list += (list.empty() ? "\"" : ", \"") + c + "\"";
    if (!it->is_string()) return fail(field(key), "one of " + list, *it);
    for (const auto &c : choices) {
      if (it->get<std::string>() == c) {
        *out = c;
        return;
      }
    }
    fail(field(key), "one of " + list, *it);
  }

  void text(const char *key, std::string *out) {
    seen_.insert(key);
    if (!ok()) return;
    auto it = object_.find(key);
    if (it == object_.end()) return;
    if (!it->is_string()) return fail(field(key), "a string", *it);
    *out = it->get<std::string>();
  }

  // A field read by a parser of its own, fn(value, path), which sets the
  // error.
  template <typename Fn>
  void value(const char *key, Fn &&fn) {
    seen_.insert(key);
    if (!ok()) return;
    auto it = object_.find(key);
    if (it != object_.end()) fn(*it, field(key));
  }

  // An array of objects, each read by fn(reader, index).
  template <typename Fn>
  void objects(const char *key, Fn &&fn) {
    seen_.insert(key);
    if (!ok()) return;
    auto it = object_.find(key);
    if (it == object_.end()) return;
    if (!it->is_array()) return fail(field(key), "an array of objects", *it);
    for (size_t i = 0; i < it->size() && ok(); ++i) {
      Reader child((*it)[i], field(key) + "[" + std::to_string(i) + "]", error_);
      if (child.ok()) fn(child, i);
      if (child.ok()) child.finish();
    }
  }

  void finish() {
    if (!ok()) return;
    for (const auto &item : object_.items()) {
      if (seen_.count(item.key()) == 0) {
        *error_ = field(item.key().c_str()) + ": unknown field";
        return;
      }
    }
  }

  void fail(const std::string &where, const std::string &expected, const json &got) {
    if (!ok()) return;
    *error_ = where + ": expected " + expected + ", got " + got.dump();
  }

 private:
  std::string field(const char *key) const { return path_.empty() ? key : path_ + "." + key; }

  const json &object_;
  std::string path_;
  std::string *error_;
  std::set<std::string> seen_;
};

// The boot section: entries of the shape the spawn file and the supervisor's
// spec share (common/program_spec.h), owned by a user, named apart from the
// devices.
void read_boot(const json &list, const std::string &where, const std::vector<DeviceConfig> &devices,
               std::vector<BootEntry> *out, std::string *error) {
  spec::Rules rules;
  rules.default_buffers = 32;
  rules.zero_buffers_default = true;
  rules.user_required = true;
  rules.start = true;
  spec::Names names;
  for (const DeviceConfig &d : devices) names.emplace(d.name, "a name no device has");
  try {
    for (spec::Entry &e : spec::parse_entries(spec::Value(list, where), rules, &names)) {
      BootEntry b;
      b.name = std::move(e.name);
      b.program.path = std::move(e.program.path);
      b.program.argv = std::move(e.program.argv);
      b.program.env = std::move(e.program.env);
      b.program.cwd = std::move(e.program.cwd);
      b.claims = {e.claims.buffers, e.claims.processes, e.claims.memory_bytes, e.claims.devices,
                  e.claims.data_bytes};
      b.start = e.start;
      b.user = std::move(e.program.user);
      b.group = std::move(e.program.group);
      out->push_back(std::move(b));
    }
  } catch (const spec::Error &e) {
    *error = e.what();
  }
}

// A names rule: exactly one of "own" (a name) and "own_prefix" (the start
// of names), and who may take them; no two rules for the same name or
// the same prefix.
void read_name_rule(Reader &r, size_t i, const json &object, std::vector<NameRule> *out) {
  std::string where = "names[" + std::to_string(i) + "]";
  NameRule rule;
  int given = 0;
  auto name = [&](bool prefix) {
    return [&, prefix](const json &v, const std::string &path) {
      ++given;
      std::string text = v.is_string() ? v.get<std::string>() : std::string();
      // A prefix is the start of a name: the same characters, at most as long.
      if (!v.is_string() ||
          wire::name_length(text.c_str(), text.size() + 1) != static_cast<int>(text.size())) {
        return r.fail(path,
                      prefix ? "the start of names: 1 to 31 characters of [A-Za-z0-9._-]"
                             : "a name: 1 to 31 characters of [A-Za-z0-9._-]",
                      v);
      }
      rule.name = text;
      rule.prefix = prefix;
    };
  };
  r.value("own", name(false));
  r.value("own_prefix", name(true));
  r.id_list("uids", &rule.uids);
  r.id_list("gids", &rule.gids);
  if (!r.ok()) return;
  if (given != 1) {
    return r.fail(where, R"(exactly one of "own" (a name) and "own_prefix" (the start of names))",
                  object);
  }
  for (const NameRule &other : *out) {
    if (other.prefix == rule.prefix && other.name == rule.name) {
      return r.fail(where + (rule.prefix ? ".own_prefix" : ".own"),
                    rule.prefix ? "a prefix no earlier rule names" : "a name no earlier rule names",
                    json(rule.name));
    }
  }
  out->push_back(std::move(rule));
}

}  // namespace

const NameRule *name_rule(const std::vector<NameRule> &rules, std::string_view name) {
  const NameRule *best = nullptr;
  for (const NameRule &rule : rules) {
    if (!rule.prefix) {
      if (rule.name == name) return &rule;  // the name's own rule decides
      continue;
    }
    if (name.starts_with(rule.name) && (best == nullptr || rule.name.size() > best->name.size())) {
      best = &rule;
    }
  }
  return best;
}

std::vector<std::string> explain_names(const std::vector<NameRule> &rules) {
  auto ids = [](const std::vector<uint32_t> &list) {
    std::string out;
    for (uint32_t id : list) out += (out.empty() ? "" : ", ") + std::to_string(id);
    return out;
  };
  std::vector<std::string> lines;
  for (size_t i = 0; i < rules.size(); ++i) {
    const NameRule &rule = rules[i];
    std::string who;
    if (!rule.uids.empty()) who = "uids " + ids(rule.uids);
    if (!rule.gids.empty()) who += (who.empty() ? "" : " or ") + ("primary gids " + ids(rule.gids));
    lines.push_back(
        "names[" + std::to_string(i) +
        "]: " + (rule.prefix ? "names beginning \"" + rule.name + "\"" : "\"" + rule.name + "\"") +
        (who.empty() ? " may be taken by no one" : " may be taken only by " + who));
  }
  return lines;
}

bool parse_config(const std::string &text, Config *out, std::string *error) {
  error->clear();
  json j;
  try {
    j = json::parse(text, nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
  } catch (const json::exception &e) {
    *error = std::string("not valid JSON: ") + e.what();
    return false;
  }
  Config c;
  uint64_t pool = 16384, claim = 32, req = 256, ev = 256, data = 1 << 20, max_errors = 16;
  uint64_t spin_ns = 0, poll_window_ns = 250000, poll_cpu_percent = 50;
  std::string poll = "adaptive";
  uint64_t attach_timeout_ms = 5000;
  uint64_t handover_timeout_ms = 2000, ready_timeout_ms = 5000;
  std::string doorbell = "auto";
  uint64_t claim_processes = 0, claim_memory = 0, max_processes = 16384, notices = 256;
  std::string subtree_mode = "auto", output = "file";
  Reader top(j, "", error);
  top.object("pool", [&](Reader &r) { r.integer("buffers", 1, wire::kMaxPoolBuffers, &pool); });
  top.object("default_claims", [&](Reader &r) {
    r.integer("buffers", 0, wire::kMaxBufferClaim, &claim);
    r.integer("processes", 0, 1U << 20, &claim_processes);
    r.integer("memory_bytes", 0, UINT64_MAX, &claim_memory);
    r.integer("devices", 0, wire::kMaxDeviceClaim, &c.default_claim_devices);
  });
  top.object("processes", [&](Reader &r) {
    r.integer("max", 1, 1U << 20, &max_processes);
    r.integer("notice_buffers", 1, 65536, &notices);
    r.choice("control", {"auto", "cgroup", "signals"}, &subtree_mode);
    r.text("cgroup_root", &c.cgroup_root);
    // "inherit" (nucleusd's own stderr) is refused: a program's lines would
    // land unmarked in nucleusd's log (docs/security.md).
    r.choice("output", {"file", "discard"}, &output);
    r.text("output_dir", &c.output_dir);
    if (r.ok() && !c.output_dir.empty() && c.output_dir[0] != '/') {
      r.fail("processes.output_dir", "an absolute path (or \"\")", json(c.output_dir));
    }
  });
  top.object("channel", [&](Reader &r) {
    r.integer("request_entries", 2, wire::kMaxRingEntries, &req);
    r.integer("event_entries", 2, wire::kMaxRingEntries, &ev);
    r.integer("data_bytes", 0, wire::kMaxDataAreaBytes, &data);
    if (r.ok() && !wire::is_power_of_two(static_cast<uint32_t>(req))) {
      r.fail("channel.request_entries", "a power of two", json(req));
    }
    if (r.ok() && !wire::is_power_of_two(static_cast<uint32_t>(ev))) {
      r.fail("channel.event_entries", "a power of two", json(ev));
    }
  });
  top.object("attach", [&](Reader &r) {
    r.boolean("allow_own_uid", &c.allow_own_uid);
    r.id_list("uids", &c.uids);
    r.id_list("gids", &c.gids);
    r.integer("timeout_ms", 1, 3600000, &attach_timeout_ms);
  });
  top.object("operators", [&](Reader &r) {
    r.boolean("allow_own_uid", &c.operators_own_uid);
    r.id_list("uids", &c.operator_uids);
    r.id_list("gids", &c.operator_gids);
  });
  top.objects("names", [&](Reader &r, size_t i) { read_name_rule(r, i, j["names"][i], &c.names); });
  top.object("log", [&](Reader &r) {
    r.choice("level", {"trace", "debug", "info", "warn", "error", "critical", "off"}, &c.log_level);
  });
  bool devices_given = j.is_object() && j.contains("devices");
  top.objects("devices", [&](Reader &r, size_t i) {
    DeviceConfig d;
    std::string kind;
    uint64_t block_size = wire::kMinBlockSize;
    std::string where = "devices[" + std::to_string(i) + "]";
    r.text("name", &d.name);
    r.choice("kind", {"clock", "console", "disk", "null"}, &kind);
    r.text("path", &d.path);
    r.text("output", &d.path);
    r.text("input", &d.input);
    r.integer("block_size", wire::kMinBlockSize, wire::kMaxBlockSize, &block_size);
    r.boolean("direct", &d.direct);
    if (!r.ok()) return;
    if (wire::name_length(d.name.c_str(), d.name.size() + 1) < 0) {
      return r.fail(where + ".name", "1 to 31 characters of [A-Za-z0-9._-]", json(d.name));
    }
    for (const DeviceConfig &other : c.devices) {
      if (other.name == d.name)
        return r.fail(where + ".name", "a name not used before", json(d.name));
    }
    if (kind.empty()) {
      return r.fail(where + ".kind", R"(one of "clock", "console", "disk", "null")", json());
    }
    d.kind = kind == "clock"     ? wire::DeviceKind::kClock
             : kind == "console" ? wire::DeviceKind::kConsole
             : kind == "disk"    ? wire::DeviceKind::kDisk
                                 : wire::DeviceKind::kNull;
    if (!wire::is_power_of_two(static_cast<uint32_t>(block_size))) {
      return r.fail(where + ".block_size", "a power of two", json(block_size));
    }
    d.block_size = static_cast<uint32_t>(block_size);
    if (d.kind == wire::DeviceKind::kDisk && d.path.empty()) {
      return r.fail(where + ".path", "the backing file of the disk", json());
    }
    if (d.kind == wire::DeviceKind::kConsole) {
      if (d.path.empty()) d.path = "stderr";
      if (d.input.empty()) d.input = d.path == "stderr" || d.path == "stdout" ? "stdin" : d.path;
      if (d.input == "none") d.input.clear();
    }
    c.devices.push_back(std::move(d));
  });
  if (!devices_given) c.devices = default_devices();
  top.value("boot", [&](const json &list, const std::string &where) {
    read_boot(list, where, c.devices, &c.boot, error);
  });
  top.object("limits", [&](Reader &r) {
    Limits &l = c.limits;
    auto u32 = [&](Reader &in, const char *key, uint32_t lo, uint32_t hi, uint32_t *out) {
      uint64_t v = *out;
      in.integer(key, lo, hi, &v);
      *out = static_cast<uint32_t>(v);
    };
    r.object("per_uid", [&](Reader &u) {
      u32(u, "processes", 1, 1U << 20, &l.uid_processes);
      u32(u, "names", 1, 1U << 20, &l.uid_names);
      u32(u, "buffers", 1, wire::kMaxPoolBuffers, &l.uid_buffers);
      u32(u, "control_connections", 1, 65536, &l.uid_inspection_connections);
      u32(u, "pending_attaches", 1, 256, &l.uid_pending_attaches);
    });
    r.object("per_connection", [&](Reader &u) {
      u32(u, "replies", 16, 65536, &l.connection_replies);
      u32(u, "requests_per_turn", 1, 65536, &l.connection_requests_per_turn);
      u32(u, "staged_bytes", 64, wire::kMaxProgramBytes, &l.connection_staged_bytes);
      // At most 128 KiB: a page (plus one entry, up to about 200 KiB
      // escaped) must fit a SOCK_SEQPACKET packet where net.core.wmem_max
      // is the stock 208 KiB (a socket buffer of twice that).
      u32(u, "control_reply_bytes", 4096, 131072, &l.connection_control_reply_bytes);
    });
    r.object("per_turn",
             [&](Reader &u) { u32(u, "control_bytes", 1024, 1U << 24, &l.turn_control_bytes); });
    r.object("per_parent",
             [&](Reader &u) { u32(u, "exit_notices", 1, 65536, &l.parent_exit_notices); });
    r.integer("stop_timeout_ms", 1, 3600000, &l.stop_timeout_ms);
    r.integer("launch_timeout_ms", 1, 3600000, &l.launch_timeout_ms);
    r.integer("log_interval_ms", 1, 3600000, &l.log_interval_ms);
  });
  top.object("swap", [&](Reader &r) {
    r.integer("handover_timeout_ms", 1, 3600000, &handover_timeout_ms);
    r.integer("ready_timeout_ms", 1, 3600000, &ready_timeout_ms);
  });
  top.object("protocol", [&](Reader &r) { r.integer("max_errors", 1, 1000000, &max_errors); });
  top.choice("doorbell", {"auto", "futex", "eventfd"}, &doorbell);
  top.object("event_loop", [&](Reader &r) {
    r.choice("poll", {"adaptive", "fixed", "off"}, &poll);
    r.integer("poll_window_ns", 0, 10000000, &poll_window_ns);
    r.integer("poll_cpu_percent", 1, 100, &poll_cpu_percent);
    r.boolean("defer_taskrun", &c.defer_taskrun);
    // Deprecated (decision 51): a fixed window; 0, its old default, leaves
    // the adaptive default.
    r.integer("spin_ns", 0, 10000000, &spin_ns);
  });
  top.finish();
  if (!top.ok()) return false;
  if (claim_processes >= max_processes) {
    *error = "default_claims.processes: expected less than processes.max (" +
             std::to_string(max_processes) + "), got " + std::to_string(claim_processes);
    return false;
  }
  if (claim > pool) {
    *error = "default_claims.buffers: expected at most pool.buffers (" + std::to_string(pool) +
             "), got " + std::to_string(claim);
    return false;
  }
  if (claim + notices > pool) {
    *error = "processes.notice_buffers: expected at most pool.buffers - default_claims.buffers (" +
             std::to_string(pool > claim ? pool - claim : 0) + "), got " + std::to_string(notices);
    return false;
  }
  c.pool_buffers = static_cast<uint32_t>(pool);
  c.default_claim_buffers = static_cast<uint32_t>(claim);
  c.request_entries = static_cast<uint32_t>(req);
  c.event_entries = static_cast<uint32_t>(ev);
  c.data_bytes = data;
  c.max_protocol_errors = static_cast<uint32_t>(max_errors);
  c.poll.mode = poll == "fixed" ? PollMode::kFixed
                : poll == "off" ? PollMode::kOff
                                : PollMode::kAdaptive;
  c.poll.window_ns = static_cast<int64_t>(poll_window_ns);
  c.poll.cpu_percent = static_cast<uint32_t>(poll_cpu_percent);
  if (spin_ns != 0) {
    c.poll.mode = PollMode::kFixed;
    c.poll.window_ns = static_cast<int64_t>(spin_ns);
  }
  c.default_claim_processes = claim_processes;
  c.default_claim_memory = claim_memory;
  c.max_processes = max_processes;
  c.notice_buffers = static_cast<uint32_t>(notices);
  c.subtree_mode = subtree_mode == "cgroup"    ? SubtreeMode::kCgroup
                   : subtree_mode == "signals" ? SubtreeMode::kSignals
                                               : SubtreeMode::kAuto;
  c.output = output == "discard" ? OutputMode::kDiscard : OutputMode::kFile;
  c.attach_timeout_ms = attach_timeout_ms;
  c.swap_handover_timeout_ms = handover_timeout_ms;
  c.swap_ready_timeout_ms = ready_timeout_ms;
  c.doorbell = doorbell == "futex"     ? DoorbellMode::kFutex
               : doorbell == "eventfd" ? DoorbellMode::kEventfd
                                       : DoorbellMode::kAuto;
  *out = c;
  return true;
}

}  // namespace nucleus::daemon

namespace nucleus::daemon {

namespace {

template <typename T>
void compare(const char *field, const T &a, const T &b, std::vector<std::string> *out) {
  if (!(a == b)) out->emplace_back(field);
}

}  // namespace

void apply_reloadable(const Config &from, Config *to) {
  // The same fields diff_config reports as applied.
  to->log_level = from.log_level;
  to->operators_own_uid = from.operators_own_uid;
  to->operator_uids = from.operator_uids;
  to->operator_gids = from.operator_gids;
  to->allow_own_uid = from.allow_own_uid;
  to->uids = from.uids;
  to->gids = from.gids;
  to->names = from.names;
  to->default_claim_buffers = from.default_claim_buffers;
  to->default_claim_processes = from.default_claim_processes;
  to->default_claim_memory = from.default_claim_memory;
  to->default_claim_devices = from.default_claim_devices;
  to->limits = from.limits;
  to->poll = from.poll;
}

ConfigChanges diff_config(const Config &a, const Config &b) {
  ConfigChanges c;
  // What a reload applies (apply_reloadable).
  compare("log.level", a.log_level, b.log_level, &c.applied);
  compare("operators.allow_own_uid", a.operators_own_uid, b.operators_own_uid, &c.applied);
  compare("operators.uids", a.operator_uids, b.operator_uids, &c.applied);
  compare("operators.gids", a.operator_gids, b.operator_gids, &c.applied);
  compare("attach.allow_own_uid", a.allow_own_uid, b.allow_own_uid, &c.applied);
  compare("attach.uids", a.uids, b.uids, &c.applied);
  compare("attach.gids", a.gids, b.gids, &c.applied);
  compare("names", a.names, b.names, &c.applied);
  compare("default_claims.buffers", a.default_claim_buffers, b.default_claim_buffers, &c.applied);
  compare("default_claims.processes", a.default_claim_processes, b.default_claim_processes,
          &c.applied);
  compare("default_claims.memory_bytes", a.default_claim_memory, b.default_claim_memory,
          &c.applied);
  compare("default_claims.devices", a.default_claim_devices, b.default_claim_devices, &c.applied);
  compare("limits", a.limits, b.limits, &c.applied);
  compare("event_loop.poll", a.poll.mode, b.poll.mode, &c.applied);
  compare("event_loop.poll_window_ns", a.poll.window_ns, b.poll.window_ns, &c.applied);
  compare("event_loop.poll_cpu_percent", a.poll.cpu_percent, b.poll.cpu_percent, &c.applied);
  // What only a restart changes.
  compare("pool.buffers", a.pool_buffers, b.pool_buffers, &c.restart);
  compare("processes.max", a.max_processes, b.max_processes, &c.restart);
  compare("processes.notice_buffers", a.notice_buffers, b.notice_buffers, &c.restart);
  compare("processes.control", a.subtree_mode, b.subtree_mode, &c.restart);
  compare("processes.cgroup_root", a.cgroup_root, b.cgroup_root, &c.restart);
  compare("processes.output", a.output, b.output, &c.restart);
  compare("processes.output_dir", a.output_dir, b.output_dir, &c.restart);
  compare("channel.request_entries", a.request_entries, b.request_entries, &c.restart);
  compare("channel.event_entries", a.event_entries, b.event_entries, &c.restart);
  compare("channel.data_bytes", a.data_bytes, b.data_bytes, &c.restart);
  bool devices_same = a.devices.size() == b.devices.size();
  for (size_t i = 0; devices_same && i < a.devices.size(); ++i) {
    const DeviceConfig &x = a.devices[i];
    const DeviceConfig &y = b.devices[i];
    devices_same = x.name == y.name && x.kind == y.kind && x.path == y.path && x.input == y.input &&
                   x.block_size == y.block_size && x.direct == y.direct;
  }
  if (!devices_same) c.restart.emplace_back("devices");
  bool boot_same = a.boot.size() == b.boot.size();
  for (size_t i = 0; boot_same && i < a.boot.size(); ++i) {
    const BootEntry &x = a.boot[i];
    const BootEntry &y = b.boot[i];
    boot_same = x.name == y.name && x.start == y.start && x.program.path == y.program.path &&
                x.program.argv == y.program.argv && x.program.env == y.program.env &&
                x.program.cwd == y.program.cwd && x.claims.buffers == y.claims.buffers &&
                x.claims.processes == y.claims.processes && x.claims.memory == y.claims.memory &&
                x.claims.devices == y.claims.devices &&
                x.claims.data_bytes == y.claims.data_bytes && x.user == y.user &&
                x.group == y.group;
  }
  // The boot section is read at start only: a reload does not start or
  // remove processes.
  if (!boot_same) c.restart.emplace_back("boot");
  compare("attach.timeout_ms", a.attach_timeout_ms, b.attach_timeout_ms, &c.restart);
  compare("protocol.max_errors", a.max_protocol_errors, b.max_protocol_errors, &c.restart);
  compare("doorbell", a.doorbell, b.doorbell, &c.restart);
  compare("swap.handover_timeout_ms", a.swap_handover_timeout_ms, b.swap_handover_timeout_ms,
          &c.restart);
  compare("swap.ready_timeout_ms", a.swap_ready_timeout_ms, b.swap_ready_timeout_ms, &c.restart);
  compare("event_loop.defer_taskrun", a.defer_taskrun, b.defer_taskrun, &c.restart);
  return c;
}

}  // namespace nucleus::daemon
