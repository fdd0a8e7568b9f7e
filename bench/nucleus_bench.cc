// nucleus-bench: message round trips through nucleusd against the kernel's
// own IPC, all in one run on one machine, so that the ratios mean something
// on a shared, noisy host. Prints a table, then one JSON object per line.
//
//   nucleus-bench [--quick] [--nucleusd PATH]
//
// Never fails on a timing: the targets are printed with the ratios.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nucleus/nucleus.hpp>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "../client-lib/src/sys.h"
#include "../tests/support/daemon_process.h"
#include "device_bench.h"
#include "figure.h"
#include "spawn_bench.h"
#include "swap_bench.h"

namespace {

using nucleus::bench::disk_read_nucleus;
using nucleus::bench::disk_read_pread;
using nucleus::bench::Figure;
using nucleus::bench::nucleus_spawn_true;
using nucleus::bench::posix_spawn_true;
using nucleus::bench::summarize;

using nucleus::sys::monotonic_ns;

pid_t fork_child(const std::function<int()> &body) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) _exit(body());
  return pid;
}

void reap(pid_t pid) {
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

// ---- kernel baselines --------------------------------------------------------

Figure futex_rt(int iters, int warmup) {
  void *mem = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  auto *ping = new (mem) std::atomic<uint32_t>(0);
  auto *pong = new (static_cast<char *>(mem) + 64) std::atomic<uint32_t>(0);
  int total = iters + warmup;
  pid_t child = fork_child([&]() {
    for (uint32_t i = 1; i <= static_cast<uint32_t>(total); ++i) {
      while (ping->load(std::memory_order_acquire) != i) nucleus::sys::futex_wait(ping, i - 1, -1);
      pong->store(i, std::memory_order_release);
      nucleus::sys::futex_wake(pong, 1);
    }
    return 0;
  });
  std::vector<int64_t> lat;
  lat.reserve(iters);
  int64_t start = 0;
  for (uint32_t i = 1; i <= static_cast<uint32_t>(total); ++i) {
    if (static_cast<int>(i) == warmup + 1) start = monotonic_ns();
    int64_t t0 = monotonic_ns();
    ping->store(i, std::memory_order_release);
    nucleus::sys::futex_wake(ping, 1);
    while (pong->load(std::memory_order_acquire) != i) nucleus::sys::futex_wait(pong, i - 1, -1);
    if (static_cast<int>(i) > warmup) lat.push_back(monotonic_ns() - t0);
  }
  int64_t elapsed = monotonic_ns() - start;
  waitpid(child, nullptr, 0);
  munmap(mem, 4096);
  return summarize("futex_rt", lat, iters, elapsed);
}

// Round trips of 64-byte records over a pair of fds (pipes or a socketpair).
Figure fd_rt(const std::string &name, int a_write, int a_read, int b_write, int b_read, int iters,
             int warmup) {
  int total = iters + warmup;
  pid_t child = fork_child([&]() {
    char buf[64];
    for (int i = 0; i < total; ++i) {
      if (read(b_read, buf, sizeof(buf)) != sizeof(buf)) return 1;
      if (write(b_write, buf, sizeof(buf)) != sizeof(buf)) return 1;
    }
    return 0;
  });
  char buf[64] = {};
  std::vector<int64_t> lat;
  lat.reserve(iters);
  int64_t start = 0;
  for (int i = 0; i < total; ++i) {
    if (i == warmup) start = monotonic_ns();
    int64_t t0 = monotonic_ns();
    if (write(a_write, buf, sizeof(buf)) != sizeof(buf)) break;
    if (read(a_read, buf, sizeof(buf)) != sizeof(buf)) break;
    if (i >= warmup) lat.push_back(monotonic_ns() - t0);
  }
  int64_t elapsed = monotonic_ns() - start;
  waitpid(child, nullptr, 0);
  return summarize(name, lat, iters, elapsed);
}

Figure pipe_rt(int iters, int warmup) {
  int to_child[2];
  int to_parent[2];
  if (pipe(to_child) < 0 || pipe(to_parent) < 0) return {"pipe_rt"};
  Figure f = fd_rt("pipe_rt", to_child[1], to_parent[0], to_parent[1], to_child[0], iters, warmup);
  for (int fd : {to_child[0], to_child[1], to_parent[0], to_parent[1]}) close(fd);
  return f;
}

Figure uds_rt(int iters, int warmup) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0) return {"uds_rt"};
  Figure f = fd_rt("uds_rt", sv[0], sv[0], sv[1], sv[1], iters, warmup);
  close(sv[0]);
  close(sv[1]);
  return f;
}

