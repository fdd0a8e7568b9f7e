#include "kernel_bench.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include <nucleus_internal/sys.h>

#include "measure.h"

namespace nucleus::bench {

namespace {

constexpr size_t kMessageBytes = 64;

// One page of memory shared with the children forked after it.
class SharedPage {
 public:
  static constexpr size_t kBytes = 4096;
  SharedPage()
      : mem_(mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)) {}
  ~SharedPage() {
    if (ok()) munmap(mem_, kBytes);
  }
  SharedPage(const SharedPage &) = delete;
  SharedPage &operator=(const SharedPage &) = delete;

  bool ok() const { return mem_ != MAP_FAILED; }
  template <typename T>
  T *make(size_t offset) {
    static_assert(sizeof(T) <= kBytes);
    return new (static_cast<char *>(mem_) + offset) T();
  }

 private:
  void *mem_;
};

// A counter in shared memory that one process advances by one and another
// waits on: the writer stores the next value and wakes, the reader sleeps
// until it sees it.
void post(std::atomic<uint32_t> *word, uint32_t value) {
  word->store(value, std::memory_order_release);  // pairs with the acquire in wait_for
  sys::futex_wake(word, 1);
}

void wait_for(std::atomic<uint32_t> *word, uint32_t value) {
  // The word is value - 1 until the post (it only moves by one).
  while (word->load(std::memory_order_acquire) != value) sys::futex_wait(word, value - 1, -1);
}

Figure placed(Figure f, const Placing &at) {
  f.placement = at.placement;
  return f;
}

void finish(pid_t child, const Figure &f) {
  // A round trip that failed leaves the child waiting for the next one.
  if (f.ops_per_s <= 0) kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
}

// Round trips of 64-byte records over a pair of fds (pipes or a socketpair).
Figure fd_rt(const std::string &name, const Placing &at, int a_write, int a_read, int b_write,
             int b_read, int iters, int warmup) {
  int total = iters + warmup;
  pid_t child = fork_child(
      [&]() {
        char buf[kMessageBytes];
        for (int i = 0; i < total; ++i) {
          if (read(b_read, buf, sizeof(buf)) != sizeof(buf)) return 1;
          if (write(b_write, buf, sizeof(buf)) != sizeof(buf)) return 1;
        }
        return 0;
      },
      at.cpu(1));
  Figure f;
  {
    ScopedPin pin(at.cpu(0));
    char buf[kMessageBytes] = {};
    f = round_trips(at.name(name), iters, warmup, [&](uint32_t) {
      return write(a_write, buf, sizeof(buf)) == sizeof(buf) &&
             read(a_read, buf, sizeof(buf)) == sizeof(buf);
    });
  }
  finish(child, f);
  return placed(f, at);
}

// ---- the relay ----------------------------------------------------------------

// One 64-byte message and the sequence number that publishes it: the writer
// fills `bytes`, then stores `seq` (release); the reader sees `seq` (acquire),
// then copies `bytes`. One message is in flight at a time, so a slot is never
// written while it is read.
struct alignas(64) Slot {
  std::atomic<uint32_t> seq{0};
  char bytes[kMessageBytes] = {};
};

struct RelayShm {
  // The relay sleeps on its bell; the client and the receiver ring it after
  // publishing into their slot.
  alignas(64) std::atomic<uint32_t> bell{0};
  Slot request;  // client -> relay
  Slot forward;  // relay -> receiver
  Slot answer;   // receiver -> relay
  Slot reply;    // relay -> client
};

void publish(Slot &slot, uint32_t seq, const char *message) {
  std::memcpy(slot.bytes, message, kMessageBytes);
  slot.seq.store(seq, std::memory_order_release);  // pairs with the relay's acquire of seq
}

void ring(std::atomic<uint32_t> *bell) {
  // Release: if the relay's acquire load of the bell sees this increment, it
  // sees the slot published before it too; if it loaded the bell before,
  // its futex_wait on the old value returns at once.
  bell->fetch_add(1, std::memory_order_release);
  sys::futex_wake(bell, 1);
}

void take(Slot &slot, uint32_t seq, char *message) {
  wait_for(&slot.seq, seq);
  std::memcpy(message, slot.bytes, kMessageBytes);
}

int run_relay(RelayShm &shm, uint32_t total) {
  uint32_t requests = 0;
  uint32_t answers = 0;
  while (answers < total) {
    uint32_t bell = shm.bell.load(std::memory_order_acquire);  // pairs with ring()
    bool moved = false;
    if (shm.request.seq.load(std::memory_order_acquire) != requests) {
      std::memcpy(shm.forward.bytes, shm.request.bytes, kMessageBytes);
      post(&shm.forward.seq, ++requests);
      moved = true;
    }
    if (shm.answer.seq.load(std::memory_order_acquire) != answers) {
      std::memcpy(shm.reply.bytes, shm.answer.bytes, kMessageBytes);
      post(&shm.reply.seq, ++answers);
      moved = true;
    }
    if (!moved) sys::futex_wait(&shm.bell, bell, -1);
  }
  return 0;
}

int run_receiver(RelayShm &shm, uint32_t total) {
  char message[kMessageBytes];
  for (uint32_t i = 1; i <= total; ++i) {
    take(shm.forward, i, message);
    publish(shm.answer, i, message);
    ring(&shm.bell);
  }
  return 0;
}

}  // namespace

