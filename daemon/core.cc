#include "core.h"

namespace nucleus::daemon {

Core::Core(uint32_t pool_buffers, uint32_t notice_buffers, uint64_t root_processes)
    : pool_(pool_buffers),
      trace_(pool_),
      messages_(pool_, processes_, trace_, *this),
      notices_(pool_, processes_, messages_, trace_, notice_buffers),
      devices_(pool_, processes_, messages_),
      tree_(pool_, processes_, messages_, notices_, devices_, *this, root_processes),
      swaps_(pool_, processes_, messages_, notices_, tree_) {}

void Core::nucleus_buffer_answered(uint32_t index) {
  swaps_.handover_answered(index);
  notices_.answered(index);
}

void Core::entry_leaving(uint32_t id) {
  swaps_.leaving(id);
}

}  // namespace nucleus::daemon
