// nucleus-test-program: a program the integration tests start through the
// nucleus. It attaches from NUCLEUS_FD and then does what messages ask, so a
// test can drive every level of a process tree, and keeps the exit
// notices it receives for the test to collect.
//
//   nucleus-test-program serve        attach, then serve commands (below)
//   nucleus-test-program exit N       attach, then exit(N)
//   nucleus-test-program noattach     never attach; wait to be killed
//   nucleus-test-program expect K V D attach, then exit 0 when $K is V and
//                                     the working directory is D, else 1
//   nucleus-test-program impostor N   ask to attach on NUCLEUS_FD under name
//                                     N; exit with the refusal's errno
//   nucleus-test-program drop-attach self|child
//                                     drop to uid and gid 65534 (in this
//                                     process, or in a child it forks and
//                                     passes NUCLEUS_FD to), then attach on
//                                     it; exit with the refusal's errno, or
//                                     0 once attached it has created and
//                                     started a child "payload" (sleep 600)
//
// A command is a message: word 0 = Command, words 1..3 = claims (create)
// or an argument, words 4..7 = a child's name. The answer: word 0 = the
// return code, then what the command gives back.
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nucleus/wire.h>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <nucleus/nucleus.hpp>
#include <span>
#include <string>

#include "test_program.h"

