// nucleus-bench: message round trips through nucleusd against the kernel's
// own IPC, all in one run on one machine, so that the ratios mean something
// on a shared, noisy host. Prints a table, then one JSON object per line,
// then the ratios and the targets.
//
//   nucleus-bench [--quick] [--nucleusd PATH] [--data-only] [--swap-only]
//
// Never fails on a timing: the targets are printed with the ratios.
//
// Placements (placement.h). The kernel baselines (futex_rt, pipe_rt, uds_rt,
// relay_rt, uds_pipelined) are each measured three ways: unpinned, under the
// plain name ("uds_rt", as before there were placements); with every process
// pinned on one CPU, "<name>@same_cpu"; and along two CPUs so that every hop
// crosses between them, "<name>@two_cpus" (relay_rt@two_cpus: the relay on
// one CPU, the client and the receiver on the other). two_cpus is skipped,
// with a line saying so, when the process may run on one CPU only. Every
// JSON line has a "placement": "unpinned", "same_cpu" or "two_cpus"; the
// nucleus figures are "unpinned" (nucleusd and its clients are not pinned),
// and the targets compare unpinned figures.
//
// Data with a message (data_bench.h): nucleus_data_rt_4k and _64k, a
// request carrying 4 KiB or 64 KiB and an answer carrying them back,
// against uds_data_rt_4k and _64k, the same bytes over a socket pair in the
// same run (unpinned). `--data-only` runs only those, with a nucleusd of
// their own.
//
// Figures that are not latencies: nucleusd_kib_per_process (its RSS per
// attached idle process) and nucleusd_idle_cpu (its CPU time over about a
// second with every client attached and no traffic, in % of one CPU).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <nucleus/nucleus.hpp>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <nucleus_internal/sys.h>

#include "daemon_process.h"
#include "data_bench.h"
#include "device_bench.h"
#include "figure.h"
#include "kernel_bench.h"
#include "measure.h"
#include "spawn_bench.h"
#include "swap_bench.h"

