// nucleus-tour: the demo's tour of operating systems on the nucleus. It
// starts a supervisor (an OS) with a small tree of user programs, kills one
// of them and watches the supervisor restart it, then hot-swaps the
// supervisor to a second version while a client sends messages without a
// pause to the supervisor and to one of its children, and ends with what was
// sent, answered and lost.
//
//   nucleus-tour SUPERVISOR WORKER [SPEC_DIR]
#include <signal.h>
#include <unistd.h>

#include <nucleus/personalities.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nucleus/nucleus.hpp>
#include <string>
#include <thread>

namespace {

using nucleus::Message;
using namespace std::chrono_literals;

constexpr auto kWait = 20s;

nucleus::Result<nucleus::Answer> ask(nucleus::Nucleus &n, const std::string &who,
                                     const Message &m) {
  auto b = n.send_message(who, m);
  if (!b) return nucleus::Result<nucleus::Answer>::failure(b.error());
  return n.wait_answer(b.value(), kWait);
}

struct Child {
  std::string name;
  int state = 0;
  uint64_t restarts = 0;
  uint64_t pid = 0;
  bool ready = false;
};

Child status(nucleus::Nucleus &n, uint64_t i) {
  Child c;
  auto a = ask(n, "sup", Message{{nucleus::os::kStatus, i}});
  if (!a || a->result != NUCLEUS_RESULT_NORMAL) return c;
  char name[24] = {};
  std::memcpy(name, &a->message.word[4], 23);
  c.name = name;
  c.state = static_cast<int>(a->message.word[1]);
  c.restarts = a->message.word[2];
  c.pid = a->message.word[3];
  c.ready = a->message.word[7] != 0;
  return c;
}

// Asks until child i runs and is ready with a pid other than `not_pid`.
bool wait_running(nucleus::Nucleus &n, uint64_t i, uint64_t not_pid, Child *out) {
  auto end = std::chrono::steady_clock::now() + kWait;
  while (std::chrono::steady_clock::now() < end) {
    *out = status(n, i);
    if (out->state == NUCLEUS_PROCESS_RUNNING && out->ready && out->pid != not_pid) return true;
  }
  return false;
}

void show_tree(nucleus::Nucleus &n, int count) {
  for (int i = 0; i < count; ++i) {
    Child c = status(n, static_cast<uint64_t>(i));
    std::printf("     sup/%-6s pid %-7llu restarts %llu\n", c.name.c_str(),
                static_cast<unsigned long long>(c.pid),
                static_cast<unsigned long long>(c.restarts));
  }
}

// The supervisor's summary of itself (its pid in word 3, its version in
// word 2).
Message summary_request() {
  return Message{{nucleus::os::kStatus, nucleus::os::kSummary}};
}

// The spec the supervisor reads: db, then web once db is ready, then cache.
std::string write_spec(const std::string &dir, const std::string &worker) {
  std::string spec_path = dir + "/tour-spec.json";
  std::ofstream spec(spec_path);
  spec << R"({"strategy": "one_for_one", "intensity": 5, "period_ms": 10000, "backoff_ms": 10,)"
       << R"( "children": [)"
       << R"({"name": "db", "program": ")" << worker << R"(", "wait_ready": true},)"
       << R"({"name": "web", "program": ")" << worker << R"(", "wait_ready": true},)"
       << R"({"name": "cache", "program": ")" << worker << R"(", "restart": "transient"}]})";
  return spec_path;
}

// 1. The tour creates an OS, the supervisor, and it starts its children.
bool start_supervisor(nucleus::Nucleus &n, const std::string &supervisor,
                      const std::string &spec_path) {
  std::printf(
      "== the supervisor 'sup' (an OS, a child of 'tour') starts db, then web once db\n"
      "   is ready, then cache, from %s\n",
      spec_path.c_str());
  nucleus::Claims claims{20, 6, 0, 0, 1 << 20};
  if (!n.create_process("sup", {supervisor, {supervisor, spec_path}, {}, {}}, claims) ||
      !n.start_process("sup")) {
    std::fprintf(stderr, "nucleus-tour: cannot start the supervisor\n");
    return false;
  }
  Child c;
  for (uint64_t i = 0; i < 3; ++i) {
    if (!wait_running(n, i, 0, &c)) {
      std::fprintf(stderr, "nucleus-tour: child %llu did not start\n",
                   static_cast<unsigned long long>(i));
      return false;
    }
  }
  show_tree(n, 3);
  return true;
}

// 2. A child crashes, and its supervisor restarts it.
bool restart_after_crash(nucleus::Nucleus &n) {
  Child web = status(n, 1);
  std::printf("== kill -SEGV web (pid %llu): the supervisor gets the exit notice and restarts it\n",
              static_cast<unsigned long long>(web.pid));
  kill(static_cast<pid_t>(web.pid), SIGSEGV);
  Child c;
  if (!wait_running(n, 1, web.pid, &c)) return false;
  show_tree(n, 3);
  return true;
}

// What a client sent during the swap, and what came back.
struct Traffic {
  std::atomic<uint64_t> sent{0}, answered{0}, lost{0};
};

// A client of its own sends to sup and to web in turn, without pause, until
// `stop`.
void send_without_pause(const std::atomic<bool> &stop, Traffic *t) {
  auto me = nucleus::Nucleus::attach("client");
  if (!me) return;
  for (uint64_t i = 0; !stop.load(); ++i) {
    bool to_sup = i % 2 == 0;
    Message m = to_sup ? summary_request() : Message{{1}};
    ++t->sent;
    auto a = ask(me.value(), to_sup ? "sup" : "web", m);
    if (a && a->result == NUCLEUS_RESULT_NORMAL) {
      ++t->answered;
    } else {
      ++t->lost;
    }
  }
}

void wait_answered(const Traffic &t, uint64_t count) {
  while (t.answered.load() < count) std::this_thread::yield();
}

// 3. The supervisor is swapped to version 2 while the client's messages flow.
bool swap_under_traffic(nucleus::Nucleus &n, const std::string &supervisor,
                        const std::string &spec_path, Traffic *t) {
  std::printf(
      "== a client sends to sup and to web without pause while sup is swapped to\n"
      "   version 2 (a new program, same children, same name)\n");
  std::atomic<bool> stop{false};
  std::thread client(send_without_pause, std::cref(stop), t);
  wait_answered(*t, 200);
  auto before = ask(n, "sup", summary_request());
  auto b = n.swap_process("sup", {supervisor, {supervisor, spec_path, "--version", "2"}, {}, {}});
  auto a =
      b ? n.wait_answer(b.value(), kWait) : nucleus::Result<nucleus::Answer>::failure(b.error());
  wait_answered(*t, t->answered.load() + 200);
  stop = true;
  client.join();
  if (!a || a->result != NUCLEUS_RESULT_NORMAL) {
    std::printf("   swap failed: outcome %llu\n",
                static_cast<unsigned long long>(a ? a->message.word[0] : 0));
    return false;
  }
  auto after = ask(n, "sup", summary_request());
  std::printf(
      "   swapped: sup pid %llu (version %llu) -> pid %llu (version %llu); %llu bytes of\n"
      "   state handed over; nucleusd paused sup for %.2f ms\n",
      static_cast<unsigned long long>(before ? before->message.word[3] : 0),
      static_cast<unsigned long long>(before ? before->message.word[2] : 0),
      static_cast<unsigned long long>(after ? after->message.word[3] : 0),
      static_cast<unsigned long long>(after ? after->message.word[2] : 0),
      static_cast<unsigned long long>(a->message.word[4]),
      static_cast<double>(a->message.word[5]) / 1e6);
  show_tree(n, 3);
  std::printf("   client: sent %llu, answered %llu, lost %llu\n",
              static_cast<unsigned long long>(t->sent.load()),
              static_cast<unsigned long long>(t->answered.load()),
              static_cast<unsigned long long>(t->lost.load()));
  return true;
}

// 4. Version 2 supervises as version 1 did.
bool version_two_restarts(nucleus::Nucleus &n) {
  std::printf("== version 2 supervises: kill -KILL db, it comes back\n");
  Child db = status(n, 0);
  kill(static_cast<pid_t>(db.pid), SIGKILL);
  Child c;
  if (!wait_running(n, 0, db.pid, &c)) return false;
  show_tree(n, 3);
  return true;
}

// 5. Removing the OS ends its whole tree.
bool remove_supervisor(nucleus::Nucleus &n) {
  std::printf("== remove sup: its whole tree ends\n");
  return n.remove_process("sup").ok();
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: nucleus-tour SUPERVISOR WORKER [SPEC_DIR]\n");
    return 64;
  }
  std::string supervisor = argv[1];
  std::string spec_path = write_spec(argc > 3 ? argv[3] : "/tmp", argv[2]);
  auto n = nucleus::Nucleus::attach("tour");
  if (!n) {
    std::fprintf(stderr, "nucleus-tour: cannot attach: %s\n", n.message().data());
    return 1;
  }
  Traffic traffic;
  if (!start_supervisor(n.value(), supervisor, spec_path) || !restart_after_crash(n.value()) ||
      !swap_under_traffic(n.value(), supervisor, spec_path, &traffic) ||
      !version_two_restarts(n.value()) || !remove_supervisor(n.value())) {
    return 1;
  }
  unlink(spec_path.c_str());
  return traffic.lost.load() == 0 && traffic.sent.load() == traffic.answered.load() ? 0 : 1;
}
