// nucleus-echo: answers every message with the same eight words.
//   nucleus-echo [NAME]   (default name: echo; started by a parent through
//                          the nucleus, with no NAME: the name it was given)
// Ends when the nucleus shuts down or on SIGTERM.
#include <nucleus/nucleus.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char **argv) {
  bool started = argc <= 1 && std::getenv("NUCLEUS_FD") != nullptr;
  std::string name = argc > 1 ? argv[1] : (started ? "" : "echo");
  auto n = nucleus::Nucleus::attach(name);
  if (!n) {
    std::fprintf(stderr, "nucleus-echo: attach as %s: %s\n", name.c_str(), n.message().data());
    return 1;
  }
  std::fprintf(stderr, "nucleus-echo: serving as %s\n", std::string(n->name()).c_str());
  for (;;) {
    auto m = n->wait_message();
    if (!m) {
      if (m.error() == -ESHUTDOWN) return 0;
      std::fprintf(stderr, "nucleus-echo: wait_message: %s\n", m.message().data());
      return 1;
    }
    if (auto a = n->send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, m->message); !a) {
      std::fprintf(stderr, "nucleus-echo: send_answer: %s\n", a.message().data());
      return 1;
    }
  }
}