// Keeps `window` messages outstanding; latency is per message, send to reply.
template <typename Send, typename Receive>
Figure pipelined(const std::string &name, int total, int window, Send send, Receive receive) {
  std::vector<int64_t> sent_at(static_cast<size_t>(total));
  std::vector<int64_t> lat;
  lat.reserve(total);
  int64_t start = monotonic_ns();
  int next = 0;
  for (; next < window && next < total; ++next) {
    sent_at[next] = monotonic_ns();
    send(next);
  }
  for (int done = 0; done < total; ++done) {
    int id = receive();
    if (id < 0) break;
    lat.push_back(monotonic_ns() - sent_at[id]);
    if (next < total) {
      sent_at[next] = monotonic_ns();
      send(next++);
    }
  }
  return summarize(name, lat, static_cast<int64_t>(lat.size()), monotonic_ns() - start);
}

Figure uds_pipelined(int total, int window) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0) return {"uds_pipelined"};
  pid_t child = fork_child([&]() {
    char buf[64];
    for (int i = 0; i < total; ++i) {
      if (read(sv[1], buf, sizeof(buf)) != sizeof(buf)) return 1;
      if (write(sv[1], buf, sizeof(buf)) != sizeof(buf)) return 1;
    }
    return 0;
  });
  Figure f = pipelined(
      "uds_pipelined", total, window,
      [&](int id) {
        char buf[64] = {};
        std::memcpy(buf, &id, sizeof(id));
        (void)!write(sv[0], buf, sizeof(buf));
      },
      [&]() {
        char buf[64];
        if (read(sv[0], buf, sizeof(buf)) != sizeof(buf)) return -1;
        int id = 0;
        std::memcpy(&id, buf, sizeof(id));
        return id;
      });
  waitpid(child, nullptr, 0);
  close(sv[0]);
  close(sv[1]);
  return f;
}

// ---- through nucleusd --------------------------------------------------------

pid_t start_echo(const std::string &name) {
  int ready[2];
  if (pipe(ready) < 0) return -1;
  pid_t pid = fork_child([&]() {
    auto n = nucleus::Nucleus::attach(name);
    if (!n) return 1;
    (void)!write(ready[1], "x", 1);
    for (;;) {
      auto m = n->wait_message();
      if (!m) return 0;
      if (!n->send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, m->message)) return 1;
    }
  });
  pollfd p{ready[0], POLLIN, 0};
  char c = 0;
  if (poll(&p, 1, 20000) <= 0 || read(ready[0], &c, 1) != 1) pid = -1;
  close(ready[0]);
  close(ready[1]);
  return pid;
}

Figure nucleus_rt(const std::string &label, nucleus::Nucleus &n, int iters, int warmup) {
  std::vector<int64_t> lat;
  lat.reserve(iters);
  nucleus::Message m{};
  int64_t start = 0;
  for (int i = 0; i < iters + warmup; ++i) {
    if (i == warmup) start = monotonic_ns();
    int64_t t0 = monotonic_ns();
    m.word[0] = static_cast<uint64_t>(i);
    auto b = n.send_message("echo", m);
    if (!b) {
      std::fprintf(stderr, "%s: send_message: %s\n", label.c_str(), b.message().data());
      return {label};
    }
    auto a = n.wait_answer(b.value());
    if (!a || a->message.word[0] != static_cast<uint64_t>(i)) {
      std::fprintf(stderr, "%s: wait_answer: %s\n", label.c_str(), a.message().data());
      return {label};
    }
    if (i >= warmup) lat.push_back(monotonic_ns() - t0);
  }
  return summarize(label, lat, iters, monotonic_ns() - start);
}

