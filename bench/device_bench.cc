#include "device_bench.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <unordered_map>

#include <nucleus_internal/sys.h>

namespace nucleus::bench {

namespace {

constexpr uint64_t kBlock = 4096;

}  // namespace

bool make_backing_file(const std::string &path, uint64_t bytes) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  std::vector<uint64_t> chunk((1 << 20) / sizeof(uint64_t));
  std::mt19937_64 rng(42);
  bool ok = true;
  for (uint64_t done = 0; done < bytes && ok; done += chunk.size() * sizeof(uint64_t)) {
    for (uint64_t &w : chunk) w = rng();
    ok = write(fd, chunk.data(), chunk.size() * sizeof(uint64_t)) ==
         static_cast<ssize_t>(chunk.size() * sizeof(uint64_t));
  }
  fsync(fd);
  close(fd);
  return ok;
}

std::vector<uint64_t> random_blocks(uint64_t blocks, int count) {
  std::mt19937_64 rng(7);
  std::vector<uint64_t> out(static_cast<size_t>(count));
  for (uint64_t &b : out) b = rng() % blocks;
  return out;
}

Figure device_rt(const std::string &label, nucleus::Nucleus &n, const std::string &device,
                 const nucleus::Message &message, int iters, int warmup) {
  std::vector<int64_t> lat;
  lat.reserve(static_cast<size_t>(iters));
  int64_t start = 0;
  for (int i = 0; i < iters + warmup; ++i) {
    if (i == warmup) start = sys::monotonic_ns();
    int64_t t0 = sys::monotonic_ns();
    auto b = n.send_message(device, message);
    if (!b) return {label};
    auto a = n.wait_answer(b.value());
    if (!a || a->result != NUCLEUS_RESULT_NORMAL) {
      std::fprintf(stderr, "%s: no normal answer\n", label.c_str());
      return {label};
    }
    if (i >= warmup) lat.push_back(sys::monotonic_ns() - t0);
  }
  return summarize(label, lat, iters, sys::monotonic_ns() - start);
}

Figure disk_read_nucleus(const std::string &label, nucleus::Nucleus &n, const std::string &device,
                         const std::vector<uint64_t> &blocks, int window) {
  struct InFlight {
    int slot;
    int64_t sent;
  };
  std::unordered_map<nucleus::Buffer, InFlight> flight;
  std::vector<int64_t> lat;
  lat.reserve(blocks.size());
  size_t next = 0;
  auto send = [&](int slot) {
    int64_t t0 = sys::monotonic_ns();
    auto b = n.send_message(device, device::disk_read(blocks[next++], 1, slot * kBlock));
    if (!b) return false;
    flight[b.value()] = {slot, t0};
    return true;
  };
  int64_t start = sys::monotonic_ns();
  for (int slot = 0; slot < window && next < blocks.size(); ++slot) {
    if (!send(slot)) return {label};
  }
  while (!flight.empty()) {
    // Whichever answer came first (reads finish out of order).
    nucleus_event_t e{};
    if (nucleus_wait_event(n.c_handle(), 0, -1, &e) < 0) return {label};
    if (nucleus_get_event(n.c_handle(), e.buffer) < 0) return {label};
    auto it = flight.find(e.buffer);
    if (it == flight.end() || e.result != NUCLEUS_RESULT_NORMAL) {
      std::fprintf(stderr, "%s: unexpected answer %d\n", label.c_str(), e.result);
      return {label};
    }
    lat.push_back(sys::monotonic_ns() - it->second.sent);
    int slot = it->second.slot;
    flight.erase(it);
    if (next < blocks.size() && !send(slot)) return {label};
  }
  return summarize(label, lat, static_cast<int64_t>(lat.size()), sys::monotonic_ns() - start);
}

Figure disk_read_pread(const std::string &label, const std::string &path,
                       const std::vector<uint64_t> &blocks, bool direct) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
  if (fd < 0) return {label};
  void *buf = nullptr;
  if (posix_memalign(&buf, kBlock, kBlock) != 0) {
    close(fd);
    return {label};
  }
  std::vector<int64_t> lat;
  lat.reserve(blocks.size());
  int64_t start = sys::monotonic_ns();
  for (uint64_t b : blocks) {
    int64_t t0 = sys::monotonic_ns();
    if (pread(fd, buf, kBlock, static_cast<off_t>(b * kBlock)) != static_cast<ssize_t>(kBlock)) {
      break;
    }
    lat.push_back(sys::monotonic_ns() - t0);
  }
  int64_t elapsed = sys::monotonic_ns() - start;
  std::free(buf);
  close(fd);
  return summarize(label, lat, static_cast<int64_t>(lat.size()), elapsed);
}

}  // namespace nucleus::bench
