#include "spawn.h"

#include <string_view>

namespace nucleus::ctl {

namespace {

using nlohmann::json;

nucleus::Program program_of(const spec::Program &p) {
  return {p.path, p.argv, p.env, p.cwd, p.user, p.group};
}

nucleus::Claims claims_of(const spec::Claims &c) {
  return {c.buffers, c.processes, c.memory_bytes, c.devices, c.data_bytes};
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
    if (rc != 0 && std::string_view(what) == "start") {
      report->start_step = n.last_start_step();
      report->program = program_of(e.program);
    }
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
    auto create = [&] {
      return n.create_process(e.name, program_of(e.program), claims_of(e.claims));
    };
    if (!step(n, parent, e, "create", create, report)) return false;
    report->created.push_back(e.name);
    order->push_back({&e, parent});
    if (!create_all(n, e.name, e.children, report, order)) return false;
  }
  return true;
}

}  // namespace

bool parse_spawn(const json &doc, std::vector<SpawnEntry> *out, std::string *error) {
  try {
    spec::Value list(doc, "");
    if (doc.is_object()) {
      list.only({"processes"}, "the file is {\"processes\": [...]}");
      list = list["processes"];
      if (!list.present()) list.fail("an array of processes");
    }
    if (!list.present() || !list.json().is_array() || list.json().empty()) {
      list.fail("a non-empty array of processes");
    }
    spec::Rules rules;
    rules.default_buffers = 8;  // enough to answer and send a little
    rules.start = true;
    rules.children = true;
    rules.repeated_name = "a name not used before in the file";
    spec::Names names;
    *out = spec::parse_entries(list, rules, &names);
    return true;
  } catch (const spec::Error &e) {
    *error = e.what();
    return false;
  }
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
