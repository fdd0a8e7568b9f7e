// nucleusd's one io_uring: owns the ring, hands out its SQEs, and routes
// each completion by its kind to the handler of the object that asked for
// it (a table, one handler a kind).
//
// Every SQE carries (kind, index, generation) in its user_data; the handler
// compares index and generation with what it holds now and drops a
// completion for something that is gone, so nothing points into freed
// memory.
//
// Threading: nucleusd's loop thread only (the ring is SINGLE_ISSUER when
// the kernel has it).
#pragma once

#include <liburing.h>

#include <array>
#include <cstdint>
#include <functional>
#include <string>

namespace nucleus::daemon {

// What a completion is about; its index and generation say which one.
enum class Kind : uint8_t {
  kIgnore = 0,  // a cancel or a timeout update: nobody waits for it
  kAccept,      // the listening socket (index kAcceptRetry: the back-off ended)
  kSignal,      // the signalfd
  kHandshake,   // an accepted connection's attach request (index: its pending slot)
  kSocket,      // an attached process's socket (index: its id; generation: the serial)
  kPidfd,       // an attached process ended
  kDoorbell,    // an attached process rang
  kBound,       // a started program's NUCLEUS_FD connection has its attach request
  kProgress,    // time to look at stops and cgroups in progress
  kDevice,      // a device operation completed (index: the operation's slot)
  kInspect,     // a nucleusctl inspection connection is readable (index: its slot)
  kWatchdog,    // time to tell the service manager we are alive
  kLaunched,    // the launcher finished launches
  kCount,
};

struct Completion {
  uint32_t index = 0;
  uint32_t generation = 0;
  int32_t result = 0;  // cqe.res
};

class Loop {
 public:
  using Handler = std::function<void(const Completion &)>;

  Loop() = default;
  ~Loop();
  Loop(const Loop &) = delete;
  Loop &operator=(const Loop &) = delete;

  // Sets up the ring, with task work deferred to the loop when the kernel
  // has it and `defer_taskrun` asks for it. False with a message on failure.
  bool setup(bool defer_taskrun, std::string *error);
  bool deferred_taskrun() const { return deferred_taskrun_; }
  // This kernel's io_uring has FUTEX_WAIT.
  bool has_futex_wait();

  // Who gets the completions of `kind`.
  void route(Kind kind, Handler handler) {
    handlers_[static_cast<size_t>(kind)] = std::move(handler);
  }

  // An SQE, submitting what is queued when the queue is full; never null.
  io_uring_sqe *sqe();
  // Makes room for `count` SQEs that must be queued together (a linked pair).
  void reserve(unsigned count);
  static uint64_t tag(Kind kind, uint32_t index, uint32_t generation);
  static void set_tag(io_uring_sqe *sqe, Kind kind, uint32_t index, uint32_t generation) {
    io_uring_sqe_set_data64(sqe, tag(kind, index, generation));
  }
  // A poll of `fd` for `events`, tagged so; returns its SQE (to link).
  io_uring_sqe *poll(int fd, unsigned events, Kind kind, uint32_t index, uint32_t generation);
  // Cancels the SQE tagged so, if it is still in flight.
  void cancel(Kind kind, uint32_t index, uint32_t generation);

  // Registers the calling thread's credentials as they are now with the
  // ring (an io_uring "personality", Linux 5.6): an SQE whose `personality`
  // field holds the id returned is issued with them, inline or from the
  // kernel's workers, whatever the thread's credentials are then. Returns
  // the id (1 to 65535; 0 is "the submitter's own") or -errno (-EBUSY when
  // 65535 are registered).
  int register_credentials();
  // Gives back an id of register_credentials(). What is queued is submitted
  // first: the kernel reads an SQE's personality when it takes the SQE, so
  // no SQE still queued under `id` is read after the id is gone or reused.
  void unregister_credentials(uint16_t id);

  // Submits what is queued and, when `wait`, waits for one completion;
  // then hands every completion to its handler. Returns how many there were.
  unsigned turn(bool wait);
  // Submits what is queued without waiting.
  void submit() { io_uring_submit(&ring_); }
  // Ends the ring (the destructor does too): what is in flight is
  // cancelled and nothing completes any more, so the memory its SQEs name
  // (read buffers, eventfd counters) may be freed after, not before. Once
  // closed, no SQE may be asked for.
  void close();

 private:
  io_uring ring_{};
  bool ready_ = false;
  bool deferred_taskrun_ = false;
  std::array<Handler, static_cast<size_t>(Kind::kCount)> handlers_;
};

}  // namespace nucleus::daemon
