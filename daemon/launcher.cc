#include "launcher.h"

#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>

#include "launch_deadlines.h"

namespace nucleus::daemon {

namespace {

constexpr size_t kSlots = Launcher::kThreads + Launcher::kMaxStuck;
static_assert(kSlots <= 32, "a bit per slot in a 32-bit mask");
// What stop() waits for its threads when nothing said how long.
constexpr int64_t kDefaultStopWaitNs = 5000000000;

std::chrono::steady_clock::time_point steady_at(int64_t monotonic_ns) {
  // libstdc++'s steady_clock is CLOCK_MONOTONIC, sys::monotonic_ns's clock.
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(monotonic_ns));
}

}  // namespace

void run_launch(LaunchJob *job, const char *search_path, LaunchWatch *watch) {
  LaunchSpec spec;
  spec.program = &job->program;
  spec.owner = &job->owner;
  spec.set_ids = job->set_ids;
  spec.nucleus_fd = job->nucleus_fd.get();
  spec.output_fd = job->output_fd ? job->output_fd.get() : -1;
  spec.cgroup_fd = job->cgroup_fd ? job->cgroup_fd.get() : -1;
  spec.memory_limit = job->memory_limit;
  spec.socket_path = job->socket_path;
  spec.search_path = search_path;
  spec.watch = watch;
  job->result = launch(spec, &job->launched);
  // Its end of the connection is the program's now; ours must not keep it.
  job->nucleus_fd.reset();
  job->output_fd.reset();
  job->cgroup_fd.reset();
}

// Everything the threads share. The mutex guards all of it but the
// ChildSlots, which the kernel writes while their worker waits in clone,
// and what start() set before any thread began (done_fd, search_path).
struct Launcher::State {
  struct Detach {
    pid_t pid;
    int signal;
    uint32_t tried;  // a bit per slot whose thread tried
  };
  // One worker thread and what the watchdog sees of its launch.
  struct Slot final : LaunchWatch {
    State *state = nullptr;
    size_t index = 0;
    ChildSlot child;
    std::thread thread;
    const LaunchJob *job = nullptr;  // the launch armed, until finish
    bool finished = false;           // finish() came for the launch armed
    LaunchDeadlines::State outcome = LaunchDeadlines::State::kIdle;
    bool exited = false;  // its worker has returned

    ChildSlot &slot() override { return child; }
    Taken finish() override {
      std::lock_guard<std::mutex> lock(state->mutex);
      return finish_locked();
    }
    // The slot is cleared under the mutex: once the watchdog can no longer
    // see the pidfd, the launch may close it or hand it on.
    Taken finish_locked() {
      finished = true;
      job = nullptr;
      Taken taken;
      taken.pidfd = child.pidfd.exchange(-1);
      child.pid.store(0);
      outcome = state->deadlines.disarm(index);
      taken.killed = outcome == LaunchDeadlines::State::kKilled ||
                     outcome == LaunchDeadlines::State::kAbandoned;
      return taken;
    }
  };

  State() {
    for (size_t i = 0; i < slots.size(); ++i) {
      slots[i].state = this;
      slots[i].index = i;
    }
  }

  std::mutex mutex;
  std::condition_variable wake;     // workers: a job, a detach, stop
  std::condition_variable watch;    // the watchdog: a launch armed, stop, quit
  std::condition_variable settled;  // run_now and stop: a job done, a worker gone
  std::deque<std::unique_ptr<LaunchJob>> todo;
  std::deque<std::unique_ptr<LaunchJob>> done;
  bool stopping = false;
  bool quit = false;  // the watchdog ends
  sys::UniqueFd done_fd;
  std::string search_path;
  bool has_search_path = false;
  std::array<Slot, kSlots> slots;
  size_t next_slot = Launcher::kThreads;  // a replacement's
  uint32_t live = 0;                      // a bit per slot whose worker serves
  int stuck = 0;                          // threads left behind, still held
  LaunchDeadlines deadlines{kSlots, Launcher::kGraceNs};
  std::vector<uint32_t> busy_uids;   // owners with a launch in progress
  std::vector<uint32_t> stuck_uids;  // owners whose launch left its thread behind
  std::vector<Detach> detaches;
  std::thread watchdog_thread;
  uint64_t tickets = 0;

