#include "spawn.h"

#include <set>

namespace nucleus::ctl {

namespace {

using nlohmann::json;

bool fail(std::string *error, const std::string &where, const std::string &expected,
          const json &got) {
  *error = where + ": expected " + expected + ", got " + got.dump();
  return false;
}

bool valid_name(const std::string &s) {
  if (s.empty() || s.size() > 31) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool strings(const json &j, const std::string &where, std::vector<std::string> *out,
             std::string *error) {
  if (!j.is_array()) return fail(error, where, "an array of strings", j);
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_string()) {
      return fail(error, where + "[" + std::to_string(i) + "]", "a string", j[i]);
    }
    out->push_back(j[i].get<std::string>());
  }
  return true;
}

bool parse_claims(const json &j, const std::string &where, Claims *out, std::string *error) {
  if (!j.is_object()) return fail(error, where, "an object", j);
  static const std::pair<const char *, uint64_t Claims::*> kFields[] = {
      {"buffers", &Claims::buffers},
      {"processes", &Claims::processes},
      {"memory_bytes", &Claims::memory_bytes},
      {"devices", &Claims::devices},
      {"data_bytes", &Claims::data_bytes}};
  for (const auto &item : j.items()) {
    bool known = false;
    for (const auto &[key, field] : kFields) {
      if (item.key() != key) continue;
      known = true;
      if (!item.value().is_number_unsigned()) {
        return fail(error, where + "." + key, "a non-negative integer", item.value());
      }
      out->*field = item.value().get<uint64_t>();
    }
    if (!known) {
      *error = where + "." + item.key() +
               ": unknown field (claims are buffers, processes, memory_bytes, devices, "
               "data_bytes)";
      return false;
    }
  }
  return true;
}

bool parse_entry(const json &j, const std::string &where, std::set<std::string> *names,
                 SpawnEntry *out, std::string *error) {
  if (!j.is_object()) return fail(error, where, "an object", j);
  static const std::set<std::string> kKeys{"name",   "program", "args", "env",   "cwd",
                                           "claims", "start",   "user", "group", "children"};
  for (const auto &item : j.items()) {
    if (kKeys.count(item.key()) == 0) {
      *error = where + "." + item.key() + ": unknown field";
      return false;
    }
  }
  out->where = where;
  auto name = j.find("name");
  if (name == j.end() || !name->is_string() || !valid_name(name->get<std::string>())) {
    return fail(error, where + ".name", "1 to 31 characters of [A-Za-z0-9._-]",
                name == j.end() ? json() : *name);
  }
  out->name = name->get<std::string>();
  if (!names->insert(out->name).second) {
    return fail(error, where + ".name", "a name not used before in the file", *name);
  }
  auto program = j.find("program");
  if (program == j.end() || !program->is_string() || program->get<std::string>().empty() ||
      program->get<std::string>()[0] != '/') {
    return fail(error, where + ".program", "an absolute path",
                program == j.end() ? json() : *program);
  }
  out->program.path = program->get<std::string>();
  std::string base = out->program.path.substr(out->program.path.rfind('/') + 1);
  out->program.argv.push_back(base);
  if (auto it = j.find("args"); it != j.end()) {
    if (!strings(*it, where + ".args", &out->program.argv, error)) return false;
  }
  if (auto it = j.find("env"); it != j.end()) {
    if (!strings(*it, where + ".env", &out->program.env, error)) return false;
    for (size_t i = 0; i < out->program.env.size(); ++i) {
      if (out->program.env[i].find('=') == std::string::npos) {
        return fail(error, where + ".env[" + std::to_string(i) + "]", "NAME=value",
                    json(out->program.env[i]));
      }
    }
  }
  if (auto it = j.find("cwd"); it != j.end()) {
    if (!it->is_string()) return fail(error, where + ".cwd", "a string", *it);
    out->program.cwd = it->get<std::string>();
  }
  // Whom it runs as (only root may name another user or group than its own).
  for (auto [key, field] :
       {std::pair{"user", &nucleus::Program::user}, std::pair{"group", &nucleus::Program::group}}) {
    if (auto it = j.find(key); it != j.end()) {
      if (!it->is_string() || it->get<std::string>().empty()) {
        return fail(error, where + "." + key, "a name or a number (as a string)", *it);
      }
      out->program.*field = it->get<std::string>();
    }
  }
  out->claims.buffers = 8;  // enough to answer and send a little
  if (auto it = j.find("claims"); it != j.end()) {
    if (!parse_claims(*it, where + ".claims", &out->claims, error)) return false;
  }
  if (auto it = j.find("start"); it != j.end()) {
    if (!it->is_boolean()) return fail(error, where + ".start", "true or false", *it);
    out->start = it->get<bool>();
  }
  if (auto it = j.find("children"); it != j.end()) {
    if (!it->is_array()) return fail(error, where + ".children", "an array of objects", *it);
    for (size_t i = 0; i < it->size(); ++i) {
      SpawnEntry child;
      if (!parse_entry((*it)[i], where + ".children[" + std::to_string(i) + "]", names, &child,
                       error)) {
        return false;
      }
      out->children.push_back(std::move(child));
    }
  }
  return true;
}

// An entry created, and whose child it is (its parent's name, or `under`).
struct Created {
  const SpawnEntry *entry;
  std::string parent;
};

// One step (create or start) of `e` as `parent`'s child ("": the root's);
// false with the report filled when it fails.
template <typename Step>
bool step(Nucleus &n, const std::string &parent, const SpawnEntry &e, const char *what, Step &&call,
          SpawnReport *report) {
  auto acting = n.act_for(parent);
  int rc = acting ? 0 : acting.error();
  if (rc == 0) {
    auto r = call();
    rc = r ? 0 : r.error();
  }
  if (rc == 0) return true;
  report->failed_where = e.where;
  report->failed_name = e.name;
  report->failed_step = what;
  report->error = rc;
  return false;
}

bool create_all(Nucleus &n, const std::string &parent, const std::vector<SpawnEntry> &entries,
                SpawnReport *report, std::vector<Created> *order) {
  for (const SpawnEntry &e : entries) {
    auto create = [&] { return n.create_process(e.name, e.program, e.claims); };
    if (!step(n, parent, e, "create", create, report)) return false;
    report->created.push_back(e.name);
    order->push_back({&e, parent});
    if (!create_all(n, e.name, e.children, report, order)) return false;
  }
  return true;
}

}  // namespace

