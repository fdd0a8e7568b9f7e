// The Linux side of the programs nucleusd starts (docs/process-control.md):
// launching them (on the Launcher's threads), their bound NUCLEUS_FD
// connections until they attach, reaping them, and stopping, resuming and
// ending subtrees with cgroups or signals. The rules are the Core's
// (process_tree.cc); this object does what the Core decided.
//
// Owns: a Run per entry it started (pid, pidfd, bound socket, cgroup), the
// pids it reaps, the Launcher and the launches in flight, the exits reaped
// before their launch was taken, the stops waiting for their subtree to
// stop, the emptied cgroups to remove, the Subtree (cgroup or signal mode)
// and the progress timer (Kind::kProgress), and the Loop's kLaunched and
// kBound routes.
// Tells others through Reactions: a start's answer, a program's end, a
// removal, a bound attach, a swap's new program that failed or ended.
//
// Threading: nucleusd's loop thread only; launches run on the Launcher's
// threads, which see none of it (a job carries copies).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nucleus_internal/sys.h>

#include "config.h"
#include "core.h"
#include "launcher.h"
#include "log.h"
#include "loop.h"
#include "principal.h"
#include "reactions.h"
#include "requests.h"
#include "subtree.h"

namespace nucleus::daemon {

class Programs {
 public:
  // Registers the kLaunched, kBound and kProgress routes on `loop`.
  Programs(const Config &config, Core &core, Loop &loop, PrincipalCache &principals,
           Reactions &reactions);
  Programs(const Programs &) = delete;
  Programs &operator=(const Programs &) = delete;

  // Picks cgroup or signal mode. False with a message when cgroup mode is
  // demanded and not available.
  bool init(std::string *error);
  // Where programs' output goes by default (<runtime_dir>/output) and the
  // socket they attach to.
  void serve_at(std::string runtime_dir, std::string socket_path) {
    runtime_dir_ = std::move(runtime_dir);
    socket_path_ = std::move(socket_path);
  }
  // Starts the launcher's threads. Until serve(), a start waits for its
  // launch (the boot section); from then on it is answered when its launch
  // comes back.
  bool start_launcher(std::string *error);
  void serve();
  const Subtree &subtree() const { return subtree_; }

  // What the decoder asks (LinuxSide).
  bool launching(uint32_t id) const;
  // Starts the entry's program: on a launcher thread (kAnswerLater), or at
  // once before nucleusd serves (the boot section). With a -errno, *step is
  // the wire::StartStep that failed.
  int spawn(uint32_t id, const Waiter &waiter, uint64_t *step);
  void stop_subtree(uint32_t id);
  void resume_subtree(uint32_t id);
  void end_subtree(uint32_t id);

  // What a swap asks.
  pid_t pid_of(uint32_t id);
  // cgroup mode: the new program `cand` runs in the OS's own group, so
  // whatever stops or ends the OS's subtree reaches it too.
  void share_group(uint32_t os, uint32_t cand);
  // The takeover: the OS's program ends (killed, with what it forked;
  // reaped without a notice) and `cand`'s becomes the entry's. Returns the
  // old pid (0: none) and the new in *new_pid.
  pid_t take_over(uint32_t os, uint32_t cand, uint32_t cand_generation, pid_t *new_pid);
  // A failed swap's new program ends; returns its pid (0: none).
  pid_t end_candidate(uint32_t cand, uint32_t cand_generation);
  // Keeps the progress timer going (a swap in progress has a deadline).
  void tick_soon() { arm_timer(); }

  // SIGCHLD: reaps the programs that ended, then looks at stops and cgroups.
  void reap();
  // At exit: launches in flight end, every program is killed (its pidfd and
  // its group) and reaped with a deadline, so no program can make nucleusd
  // hang; the cgroups go.
  void shutdown();

 private:
  // The Linux side of an entry nucleusd started.
  struct Run {
    uint32_t generation = 0;  // the entry's
    pid_t pid = 0;            // its program now (0: none)
    sys::UniqueFd pidfd;
    sys::UniqueFd bound;     // our end of its NUCLEUS_FD until it attaches
    std::string group;       // cgroup path under the root (cgroup mode)
    bool launching = false;  // its launch is on the launcher's thread
  };
  struct Watch {  // a stop waiting for the subtree to be really stopped
    uint32_t id;
    uint32_t generation;
    int64_t deadline_ns;  // then it fails (limits.stop_timeout_ms)
  };

  Run &run_of(uint32_t id);
  std::string group_of(uint32_t id);
  void arm_launcher();
  void on_launched();
  // Takes a finished launch into the tables; its answer (0 or -errno).
  int launched(LaunchJob &job);
  // A program nucleusd started has ended with this wait status.
  void program_ended(uint32_t id, pid_t pid, int status);
  void arm_bound(uint32_t id);
  void on_bound(uint32_t id);
  // *running: a program that has not stopped (signal mode), else 0.
  bool subtree_stopped(uint32_t id, pid_t *running);
  std::vector<pid_t> subtree_groups(uint32_t id, bool only_free);
  void end_programs(int64_t deadline);
  // A start that failed: why, in the log (a launch timeout rate-limited).
  void log_failed_launch(const Process &p, const LaunchJob &job);
  void check_progress();
  // A stop past its deadline: answered MALFUNCTION (ETIMEDOUT, the pid that
  // did not stop), logged, and what it stopped resumed.
  void fail_stop(uint32_t id, pid_t running);
  // The progress timer fired: reap, look again, and back off.
  void on_progress_tick();
  // Removes the dead groups that are empty (on a launcher thread once
  // nucleusd serves); the others stay for the next tick.
  void remove_dead_groups();
  void arm_timer();

  const Config &config_;
  Core &core_;
  Loop &loop_;
  PrincipalCache &principals_;
  Reactions &reactions_;
  std::string runtime_dir_;
  std::string socket_path_;
  Subtree subtree_;
  std::vector<Run> runs_;                       // indexed by process id
  std::unordered_map<pid_t, uint32_t> by_pid_;  // programs running, to their entries
  Launcher launcher_;
  uint64_t launcher_count_ = 0;     // the done eventfd's value, read by the ring
  bool serving_ = false;            // serve() ran: starts are answered later
  bool stopped_ = false;            // shutdown() ran: nothing is armed again
  bool start_mode_logged_ = false;  // how programs join their cgroup, said once
  // Reaped while launches were in flight and not (yet) known: a program
  // that ended before the loop took its launch.
  std::unordered_map<pid_t, int> early_exits_;
  static constexpr size_t kMaxEarlyExits = 4096;
  std::vector<Watch> stops_;
  std::vector<std::string> dead_groups_;             // cgroups to remove once empty
  std::unordered_set<std::string> removing_groups_;  // of those, on a launcher thread now
  bool timer_armed_ = false;
  __kernel_timespec tick_{};
  // The timer's back-off while something is pending: 1 ms after a new stop
  // or removal, doubling to 100 ms (SIGCHLD reports most stops sooner).
  int64_t tick_ns_ = 0;
  int64_t timer_due_ns_ = 0;          // when the armed timer fires
  __kernel_timespec timer_update_{};  // a timeout update's (read at submit)
  log::RateLimited stop_timeouts_;
  log::RateLimited launch_timeouts_;
};

}  // namespace nucleus::daemon