namespace {

using nucleus::bench::disk_read_nucleus;
using nucleus::bench::disk_read_pread;
using nucleus::bench::Figure;
using nucleus::bench::fork_child;
using nucleus::bench::nucleus_spawn_true;
using nucleus::bench::placed_name;
using nucleus::bench::Placement;
using nucleus::bench::placement_name;
using nucleus::bench::posix_spawn_true;

using nucleus::sys::monotonic_ns;

void reap(pid_t pid) {
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
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
  return nucleus::bench::round_trips(label, iters, warmup, [&](uint32_t i) {
    nucleus::Message m{};
    m.word[0] = i;
    auto b = n.send_message("echo", m);
    if (!b) {
      std::fprintf(stderr, "%s: send_message: %s\n", label.c_str(), b.message().data());
      return false;
    }
    auto a = n.wait_answer(b.value());
    if (!a || a->message.word[0] != i) {
      std::fprintf(stderr, "%s: wait_answer: %s\n", label.c_str(), a.message().data());
      return false;
    }
    return true;
  });
}

Figure nucleus_pipelined(nucleus::Nucleus &n, int total, int window) {
  std::vector<nucleus::Buffer> buffers(static_cast<size_t>(total));
  int oldest = 0;
  return nucleus::bench::pipelined(
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

// CPU time (user + system, every thread) a process has used, in nanoseconds:
// its CPU-time clock, or /proc/PID/stat in clock ticks where that is refused.
int64_t cpu_ns(pid_t pid) {
  clockid_t clock;
  timespec ts{};
  if (clock_getcpuclockid(pid, &clock) == 0 && clock_gettime(clock, &ts) == 0) {
    return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
  }
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

// ---- report -------------------------------------------------------------------

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
      "{\"name\": \"swap_pause_%d\", \"placement\": \"unpinned\", \"longest_extra_ns\": %.0f, "
      "\"probe_rtt_p50_ns\": %.0f, \"swap_ns\": %.0f, \"nucleusd_pause_ns\": %.0f, "
      "\"state_bytes\": %llu, \"lost\": %llu}\n",
      s.children, s.longest_extra_ns, s.probe_rtt_p50_ns, s.swap_ns, s.nucleusd_pause_ns,
      static_cast<unsigned long long>(s.state_bytes),
      static_cast<unsigned long long>(s.probes_lost));
}

void print(const std::vector<Figure> &figs) {
  std::printf("%-26s %12s %12s %14s\n", "benchmark", "p50_ns", "p99_ns", "ops_per_s");
  for (const Figure &f : figs) {
    if (f.value >= 0) {
      std::printf("%-26s %12s %12s %14s   %.4g %s\n", f.name.c_str(), "-", "-", "-", f.value,
                  f.value_unit);
    } else {
      std::printf("%-26s %12.0f %12.0f %14.0f\n", f.name.c_str(), f.p50_ns, f.p99_ns, f.ops_per_s);
    }
  }
  for (const Figure &f : figs) {
    const char *placement = placement_name(f.placement);
    if (f.value >= 0) {
      std::printf(
          "{\"name\": \"%s\", \"placement\": \"%s\", \"p50_ns\": null, \"p99_ns\": null, "
          "\"ops_per_s\": null, \"%s\": %.6g}\n",
          f.name.c_str(), placement, f.value_key, f.value);
    } else {
      std::printf(
          "{\"name\": \"%s\", \"placement\": \"%s\", \"p50_ns\": %.0f, \"p99_ns\": %.0f, "
          "\"ops_per_s\": %.0f}\n",
          f.name.c_str(), placement, f.p50_ns, f.p99_ns, f.ops_per_s);
    }
  }
}

const Figure *find(const std::vector<Figure> &figs, const std::string &name) {
  for (const Figure &f : figs) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// a's statistic over b's, or -1 when either is missing or b's is 0.
double ratio(const std::vector<Figure> &figs, const std::string &a, const std::string &b,
             double Figure::*stat) {
  const Figure *fa = find(figs, a);
  const Figure *fb = find(figs, b);
  if (fa == nullptr || fb == nullptr || fb->*stat <= 0) return -1;
  return fa->*stat / fb->*stat;
}

// The nucleus figures against each placement of the baselines, labelled as
// the targets are ("nucleus_rt p50 / uds_rt@same_cpu p50").
void print_comparisons(const std::vector<Figure> &figs) {
  struct Comparison {
    const char *nucleus;
    const char *baseline;
    double Figure::*stat;
    const char *nucleus_unit;   // after the nucleus figure's name
    const char *baseline_unit;  // after the baseline's
  };
  const Comparison comparisons[] = {
      {"nucleus_rt", "uds_rt", &Figure::p50_ns, " p50", " p50"},
      {"nucleus_rt", "relay_rt", &Figure::p50_ns, " p50", " p50"},
      {"nucleus_pipelined", "uds_pipelined", &Figure::ops_per_s, "", " ops/s"},
      {"nucleus_data_rt_4k", "uds_data_rt_4k", &Figure::p50_ns, " p50", " p50"},
      {"nucleus_data_rt_64k", "uds_data_rt_64k", &Figure::p50_ns, " p50", " p50"},
      {"nucleus_data_rt_4k_copies", "uds_data_rt_4k", &Figure::p50_ns, " p50", " p50"},
      {"nucleus_data_rt_64k_copies", "uds_data_rt_64k", &Figure::p50_ns, " p50", " p50"},
  };
  for (const Comparison &c : comparisons) {
    for (Placement p : {Placement::kUnpinned, Placement::kSameCpu, Placement::kTwoCpus}) {
      std::string baseline = placed_name(c.baseline, p);
      double r = ratio(figs, c.nucleus, baseline, c.stat);
      if (r < 0) continue;
      std::string what =
          std::string(c.nucleus) + c.nucleus_unit + " / " + baseline + c.baseline_unit;
      std::printf("ratio:  %-50s %6.2f\n", what.c_str(), r);
    }
  }
}

void print_target(const std::string &what, double value, double bound, bool at_most) {
  bool met = at_most ? value <= bound : value >= bound;
  std::printf("target: %-50s %6.2f  (%s %.2f) %s\n", what.c_str(), value,
              at_most ? "<=" : ">=", bound, met ? "met" : "MISSED");
}

// Issue 14's targets, on the unpinned figures, and the disk, memory, idle
// CPU and swap ones.
void print_targets(const std::vector<Figure> &figs, const nucleus::bench::SwapFigures &swap) {
  struct Target {
    const char *what;
    const char *a;
    const char *b;
    double Figure::*stat;
    double bound;
    bool at_most;
  };
  const Target targets[] = {
      {"nucleus_rt p50 / uds_rt p50", "nucleus_rt", "uds_rt", &Figure::p50_ns, 1.25, true},
      {"nucleus_rt p50 / relay_rt p50", "nucleus_rt", "relay_rt", &Figure::p50_ns, 1.15, true},
      {"nucleus_pipelined / uds_pipelined ops/s", "nucleus_pipelined", "uds_pipelined",
       &Figure::ops_per_s, 4.0, false},
      {"nucleus_rt_1000 p50 / nucleus_rt p50", "nucleus_rt_1000", "nucleus_rt", &Figure::p50_ns,
       1.1, true},
      {"nucleus_rt_1000 p99 / nucleus_rt p99", "nucleus_rt_1000", "nucleus_rt", &Figure::p99_ns,
       1.1, true},
      {"nucleus_spawn p50 / posix_spawn p50", "nucleus_spawn", "posix_spawn", &Figure::p50_ns, 1.3,
       true},
      {"disk_read_nucleus / disk_read_pread ops/s", "disk_read_nucleus", "disk_read_pread",
       &Figure::ops_per_s, 1.0, false},
      {"disk_read_nucleus_direct / disk_read_pread_direct", "disk_read_nucleus_direct",
       "disk_read_pread_direct", &Figure::ops_per_s, 1.0, false},
      // Issue 21: data with a message against a socket pair moving the same bytes.
      {"nucleus_data_rt_4k p50 / uds_data_rt_4k p50", "nucleus_data_rt_4k", "uds_data_rt_4k",
       &Figure::p50_ns, 1.25, true},
      {"nucleus_data_rt_64k p50 / uds_data_rt_64k p50", "nucleus_data_rt_64k", "uds_data_rt_64k",
       &Figure::p50_ns, 1.0, true},
  };
  for (const Target &t : targets) {
    double r = ratio(figs, t.a, t.b, t.stat);
    if (r >= 0) print_target(t.what, r, t.bound, t.at_most);
  }
  if (const Figure *m = find(figs, "nucleusd_kib_per_process")) {
    std::printf("target: %-50s %6.1f  (< 64) %s\n", "nucleusd KiB per attached process", m->value,
                m->value < 64 ? "met" : "MISSED");
  }
  if (const Figure *c = find(figs, "nucleusd_idle_cpu")) {
    print_target("nucleusd idle CPU, % of one CPU", c->value, 1.0, true);
  }
  if (swap.ok) {
    print_target("swap_pause_" + std::to_string(swap.children) + " longest extra wait, ms",
                 swap.longest_extra_ns / 1e6, 5.0, true);
  }
}

// ---- the run --------------------------------------------------------------------

struct Options {
  bool quick = false;
  std::string nucleusd = default_nucleusd();
  int idle = 1000;
  std::string event_loop;  // nucleusd's event_loop section, as JSON
  std::string doorbell;
  std::string disk_dir = "/var/tmp";
  std::string supervisor =
      sibling("/../os-personalities/nucleus-supervisor", "/usr/bin/nucleus-supervisor");
  std::string worker = sibling("/../examples/nucleus-worker", "/usr/bin/nucleus-worker");
  int swap_children = 1000;
  bool swap_only = false;
  bool data_only = false;
};

void add_options(CLI::App &app, Options &o) {
  app.add_flag("--quick", o.quick, "a short run (for CI and smoke tests)");
  app.add_option("--nucleusd", o.nucleusd, "path of nucleusd")->capture_default_str();
  app.add_option("--idle", o.idle, "idle processes attached for nucleus_rt_1000")
      ->capture_default_str();
  app.add_option("--event-loop", o.event_loop,
                 R"(nucleusd's event_loop section, e.g. '{"poll": "off"}' (default: its own))");
  app.add_option("--doorbell", o.doorbell, "nucleusd doorbell: auto, futex or eventfd");
  app.add_option("--disk-dir", o.disk_dir, "where the disk benchmark's 256 MiB file goes")
      ->capture_default_str();
  app.add_option("--supervisor", o.supervisor, "path of nucleus-supervisor")->capture_default_str();
  app.add_option("--worker", o.worker, "path of nucleus-worker")->capture_default_str();
  app.add_option("--swap-children", o.swap_children, "children of the swapped supervisor")
      ->capture_default_str();
  app.add_flag("--swap-only", o.swap_only, "only the swap benchmark");
  app.add_flag("--data-only", o.data_only, "only the data-with-a-message benchmark");
}

struct Sizes {
  nucleus::bench::BaselineSizes rt;  // round trips and pipelined messages, nucleus's too
  int spawns = 0;
  int reads = 0;  // of the disk benchmark
  static constexpr int kInFlight = 32;

  static Sizes of(bool quick) {
    Sizes s;
    s.rt = {quick ? 5000 : 50000, quick ? 500 : 5000, quick ? 20000 : 400000, 64};
    s.spawns = quick ? 200 : 1000;
    s.reads = quick ? 20000 : 200000;
    return s;
  }
};

// The disk benchmark's file: 256 MiB, written now (so cached), and whether
// the file system allows a second disk on it with O_DIRECT.
struct DiskFile {
  static constexpr uint64_t kBytes = 256ULL << 20;
  std::string path;
  bool direct = false;

  bool make(const std::string &dir) {
    path = dir + "/nucleus-bench-disk." + std::to_string(getpid());
    if (!nucleus::bench::make_backing_file(path, kBytes)) return false;
    if (int fd = open(path.c_str(), O_RDONLY | O_DIRECT); fd >= 0) {
      direct = true;
      close(fd);
    }
    return true;
  }
  ~DiskFile() {
    if (!path.empty()) unlink(path.c_str());
  }
};

// One daemon: claims of 64 for the pipelined window, and a pool big enough
// for 1000 more processes with the same claim.
std::string daemon_config(const Options &o, const DiskFile &disk) {
  std::string devices = R"([{"name": "clock", "kind": "clock"}, {"name": "null", "kind": "null"},)"
                        R"( {"name": "disk", "kind": "disk", "block_size": 4096, "path": ")" +
                        disk.path + "\"}";
  if (disk.direct) {
    devices += R"(, {"name": "disk_direct", "kind": "disk", "block_size": 4096, "direct": true,)"
               R"( "path": ")" +
               disk.path + "\"}";
  }
  devices += "]";
  std::string config =
      R"({"pool": {"buffers": 131072}, "default_claims": {"buffers": 64, "processes": 4},)"
      R"( "processes": {"max": 10000, "output": "discard", "control": ")" +
      nucleus::bench::subtree_mode() +
      R"("}, "channel": {"data_bytes": 262144},)"
      R"( "devices": )" +
      devices;
  if (!o.event_loop.empty()) config += R"(, "event_loop": )" + o.event_loop;
  if (!o.doorbell.empty()) config += R"(, "doorbell": ")" + o.doorbell + "\"";
  return config + "}";
}

