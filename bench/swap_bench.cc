#include "swap_bench.h"

#include <signal.h>
#include <unistd.h>

#include <nucleus/personalities.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nucleus/nucleus.hpp>
#include <thread>
#include <vector>

#include "daemon_process.h"

namespace nucleus::bench {

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Probe {
  int64_t sent_ns;
  int64_t rtt_ns;
  bool normal;
};

nucleus::Message summary() {
  return nucleus::Message{{nucleus::os::kStatus, nucleus::os::kSummary}};
}

}  // namespace

SwapFigures swap_pause(const std::string &nucleusd, const std::string &supervisor,
                       const std::string &worker, int children, const std::string &dir) {
  SwapFigures f;
  f.children = children;
  std::string config =
      R"({"pool": {"buffers": 65536},)"
      R"( "default_claims": {"buffers": 8192, "processes": )" +
      std::to_string(children + 16) + R"(}, "processes": {"max": )" +
      std::to_string(2 * children + 64) + R"(, "output": ")" +
      std::string(std::getenv("NUCLEUS_BENCH_LOG") != nullptr ? "file" : "discard") +
      R"(", "control": ")" + subtree_mode() + R"("}, "swap": {"ready_timeout_ms": 30000}})";
  nucleus::support::DaemonProcess daemon;
  const char *level = std::getenv("NUCLEUS_BENCH_LOG");
  if (!daemon.start(nucleusd, config, level != nullptr ? level : "warn",
                    std::chrono::seconds(20))) {
    f.error = "could not start nucleusd: " + daemon.log();
    return f;
  }
  std::string spec_path = dir + "/nucleus-bench-spec." + std::to_string(getpid()) + ".json";
  {
    std::ofstream spec(spec_path);
    spec << R"({"strategy": "one_for_one", "children": [)";
    for (int i = 0; i < children; ++i) {
      spec << (i ? "," : "") << R"({"name": "w)" << i << R"(", "program": ")" << worker
           << R"(", "claims": {"buffers": 2}})";
    }
    spec << "]}";
  }
  auto top = nucleus::Nucleus::attach("swapper");
  if (!top) {
    f.error = "attach failed";
    return f;
  }
  nucleus::Claims claims{static_cast<uint64_t>(children) * 2 + 64,
                         static_cast<uint64_t>(children) + 4, 0, 0, 16ULL << 20};
  if (!top->create_process("sup", {supervisor, {supervisor, spec_path}, {}, {}}, claims) ||
      !top->start_process("sup")) {
    f.error = "could not start the supervisor";
    return f;
  }
  auto ask = [&](nucleus::Nucleus &n,
                 const nucleus::Message &m) -> nucleus::Result<nucleus::Answer> {
    auto b = n.send_message("sup", m);
    if (!b) return nucleus::Result<nucleus::Answer>::failure(b.error());
    return n.wait_answer(b.value(), std::chrono::seconds(60));
  };
  // Every child running and ready.
  auto deadline = now_ns() + 300LL * 1000000000;
  for (;;) {
    auto a = ask(top.value(), summary());
    auto last = ask(top.value(),
                    nucleus::Message{{nucleus::os::kStatus, static_cast<uint64_t>(children - 1)}});
    if (a && last && a->message.word[4] == static_cast<uint64_t>(children) &&
        last->message.word[7] == 1) {
      break;
    }
    if (now_ns() > deadline) {
      f.error = "the supervisor did not start its children";
      return f;
    }
    std::this_thread::yield();
  }

  // The probe: back-to-back status queries from their own attachment.
  std::atomic<bool> stop{false};
  std::atomic<bool> probe_failed{false};
  std::atomic<int64_t> probes_done{0};
  std::vector<Probe> probes;
  probes.reserve(1 << 20);
  std::thread probe([&]() {
    auto n = nucleus::Nucleus::attach("probe");
    if (!n) {
      probe_failed = true;
      return;
    }
    while (!stop.load(std::memory_order_relaxed)) {
      int64_t t0 = now_ns();
      auto a = ask(n.value(), summary());
      int64_t t1 = now_ns();
      if (probes.size() < probes.capacity()) {
        probes.push_back({t0, t1 - t0, a && a->result == NUCLEUS_RESULT_NORMAL});
      }
      probes_done.fetch_add(1, std::memory_order_release);
    }
  });
  while (probes_done.load(std::memory_order_acquire) < 2000) {
    if (probe_failed) {
      probe.join();
      f.error = "the probe could not attach";
      return f;
    }
    std::this_thread::yield();
  }
  int64_t begin = now_ns();
  // Version 2 reads the same spec while it waits for the handover.
  auto b =
      top->swap_process("sup", {supervisor, {supervisor, spec_path, "--version", "2"}, {}, {}});
  auto answer = b ? top->wait_answer(b.value(), std::chrono::seconds(120))
                  : nucleus::Result<nucleus::Answer>::failure(b.error());
  int64_t end = now_ns();
  int64_t after = probes_done.load(std::memory_order_acquire);
  while (probes_done.load(std::memory_order_acquire) < after + 2000) std::this_thread::yield();
  stop = true;
  probe.join();
  unlink(spec_path.c_str());
  if (!answer || answer->result != NUCLEUS_RESULT_NORMAL) {
    if (level != nullptr) std::fprintf(stderr, "%s", daemon.log().c_str());
    f.error = "the swap failed: outcome " + std::to_string(answer ? answer->message.word[0] : 0) +
              " detail " + std::to_string(answer ? answer->message.word[1] : 0);
    return f;
  }
  std::vector<int64_t> before;
  for (const Probe &p : probes) {
    if (p.sent_ns + p.rtt_ns < begin) before.push_back(p.rtt_ns);
  }
  std::sort(before.begin(), before.end());
  f.probe_rtt_p50_ns = before.empty() ? 0 : static_cast<double>(before[before.size() / 2]);
  for (const Probe &p : probes) {
    if (!p.normal) ++f.probes_lost;
    if (p.sent_ns + p.rtt_ns < begin || p.sent_ns > end) continue;
    ++f.probes_during;
    if (std::getenv("NUCLEUS_BENCH_TRACE") != nullptr) {
      std::fprintf(stderr, "probe at +%.2f ms waited %.2f ms\n", (p.sent_ns - begin) / 1e6,
                   p.rtt_ns / 1e6);
    }
    f.longest_extra_ns =
        std::max(f.longest_extra_ns, static_cast<double>(p.rtt_ns) - f.probe_rtt_p50_ns);
  }
  f.swap_ns = static_cast<double>(end - begin);
  f.nucleusd_pause_ns = static_cast<double>(answer->message.word[5]);
  f.state_bytes = answer->message.word[4];
  top = nucleus::Nucleus();
  daemon.stop(SIGTERM, std::chrono::seconds(30));
  if (level != nullptr) std::fprintf(stderr, "%s", daemon.log().c_str());
  f.ok = true;
  return f;
}

}  // namespace nucleus::bench