Figure nucleus_pipelined(nucleus::Nucleus &n, int total, int window) {
  std::vector<nucleus::Buffer> buffers(static_cast<size_t>(total));
  int oldest = 0;
  return pipelined(
      "nucleus_pipelined", total, window,
      [&](int id) {
        nucleus::Message m{};
        m.word[0] = static_cast<uint64_t>(id);
        buffers[id] = n.send_message("echo", m).value();
      },
      [&]() {
        // Answers come back in order from one echo: wait for the oldest.
        auto a = n.wait_answer(buffers[oldest]);
        if (!a) return -1;
        return oldest++;
      });
}

// `count` processes that attach and wait for a message forever, forked from
// one spawner process (its own process group) on request.
class IdleFleet {
 public:
  void fork_spawner(int count) {
    count_ = count;
    if (pipe(go_) < 0 || pipe(attached_) < 0) return;
    spawner_ = fork_child([this]() {
      setpgid(0, 0);
      char c = 0;
      if (read(go_[0], &c, 1) != 1) return 0;
      for (int i = 0; i < count_; ++i) {
        fork_child([this, i]() {
          auto n = nucleus::Nucleus::attach("idle-" + std::to_string(i));
          (void)!write(attached_[1], n ? "a" : "e", 1);
          if (!n) return 1;
          (void)n->wait_message();
          return 0;
        });
      }
      pause();
      return 0;
    });
    setpgid(spawner_, spawner_);
  }
  // Starts them and waits until every one is attached.
  bool attach_all() {
    if (write(go_[1], "g", 1) != 1) return false;
    for (int got = 0; got < count_; ++got) {
      pollfd p{attached_[0], POLLIN, 0};
      char c = 0;
      if (poll(&p, 1, 60000) <= 0 || read(attached_[0], &c, 1) != 1 || c != 'a') return false;
    }
    return true;
  }
  void stop() {
    if (spawner_ <= 0) return;
    kill(-spawner_, SIGKILL);
    waitpid(spawner_, nullptr, 0);
    spawner_ = -1;
  }
  ~IdleFleet() { stop(); }

 private:
  int count_ = 0;
  pid_t spawner_ = -1;
  int go_[2] = {-1, -1};
  int attached_[2] = {-1, -1};
};

// CPU time (user + system) a process has used, in nanoseconds.
int64_t cpu_ns(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 2));
  std::string f;
  int64_t utime = 0;
  int64_t stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stoll(f);
    if (i == 15) stime = std::stoll(f);
  }
  return (utime + stime) * (1000000000 / sysconf(_SC_CLK_TCK));
}

long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

std::string default_nucleusd() {
  char self[4096] = {};
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    std::string dir(self, static_cast<size_t>(n));
    dir = dir.substr(0, dir.rfind('/'));
    for (const char *rel : {"/../daemon/nucleusd", "/nucleusd"}) {
      std::string p = dir + rel;
      if (access(p.c_str(), X_OK) == 0) return p;
    }
  }
  return "/usr/bin/nucleusd";
}

std::string sibling(const char *relative, const char *fallback) {
  char self[4096] = {};
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    std::string dir(self, static_cast<size_t>(n));
    std::string p = dir.substr(0, dir.rfind('/')) + relative;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return fallback;
}

void print_swap(const nucleus::bench::SwapFigures &s) {
  if (!s.ok) {
    std::printf("swap_pause_%d: %s\n", s.children, s.error.c_str());
    return;
  }
  std::printf(
      "swap_pause_%d: longest extra wait %.2f ms over a %.1f us status round trip (%llu queries "
      "during the swap, %llu not answered normal); whole swap %.1f ms; nucleusd pause %.2f ms; "
      "state %llu bytes\n",
      s.children, s.longest_extra_ns / 1e6, s.probe_rtt_p50_ns / 1e3,
      static_cast<unsigned long long>(s.probes_during),
      static_cast<unsigned long long>(s.probes_lost), s.swap_ns / 1e6, s.nucleusd_pause_ns / 1e6,
      static_cast<unsigned long long>(s.state_bytes));
  std::printf(
      "{\"name\": \"swap_pause_%d\", \"longest_extra_ns\": %.0f, \"probe_rtt_p50_ns\": %.0f, "
      "\"swap_ns\": %.0f, \"nucleusd_pause_ns\": %.0f, \"state_bytes\": %llu, \"lost\": %llu}\n",
      s.children, s.longest_extra_ns, s.probe_rtt_p50_ns, s.swap_ns, s.nucleusd_pause_ns,
      static_cast<unsigned long long>(s.state_bytes),
      static_cast<unsigned long long>(s.probes_lost));
}