// What the run through nucleusd gives besides its figures.
struct DaemonCpu {
  double ns_per_rt = 0;          // nucleusd's CPU per nucleus_rt round trip
  double ns_per_msg = 0;         // and per nucleus_pipelined message
  double ns_per_data_rt_4k = 0;  // and per nucleus_data_rt_4k / _64k round trip
  double ns_per_data_rt_64k = 0;
};

// Round trips and pipelined messages to the echo, with nucleusd's CPU for each.
void message_figures(nucleus::Nucleus &n, pid_t daemon, const Sizes &s, std::vector<Figure> &figs,
                     DaemonCpu &cpu) {
  int64_t before = cpu_ns(daemon);
  figs.push_back(nucleus_rt("nucleus_rt", n, s.rt.iters, s.rt.warmup));
  cpu.ns_per_rt = static_cast<double>(cpu_ns(daemon) - before) / (s.rt.iters + s.rt.warmup);
  before = cpu_ns(daemon);
  figs.push_back(nucleus_pipelined(n, s.rt.piped, s.rt.window));
  cpu.ns_per_msg = static_cast<double>(cpu_ns(daemon) - before) / s.rt.piped;
}

// The two data echoes (data_bench.h), forked before this process attaches;
// each is reaped once, here or when this ends.
struct DataEchoes {
  pid_t window = nucleus::bench::start_data_echo(nucleus::bench::kDataEcho, true);
  pid_t copies = nucleus::bench::start_data_echo(nucleus::bench::kDataEchoCopies, false);
  bool ok() const { return window > 0 && copies > 0; }
  void reap_all() {
    for (pid_t *p : {&window, &copies}) {
      if (*p > 0) reap(*p);
      *p = -1;
    }
  }
  DataEchoes() = default;
  DataEchoes(const DataEchoes &) = delete;
  DataEchoes &operator=(const DataEchoes &) = delete;
  ~DataEchoes() { reap_all(); }
};

