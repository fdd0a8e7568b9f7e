// Built against the installed package with find_package(nucleus) only
// (tests/packaging/package_test.sh): the C++ API, a message to the null
// device.
#include <nucleus/nucleus.hpp>

#include <iostream>

int main() {
  auto n = nucleus::Nucleus::attach("hello-cmake");
  if (!n) {
    std::cerr << "hello-cmake: attach: " << n.message() << "\n";
    return 1;
  }
  nucleus::Message m{{7}};
  auto b = n->send_message("null", m);
  if (!b) return 1;
  auto a = n->wait_answer(b.value(), std::chrono::seconds(5));
  if (!a || a->result != NUCLEUS_RESULT_NORMAL) {
    std::cerr << "hello-cmake: no normal answer\n";
    return 1;
  }
  std::cout << "hello-cmake: answer from null: result " << a->result << "\n";
  return 0;
}
