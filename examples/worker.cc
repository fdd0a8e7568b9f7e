// nucleus-worker: a user program for supervisors. It attaches from
// NUCLEUS_FD, tells its supervisor ($NUCLEUS_SUPERVISOR) it is ready, and
// serves messages: word 0 = 1 (kPing) is answered with word 0 = its pid and
// word 1 = messages served; 2 (kExit) exits with word 1; 3 (kCrash) dies of
// SIGSEGV; 4 (kSayReady) sends the ready message now; anything else is
// answered with the same words. It refuses a hot swap (it is no OS).
//
//   nucleus-worker [--exit-after-ms N CODE]   exits with CODE after N ms
//   nucleus-worker --ready-when-told          says ready only on kSayReady
#include <signal.h>
#include <unistd.h>

#include <nucleus/personalities.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <nucleus/nucleus.hpp>
#include <string>

int main(int argc, char **argv) {
  auto n = nucleus::Nucleus::attach("");
  if (!n) return 100;
  int64_t exit_after_ms = -1;
  int exit_code = 0;
  bool ready_when_told = argc > 1 && std::strcmp(argv[1], "--ready-when-told") == 0;
  if (argc > 3 && std::strcmp(argv[1], "--exit-after-ms") == 0) {
    exit_after_ms = std::strtoll(argv[2], nullptr, 10);
    exit_code = std::atoi(argv[3]);
  }
  auto say_ready = [&n]() {
    if (const char *sup = std::getenv("NUCLEUS_SUPERVISOR"); sup != nullptr && *sup != '\0') {
      auto b = n->send_message(sup, nucleus::Message{{nucleus::os::kReady}});
      if (b) (void)n->wait_answer(b.value());
    }
  };
  if (!ready_when_told) say_ready();
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(exit_after_ms);
  uint64_t served = 0;
  for (;;) {
    nucleus::Timeout timeout = nucleus::kForever;
    if (exit_after_ms >= 0) {
      timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
          until - std::chrono::steady_clock::now());
      if (timeout.count() <= 0) return exit_code;
    }
    auto r = n->wait_message(timeout);
    if (!r) {
      if (r.error() == -ETIMEDOUT) continue;
      return 101;
    }
    if (nucleus::Nucleus::is_handover(r.value())) {
      // Not an OS: it has no state to hand over, so a swap of it is refused.
      (void)n->send_answer(r->buffer, NUCLEUS_RESULT_REJECTED, nucleus::Message{});
      continue;
    }
    ++served;
    nucleus::Message a = r->message;
    switch (r->message.word[0]) {
      case 1:
        a = nucleus::Message{};
        a.word[0] = static_cast<uint64_t>(getpid());
        a.word[1] = served;
        break;
      case 2:
        (void)n->send_answer(r->buffer, NUCLEUS_RESULT_NORMAL, nucleus::Message{});
        return static_cast<int>(r->message.word[1]);
      case 3:
        (void)n->send_answer(r->buffer, NUCLEUS_RESULT_NORMAL, nucleus::Message{});
        signal(SIGSEGV, SIG_DFL);
        raise(SIGSEGV);
        break;
      case 4: say_ready(); break;
      default: break;
    }
    (void)n->send_answer(r->buffer, NUCLEUS_RESULT_NORMAL, a);
  }
}
