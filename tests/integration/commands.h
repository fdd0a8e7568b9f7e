// Driving nucleus-test-program by messages (tests/support/test_program.h):
// what the process-control and swap tests share.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "harness.h"
#include "test_program.h"

namespace nucleus::test {

// A command: word 0 = what, words 1..3 = arguments, words 4..7 = a name.
inline Message command(::test::Command c, const std::string &name = "", uint64_t w1 = 0,
                       uint64_t w2 = 0, uint64_t w3 = 0) {
  Message m{};
  m.word[0] = static_cast<uint64_t>(c);
  m.word[1] = w1;
  m.word[2] = w2;
  m.word[3] = w3;
  std::memcpy(&m.word[4], name.c_str(), std::min<size_t>(name.size(), 31));
  return m;
}

// Sends a command to `who` and returns its answer (word 0 = return code).
inline Message ask(Nucleus &n, const std::string &who, const Message &m) {
  auto b = n.send_message(who, m);
  EXPECT_TRUE(b) << b.message();
  if (!b) return Message{};
  auto a = n.wait_answer(b.value(), kDeadline);
  EXPECT_TRUE(a) << a.message();
  if (!a) return Message{};
  EXPECT_EQ(a->result, NUCLEUS_RESULT_NORMAL) << "answer from " << who;
  return a->message;
}

}  // namespace nucleus::test
