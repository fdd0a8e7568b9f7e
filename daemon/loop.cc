#include "loop.h"

#include <cerrno>
#include <cstring>

#include "log.h"

namespace nucleus::daemon {

namespace {

// Debian 12's liburing (2.3) predates the futex operations: our own name
// for the kernel's opcode (see shared/notes/linux-facts.md).
constexpr uint8_t kOpFutexWait = 51;
constexpr unsigned kSqEntries = 1024;
constexpr unsigned kCqEntries = 16384;

}  // namespace

Loop::~Loop() {
  close();
}

void Loop::close() {
  if (!ready_) return;
  io_uring_queue_exit(&ring_);
  ready_ = false;
}

bool Loop::setup(bool defer_taskrun, std::string *error) {
  // Completions run when the loop asks for them (io_uring_enter with
  // GETEVENTS, which io_uring_submit does when IORING_SQ_TASKRUN says some
  // are waiting), not by interrupting the thread on every return to user
  // space; only this thread may submit. Kernels before 6.1 refuse the
  // flags: the ring is then set up without them.
  constexpr unsigned kDeferFlags =
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  int rc = -EINVAL;
  if (defer_taskrun) {
    io_uring_params params{};
    params.flags = IORING_SETUP_CQSIZE | kDeferFlags;
    params.cq_entries = kCqEntries;
    rc = io_uring_queue_init_params(kSqEntries, &ring_, &params);
  }
  deferred_taskrun_ = rc == 0;
  if (rc == -EINVAL) {
    io_uring_params params{};
    params.flags = IORING_SETUP_CQSIZE;
    params.cq_entries = kCqEntries;
    rc = io_uring_queue_init_params(kSqEntries, &ring_, &params);
  }
  if (rc < 0) {
    *error = std::string("io_uring_queue_init: ") + std::strerror(-rc);
    return false;
  }
  ready_ = true;
  log::info("io_uring: {}",
            deferred_taskrun_ ? "task work deferred to the loop (SINGLE_ISSUER, DEFER_TASKRUN)"
            : defer_taskrun   ? "task work run at once (this kernel has no DEFER_TASKRUN)"
                              : "task work run at once (event_loop.defer_taskrun false)");
  return true;
}

bool Loop::has_futex_wait() {
  io_uring_probe *probe = io_uring_get_probe_ring(&ring_);
  if (probe == nullptr) return false;
  bool ok =
      probe->last_op >= kOpFutexWait && (probe->ops[kOpFutexWait].flags & IO_URING_OP_SUPPORTED);
  io_uring_free_probe(probe);
  return ok;
}

io_uring_sqe *Loop::sqe() {
  io_uring_sqe *sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

void Loop::reserve(unsigned count) {
  if (io_uring_sq_space_left(&ring_) < count) io_uring_submit(&ring_);
}

uint64_t Loop::tag(Kind kind, uint32_t index, uint32_t generation) {
  return (uint64_t{static_cast<uint8_t>(kind)} << 56) | (uint64_t{index & 0xffffffU} << 32) |
         generation;
}

io_uring_sqe *Loop::poll(int fd, unsigned events, Kind kind, uint32_t index, uint32_t generation) {
  io_uring_sqe *s = sqe();
  io_uring_prep_poll_add(s, fd, events);
  set_tag(s, kind, index, generation);
  return s;
}

void Loop::cancel(Kind kind, uint32_t index, uint32_t generation) {
  io_uring_sqe *s = sqe();
  io_uring_prep_cancel64(s, tag(kind, index, generation), 0);
  set_tag(s, Kind::kIgnore, 0, 0);
}

int Loop::register_credentials() {
  return ready_ ? io_uring_register_personality(&ring_) : -EBADF;
}

void Loop::unregister_credentials(uint16_t id) {
  if (!ready_) return;  // closed: the ring took its personalities with it
  io_uring_submit(&ring_);
  if (int rc = io_uring_unregister_personality(&ring_, id); rc < 0) {
    log::error("io_uring: unregistering credentials {}: {}", id, std::strerror(-rc));
  }
}

unsigned Loop::turn(bool wait) {
  int rc = wait ? io_uring_submit_and_wait(&ring_, 1) : io_uring_submit(&ring_);
  if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
    log::error("io_uring_submit: {}", std::strerror(-rc));
  }
  unsigned head = 0;
  unsigned seen = 0;
  io_uring_cqe *cqe = nullptr;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    uint64_t data = cqe->user_data;
    Completion c{static_cast<uint32_t>((data >> 32) & 0xffffffU), static_cast<uint32_t>(data),
                 cqe->res};
    ++seen;
    auto kind = static_cast<size_t>(data >> 56);
    if (kind < handlers_.size() && handlers_[kind]) handlers_[kind](c);
  }
  io_uring_cq_advance(&ring_, seen);
  return seen;
}

}  // namespace nucleus::daemon
