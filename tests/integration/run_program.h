// Runs a program (nucleusctl, nucleusd --check-config) to its end and keeps
// what it printed: both pipes are read while it runs, with a deadline.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace nucleus::test {

struct Ran {
  int code = -1;  // exit code; -1: killed at the deadline or by a signal
  std::string out;
  std::string err;
};

Ran run_program(const std::string &path, const std::vector<std::string> &args,
                std::chrono::milliseconds deadline = std::chrono::seconds(30));

// A program left running with its output readable as it comes.
class Running {
 public:
  Running(const std::string &path, const std::vector<std::string> &args);
  ~Running();
  Running(const Running &) = delete;
  Running &operator=(const Running &) = delete;
  // Reads until `needle` shows on stderr (or stdout when `on_stdout`);
  // false at the deadline or its end without it.
  bool wait_for(const std::string &needle, bool on_stdout = false,
                std::chrono::milliseconds deadline = std::chrono::seconds(20));
  // Waits for its end, reading the rest.
  Ran finish(std::chrono::milliseconds deadline = std::chrono::seconds(20));

 private:
  bool pump(int timeout_ms);
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int out_ = -1;
  int err_ = -1;
  Ran ran_;
};

}  // namespace nucleus::test
