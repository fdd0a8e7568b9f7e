// nucleus-tree-demo: a small parent OS, in the C++ API. It creates a child
// that runs nucleus-echo, talks to it, stops it, resumes it, watches a second
// child fail, and removes both, printing what the nucleus reports.
//   nucleus-tree-demo PATH-OF-NUCLEUS-ECHO
#include <nucleus/nucleus.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>

namespace {

using nucleus::Nucleus;

const char *state_name(int state) {
  switch (state) {
    case NUCLEUS_PROCESS_CREATED: return "created";
    case NUCLEUS_PROCESS_RUNNING: return "running";
    case NUCLEUS_PROCESS_STOPPING: return "stopping";
    case NUCLEUS_PROCESS_STOPPED: return "stopped";
    case NUCLEUS_PROCESS_EXITED: return "exited";
    default: return "?";
  }
}

void show(Nucleus &n, const std::string &name) {
  auto p = n.get_process(name);
  if (!p) {
    std::printf("   %-8s %s\n", name.c_str(), p.message().data());
    return;
  }
  std::printf("   %-8s %-8s pid %-7lld buffers %llu (used %llu)\n", p->name, state_name(p->state),
              static_cast<long long>(p->pid), static_cast<unsigned long long>(p->given.buffers),
              static_cast<unsigned long long>(p->used.buffers));
}

int fail(const char *what, std::string_view why) {
  std::fprintf(stderr, "nucleus-tree-demo: %s: %.*s\n", what, static_cast<int>(why.size()),
               why.data());
  return 1;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2) return fail("usage", "nucleus-tree-demo PATH-OF-NUCLEUS-ECHO");
  constexpr auto kWait = std::chrono::seconds(10);
  auto attached = Nucleus::attach("demo-os");
  if (!attached) return fail("attach", attached.message());
  Nucleus *os = &attached.value();
  auto own = os->get_stats();
  std::printf("   demo-os holds %llu buffers\n",
              static_cast<unsigned long long>(own ? own->claim_buffers : 0));

  nucleus::Program echo{argv[1], {"nucleus-echo"}, {}, ""};
  if (auto r = os->create_process("worker", echo, nucleus::Claims{4, 0, 0}); !r) {
    return fail("create worker", r.message());
  }
  show(*os, "worker");
  if (auto r = os->start_process("worker"); !r) return fail("start worker", r.message());
  nucleus::Message m{};
  m.word[0] = 7;
  auto sent = os->send_message("worker", m);
  if (!sent) return fail("send", sent.message());
  auto answer = os->wait_answer(sent.value(), kWait);
  if (!answer) return fail("answer", answer.message());
  std::printf("   worker echoed %llu\n", static_cast<unsigned long long>(answer->message.word[0]));
  show(*os, "worker");

  auto stop = os->stop_process("worker");
  if (!stop) return fail("stop", stop.message());
  if (auto a = os->wait_answer(stop.value(), kWait); !a) return fail("stop answer", a.message());
  std::printf("   stop answered: the worker's whole subtree is stopped\n");
  show(*os, "worker");
  sent = os->send_message("worker", m);  // waits in its queue while it is stopped
  if (auto r = os->start_process("worker"); !r) return fail("resume", r.message());
  answer = os->wait_answer(sent.value(), kWait);
  if (!answer) return fail("answer after resume", answer.message());
  std::printf("   resumed; the message sent while it was stopped was answered\n");

  nucleus::Program false_program{"false", {"false"}, {}, ""};
  if (auto r = os->create_process("failing", false_program, nucleus::Claims{1, 0, 0}); !r) {
    return fail("create failing", r.message());
  }
  if (auto r = os->start_process("failing"); !r) return fail("start failing", r.message());
  auto notice_message = os->wait_message(kWait);
  if (!notice_message) return fail("notice", notice_message.message());
  auto notice = Nucleus::exit_notice(notice_message.value());
  if (!notice) return fail("notice", "a message that is no exit notice");
  std::printf("   notice from %s: child %s (pid %lld) %s %d\n", notice_message->sender.c_str(),
              notice->name, static_cast<long long>(notice->pid),
              notice->exit_kind == NUCLEUS_EXIT_SIGNAL ? "killed by signal" : "exited with",
              notice->exit_value);
  (void)os->send_answer(notice_message->buffer, NUCLEUS_RESULT_NORMAL, nucleus::Message{});

  auto kids = os->list_children();
  if (!kids) return fail("list", kids.message());
  std::printf("   children of demo-os:\n");
  for (const nucleus::ProcessInfo &k : kids.value()) show(*os, k.name);

  for (const char *name : {"worker", "failing"}) {
    if (auto r = os->remove_process(name); !r) return fail("remove", r.message());
  }
  own = os->get_stats();
  std::printf("   removed both; demo-os holds %llu buffers again\n",
              static_cast<unsigned long long>(own ? own->claim_buffers : 0));
  return 0;
}