  // Under the mutex: a finished job for the loop (and run_now).
  void post(std::unique_ptr<LaunchJob> job) {
    done.push_back(std::move(job));
    settled.notify_all();
    uint64_t one = 1;
    (void)!write(done_fd.get(), &one, sizeof(one));
  }

  // Under the mutex. False when no thread could be made.
  bool start_worker(size_t index, const std::shared_ptr<State> &self) {
    try {
      slots[index].thread = std::thread([self, index] { self->work(index); });
    } catch (const std::system_error &) {
      return false;
    }
    live |= 1U << index;
    return true;
  }

  // Under the mutex: the owner's starts that wait in the queue fail at
  // once: they would wait for a thread the kernel holds.
  void refuse_queued(uint32_t uid) {
    for (auto it = todo.begin(); it != todo.end();) {
      if (!(*it)->chore && (*it)->owner.uid == uid) {
        (*it)->result = -EAGAIN;
        (*it)->launched.failed_step = wire::kStartStepProcess;
        post(std::move(*it));
        it = todo.erase(it);
      } else {
        ++it;
      }
    }
  }

  void work(size_t index);
  void run_watchdog(const std::shared_ptr<State> &self);
  void abandon(size_t index, const std::shared_ptr<State> &self);
};

void Launcher::State::work(size_t index) {
  const uint32_t me = 1U << index;
  Slot &slot = slots[index];
  for (;;) {
    std::unique_ptr<LaunchJob> job;
    {
      std::unique_lock<std::mutex> lock(mutex);
      // The first job whose owner has no launch in progress: a start that
      // hangs holds its owner's later starts, and one thread, not everyone's
      // (and not for longer than its deadline: the watchdog).
      auto mine = [&] {
        return std::any_of(detaches.begin(), detaches.end(),
                           [&](const Detach &d) { return (d.tried & me) == 0; });
      };
      auto first_free = [&] {
        return std::find_if(todo.begin(), todo.end(), [&](const auto &j) {
          return std::find(busy_uids.begin(), busy_uids.end(), j->owner.uid) == busy_uids.end();
        });
      };
      wake.wait(lock, [&] { return stopping || mine() || first_free() != todo.end(); });
      if (stopping) {
        slot.exited = true;
        live &= ~me;
        settled.notify_all();
        return;
      }
      // A tracee is detached by its tracer, the thread that started it:
      // each thread tries until one succeeds or all have tried.
      for (auto d = detaches.begin(); d != detaches.end();) {
        if ((d->tried & me) != 0) {
          ++d;
          continue;
        }
        d->tried |= me;
        bool done_with = ptrace(PTRACE_DETACH, d->pid, nullptr, d->signal) == 0 || errno != ESRCH;
        d = done_with || (d->tried & live) == live ? detaches.erase(d) : d + 1;
      }
      // Found now, under the lock, after the wait: an iterator kept from a
      // wake-up that came for a detach may name a job queued since, whose
      // owner is busy (a tracee stopping wakes every thread).
      auto next = first_free();
      if (next == todo.end()) continue;
      job = std::move(*next);
      todo.erase(next);
      busy_uids.push_back(job->owner.uid);
      if (!job->chore) {
        // Before the clone: the kernel fills the slot, the watchdog reads it.
        slot.child.pidfd.store(-1);
        slot.child.pid.store(0);
        slot.job = job.get();
        slot.finished = false;
        deadlines.arm(index, sys::monotonic_ns() + job->timeout_ns);  // not stopping: true
        watch.notify_one();
      }
    }
    if (job->chore) {
      job->chore_ok = job->chore();
    } else {
      run_launch(job.get(), has_search_path ? search_path.c_str() : nullptr, &slot);
    }
    uint32_t uid = job->owner.uid;
    bool left_behind = false;
    {
      std::lock_guard<std::mutex> lock(mutex);
      // A launch that failed before its clone did not finish(): no child.
      if (!job->chore && !slot.finished) slot.finish_locked();
      left_behind = !job->chore && slot.outcome == LaunchDeadlines::State::kAbandoned;
      busy_uids.erase(std::find(busy_uids.begin(), busy_uids.end(), uid));
      if (left_behind) {
        // Back at last. Its start was answered when it was left behind
        // (abandon), and another thread took its place: this one ends.
        stuck_uids.erase(std::find(stuck_uids.begin(), stuck_uids.end(), uid));
        --stuck;
        slot.exited = true;
        settled.notify_all();
      } else {
        post(std::move(job));
      }
    }
    wake.notify_all();  // that owner's next start may go
    if (left_behind) return;
  }
}

