// The one decoder: every request a process wrote in its channel, copied out
// once, is decoded here through a table of one handler an op (requests.cc).
// A handler checks the request's fields and the requester's authority,
// applies policy, and calls the object that owns the state: the Core for
// the rules (message primitives, the process tree, devices' names), and the
// Linux side through LinuxSide (programs, subtrees, swaps, device files).
//
// Message primitives that fail are protocol errors (the caller sends a
// kError event and counts them); process control is always answered, by a
// kReply whose result is 0 or -errno: at once, or later for a start (when
// its launch comes back) and a swap's ready (when it has taken over).
//
// Threading: nucleusd's loop thread only.
#pragma once

#include <nucleus/wire.h>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "config.h"
#include "core.h"
#include "error.h"
#include "owner_rule.h"
#include "policy.h"
#include "refusal.h"

namespace nucleus::daemon {

// Who waits for a start's answer: a connection's request, or nobody (the
// boot section, a swap's new program).
struct Waiter {
  uint32_t id = kNone;
  uint32_t serial = 0;  // the connection's (a later one at that id is not it)
  uint32_t seq = 0;
};

// A handler's result that is not an answer yet (never a -errno).
inline constexpr int kAnswerLater = 1;

// What process control needs that the Core, being pure, does not do.
// nucleusd's Server implements it, forwarding to Programs, Swaps and
// Devices; unit tests and fuzz_requests use a fake.
class LinuxSide {
 public:
  virtual ~LinuxSide() = default;
  // A start of `child` (Core::start said so) is in flight on a launcher
  // thread: only get and remove until it is taken.
  virtual bool launching(uint32_t child) const = 0;
  // Runs the entry's program: 0, -errno, or kAnswerLater (the waiter is
  // answered when the launch comes back). With a -errno, *step is the
  // wire::StartStep that failed (its output file, its cgroup...).
  virtual int spawn(uint32_t id, const Waiter &waiter, uint64_t *step) = 0;
  virtual void stop_subtree(uint32_t id) = 0;
  virtual void resume_subtree(uint32_t id) = 0;
  // Ends every program of the subtree and what is attached of it, before
  // the Core removes the entries.
  virtual void end_subtree(uint32_t id) = 0;
  // The Core began a swap of `child` to the hidden entry `cand` (the
  // request is answered through its buffer when the swap ends): start the
  // new program and watch the swap's phases.
  virtual void begin_swap(uint32_t requester, uint32_t child, uint32_t cand) = 0;
  // kSwapReady from `cand`: 0 (answered when it has taken over) or -errno.
  virtual int swap_ready(uint32_t cand, uint32_t seq) = 0;
  // Opens the files of `device`, an entry `caller` just named, with the
  // caller's rights, and serves it from now on: 0 or -errno (the decoder
  // then removes the entry).
  virtual int open_device(uint32_t caller, uint32_t device, const DeviceConfig &spec) = 0;
  // kPollDescriptor (Connections): makes the descriptor to poll of `id`'s
  // connection and sends it on its socket: 0 or -errno (-EEXIST: it has
  // one). ring_poll_descriptor makes it readable now.
  virtual int open_poll_descriptor(uint32_t id) = 0;
  virtual void ring_poll_descriptor(uint32_t id) = 0;
  // Whether nucleusd serves `device` as it was named with `spec` (kind,
  // paths as written, block size, flags): a namer naming it so again keeps
  // it (decision 73).
  virtual bool named_with(uint32_t device, const DeviceConfig &spec) const = 0;
  // The data area of `id`'s attached run as nucleusd maps it (its size is
  // nucleusd's own record), or an empty span when it has none: what a lend
  // names and a copy reads or writes.
  virtual std::span<uint8_t> data_area(uint32_t id) = 0;
};

// The size of an entry's data area: its claim, else the configured default.
inline uint64_t data_area_bytes(const Core &core, const Config &config, uint32_t id) {
  uint64_t given = core.processes().at(id).account.given().data_bytes;
  return given != 0 ? given : config.data_bytes;
}

// One connection's request state between requests.
struct Session {
  std::string staged;  // program bytes for the next create, modify or swap
  bool staged_overflow = false;
  // Whose children its process control acts on (kActFor): kActSelf, kNone
  // (the root) or a process (with its generation).
  uint32_t acting = kActSelf;
  uint32_t acting_generation = 0;
  static constexpr uint32_t kActSelf = kNone - 2;
  // Bytes its copies (kCopyData) moved this loop turn: Connections takes no
  // more of its requests in a turn once they reach wire::kMaxCopyBytes, so
  // the work a connection makes the loop do per turn is bounded by bytes
  // too, not only by requests (64 copies of 1 MiB would be 64 MiB).
  uint64_t copied_this_turn = 0;
  // Its receive window (kReceiveWindow): a range of its own data area into
  // which Connections::flush copies the lent bytes of a message it
  // publishes, while the window is free: `holder` is the handle of the
  // message whose bytes it holds (0: none), free again once that message
  // is no longer queued to or received by this process (answered,
  // withdrawn), which is asked when the next one comes.
  uint32_t window_offset = 0;
  uint32_t window_bytes = 0;
  uint64_t window_holder = 0;
};

class Requests {
 public:
  // Where a reply goes: the requester's queue, if it is still attached.
  using Reply = std::function<void(uint32_t id, const wire::Event &event)>;