Figure futex_rt(const Placing &at, int iters, int warmup) {
  SharedPage page;
  if (!page.ok()) return placed(Figure{at.name("futex_rt")}, at);
  auto *ping = page.make<std::atomic<uint32_t>>(0);
  auto *pong = page.make<std::atomic<uint32_t>>(64);
  auto total = static_cast<uint32_t>(iters + warmup);
  pid_t child = fork_child(
      [&]() {
        for (uint32_t i = 1; i <= total; ++i) {
          wait_for(ping, i);
          post(pong, i);
        }
        return 0;
      },
      at.cpu(1));
  Figure f;
  {
    ScopedPin pin(at.cpu(0));
    f = round_trips(at.name("futex_rt"), iters, warmup, [&](uint32_t i) {
      post(ping, i);
      wait_for(pong, i);
      return true;
    });
  }
  finish(child, f);
  return placed(f, at);
}

Figure pipe_rt(const Placing &at, int iters, int warmup) {
  int to_child[2];
  int to_parent[2];
  if (pipe(to_child) < 0) return placed(Figure{at.name("pipe_rt")}, at);
  if (pipe(to_parent) < 0) {
    close(to_child[0]);
    close(to_child[1]);
    return placed(Figure{at.name("pipe_rt")}, at);
  }
  Figure f =
      fd_rt("pipe_rt", at, to_child[1], to_parent[0], to_parent[1], to_child[0], iters, warmup);
  for (int fd : {to_child[0], to_child[1], to_parent[0], to_parent[1]}) close(fd);
  return f;
}

Figure uds_rt(const Placing &at, int iters, int warmup) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0) return placed(Figure{at.name("uds_rt")}, at);
  Figure f = fd_rt("uds_rt", at, sv[0], sv[0], sv[1], sv[1], iters, warmup);
  close(sv[0]);
  close(sv[1]);
  return f;
}

Figure uds_pipelined(const Placing &at, int total, int window) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0) {
    return placed(Figure{at.name("uds_pipelined")}, at);
  }
  pid_t child = fork_child(
      [&]() {
        char buf[kMessageBytes];
        for (int i = 0; i < total; ++i) {
          if (read(sv[1], buf, sizeof(buf)) != sizeof(buf)) return 1;
          if (write(sv[1], buf, sizeof(buf)) != sizeof(buf)) return 1;
        }
        return 0;
      },
      at.cpu(1));
  Figure f;
  {
    ScopedPin pin(at.cpu(0));
    f = pipelined(
        at.name("uds_pipelined"), total, window,
        [&](int id) {
          char buf[kMessageBytes] = {};
          std::memcpy(buf, &id, sizeof(id));
          (void)!write(sv[0], buf, sizeof(buf));
        },
        [&]() {
          char buf[kMessageBytes];
          if (read(sv[0], buf, sizeof(buf)) != sizeof(buf)) return -1;
          int id = 0;
          std::memcpy(&id, buf, sizeof(id));
          return id;
        });
  }
  finish(child, f);
  close(sv[0]);
  close(sv[1]);
  return placed(f, at);
}

Figure relay_rt(const Placing &at, int iters, int warmup) {
  SharedPage page;
  if (!page.ok()) return placed(Figure{at.name("relay_rt")}, at);
  RelayShm &shm = *page.make<RelayShm>(0);
  auto total = static_cast<uint32_t>(iters + warmup);
  pid_t relay = fork_child([&]() { return run_relay(shm, total); }, at.cpu(1));
  pid_t receiver = fork_child([&]() { return run_receiver(shm, total); }, at.cpu(2));
  Figure f;
  {
    ScopedPin pin(at.cpu(0));
    char message[kMessageBytes] = {};
    f = round_trips(at.name("relay_rt"), iters, warmup, [&](uint32_t i) {
      std::memcpy(message, &i, sizeof(i));
      publish(shm.request, i, message);
      ring(&shm.bell);
      take(shm.reply, i, message);
      uint32_t back = 0;
      std::memcpy(&back, message, sizeof(back));
      return back == i;
    });
  }
  finish(relay, f);
  finish(receiver, f);
  return placed(f, at);
}

std::vector<Figure> kernel_baselines(const BaselineSizes &sizes) {
  std::vector<int> cpus = allowed_cpus();
  std::vector<Placing> placings{{Placement::kUnpinned, cpus}};
  if (cpus.empty() || !ScopedPin(cpus[0]).ok()) {
    std::printf("placements: cannot pin on this machine; kernel baselines unpinned only\n");
  } else {
    placings.push_back({Placement::kSameCpu, cpus});
    if (cpus.size() >= 2) {
      placings.push_back({Placement::kTwoCpus, cpus});
    } else {
      std::printf("placements: one CPU allowed (%d); no two_cpus figures\n", cpus[0]);
    }
  }
  std::vector<Figure> figs;
  figs.reserve(5 * placings.size());
  for (const Placing &at : placings) figs.push_back(futex_rt(at, sizes.iters, sizes.warmup));
  for (const Placing &at : placings) figs.push_back(pipe_rt(at, sizes.iters, sizes.warmup));
  for (const Placing &at : placings) figs.push_back(uds_rt(at, sizes.iters, sizes.warmup));
  for (const Placing &at : placings) figs.push_back(relay_rt(at, sizes.iters, sizes.warmup));
  for (const Placing &at : placings) figs.push_back(uds_pipelined(at, sizes.piped, sizes.window));
  return figs;
}

}  // namespace nucleus::bench