// Data with a message against the socket pair, size by size, with
// nucleusd's CPU per round trip (the receiver is the data echo).
void data_figures(nucleus::Nucleus &n, pid_t daemon, const Sizes &s, std::vector<Figure> &figs,
                  DaemonCpu &cpu) {
  struct Size {
    const char *suffix;
    size_t bytes;
    double DaemonCpu::*cpu;
  };
  for (const Size &z : {Size{"4k", 4096, &DaemonCpu::ns_per_data_rt_4k},
                        Size{"64k", 65536, &DaemonCpu::ns_per_data_rt_64k}}) {
    figs.push_back(nucleus::bench::uds_data_rt(std::string("uds_data_rt_") + z.suffix, z.bytes,
                                               s.rt.iters, s.rt.warmup));
    int64_t before = cpu_ns(daemon);
    figs.push_back(nucleus::bench::nucleus_data_rt(std::string("nucleus_data_rt_") + z.suffix, n,
                                                   nucleus::bench::kDataEcho, z.bytes, s.rt.iters,
                                                   s.rt.warmup));
    cpu.*z.cpu = static_cast<double>(cpu_ns(daemon) - before) / (s.rt.iters + s.rt.warmup);
    // The same round trip with a copy request each way (no window, an answer
    // without data): what the window and the answer's copy take away.
    figs.push_back(nucleus::bench::nucleus_data_rt(
        std::string("nucleus_data_rt_") + z.suffix + "_copies", n, nucleus::bench::kDataEchoCopies,
        z.bytes, s.rt.iters, s.rt.warmup));
  }
}