  Requests(Core &core, const Config &config, Policy &policy, LinuxSide &linux_side, Reply reply)
      : core_(core),
        config_(config),
        policy_(policy),
        linux_(linux_side),
        reply_(std::move(reply)) {}

  // Decodes and performs one request of attached process `id` (connection
  // `serial`). Error::kNone, or the error of a refused message primitive
  // (or an op out of range), which the caller reports as a protocol error.
  Error handle(uint32_t id, uint32_t serial, Session &session, const wire::Request &request);

  // Starts `child` for `caller` (kNone: the root): resumes a stopped
  // subtree, runs the program. `requester` is the process that asked
  // (kNone: the configuration's boot section, which is root's); a start
  // that runs the program as an owner it could not name is -EPERM (the
  // owner rule). 0, -errno or kAnswerLater; with a -errno, *step is the
  // wire::StartStep that failed (kStartStepNone: refused).
  int start(uint32_t requester, uint32_t caller, uint32_t child, const Waiter &waiter,
            uint64_t *step);

  // Every op has a handler (checked by the unit tests).
  static bool every_op_handled();

 private:
  struct Call {
    uint32_t id;
    uint32_t serial;
    Session &session;
    const wire::Request &r;
    // Process control: the staged bytes taken from the session, and the
    // name field (name_ok: NUL-terminated within it).
    std::string staged;
    bool staged_overflow = false;
    std::string_view name;
    bool name_ok = false;
  };
  using Handler = Error (Requests::*)(Call &);
  // A process-control op: its reply's result (0 or -errno, or
  // kAnswerLater); it may fill the reply's other fields.
  using ControlOp = int (Requests::*)(Call &, wire::Event *);
  template <ControlOp op>
  Error answered(Call &call);
  static const Handler kHandlers[wire::kOpCount];

  // Message primitives (to the Core).
  Error nop(Call &call);
  Error unknown(Call &call);
  Error send_message(Call &call);
  Error get_event(Call &call);
  Error send_answer(Call &call);
  Error release_answer(Call &call);
  Error get_stats(Call &call);
  Error poll_descriptor(Call &call);
  // Data with a message and regret (docs/data-and-regret.md): replied
  // with 0 or -errno, never protocol errors.
  Error regret_message(Call &call);
  Error copy_data(Call &call);
  int copy(Call &call);
  Error receive_window(Call &call);
  // An answer's copy to the start of the lent range (kSendAnswer with
  // lend_bytes): the bytes copied, or the refusal.
  Result<uint32_t> answer_copy(Call &call);
  // Process control.
  Error stage_program(Call &call);
  Error list_children(Call &call);
  Error swap_ready(Call &call);
  int create_process(Call &call, wire::Event *reply);
  int start_process(Call &call, wire::Event *reply);
  int stop_process(Call &call, wire::Event *reply);
  int modify_process(Call &call, wire::Event *reply);
  int remove_process(Call &call, wire::Event *reply);
  int get_process(Call &call, wire::Event *reply);
  int swap_process(Call &call, wire::Event *reply);
  int create_external(Call &call, wire::Event *reply);
  int remove_external(Call &call, wire::Event *reply);
  int reserve_process(Call &call, wire::Event *reply);
  int release_process(Call &call, wire::Event *reply);
  int act_for(Call &call, wire::Event *reply);

  // Whose children `id`'s process control acts on: itself, the root (kNone)
  // or another (kNoChild when that one is gone).
  Result<uint32_t> authority(uint32_t id, const Session &session) const;
  // The child a process-control op names, with the op's checks; *caller:
  // whose child it is.
  Result<uint32_t> child_named(Call &call, uint32_t *caller) const;
  std::string acting_note(const Session &session) const;
  // The owner rule (owner_rule.h) on one path: the program of the entry
  // `name` would run as `owner` at the request of process `requester`. 0,
  // or -EPERM and a log line saying who asked to `what` and why not.
  int owner_rule(uint32_t requester, std::string_view what, std::string_view name, Owner owner);
  // The owner a staged program names: what the requester could name (the
  // owner rule on the parts it names), a named user's primary group filled
  // in. 0 or -errno.
  int settle_owner(const Call &call, std::string_view what, Program *program);
  // The device a kCreateExternal describes (kind, paths, block size,
  // flags), checked; 0 or -EINVAL.
  static int device_spec(const Call &call, DeviceConfig *spec);
  void reply_result(const Call &call, int result);
  // Notes why a request is refused (refusal.h) and returns its -errno.
  int refuse(Error e, wire::Cause cause, uint64_t value = 0, int32_t cause_errno = 0) const {
    return -to_errno(note_.refuse(e, cause, value, cause_errno));
  }
  // A refusal by the state table (busy, running already): the state it is in.
  int state_refusal(Error e, uint32_t child) const;
  // The cause of a refused reply: the decoder's note, else the Core's.
  void fill_cause(wire::Event *reply);

  Core &core_;
  const Config &config_;
  Policy &policy_;
  LinuxSide &linux_;
  Reply reply_;
  // Why the request in hand was refused, where the decoder knows.
  mutable RefusalNote note_;
};

}  // namespace nucleus::daemon