bool parse_spawn(const json &doc, std::vector<SpawnEntry> *out, std::string *error) {
  const json *list = &doc;
  std::string where;
  if (doc.is_object()) {
    for (const auto &item : doc.items()) {
      if (item.key() != "processes") {
        *error = item.key() + ": unknown field (the file is {\"processes\": [...]})";
        return false;
      }
    }
    auto it = doc.find("processes");
    if (it == doc.end()) return fail(error, "processes", "an array of processes", json());
    list = &*it;
    where = "processes";
  }
  if (!list->is_array() || list->empty()) {
    return fail(error, where.empty() ? "(top level)" : where, "a non-empty array of processes",
                *list);
  }
  std::set<std::string> names;
  for (size_t i = 0; i < list->size(); ++i) {
    SpawnEntry e;
    if (!parse_entry((*list)[i], where + "[" + std::to_string(i) + "]", &names, &e, error)) {
      return false;
    }
    out->push_back(std::move(e));
  }
  return true;
}

bool spawn_tree(Nucleus &n, const std::string &under, const std::vector<SpawnEntry> &entries,
                SpawnReport *report) {
  std::vector<Created> order;
  bool ok = create_all(n, under, entries, report, &order);
  // Parents first: a child's parent is already running when it starts.
  for (size_t i = 0; ok && i < order.size(); ++i) {
    const SpawnEntry &e = *order[i].entry;
    if (!e.start) continue;
    auto start = [&] { return n.start_process(e.name); };
    ok = step(n, order[i].parent, e, "start", start, report);
    if (ok) report->started.push_back(e.name);
  }
  if (ok) return true;
  // All or nothing: remove the top entries that were created (their
  // subtrees go with them).
  if (n.act_for(under)) {
    for (const Created &c : order) {
      if (c.parent == under) (void)n.remove_process(c.entry->name);
    }
    report->rolled_back = true;
  }
  return false;
}

}  // namespace nucleus::ctl