// Starting programs, and the devices.
void program_and_device_figures(nucleus::Nucleus &n, const Sizes &s, const DiskFile &disk,
                                std::vector<Figure> &figs) {
  figs.push_back(posix_spawn_true(s.spawns));
  figs.push_back(nucleus_spawn_true(n, s.spawns));
  const int iters = s.rt.iters;
  const int warmup = s.rt.warmup;
  figs.push_back(
      nucleus::bench::device_rt("null_rt", n, "null", nucleus::Message{}, iters, warmup));
  figs.push_back(nucleus::bench::device_rt("clock_rt", n, "clock", nucleus::device::clock_now(),
                                           iters, warmup));
  std::vector<uint64_t> blocks = nucleus::bench::random_blocks(DiskFile::kBytes / 4096, s.reads);
  figs.push_back(disk_read_pread("disk_read_pread", disk.path, blocks, false));
  figs.push_back(disk_read_nucleus("disk_read_nucleus", n, "disk", blocks, Sizes::kInFlight));
  if (disk.direct) {
    // Fewer: each is a real read of the device.
    std::vector<uint64_t> cold(blocks.begin(), blocks.begin() + s.reads / 4);
    figs.push_back(disk_read_pread("disk_read_pread_direct", disk.path, cold, true));
    figs.push_back(
        disk_read_nucleus("disk_read_nucleus_direct", n, "disk_direct", cold, Sizes::kInFlight));
  }
}

