#include "spawn_bench.h"

#include <spawn.h>
#include <sys/wait.h>

#include <cstdio>

#include <nucleus_internal/sys.h>

extern char **environ;

namespace nucleus::bench {

namespace {

const char *kTrue = "/bin/true";

}  // namespace

Figure posix_spawn_true(int iters) {
  std::vector<int64_t> lat;
  int64_t start = sys::monotonic_ns();
  char *argv[] = {const_cast<char *>(kTrue), nullptr};
  for (int i = 0; i < iters; ++i) {
    int64_t t0 = sys::monotonic_ns();
    pid_t pid = 0;
    if (posix_spawn(&pid, kTrue, nullptr, nullptr, argv, environ) != 0) break;
    waitpid(pid, nullptr, 0);
    lat.push_back(sys::monotonic_ns() - t0);
  }
  return summarize("posix_spawn", lat, static_cast<int64_t>(lat.size()),
                   sys::monotonic_ns() - start);
}

Figure nucleus_spawn_true(nucleus::Nucleus &n, int iters) {
  std::vector<int64_t> lat;
  nucleus_t *h = n.c_handle();
  const char *argv[] = {kTrue, nullptr};
  nucleus_program_t program{kTrue, argv, nullptr, nullptr};
  nucleus_claims_t claims{1, 0, 0};
  int64_t start = sys::monotonic_ns();
  for (int i = 0; i < iters; ++i) {
    int64_t t0 = sys::monotonic_ns();
    int rc = nucleus_create_process(h, "spawned", &program, &claims);
    if (rc == 0) rc = nucleus_start_process(h, "spawned");
    if (rc == 0) {
      auto notice = n.wait_message();
      rc = notice ? 0 : notice.error();
      if (rc == 0) (void)n.send_answer(notice->buffer, NUCLEUS_RESULT_NORMAL, Message{});
    }
    if (rc == 0) rc = nucleus_remove_process(h, "spawned");
    if (rc < 0) {
      std::fprintf(stderr, "nucleus_spawn: %s\n", nucleus_strerror(rc));
      break;
    }
    lat.push_back(sys::monotonic_ns() - t0);
  }
  return summarize("nucleus_spawn", lat, static_cast<int64_t>(lat.size()),
                   sys::monotonic_ns() - start);
}

}  // namespace nucleus::bench
