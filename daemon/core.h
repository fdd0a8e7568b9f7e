// The nucleus's rules without I/O: the pool, the queues and the process
// table, and the six message primitives on them. The server decodes requests
// from channels and calls these; tests call them directly.
//
// Every method takes the calling process's id and arguments already copied
// out of its channel; it checks them (roles, states, generations) and either
// changes nothing and returns an Error, or applies one transition of the
// buffer state table. Events for a process (a message to it, an answer to
// it) go into that process's fifo; the server publishes them to its event
// ring (next_event / pop_event) for the processes in dirty().
//
// Threading: nucleusd's single thread only.
#pragma once

#include <nucleus/wire.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "error.h"
#include "pool.h"
#include "process_table.h"

namespace nucleus::daemon {

struct ProcessStats {
  uint32_t claim_buffers = 0;
  uint32_t claim_used = 0;
  uint32_t queue_length = 0;
};

class Core {
 public:
  explicit Core(uint32_t pool_buffers) : pool_(pool_buffers) {}

  // A new process holding `claim_buffers` buffers of the pool.
  Result<uint32_t> attach(std::string_view name, uint32_t claim_buffers);
  // Ends a process: messages queued to it or received by it get dummy
  // answers; its buffers out are freed when answered; its claim and name are
  // freed.
  void detach(uint32_t id);

  Error send_message(uint32_t id, uint64_t handle, std::string_view receiver,
                     const wire::Message &message);
  Error get_event(uint32_t id, uint64_t handle);
  Error send_answer(uint32_t id, uint64_t handle, int32_t result, const wire::Message &answer);
  Error release_answer(uint32_t id, uint64_t handle);

  // The first event waiting to be published to `id`, as an event record.
  bool next_event(uint32_t id, wire::Event *out) const;
  void pop_event(uint32_t id);
  // Processes whose fifo got entries since the last call (cleared by it).
  std::vector<uint32_t> &dirty() { return dirty_; }

  ProcessStats stats(uint32_t id) const;
  const Pool &pool() const { return pool_; }
  ProcessTable &processes() { return processes_; }
  const ProcessTable &processes() const { return processes_; }

 private:
  void inbox_append(Process &p, uint32_t index);
  void inbox_remove(Process &p, uint32_t index);
  void fifo_push(uint32_t id, uint32_t index);
  // After an answer (or dummy answer): to the sender, or freed if it is gone.
  void deliver_answer(uint32_t index);

  Pool pool_;
  ProcessTable processes_;
  std::vector<uint32_t> dirty_;
};

}  // namespace nucleus::daemon
