// Fuzzes the decode layer and the core with sequences of requests from four
// processes that attach, send, take, answer, release, die and come back. After
// every step the pool's accounting must hold; after all of them die every
// buffer must be back.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core.h"
#include "dispatch.h"

namespace {

using nucleus::daemon::BufferState;
using nucleus::daemon::Core;
using nucleus::daemon::kNone;
namespace wire = nucleus::wire;

constexpr uint32_t kPool = 64;
constexpr uint32_t kClaim = 8;
constexpr int kProcs = 4;
const char *const kNames[] = {"p0", "p1", "p2", "p3", "nobody"};

void check(bool ok) {
  if (!ok) std::abort();
}

void check_invariants(const Core &core) {
  uint32_t unowned_free = 0;
  for (uint32_t i = 0; i < core.pool().size(); ++i) {
    const auto &b = core.pool().at(i);
    if (b.owner == kNone) {
      if (b.state == BufferState::kFree)
        ++unowned_free;
      else
        check(b.sender_gone);  // in use and owned by nobody: an orphan
    } else {
      check(core.processes().live(b.owner));
    }
  }
  check(unowned_free == core.pool().free_count());
}

class Input {
 public:
  Input(const uint8_t *data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  void bytes(void *out, size_t n) {
    size_t take = std::min(n, size_ - std::min(pos_, size_));
    std::memcpy(out, data_ + pos_, take);
    pos_ += take;
  }

 private:
  const uint8_t *data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Core core(kPool);
  uint32_t ids[kProcs];
  for (int i = 0; i < kProcs; ++i) ids[i] = core.attach(kNames[i], kClaim).value();
  std::vector<uint64_t> seen;  // handles that were really in use, to reach deep states
  Input in(data, size);
  while (!in.empty()) {
    uint8_t op = in.byte();
    int p = op % kProcs;
    uint32_t id = ids[p];
    bool live = id != kNone && core.processes().live(id);
    switch ((op >> 2) % 8) {
      case 6:
        if (live) core.detach(id), ids[p] = kNone;
        break;
      case 7:
        if (!live) {
          auto r = core.attach(kNames[p], kClaim);
          ids[p] = r.ok() ? r.value() : kNone;
        }
        break;
      case 5: {
        if (!live) break;
        wire::Event e;
        while (core.next_event(id, &e)) {
          seen.push_back(e.handle);
          core.pop_event(id);
        }
        break;
      }
      default: {
        if (!live) break;
        wire::Request r{};
        uint8_t shape = in.byte();
        in.bytes(&r, (shape & 16) ? sizeof(r) : 8);
        if (shape & 1) r.op = (shape >> 5) % wire::kOpCount;
        if ((shape & 2) && !seen.empty()) r.handle = seen[in.byte() % seen.size()];
        if (shape & 4) {
          const auto &slots = core.processes().at(id).slots;
          if (!slots.empty()) {
            r.handle = wire::next_handle(core.pool().handle(slots[in.byte() % slots.size()]));
          }
        }
        if (shape & 8) {
          std::strcpy(r.name, kNames[in.byte() % 5]);
          r.arg = 1 + in.byte() % 4;
        }
        wire::Event reply;
        nucleus::daemon::dispatch_request(core, id, r, &reply);
        break;
      }
    }
    check_invariants(core);
  }
  for (uint32_t id : ids) {
    if (id != kNone) core.detach(id);
  }
  check(core.pool().free_count() == kPool);
  check(core.processes().count() == 0);
  return 0;
}