namespace {

using nucleus::Message;

std::string name_in(const Message &m) {
  char name[32] = {};
  std::memcpy(name, &m.word[4], sizeof(name) - 1);
  return name;
}

void put_process(const nucleus_process_t &p, Message *a) {
  a->word[1] = static_cast<uint64_t>(p.state);
  a->word[2] = static_cast<uint64_t>(p.pid);
  a->word[3] = p.given.buffers;
  a->word[4] = p.used.buffers;
  a->word[5] = p.given.processes;
  a->word[6] = p.used.processes;
  a->word[7] = static_cast<uint64_t>(p.exit_kind) << 32 | static_cast<uint32_t>(p.exit_value);
}

// Forks a helper that leaves the program's session and group (setsid) and
// traces the program, letting it go on from every SIGSTOP: a program that
// no signal can stop, so a stop of it can only time out. The helper ends
// with the program. Returns the helper's pid once it traces, or -1.
pid_t shield() {
  pid_t program = getpid();
  int ready[2];
  if (pipe(ready) < 0) return -1;
  pid_t helper = fork();
  if (helper == 0) {
    close(ready[0]);
    setsid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (ptrace(PTRACE_SEIZE, program, nullptr, nullptr) < 0) _exit(1);
    if (write(ready[1], "x", 1) != 1) _exit(1);
    close(ready[1]);
    for (;;) {
      int status = 0;
      if (waitpid(program, &status, __WALL) < 0 || !WIFSTOPPED(status)) _exit(0);
      int sig = WSTOPSIG(status);
      // A signal-delivery stop for SIGSTOP: drop it. A group stop (an
      // event stop under PTRACE_SEIZE): go on. Any other signal: deliver it.
      bool drop = sig == SIGSTOP || sig == SIGTSTP || (status >> 16) != 0;
      ptrace(PTRACE_CONT, program, nullptr, drop ? 0 : sig);
    }
  }
  close(ready[1]);
  char c = 0;
  ssize_t n = helper < 0 ? -1 : read(ready[0], &c, 1);
  close(ready[0]);
  return n == 1 ? helper : -1;
}

int serve(const char *self, uint64_t tag, const std::string &behaviour) {
  auto n = nucleus::Nucleus::attach("");
  if (!n) return 100;
  nucleus_t *h = n->c_handle();
  std::deque<nucleus_exit_notice_t> notices;
  std::deque<nucleus::Buffer> notice_waiters;
  uint64_t served = 0;
  std::deque<nucleus::Received> backlog;  // inherited messages, served first
  if (auto state = n->handover_state()) {
    if (state->size() == sizeof(served)) std::memcpy(&served, state->data(), sizeof(served));
    if (behaviour == "crash") {
      signal(SIGSEGV, SIG_DFL);
      raise(SIGSEGV);
    }
    if (behaviour == "sigkill") raise(SIGKILL);  // attached, has its state: killed
    if (behaviour == "never-ready") {
      for (;;) pause();
    }
    if (!n->swap_ready()) return 102;
    // What the old program received and did not answer: served as if new
    // (its state is only the count, so it kept no other record of them).
    for (auto &r : n->inherited()) backlog.push_back(r);
  }
  auto answer_notice_waiters = [&]() {
    while (!notices.empty() && !notice_waiters.empty()) {
      Message a{};
      const nucleus_exit_notice_t &x = notices.front();
      a.word[0] = 0;
      a.word[1] = static_cast<uint64_t>(x.exit_kind);
      a.word[2] = static_cast<uint64_t>(x.exit_value);
      a.word[3] = static_cast<uint64_t>(x.pid);
      std::memcpy(&a.word[4], x.name, 31);
      (void)n->send_answer(notice_waiters.front(), NUCLEUS_RESULT_NORMAL, a);
      notices.pop_front();
      notice_waiters.pop_front();
    }
  };
  for (;;) {
    nucleus::Result<nucleus::Received> r = nucleus::Received{};
    bool inherited = !backlog.empty();  // counted by the program that received it
    if (inherited) {
      r = backlog.front();
      backlog.pop_front();
    } else {
      r = n->wait_message();
    }
    if (!r) return 101;
    if (nucleus::Nucleus::is_handover(r.value())) {
      if (behaviour == "no-handover") continue;
      if (behaviour == "refuse") {
        (void)n->send_answer(r->buffer, NUCLEUS_RESULT_REJECTED, Message{});
        continue;
      }
      if (behaviour == "bad-offset") {
        Message a{};
        a.word[0] = r->message.word[1];  // the data area's size: nothing fits after it
        a.word[1] = sizeof(served);
        (void)n->send_answer(r->buffer, NUCLEUS_RESULT_NORMAL, a);
        continue;
      }
      std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t *>(&served), sizeof(served));
      (void)n->hand_over(r->buffer, bytes);
      continue;  // ended at the takeover, or served on if the swap fails
    }
    if (!inherited) ++served;
    nucleus_exit_notice_t notice{};
    if (nucleus_parse_exit_notice(r->sender.c_str(), &r->message, &notice) == 0) {
      notices.push_back(notice);
      (void)n->send_answer(r->buffer, NUCLEUS_RESULT_NORMAL, Message{});
      answer_notice_waiters();
      continue;
    }
    const Message &m = r->message;
    std::string child = name_in(m);
    Message a{};
    int rc = 0;
    switch (static_cast<test::Command>(m.word[0])) {
      case test::Command::kCreate: {
        // word 3: 0 serves, N exits with N - 1 at once.
        std::string code = m.word[3] == 0 ? "" : std::to_string(m.word[3] - 1);
        const char *argv[] = {self, m.word[3] == 0 ? "serve" : "exit",
                              m.word[3] == 0 ? nullptr : code.c_str(), nullptr};
        nucleus_program_t program{self, argv, nullptr, nullptr};
        nucleus_claims_t claims{m.word[1], m.word[2], 0};
        rc = nucleus_create_process(h, child.c_str(), &program, &claims);
        break;
      }
      case test::Command::kStart: rc = nucleus_start_process(h, child.c_str()); break;
      case test::Command::kStop: {
        nucleus_buffer_t b = 0;
        rc = nucleus_stop_process(h, child.c_str(), &b);
        if (rc == 0) {
          int result = 0;
          rc = nucleus_wait_answer(h, b, -1, &result, nullptr);
          a.word[1] = static_cast<uint64_t>(result);
        }
        break;
      }
      case test::Command::kRemove: rc = nucleus_remove_process(h, child.c_str()); break;
      case test::Command::kGet: {
        nucleus_process_t p{};
        rc = nucleus_get_process(h, child.c_str(), &p);
        if (rc == 0) put_process(p, &a);
        break;
      }
      case test::Command::kList: {
        nucleus_process_t kids[16];
        size_t count = 0;
        rc = nucleus_list_children(h, kids, 16, &count);
        a.word[1] = count;
        for (size_t i = 0; i < count && i < 6; ++i) {
          a.word[2 + i] =
              static_cast<uint64_t>(kids[i].state) << 32 | static_cast<uint32_t>(kids[i].pid);
        }
        break;
      }
      case test::Command::kStats: {
        nucleus_stats_t s{};
        rc = nucleus_get_stats(h, &s);
        a.word[1] = s.claim_buffers;
        a.word[2] = s.claim_used;
        size_t data_bytes = 0;
        nucleus_data_area(h, &data_bytes);
        a.word[3] = data_bytes;
        break;
      }
      case test::Command::kFork: {
        pid_t pid = fork();
        if (pid == 0) {
          for (;;) pause();
        }
        rc = pid < 0 ? -1 : 0;
        a.word[1] = static_cast<uint64_t>(pid);
        break;
      }
      case test::Command::kNotice:
        notice_waiters.push_back(r->buffer);
        answer_notice_waiters();
        continue;
      case test::Command::kExit:
        (void)n->send_answer(r->buffer, NUCLEUS_RESULT_NORMAL, a);
        std::exit(static_cast<int>(m.word[1]));
      case test::Command::kCrash:
        (void)n->send_answer(r->buffer, NUCLEUS_RESULT_NORMAL, a);
        // The default action, even where a sanitizer installed a handler
        // (ASan's exits with 1).
        signal(SIGSEGV, SIG_DFL);
        raise(SIGSEGV);
        break;
      case test::Command::kEcho:
        a.word[1] = tag;
        a.word[2] = served - 1;
        a.word[3] = static_cast<uint64_t>(getpid());
        break;
      case test::Command::kSend: {
        // Sends to a name and keeps the buffer out (claims in use).
        auto b = n->send_message(child, Message{});
        rc = b ? 0 : b.error();
        break;
      }
      case test::Command::kSetpgid:
        rc = setpgid(0, static_cast<pid_t>(m.word[1])) == 0 ? 0 : -errno;
        a.word[1] = static_cast<uint64_t>(getpgid(0));
        a.word[2] = static_cast<uint64_t>(getsid(0));
        break;
      case test::Command::kShield: {
        pid_t helper = shield();
        rc = helper < 0 ? -1 : 0;
        a.word[1] = static_cast<uint64_t>(helper);
        break;
      }
      case test::Command::kTraceMe:
        rc = ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) == 0 ? 0 : -errno;
        // Ignored by default, but a tracee stops for its tracer on any signal.
        if (rc == 0) raise(SIGWINCH);
        break;
      case test::Command::kNameClock:
        rc = nucleus_create_external_process(h, child.c_str(), NUCLEUS_DEVICE_CLOCK, nullptr);
        break;
      default: rc = -EINVAL; break;
    }
    a.word[0] = static_cast<uint64_t>(static_cast<int64_t>(rc));
    (void)n->send_answer(r->buffer, NUCLEUS_RESULT_NORMAL, a);
  }
}

