#include "channel.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <functional>

namespace nucleus::daemon {

Result<std::shared_ptr<Channel>> Channel::create(const std::string &name, const ChannelSizes &sizes,
                                                 wire::Doorbell doorbell,
                                                 const std::vector<SlotEntry> &slots) {
  uint32_t slot_count = wire::kMaxBufferClaim;
  wire::Layout layout = wire::compute_layout(slot_count, sizes.request_entries, sizes.event_entries,
                                             sizes.data_bytes);
  std::string memfd_name = "nucleus:" + name;
  sys::UniqueFd fd(memfd_create(memfd_name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return Error::kNoMemory;
  // memfds are born 0777: only the descriptor nucleusd hands over may reach
  // this channel, never a path such as /proc/<pid>/fd/N opened by another.
  if (fchmod(fd.get(), 0600) < 0) return Error::kNoMemory;
  if (ftruncate(fd.get(), static_cast<off_t>(layout.channel_bytes)) < 0) return Error::kNoMemory;
  // The process gets this fd: it must not be able to shrink the file under
  // our mapping (SIGBUS) or grow it.
  if (fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
    return Error::kNoMemory;
  }
  void *base = mmap(nullptr, layout.channel_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (base == MAP_FAILED) return Error::kNoMemory;

  auto ch = std::shared_ptr<Channel>(new Channel());
  ch->memfd_ = std::move(fd);
  ch->base_ = static_cast<uint8_t *>(base);
  ch->bytes_ = layout.channel_bytes;
  ch->header_ = new (base) wire::ChannelHeader{};
  ch->requests_ = reinterpret_cast<wire::Request *>(ch->base_ + layout.requests_offset);
  ch->events_ = reinterpret_cast<wire::Event *>(ch->base_ + layout.events_offset);
  ch->request_entries_ = sizes.request_entries;
  ch->event_entries_ = sizes.event_entries;
  ch->data_ = ch->base_ + layout.data_offset;
  ch->data_offset_ = layout.data_offset;
  ch->data_bytes_ = sizes.data_bytes;

  wire::ChannelHeader &h = *ch->header_;
  h.magic = wire::kMagic;
  h.abi_version = wire::kAbiVersion;
  h.doorbell = static_cast<uint32_t>(doorbell);
  h.request_entries = sizes.request_entries;
  h.event_entries = sizes.event_entries;
  h.slot_count = slot_count;
  h.channel_bytes = layout.channel_bytes;
  h.slots_offset = layout.slots_offset;
  h.requests_offset = layout.requests_offset;
  h.events_offset = layout.events_offset;
  h.data_offset = layout.data_offset;
  h.data_bytes = sizes.data_bytes;
  h.daemon_armed.store(1, std::memory_order_relaxed);
  h.state.store(static_cast<uint32_t>(wire::ChannelState::kAttached), std::memory_order_relaxed);
  ch->slots_ = reinterpret_cast<uint64_t *>(ch->base_ + layout.slots_offset);
  ch->sync_slots(slots);
  return ch;
}

Channel::~Channel() {
  if (base_ != nullptr) munmap(base_, bytes_);
}

int64_t Channel::pending_requests() {
  // Acquire pairs with the process's release store of requests_tail: the
  // entries below it are written.
  uint32_t tail = header_->requests_tail.load(std::memory_order_acquire);
  uint32_t count = tail - request_head_;
  if (count > request_entries_) return -1;
  return count;
}

wire::Request Channel::take_request() {
  // The one copy out of shared memory; the caller validates the copy.
  wire::Request r;
  std::memcpy(&r, &requests_[request_head_ & (request_entries_ - 1)], sizeof(r));
  ++request_head_;
  return r;
}

void Channel::commit_requests() {
  // Release pairs with the process's acquire load of requests_head: we copied
  // the entries out before it may overwrite them.
  header_->requests_head.store(request_head_, std::memory_order_release);
}

int64_t Channel::event_space() {
  // Acquire pairs with the process's release store of events_head: it is done
  // reading the entries below it.
  uint32_t head = header_->events_head.load(std::memory_order_acquire);
  // A valid head lies between the last one we accepted and our tail.
  if (head - event_head_seen_ > event_tail_ - event_head_seen_) return -1;
  event_head_seen_ = head;
  return event_entries_ - (event_tail_ - head);
}

void Channel::push_event(const wire::Event &event) {
  std::memcpy(&events_[event_tail_ & (event_entries_ - 1)], &event, sizeof(event));
  ++event_tail_;
}

void Channel::commit_events() {
  // Release pairs with the process's acquire load of events_tail.
  header_->events_tail.store(event_tail_, std::memory_order_release);
}

void Channel::set_armed(bool armed) {
  header_->daemon_armed.store(armed ? 1 : 0, std::memory_order_relaxed);
  // Pairs with the fence in the process's ring_doorbell(): after this, either
  // we see its new tail or it sees daemon_armed and rings.
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

void Channel::set_backlog(bool backlog) {
  backlog_ = backlog;
  header_->backlog.store(backlog ? 1 : 0, std::memory_order_relaxed);
  // Pairs with the fence after the process stores events_head in drain().
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

uint32_t Channel::process_waiting() {
  // Pairs with the fence in the process's wait_progress(): either it sees the
  // tail we just stored, or we see process_waiting and wake it.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return header_->process_waiting.load(std::memory_order_relaxed);
}

void Channel::wake_process() {
  sys::futex_wake(&header_->events_tail, INT32_MAX);
}

void Channel::sync_slots(const std::vector<SlotEntry> &visible) {
  bool changed = false;
  std::unordered_map<uint32_t, uint32_t> keep;
  keep.reserve(visible.size());
  for (const SlotEntry &e : visible) {
    auto it = positions_.find(e.index);
    if (it != positions_.end()) {
      keep.emplace(e.index, it->second);
      positions_.erase(it);
    }
  }
  // What is left was taken away.
  for (const auto &[index, position] : positions_) {
    __atomic_store_n(&slots_[position], uint64_t{0}, __ATOMIC_RELEASE);
    free_positions_.push_back(position);
    changed = true;
  }
  positions_.swap(keep);
  std::sort(free_positions_.begin(), free_positions_.end(), std::greater<>());
  for (const SlotEntry &e : visible) {
    if (positions_.count(e.index) != 0) continue;
    uint32_t position = slot_high_;
    if (!free_positions_.empty()) {
      position = free_positions_.back();
      free_positions_.pop_back();
    } else {
      ++slot_high_;
    }
    positions_.emplace(e.index, position);
    // Release pairs with the process's acquire load when it rescans.
    __atomic_store_n(&slots_[position], e.handle, __ATOMIC_RELEASE);
    changed = true;
  }
  if (!changed) return;
  header_->slot_high.store(slot_high_, std::memory_order_release);
  // Release pairs with the process's acquire load of slots_version: every
  // entry above is written before the version that announces it.
  header_->slots_version.store(++slots_version_, std::memory_order_release);
}

void Channel::close(wire::ChannelState state) {
  header_->state.store(static_cast<uint32_t>(state), std::memory_order_seq_cst);
  // A kClosed event moves events_tail, so a process about to sleep on the
  // old value does not; if the ring is full the process is not asleep.
  if (event_space() > 0) {
    wire::Event e{};
    e.kind = static_cast<uint32_t>(wire::EventKind::kClosed);
    push_event(e);
    commit_events();
  }
  wake_process();
}

void Channel::write_data(uint64_t offset, const uint8_t *from, uint64_t length) {
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = pwrite(memfd_.get(), from + done, length - done,
                       static_cast<off_t>(data_offset_ + offset + done));
    if (n <= 0) break;
    done += static_cast<uint64_t>(n);
  }
  if (done < length) std::memcpy(data_ + offset + done, from + done, length - done);
}

}  // namespace nucleus::daemon