void print(const std::vector<Figure> &figs) {
  std::printf("%-26s %12s %12s %14s\n", "benchmark", "p50_ns", "p99_ns", "ops_per_s");
  for (const Figure &f : figs) {
    if (f.extra >= 0) {
      std::printf("%-26s %12s %12s %14s   %.1f KiB per process\n", f.name.c_str(), "-", "-", "-",
                  f.extra);
    } else {
      std::printf("%-26s %12.0f %12.0f %14.0f\n", f.name.c_str(), f.p50_ns, f.p99_ns, f.ops_per_s);
    }
  }
  for (const Figure &f : figs) {
    if (f.extra >= 0) {
      std::printf(
          "{\"name\": \"%s\", \"p50_ns\": null, \"p99_ns\": null, \"ops_per_s\": null, "
          "\"kib_per_process\": %.2f}\n",
          f.name.c_str(), f.extra);
    } else {
      std::printf("{\"name\": \"%s\", \"p50_ns\": %.0f, \"p99_ns\": %.0f, \"ops_per_s\": %.0f}\n",
                  f.name.c_str(), f.p50_ns, f.p99_ns, f.ops_per_s);
    }
  }
}

const Figure *find(const std::vector<Figure> &figs, const std::string &name) {
  for (const Figure &f : figs) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

void print_targets(const std::vector<Figure> &figs) {
  auto ratio = [&](const char *what, const char *a, const char *b, bool by_ops, double target,
                   bool at_most) {
    const Figure *fa = find(figs, a);
    const Figure *fb = find(figs, b);
    if (fa == nullptr || fb == nullptr) return;
    double va = by_ops ? fa->ops_per_s : fa->p50_ns;
    double vb = by_ops ? fb->ops_per_s : fb->p50_ns;
    if (vb <= 0) return;
    double r = va / vb;
    bool met = at_most ? r <= target : r >= target;
    std::printf("target: %-46s %6.2f  (%s %.2f) %s\n", what, r, at_most ? "<=" : ">=", target,
                met ? "met" : "MISSED");
  };
  ratio("nucleus_rt p50 / uds_rt p50", "nucleus_rt", "uds_rt", false, 1.5, true);
  ratio("nucleus_pipelined / uds_pipelined ops/s", "nucleus_pipelined", "uds_pipelined", true, 1.0,
        false);
  ratio("nucleus_rt_1000 p50 / nucleus_rt p50", "nucleus_rt_1000", "nucleus_rt", false, 1.1, true);
  ratio("nucleus_spawn p50 / posix_spawn p50", "nucleus_spawn", "posix_spawn", false, 1.5, true);
  ratio("disk_read_nucleus / disk_read_pread ops/s", "disk_read_nucleus", "disk_read_pread", true,
        1.0, false);
  ratio("disk_read_nucleus_direct / disk_read_pread_direct", "disk_read_nucleus_direct",
        "disk_read_pread_direct", true, 1.0, false);
  if (const Figure *m = find(figs, "nucleusd_kib_per_process")) {
    std::printf("target: %-46s %6.1f  (< 64) %s\n", "nucleusd KiB per attached process", m->extra,
                m->extra < 64 ? "met" : "MISSED");
  }
}

}  // namespace

