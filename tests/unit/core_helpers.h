// Helpers the Core's unit tests share: what the server would do for them,
// and the names of parametrized tests.
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

#include "core.h"

namespace nucleus::daemon::testing {

// The handle of the next send on the first free buffer of `id`'s claim (0: none).
inline uint64_t free_handle(const Core &core, uint32_t id) {
  for (uint32_t index : core.processes().at(id).slots) {
    if (core.pool().at(index).state == BufferState::kFree) {
      return wire::next_handle(core.pool().handle(index));
    }
  }
  return 0;
}

// Publishes everything waiting for `id`, as the server does, and returns it.
inline std::vector<wire::Event> take_events(Core &core, uint32_t id) {
  std::vector<wire::Event> out;
  wire::Event e;
  while (core.next_event(id, &e)) {
    out.push_back(e);
    core.pop_event(id);
  }
  return out;
}

// A state's or an event's name as part of a parametrized test's name, which
// takes letters, digits and '_' only: "stop-timeout" -> "StopTimeout".
inline std::string camel(const char *name) {
  std::string out;
  bool up = true;
  for (const char *c = name; *c != 0; ++c) {
    if (*c == '-') {
      up = true;
      continue;
    }
    out += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(*c))) : *c;
    up = false;
  }
  return out;
}

// A small Core (64 buffers, 4 of them for notices, 10 processes at most)
// and a program to create entries with.
class SmallCore : public ::testing::Test {
 protected:
  static constexpr uint32_t kPool = 64;
  static constexpr uint32_t kNotices = 4;
  Core core{kPool, kNotices, 10};
  Program program{"/bin/true", "", {}, {}};
};

}  // namespace nucleus::daemon::testing