// nucleusd's CPU over about a second of wall time while nothing is sent.
Figure idle_cpu(pid_t daemon) {
  int64_t cpu_before = cpu_ns(daemon);
  int64_t wall_before = monotonic_ns();
  timespec second{1, 0};
  while (nanosleep(&second, &second) != 0 && errno == EINTR) {
  }
  auto cpu = static_cast<double>(cpu_ns(daemon) - cpu_before);
  auto wall = static_cast<double>(monotonic_ns() - wall_before);
  return nucleus::bench::value_figure("nucleusd_idle_cpu", 100.0 * cpu / wall, "cpu_percent",
                                      "% of one CPU");
}

// With the `idle` processes of the fleet attached: nucleusd's memory per
// process, round trips, then its CPU once the last answer is in (no traffic
// left: the fleet waits, the echo waits, we sleep).
bool fleet_figures(nucleus::Nucleus &n, pid_t daemon, IdleFleet &fleet, int idle, const Sizes &s,
                   std::vector<Figure> &figs) {
  long before = rss_kib(daemon);
  if (!fleet.attach_all()) {
    std::fprintf(stderr, "nucleus-bench: the %d idle processes did not all attach\n", idle);
    return false;
  }
  long after = rss_kib(daemon);
  figs.push_back(nucleus_rt("nucleus_rt_1000", n, s.rt.iters, s.rt.warmup));
  figs.push_back(nucleus::bench::value_figure("nucleusd_kib_per_process",
                                              static_cast<double>(after - before) / idle,
                                              "kib_per_process", "KiB per process"));
  figs.push_back(idle_cpu(daemon));
  return true;
}

// Everything through one nucleusd (all but the swap).
bool through_nucleusd(const Options &o, const Sizes &s, std::vector<Figure> &figs, DaemonCpu &cpu) {
  DiskFile disk;
  if (!disk.make(o.disk_dir)) {
    std::fprintf(stderr, "nucleus-bench: cannot write %s\n", disk.path.c_str());
    return false;
  }
  nucleus::support::DaemonProcess daemon;
  if (!daemon.start(o.nucleusd, daemon_config(o, disk), "warn", std::chrono::seconds(20))) {
    std::fprintf(stderr, "nucleus-bench: could not start %s\n%s", o.nucleusd.c_str(),
                 daemon.log().c_str());
    return false;
  }
  // Forked before we attach, so the idle processes inherit no channel of ours.
  IdleFleet fleet;
  fleet.fork_spawner(o.idle);
  pid_t echo = start_echo("echo");
  DataEchoes data_echoes;
  auto n = nucleus::Nucleus::attach("bench");
  if (!n || echo < 0 || !data_echoes.ok()) {
    std::fprintf(stderr, "nucleus-bench: attach failed: %s\n", n.message().data());
    if (echo > 0) reap(echo);
    return false;
  }
  message_figures(n.value(), daemon.pid(), s, figs, cpu);
  data_figures(n.value(), daemon.pid(), s, figs, cpu);
  data_echoes.reap_all();
  program_and_device_figures(n.value(), s, disk, figs);
  bool ok = fleet_figures(n.value(), daemon.pid(), fleet, o.idle, s, figs);
  fleet.stop();
  reap(echo);
  n = nucleus::Nucleus();
  daemon.stop(SIGTERM, std::chrono::seconds(20));
  return ok;
}