void Launcher::State::run_watchdog(const std::shared_ptr<State> &self) {
  std::unique_lock<std::mutex> lock(mutex);
  while (!quit) {
    int64_t now = sys::monotonic_ns();
    for (size_t i : deadlines.due(now)) {
      // Only a child that exists for good: its pid is there (clone3), or
      // the old clone's pidfd, which is all it gives. The number stays
      // valid until finish() takes it, under this mutex.
      pid_t pid = slots[i].child.pid.load();
      int pidfd = slots[i].child.pidfd.load();
      if (pidfd < 0 || pid == 0) continue;  // not yet: tried again at kRetryNs
      if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0) == 0 || errno == ESRCH) {
        deadlines.killed(i, now);
      }
    }
    for (size_t i : deadlines.abandon(now)) abandon(i, self);
    int64_t next = deadlines.next(now);
    if (next == LaunchDeadlines::kNever) {
      watch.wait(lock);
    } else {
      watch.wait_for(lock, std::chrono::nanoseconds(next - now));
    }
  }
}

void Launcher::State::abandon(size_t index, const std::shared_ptr<State> &self) {
  Slot &slot = slots[index];
  const LaunchJob &held = *slot.job;  // armed and not finished: its worker holds it
  auto answer = std::make_unique<LaunchJob>();
  answer->owner.uid = held.owner.uid;
  answer->program.path = held.program.path;
  answer->id = held.id;
  answer->generation = held.generation;
  answer->requester = held.requester;
  answer->requester_serial = held.requester_serial;
  answer->seq = held.seq;
  answer->ticket = held.ticket;
  answer->result = -ETIMEDOUT;
  answer->launched.failed_step = wire::kStartStepDeadline;
  answer->abandoned = true;
  answer->stuck = ++stuck;
  stuck_uids.push_back(held.owner.uid);
  live &= ~(1U << index);
  // It ends by itself if the kernel ever lets it go (work()); if not, with
  // nucleusd. It shares this State, which outlives the Launcher for it.
  slot.thread.detach();
  refuse_queued(held.owner.uid);
  post(std::move(answer));
  if (!stopping && next_slot < slots.size()) start_worker(next_slot++, self);
}

Launcher::Launcher() : state_(std::make_shared<State>()) {}

Launcher::~Launcher() {
  stop(sys::monotonic_ns() + kDefaultStopWaitNs);
}

int Launcher::done_fd() const {
  return state_->done_fd.get();
}

