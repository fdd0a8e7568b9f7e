#include "process_table.h"

#include <algorithm>
#include <cstring>

#include <nucleus/wire.h>

namespace nucleus::daemon {

Error ProcessTable::may_add(std::string_view name) const {
  if (name.empty() || name.size() > wire::kMaxNameLength) return Error::kInvalid;
  for (char c : name) {
    if (!wire::is_name_char(c)) return Error::kInvalid;
  }
  if (name == wire::kNucleusName || by_name_.find(name) != by_name_.end()) {
    return Error::kNameTaken;
  }
  return Error::kNone;
}

Result<uint32_t> ProcessTable::add(std::string_view name) {
  if (Error e = may_add(name); e != Error::kNone) return e;
  uint32_t id = add_entry(name);
  by_name_.emplace(processes_[id].name, id);
  return id;
}

void ProcessTable::make_room() {
  if (free_ids_.empty() && processes_.size() == processes_.capacity()) {
    processes_.reserve(processes_.empty() ? 16 : processes_.size() * 2);
  }
}

uint32_t ProcessTable::add_hidden(std::string_view name) {
  uint32_t id = add_entry(name);
  processes_[id].hidden = true;
  return id;
}

uint32_t ProcessTable::add_entry(std::string_view name_view) {
  // Copied first: the view may point into an entry of this table (a swap's
  // hidden entry takes the name of the OS), which growing it would move.
  std::string name(name_view);
  uint32_t id = 0;
  if (!free_ids_.empty()) {
    id = free_ids_.back();
    free_ids_.pop_back();
  } else {
    id = static_cast<uint32_t>(processes_.size());
    processes_.emplace_back();
  }
  Process &p = processes_[id];
  uint32_t generation = p.generation + 1;
  p = Process{};
  p.live = true;
  p.generation = generation;
  p.name = std::move(name);
  // NUL-padded: an event copies all 32 bytes, a fixed-size copy (a name is
  // at most 31 bytes, checked by whoever adds it).
  std::memcpy(p.wire_name, p.name.data(), std::min(p.name.size(), wire::kMaxNameLength));
  ++count_;
  return id;
}

void ProcessTable::remove(uint32_t id) {
  Process &p = processes_[id];
  if (!p.live) return;
  if (!p.hidden) by_name_.erase(p.name);
  uint32_t generation = p.generation;
  p = Process{};
  p.generation = generation;
  free_ids_.push_back(id);
  --count_;
}

uint32_t ProcessTable::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? kNone : it->second;
}

}  // namespace nucleus::daemon
