// The nucleus's process table: every entry (attached, created, exited,
// devices, a swap's hidden new program) by index and by name.
//
// An index is reused after remove(); its generation tells uses apart, so an
// io_uring completion that names an old use is recognised and dropped.
// Threading: nucleusd's loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "claims.h"
#include "error.h"
#include "pool.h"

namespace nucleus::daemon {

// The program a process runs (validated when staged).
struct Program {
  std::string path;
  std::string cwd;  // empty: nucleusd's
  std::vector<std::string> argv;
  std::vector<std::string> env;
  // The owner its creator named (root-owned creators only); kNone: the
  // creator's owner. What it runs as is always its entry's owner.
  uint32_t uid = kNone;
  uint32_t gid = kNone;
};

// Its program: never run, running (from start to exit), exited.
enum class RunState : uint8_t { kCreated, kRunning, kExited };
// A stop of its subtree asked for by its parent.
enum class StopState : uint8_t { kNone, kStopping, kStopped };
// How it came into the table.
enum class Origin : uint8_t { kSocket, kNucleus, kDevice };

// A child's exit, to be told to its parent (Core::program_exited). The
// child's entry keeps its state, so the notice is built when it is sent.
struct ExitNotice {
  uint32_t child = kNone;
  uint32_t generation = 0;
  wire::ExitKind kind = wire::ExitKind::kNone;
  int32_t value = 0;
};

struct Process {
  bool live = false;
  uint32_t generation = 0;
  std::string name;
  char wire_name[wire::kNameBytes] = {};  // the name NUL-padded, as events carry it
  std::vector<uint32_t> slots;            // the buffers of its claim
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

  // The tree. parent kNone: a child of the root (the nucleus itself).
  uint32_t parent = kNone;
  std::vector<uint32_t> children;  // in creation order
  Origin origin = Origin::kSocket;
  // Its owner (DESIGN.md, "Principals"): who attached it (socket origin),
  // else whose principal created it, or the user its creator named. Its
  // program runs as this uid and gid, and files it names are opened so.
  uint32_t uid = 0;
  // Given by its parent (buffers = slots held + lent); lent to its children
  // (processes: 1 per child on top) and its devices (1 each).
  ClaimsAccount account;
  RunState run = RunState::kCreated;
  StopState stop = StopState::kNone;
  uint32_t stop_buffer = kNone;  // the parent's stop, answered when stopped
  bool attached = false;         // a channel is live
  bool slots_changed = false;    // its slot table needs writing
  Program program;
  int32_t pid = 0;
  wire::ExitKind exit_kind = wire::ExitKind::kNone;
  int32_t exit_value = 0;
  uint32_t gid = 0;  // with uid: its owner

  // Exit notices of its children: out (sent, not answered) at most the
  // parent's limit; the rest wait here, in exit order, for an answer, a free
  // notice buffer or its next run (Notices::pump).
  uint32_t notices_out = 0;
  std::deque<ExitNotice> notices_waiting;
  bool notice_starved = false;  // in Notices::starved_: waits for a notice buffer

  // External processes. A device's parent is the process that named it
  // (kNone: the configuration); it is in that process's `devices`, not in
  // its children.
  std::vector<uint32_t> devices;   // the devices this process named
  wire::DeviceKind device_kind{};  // a device: its kind; else 0
  uint32_t reserver = kNone;       // a device: the process that reserved it
  bool is_device() const { return origin == Origin::kDevice; }

  // Hot swap (CoreSwaps, docs/hot-swap.md).
  bool hidden = false;               // not in the name space: a swap's new program
  uint32_t swap_buffer = kNone;      // its parent's swap request, answered when done or not
  uint32_t swap_candidate = kNone;   // the hidden entry of the new program
  uint32_t swap_of = kNone;          // a hidden entry: the process it is to take over
  uint32_t handover_buffer = kNone;  // the nucleus's handover message to it
  bool handed_over = false;          // it answered the handover: its requests wait
};

// Lets by_name_ be searched with a string_view, without building a string.
struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class ProcessTable {
 public:
  // Grows the table now if the next add would: until then, entries (and
  // references to them) stay where they are.
  void make_room();
  // Whether add(name) would take it: kInvalid (not a name), kNameTaken (a
  // live entry, or the nucleus's own name) or kNone. Asked before anything
  // is lent for a new entry, so that a taken name is never reported as a
  // claim used up.
  Error may_add(std::string_view name) const;
  // Adds a process under a valid, unused name (may_add). Entries may move
  // unless make_room came first.
  Result<uint32_t> add(std::string_view name);
  // Adds an entry that find() never returns (the new program of a swap,
  // which bears no name until it takes over); `name` is for logs.
  uint32_t add_hidden(std::string_view name);
  void remove(uint32_t id);

  // The live process with that name, or kNone.
  uint32_t find(std::string_view name) const;
  Process &at(uint32_t id) { return processes_[id]; }
  const Process &at(uint32_t id) const { return processes_[id]; }
  bool live(uint32_t id) const { return id < processes_.size() && processes_[id].live; }
  uint32_t count() const { return count_; }
  uint32_t capacity() const { return static_cast<uint32_t>(processes_.size()); }

 private:
  uint32_t add_entry(std::string_view name);

  std::vector<Process> processes_;
  std::vector<uint32_t> free_ids_;
  std::unordered_map<std::string, uint32_t, NameHash, std::equal_to<>> by_name_;
  uint32_t count_ = 0;
};

}  // namespace nucleus::daemon
