#include "pool.h"

#include <cassert>

namespace nucleus::daemon {

Pool::Pool(uint32_t size) : buffers_(size) {
  free_.reserve(size);
  for (uint32_t i = size; i > 0; --i) free_.push_back(i - 1);
}

bool Pool::take(uint32_t count, uint32_t owner, std::vector<uint32_t> *out) {
  if (count > free_.size()) return false;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t index = free_.back();
    free_.pop_back();
    Buffer &b = buffers_[index];
    assert(b.state == BufferState::kFree && b.owner == kNone);
    b.owner = owner;
    b.sender_gone = false;
    out->push_back(index);
  }
  return true;
}

void Pool::give_back(uint32_t index) {
  Buffer &b = buffers_[index];
  assert(b.state == BufferState::kFree);
  b.owner = kNone;
  b.receiver = kNone;
  b.sender_gone = false;
  b.published = false;
  b.in_fifo = false;
  b.fifo_next = kNone;
  free_.push_back(index);
}

std::optional<uint32_t> Pool::resolve(uint64_t handle) const {
  uint32_t index = wire::handle_index(handle);
  if (index >= buffers_.size()) return std::nullopt;
  if (handle == 0 || wire::handle_generation(handle) != buffers_[index].generation) {
    return std::nullopt;
  }
  return index;
}

std::optional<uint32_t> Pool::resolve_next(uint64_t handle) const {
  uint32_t index = wire::handle_index(handle);
  if (index >= buffers_.size()) return std::nullopt;
  if (handle != wire::next_handle(this->handle(index))) return std::nullopt;
  return index;
}

bool Pool::apply(uint32_t index, BufferEvent event) {
  Buffer &b = buffers_[index];
  auto next = buffer_transition(b.state, event);
  if (!next) return false;
  bool was_free = b.state == BufferState::kFree;
  bool is_free = *next == BufferState::kFree;
  if (was_free && !is_free) ++in_use_;
  if (!was_free && is_free) --in_use_;
  b.state = *next;
  return true;
}

}  // namespace nucleus::daemon