// Only the data figures, with a nucleusd of their own (--data-only).
bool data_only(const Options &o, const Sizes &s, std::vector<Figure> &figs, DaemonCpu &cpu) {
  std::string config = R"({"channel": {"data_bytes": 262144}, "processes": {"output": "discard"})";
  if (!o.event_loop.empty()) config += R"(, "event_loop": )" + o.event_loop;
  if (!o.doorbell.empty()) config += R"(, "doorbell": ")" + o.doorbell + "\"";
  config += "}";
  nucleus::support::DaemonProcess daemon;
  if (!daemon.start(o.nucleusd, config, "warn", std::chrono::seconds(20))) {
    std::fprintf(stderr, "nucleus-bench: could not start %s\n%s", o.nucleusd.c_str(),
                 daemon.log().c_str());
    return false;
  }
  DataEchoes data_echoes;
  auto n = nucleus::Nucleus::attach("bench");
  bool ok = n && data_echoes.ok();
  if (ok) data_figures(n.value(), daemon.pid(), s, figs, cpu);
  data_echoes.reap_all();
  n = nucleus::Nucleus();
  daemon.stop(SIGTERM, std::chrono::seconds(20));
  return ok;
}

void print_data_cpu(const DaemonCpu &cpu) {
  std::printf(
      "nucleusd CPU: %.0f ns per nucleus_data_rt_4k round trip, %.0f ns per nucleus_data_rt_64k\n",
      cpu.ns_per_data_rt_4k, cpu.ns_per_data_rt_64k);
}

}  // namespace

int main(int argc, char **argv) {
  CLI::App app{"nucleus-bench: nucleus message round trips against kernel IPC, same run"};
  Options o;
  add_options(app, o);
  CLI11_PARSE(app, argc, argv);
  signal(SIGPIPE, SIG_IGN);
  if (o.swap_only) {
    nucleus::bench::SwapFigures swap =
        nucleus::bench::swap_pause(o.nucleusd, o.supervisor, o.worker, o.swap_children, o.disk_dir);
    print_swap(swap);
    return swap.ok ? 0 : 1;
  }

  const Sizes sizes = Sizes::of(o.quick);
  if (o.data_only) {
    std::vector<Figure> figs;
    DaemonCpu cpu;
    bool ok = data_only(o, sizes, figs, cpu);
    print(figs);
    print_data_cpu(cpu);
    print_comparisons(figs);
    print_targets(figs, nucleus::bench::SwapFigures{});
    return ok ? 0 : 1;
  }
  std::vector<Figure> figs = nucleus::bench::kernel_baselines(sizes.rt);
  DaemonCpu cpu;
  if (!through_nucleusd(o, sizes, figs, cpu)) return 1;
  // The swap last, with a nucleusd of its own (1000 children need claims
  // the daemon above does not give).
  nucleus::bench::SwapFigures swap = nucleus::bench::swap_pause(
      o.nucleusd, o.supervisor, o.worker,
      o.quick ? std::min(o.swap_children, 200) : o.swap_children, o.disk_dir);
  print(figs);
  print_swap(swap);
  std::printf("nucleusd CPU: %.0f ns per nucleus_rt round trip, %.0f ns per pipelined message\n",
              cpu.ns_per_rt, cpu.ns_per_msg);
  print_data_cpu(cpu);
  print_comparisons(figs);
  print_targets(figs, swap);
  return swap.ok ? 0 : 1;
}