int main(int argc, char **argv) {
  CLI::App app{"nucleus-bench: nucleus message round trips against kernel IPC, same run"};
  bool quick = false;
  std::string nucleusd = default_nucleusd();
  int idle = 1000;
  int64_t daemon_spin_ns = -1;
  std::string doorbell;
  app.add_flag("--quick", quick, "a short run (for CI and smoke tests)");
  app.add_option("--nucleusd", nucleusd, "path of nucleusd")->capture_default_str();
  app.add_option("--idle", idle, "idle processes attached for nucleus_rt_1000")
      ->capture_default_str();
  app.add_option("--daemon-spin-ns", daemon_spin_ns,
                 "nucleusd event_loop.spin_ns (default: its configuration's)");
  app.add_option("--doorbell", doorbell, "nucleusd doorbell: auto, futex or eventfd");
  std::string disk_dir = "/var/tmp";
  app.add_option("--disk-dir", disk_dir, "where the disk benchmark's 256 MiB file goes")
      ->capture_default_str();
  std::string supervisor =
      sibling("/../os-personalities/nucleus-supervisor", "/usr/bin/nucleus-supervisor");
  std::string worker = sibling("/../examples/nucleus-worker", "/usr/bin/nucleus-worker");
  int swap_children = 1000;
  app.add_option("--supervisor", supervisor, "path of nucleus-supervisor")->capture_default_str();
  app.add_option("--worker", worker, "path of nucleus-worker")->capture_default_str();
  app.add_option("--swap-children", swap_children, "children of the swapped supervisor")
      ->capture_default_str();
  bool swap_only = false;
  app.add_flag("--swap-only", swap_only, "only the swap benchmark");
  CLI11_PARSE(app, argc, argv);
  signal(SIGPIPE, SIG_IGN);
  if (swap_only) {
    nucleus::bench::SwapFigures swap =
        nucleus::bench::swap_pause(nucleusd, supervisor, worker, swap_children, disk_dir);
    print_swap(swap);
    return swap.ok ? 0 : 1;
  }

  const int iters = quick ? 5000 : 50000;
  const int warmup = quick ? 500 : 5000;
  const int piped = quick ? 20000 : 400000;
  const int window = 64;
  std::vector<Figure> figs;
  figs.push_back(futex_rt(iters, warmup));
  figs.push_back(pipe_rt(iters, warmup));
  figs.push_back(uds_rt(iters, warmup));
  figs.push_back(uds_pipelined(piped, window));

  // The disk benchmark's file: 256 MiB, written now (so cached), and a
  // second disk on it with O_DIRECT where the file system allows it.
  constexpr uint64_t kDiskBytes = 256ULL << 20;
  std::string disk_path = disk_dir + "/nucleus-bench-disk." + std::to_string(getpid());
  if (!nucleus::bench::make_backing_file(disk_path, kDiskBytes)) {
    std::fprintf(stderr, "nucleus-bench: cannot write %s\n", disk_path.c_str());
    return 1;
  }
  bool direct = false;
  if (int fd = open(disk_path.c_str(), O_RDONLY | O_DIRECT); fd >= 0) {
    direct = true;
    close(fd);
  }
  std::string devices = R"([{"name": "clock", "kind": "clock"}, {"name": "null", "kind": "null"},)"
                        R"( {"name": "disk", "kind": "disk", "block_size": 4096, "path": ")" +
                        disk_path + "\"}";
  if (direct) {
    devices += R"(, {"name": "disk_direct", "kind": "disk", "block_size": 4096, "direct": true,)"
               R"( "path": ")" +
               disk_path + "\"}";
  }
  devices += "]";

  // One daemon: claims of 64 for the pipelined window, and a pool big
  // enough for 1000 more processes with the same claim.
  std::string config =
      R"({"pool": {"buffers": 131072}, "default_claims": {"buffers": 64, "processes": 4},)"
      R"( "processes": {"max": 10000, "output": "discard"}, "channel": {"data_bytes": 262144},)"
      R"( "devices": )" +
      devices;
  if (daemon_spin_ns >= 0) {
    config += R"(, "event_loop": {"spin_ns": )" + std::to_string(daemon_spin_ns) + "}";
  }
  if (!doorbell.empty()) config += R"(, "doorbell": ")" + doorbell + "\"";
  config += "}";
  nucleus::support::DaemonProcess daemon;
  if (!daemon.start(nucleusd, config, "warn", std::chrono::seconds(20))) {
    std::fprintf(stderr, "nucleus-bench: could not start %s\n%s", nucleusd.c_str(),
                 daemon.log().c_str());
    return 1;
  }
  // Forked before we attach, so the idle processes inherit no channel of ours.
  IdleFleet fleet;
  fleet.fork_spawner(idle);
  pid_t echo = start_echo("echo");
  auto n = nucleus::Nucleus::attach("bench");
  if (!n || echo < 0) {
    std::fprintf(stderr, "nucleus-bench: attach failed: %s\n", n.message().data());
    return 1;
  }
  int64_t cpu_before = cpu_ns(daemon.pid());
  figs.push_back(nucleus_rt("nucleus_rt", n.value(), iters, warmup));
  double daemon_ns_per_rt =
      static_cast<double>(cpu_ns(daemon.pid()) - cpu_before) / (iters + warmup);
  cpu_before = cpu_ns(daemon.pid());
  figs.push_back(nucleus_pipelined(n.value(), piped, window));
  double daemon_ns_per_msg = static_cast<double>(cpu_ns(daemon.pid()) - cpu_before) / piped;

  const int spawns = quick ? 200 : 1000;
  figs.push_back(posix_spawn_true(spawns));
  figs.push_back(nucleus_spawn_true(n.value(), spawns));

  figs.push_back(
      nucleus::bench::device_rt("null_rt", n.value(), "null", nucleus::Message{}, iters, warmup));
  figs.push_back(nucleus::bench::device_rt("clock_rt", n.value(), "clock",
                                           nucleus::device::clock_now(), iters, warmup));
  const int reads = quick ? 20000 : 200000;
  const int in_flight = 32;
  std::vector<uint64_t> blocks = nucleus::bench::random_blocks(kDiskBytes / 4096, reads);
  figs.push_back(disk_read_pread("disk_read_pread", disk_path, blocks, false));
  figs.push_back(disk_read_nucleus("disk_read_nucleus", n.value(), "disk", blocks, in_flight));
  if (direct) {
    // Fewer: each is a real read of the device.
    std::vector<uint64_t> cold(blocks.begin(), blocks.begin() + reads / 4);
    figs.push_back(disk_read_pread("disk_read_pread_direct", disk_path, cold, true));
    figs.push_back(
        disk_read_nucleus("disk_read_nucleus_direct", n.value(), "disk_direct", cold, in_flight));
  }

  long before = rss_kib(daemon.pid());
  if (!fleet.attach_all()) {
    std::fprintf(stderr, "nucleus-bench: the %d idle processes did not all attach\n", idle);
    return 1;
  }
  long after = rss_kib(daemon.pid());
  figs.push_back(nucleus_rt("nucleus_rt_1000", n.value(), iters, warmup));
  Figure mem;
  mem.name = "nucleusd_kib_per_process";
  mem.extra = static_cast<double>(after - before) / idle;
  figs.push_back(mem);

  fleet.stop();
  reap(echo);
  n = nucleus::Nucleus();
  daemon.stop(SIGTERM, std::chrono::seconds(20));
  unlink(disk_path.c_str());
  // The swap last, with a nucleusd of its own (1000 children need claims
  // the daemon above does not give).
  nucleus::bench::SwapFigures swap = nucleus::bench::swap_pause(
      nucleusd, supervisor, worker, quick ? std::min(swap_children, 200) : swap_children, disk_dir);
  print(figs);
  print_swap(swap);
  std::printf("nucleusd CPU: %.0f ns per nucleus_rt round trip, %.0f ns per pipelined message\n",
              daemon_ns_per_rt, daemon_ns_per_msg);
  print_targets(figs);
  if (swap.ok) {
    double ms = swap.longest_extra_ns / 1e6;
    std::printf("target: %-46s %6.2f  (<= 5.00) %s\n",
                ("swap_pause_" + std::to_string(swap.children) + " longest extra wait, ms").c_str(),
                ms, ms <= 5.0 ? "met" : "MISSED");
  }
  return swap.ok ? 0 : 1;
}