// Speaks the attach handshake on the inherited connection itself, under a
// name of its choosing, which libnucleus never does.
int impostor(const char *name) {
  const char *fd_text = std::getenv("NUCLEUS_FD");
  if (fd_text == nullptr) return 200;
  int fd = std::atoi(fd_text);
  nucleus::wire::AttachRequest request{};
  request.magic = nucleus::wire::kMagic;
  request.abi_version = nucleus::wire::kAbiVersion;
  std::strncpy(request.name, name, sizeof(request.name) - 1);
  if (send(fd, &request, sizeof(request), MSG_NOSIGNAL) != sizeof(request)) return 201;
  nucleus::wire::AttachReply reply{};
  if (recv(fd, &reply, sizeof(reply), 0) != sizeof(reply)) return 202;
  return -reply.status;
}

// Another uid takes the connection nucleusd bound for this program: the
// program drops to it, or a child it forks does (issue 20, finding 4).
int drop_attach(bool in_child) {
  pid_t pid = in_child ? fork() : 0;
  if (pid < 0) return 198;
  if (pid > 0) {
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return 197;
    return WEXITSTATUS(status);
  }
  constexpr uid_t kNobody = 65534;
  if (setgroups(0, nullptr) < 0 || setresgid(kNobody, kNobody, kNobody) < 0 ||
      setresuid(kNobody, kNobody, kNobody) < 0) {
    return 196;
  }
  auto n = nucleus::Nucleus::attach("");
  if (!n) return -n.error();
  // Attached as the entry: what it creates would inherit the entry's owner.
  nucleus::Claims claims{};
  nucleus::Program program{"/bin/sleep", {"sleep", "600"}, {}, "", "", ""};
  if (!n->create_process("payload", program, claims).ok()) return 195;
  if (!n->start_process("payload").ok()) return 194;
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  std::string mode = argc > 1 ? argv[1] : "serve";
  if (mode == "serve") {
    return serve(argv[0], argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 0,
                 argc > 3 ? argv[3] : "");
  }
  if (mode == "exit") {
    auto n = nucleus::Nucleus::attach("");
    return argc > 2 ? std::atoi(argv[2]) : 0;
  }
  if (mode == "expect" && argc > 4) {
    auto n = nucleus::Nucleus::attach("");
    if (!n) return 100;
    const char *value = std::getenv(argv[2]);
    char cwd[4096] = {};
    bool ok = value != nullptr && std::strcmp(value, argv[3]) == 0 &&
              getcwd(cwd, sizeof(cwd)) != nullptr && std::strcmp(cwd, argv[4]) == 0;
    return ok ? 0 : 1;
  }
  if (mode == "impostor" && argc > 2) return impostor(argv[2]);
  if (mode == "reserve" && argc > 2) {  // exits with the errno of reserving argv[2] (0: reserved)
    auto n = nucleus::Nucleus::attach("");
    if (!n) return 100;
    auto r = n->reserve_process(argv[2]);
    return r ? 0 : -r.error();
  }
  if (mode == "drop-attach" && argc > 2) return drop_attach(std::strcmp(argv[2], "child") == 0);
  if (mode == "noattach") {
    for (;;) pause();
  }
  return 2;
}