bool Launcher::start(std::string *error) {
  State &s = *state_;
  s.done_fd.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!s.done_fd) {
    *error = std::string("launcher eventfd: ") + std::strerror(errno);
    return false;
  }
  // Read here, on the loop's thread, once: the workers never call getenv.
  if (const char *path = getenv("PATH"); path != nullptr) {
    s.search_path = path;
    s.has_search_path = true;
  }
  // No signal is for these threads: nucleusd reads them from its signalfd.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  running_ = true;
  bool ok = true;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    for (size_t i = 0; ok && i < kThreads; ++i) ok = s.start_worker(i, state_);
    if (ok) {
      try {
        s.watchdog_thread = std::thread([self = state_] { self->run_watchdog(self); });
      } catch (const std::system_error &) {
        ok = false;
      }
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (!ok) {
    *error = std::string("launcher thread: ") + std::strerror(errno);
    stop(sys::monotonic_ns() + kDefaultStopWaitNs);
    return false;
  }
  return true;
}

void Launcher::stop(int64_t deadline_ns) {
  if (!running_) return;
  running_ = false;
  State &s = *state_;
  std::vector<std::thread> ended;
  {
    std::unique_lock<std::mutex> lock(s.mutex);
    s.stopping = true;
    s.deadlines.stop();  // every child before its exec is killed at once
    s.wake.notify_all();
    s.watch.notify_all();
    s.settled.wait_until(lock, steady_at(deadline_ns), [&] { return s.live == 0; });
    // A thread still in a launch now is held by the kernel (a child that
    // SIGKILL does not end): it is left behind, to end with nucleusd.
    for (State::Slot &slot : s.slots) {
      if (!slot.thread.joinable()) continue;
      if (slot.exited) {
        ended.push_back(std::move(slot.thread));
      } else {
        slot.thread.detach();
      }
    }
    s.quit = true;
    s.watch.notify_all();
  }
  for (std::thread &t : ended) t.join();
  if (s.watchdog_thread.joinable()) s.watchdog_thread.join();
  std::lock_guard<std::mutex> lock(s.mutex);
  for (auto &job : s.todo) {
    job->result = -ECANCELED;
    job->launched.failed_step = wire::kStartStepProcess;
    s.done.push_back(std::move(job));
  }
  s.todo.clear();
}

void Launcher::submit(std::unique_ptr<LaunchJob> job) {
  enqueue(std::move(job));
}

uint64_t Launcher::enqueue(std::unique_ptr<LaunchJob> job) {
  ++in_flight_;
  State &s = *state_;
  uint64_t ticket = 0;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    ticket = job->ticket = ++s.tickets;
    bool stuck = !job->chore && std::find(s.stuck_uids.begin(), s.stuck_uids.end(),
                                          job->owner.uid) != s.stuck_uids.end();
    if (stuck) {
      job->result = -EAGAIN;  // its owner's earlier launch still holds a thread
      job->launched.failed_step = wire::kStartStepProcess;
      s.post(std::move(job));
      return ticket;
    }
    s.todo.push_back(std::move(job));
  }
  s.wake.notify_one();
  return ticket;
}

std::unique_ptr<LaunchJob> Launcher::run_now(std::unique_ptr<LaunchJob> job) {
  State &s = *state_;
  uint64_t ticket = enqueue(std::move(job));
  std::unique_lock<std::mutex> lock(s.mutex);
  std::unique_ptr<LaunchJob> out;
  s.settled.wait(lock, [&] {
    auto it = std::find_if(s.done.begin(), s.done.end(),
                           [&](const auto &j) { return j->ticket == ticket; });
    if (it == s.done.end()) return false;
    out = std::move(*it);
    s.done.erase(it);
    return true;
  });
  --in_flight_;
  return out;
}

void Launcher::detach_tracee(pid_t pid, int signal) {
  State &s = *state_;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.detaches.push_back({pid, signal, 0});
  }
  s.wake.notify_all();
}

std::vector<std::unique_ptr<LaunchJob>> Launcher::take_done() {
  State &s = *state_;
  std::vector<std::unique_ptr<LaunchJob>> out;
  std::lock_guard<std::mutex> lock(s.mutex);
  for (auto &job : s.done) out.push_back(std::move(job));
  s.done.clear();
  in_flight_ -= std::min(in_flight_, out.size());
  return out;
}

}  // namespace nucleus::daemon
