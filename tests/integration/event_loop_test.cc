// nucleusd's polling (docs/performance.md, "Polling"): under traffic it
// derives a window from the turnarounds it sees; with no traffic it polls
// nothing; "off" and "fixed" do what they say. Asserted on what nucleusd
// reports, never on a time.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "harness.h"
#include "run_program.h"

namespace nucleus::test {
namespace {

using nlohmann::json;

// Answers every message with word0 + 1 until one says 0.
pid_t spawn_echo(Signal *attached) {
  return spawn([=]() {
    auto n = nucleus::Nucleus::attach("echo");
    if (!n) return 10;
    attached->notify();
    for (;;) {
      auto m = n->wait_message(kDeadline);
      if (!m) return 11;
      uint64_t w = m->message.word[0];
      if (!n->send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, words(w + 1))) return 12;
      if (w == 0) return 0;
    }
  });
}

json event_loop(const Daemon &d) {
  Ran r = run_program(NUCLEUSCTL_PATH, {"--socket", d.socket_path(), "--json", "status"});
  EXPECT_EQ(r.code, 0) << r.err;
  json s = json::parse(r.out, nullptr, false);
  return s.is_object() && s.contains("event_loop") ? s["event_loop"] : json::object();
}

// `rounds` round trips to the echo, each answer checked.
void round_trips(Nucleus &n, uint64_t rounds) {
  for (uint64_t i = 1; i <= rounds; ++i) {
    auto b = n.send_message("echo", words(i));
    ASSERT_TRUE(b) << b.message();
    auto a = n.wait_answer(b.value(), kDeadline);
    ASSERT_TRUE(a) << a.message();
    ASSERT_EQ(a->message.word[0], i + 1);
  }
}

void end_echo(Nucleus &n, pid_t echo) {
  auto b = n.send_message("echo", words(0));
  ASSERT_TRUE(b);
  ASSERT_TRUE(n.wait_answer(b.value(), kDeadline));
  EXPECT_EQ(exit_code(wait_exit(echo)), 0);
}

// Waits (with the deadline) until nucleusd polls no channel.
bool sleeps_when_idle(const Daemon &d) {
  return eventually([&] { return event_loop(d).value("polled_channels", -1) == 0; });
}

// `rounds` round trips between a client and an echo; what nucleusd reports
// right after them. Every channel must go back to sleep afterwards.
json after_round_trips(const Daemon &d, uint64_t rounds) {
  Signal up;
  pid_t echo = spawn_echo(&up);
  EXPECT_EQ(up.wait(), 'x');
  auto n = attach("client");
  round_trips(n, rounds);
  json after = event_loop(d);
  EXPECT_TRUE(sleeps_when_idle(d));
  end_echo(n, echo);
  return after;
}

TEST(EventLoop, AdaptiveWindowComesFromTurnaroundsAndIdleSleeps) {
  // A bound of 10 ms, so that turnarounds on a loaded machine still count.
  Daemon d(R"({"event_loop": {"poll": "adaptive", "poll_window_ns": 10000000}})");
  ASSERT_TRUE(d.ready());
  json before = event_loop(d);
  EXPECT_EQ(before["poll"], "adaptive");
  EXPECT_EQ(before["poll_window_ns"], 0) << "no turnaround seen yet";
  EXPECT_EQ(before["turnarounds"], 0);
  Signal up;
  pid_t echo = spawn_echo(&up);
  ASSERT_EQ(up.wait(), 'x');
  auto n = attach("client");
  round_trips(n, 400);
  json after = event_loop(d);
  // Both ends turn around once per round trip (nearly every one counts:
  // only the first of each has no event before it).
  EXPECT_GE(after["turnarounds"].get<uint64_t>(), 700U) << after;
  EXPECT_GT(after["poll_window_ns"].get<int64_t>(), 0) << after;
  EXPECT_LE(after["poll_window_ns"].get<int64_t>(), 10000000) << after;
  // Both still attached, no traffic: every channel goes back to sleep.
  EXPECT_TRUE(sleeps_when_idle(d));
  // And wakes for the next message.
  round_trips(n, 3);
  end_echo(n, echo);
}

TEST(EventLoop, OffNeverPolls) {
  Daemon d(R"({"event_loop": {"poll": "off"}})");
  ASSERT_TRUE(d.ready());
  json after = after_round_trips(d, 200);
  EXPECT_EQ(after["poll"], "off");
  EXPECT_EQ(after["poll_window_ns"], 0);
  EXPECT_EQ(after["polled_ns_last_second"], 0);
}

TEST(EventLoop, FixedWindowIsTheConfiguredOne) {
  Daemon d(R"({"event_loop": {"poll": "fixed", "poll_window_ns": 50000, "poll_cpu_percent": 10}})");
  ASSERT_TRUE(d.ready());
  json after = after_round_trips(d, 100);
  EXPECT_EQ(after["poll"], "fixed");
  EXPECT_EQ(after["poll_window_ns"], 50000);
  EXPECT_EQ(after["poll_cpu_percent"], 10);
}

TEST(EventLoop, TheRingSaysHowItRunsTaskWork) {
  for (const char *flag : {"true", "false"}) {
    Daemon d(std::string(R"({"event_loop": {"defer_taskrun": )") + flag + "}}");
    ASSERT_TRUE(d.ready());
    // Linux 6.1 has DEFER_TASKRUN; an older kernel falls back and says so.
    if (std::string(flag) == "false") {
      EXPECT_EQ(event_loop(d)["defer_taskrun"], false);
      EXPECT_NE(d.log().find("event_loop.defer_taskrun false"), std::string::npos) << d.log();
    } else {
      EXPECT_NE(d.log().find("io_uring: task work"), std::string::npos) << d.log();
    }
    // Either way messages flow.
    after_round_trips(d, 50);
  }
}

}  // namespace
}  // namespace nucleus::test
