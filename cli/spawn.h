// `nucleusctl spawn -f tree.json`: a whole tree of processes described in
// JSON (docs/nucleusctl.md), created and started in one command, all or
// nothing.
#pragma once

#include <nucleus/nucleus.hpp>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "program_spec.h"

namespace nucleus::ctl {

// An entry of the file: the shape boot entries and supervisor specs share
// (common/program_spec.h), with its JSON path in `where` and its children.
using SpawnEntry = spec::Entry;

// Checks the whole file before anything is created: false with a message
// naming the JSON path, the value and what is allowed.
bool parse_spawn(const nlohmann::json &doc, std::vector<SpawnEntry> *out, std::string *error);

// What spawn did: the processes created (names, in order) and, on failure,
// the entry that failed and why.
struct SpawnReport {
  std::vector<std::string> created;
  std::vector<std::string> started;
  std::string failed_where;
  std::string failed_name;
  std::string failed_step;  // "create" or "start"
  int error = 0;            // -errno
  // A start that failed on the way to its program: the step
  // (NUCLEUS_START_STEP_*; NONE: refused) and the program it was to run.
  int start_step = NUCLEUS_START_STEP_NONE;
  Program program;
  bool rolled_back = false;
};

// Creates every entry under `under` ("" : the root), parents before
// children, then starts those marked start, in the same order. On any
// failure removes what it created (removing the top entries ends their
// subtrees) and returns false. `n` acts for others with act_for.
bool spawn_tree(Nucleus &n, const std::string &under, const std::vector<SpawnEntry> &entries,
                SpawnReport *report);

}  // namespace nucleus::ctl
