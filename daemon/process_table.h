// The nucleus's process table: attached processes by index and by name.
//
// An index is reused after remove(); its generation tells uses apart, so an
// io_uring completion that names an old use is recognised and dropped.
// Threading: nucleusd's single thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "error.h"
#include "pool.h"

namespace nucleus::daemon {

struct Process {
  bool live = false;
  uint32_t generation = 0;
  std::string name;
  std::vector<uint32_t> slots;  // the buffers of its claim
  // Inbox: messages queued to it or received by it and not yet answered, in
  // arrival order (linked through Buffer::inbox_*).
  uint32_t inbox_head = kNone;
  uint32_t inbox_tail = kNone;
  uint32_t inbox_count = 0;
  // Events (messages to it, answers to it) not yet written to its event
  // ring, in queue order (linked through Buffer::fifo_next).
  uint32_t fifo_head = kNone;
  uint32_t fifo_tail = kNone;
  bool dirty = false;  // fifo has entries the server has not tried to publish
  uint64_t protocol_errors = 0;
};

// Lets by_name_ be searched with a string_view, without building a string.
struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class ProcessTable {
 public:
  // Adds a process under a valid, unused name.
  Result<uint32_t> add(std::string_view name);
  void remove(uint32_t id);

  // The live process with that name, or kNone.
  uint32_t find(std::string_view name) const;
  Process &at(uint32_t id) { return processes_[id]; }
  const Process &at(uint32_t id) const { return processes_[id]; }
  bool live(uint32_t id) const { return id < processes_.size() && processes_[id].live; }
  uint32_t count() const { return count_; }
  uint32_t capacity() const { return static_cast<uint32_t>(processes_.size()); }

 private:
  std::vector<Process> processes_;
  std::vector<uint32_t> free_ids_;
  std::unordered_map<std::string, uint32_t, NameHash, std::equal_to<>> by_name_;
  uint32_t count_ = 0;
};

}  // namespace nucleus::daemon
