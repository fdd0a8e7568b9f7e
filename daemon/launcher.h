// The threads that start nucleusd's programs (launch.h), and the watchdog
// that bounds how long a start can hold one (decision 62).
//
// Owns: kThreads worker threads and their replacements, a watchdog thread,
// the jobs to do and done, the eventfd that tells the loop of finished jobs,
// and the watchdog's book (LaunchDeadlines). All of it lives in a State that
// the threads share, so that a thread the kernel holds past shutdown can be
// left behind without a dangling reference.
//
// Threading: the public calls are the loop's (one thread). The workers see
// only their jobs, which carry copies of everything a start needs, never the
// loop's tables, ring or log; each worker is suspended in the kernel while
// its child runs before exec (CLONE_VFORK). The watchdog only signals
// children through their pidfds and starts replacement threads. Everything
// shared is under State's mutex but the ChildSlots, which the kernel writes.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nucleus_internal/sys.h>

#include "launch.h"
#include "principal.h"
#include "process_table.h"

namespace nucleus::daemon {

// One program to start, with everything it needs copied in (the loop goes
// on changing its tables while the launcher works), and who waits for it.
struct LaunchJob {
  Program program;
  Principal owner;
  bool set_ids = false;
  sys::UniqueFd nucleus_fd;  // the program's end of its bound connection
  sys::UniqueFd output_fd;   // none: inherit nucleusd's
  sys::UniqueFd cgroup_fd;   // none: no cgroup
  uint64_t memory_limit = 0;
  std::string socket_path;
  // Its child must have exec'd this long after the launch began
  // (limits.launch_timeout_ms), or it is killed and the start fails.
  int64_t timeout_ns = 0;
  // The loop's bookkeeping: the entry, and the request to answer when done.
  uint32_t id = 0;
  uint32_t generation = 0;
  uint32_t requester = UINT32_MAX;  // UINT32_MAX: nobody waits for an answer
  uint32_t requester_serial = 0;
  uint32_t seq = 0;
  uint64_t ticket = 0;  // the Launcher's number for it
  // The result: 0 and launched filled, or -errno: -ETIMEDOUT when its child
  // did not exec in time, -EAGAIN when an earlier launch of its owner is
  // still held in the kernel, -ECANCELED when nucleusd stopped first.
  int result = 0;
  Launched launched;
  // Its child was killed and the kernel had not ended it after the grace:
  // answered without its thread, which is left behind (`stuck` of them
  // now, at most Launcher::kMaxStuck replaced).
  bool abandoned = false;
  int stuck = 0;
  // Not a launch but a chore off the loop (removing an emptied cgroup):
  // run instead of launching; its return value in chore_ok.
  std::function<bool()> chore;
  std::string chore_name;
  bool chore_ok = false;
};

// Runs the job's launch() on the calling thread and fills its result.
void run_launch(LaunchJob *job, const char *search_path, LaunchWatch *watch);

// Starts programs on threads of its own (kThreads), so that nucleusd's loop
// goes on serving while a start waits for the exec (or for a program path
// or working directory on a slow or hung file system). One owner's starts
// run one at a time, in order. A watchdog kills a child that has not
// exec'd by its job's deadline, so no owner holds a thread (or its own
// later starts) for longer; a child the kernel cannot end even then leaves
// its thread behind, replaced. The loop submits jobs and learns of finished
// ones through done_fd(), an eventfd it reads in its ring; it takes them
// with take_done().
class Launcher {
 public:
  static constexpr int kThreads = 4;
  // Threads left in a launch the kernel would not end (see abandoned): at
  // most this many are replaced; past it, fewer threads serve.
  static constexpr int kMaxStuck = 16;
  // How long a killed child may take to end before its thread is left
  // behind (SIGKILL ends a stopped or frozen child at once; only a wait the
  // kernel cannot interrupt takes longer).
  static constexpr int64_t kGraceNs = 1000000000;

  Launcher();
  ~Launcher();
  Launcher(const Launcher &) = delete;
  Launcher &operator=(const Launcher &) = delete;

  bool start(std::string *error);
  // Kills every child before its exec at once, waits for the threads until
  // `deadline_ns` (monotonic), and leaves behind any the kernel still holds;
  // jobs not begun come back from take_done() with -ECANCELED.
  void stop(int64_t deadline_ns);
  bool running() const { return running_; }
  int done_fd() const;
  void submit(std::unique_ptr<LaunchJob> job);
  // Submits `job` and waits for it (the boot section, before nucleusd
  // serves): bounded by its deadline and the grace.
  std::unique_ptr<LaunchJob> run_now(std::unique_ptr<LaunchJob> job);
  // PTRACE_DETACH of `pid`, giving it `signal`: a program that called
  // PTRACE_TRACEME made the launcher thread that started it its tracer, and
  // only that thread may detach. Done quietly: nothing comes back.
  void detach_tracee(pid_t pid, int signal);
  std::vector<std::unique_ptr<LaunchJob>> take_done();
  size_t in_flight() const { return in_flight_; }  // submitted, not yet taken

 private:
  struct State;
  uint64_t enqueue(std::unique_ptr<LaunchJob> job);  // its ticket
  std::shared_ptr<State> state_;
  bool running_ = false;
  size_t in_flight_ = 0;  // the loop's count
};

}  // namespace nucleus::daemon
