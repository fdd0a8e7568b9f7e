// libnucleus C++ API: RAII over the C API in nucleus.h, results not
// exceptions. A Nucleus is move-only and, like nucleus_t, used by one thread
// at a time.
#pragma once

#include <nucleus/nucleus.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nucleus {

using Message = nucleus_message_t;
using Buffer = nucleus_buffer_t;
using Event = nucleus_event_t;
using Stats = nucleus_stats_t;
using Claims = nucleus_claims_t;
using ProcessInfo = nucleus_process_t;
using ExitNotice = nucleus_exit_notice_t;
// A range of the data area lent with a message (see nucleus_lend_t): offset,
// bytes and rights (NUCLEUS_LEND_READ | NUCLEUS_LEND_WRITE). A received
// message's lend has offset 0; bytes 0 lends nothing.
using Lend = nucleus_lend_t;
// Who sent a message or an answer (NUCLEUS_FROM_*: a process, a device or the
// nucleus; uid, gid, pid), stamped by nucleusd: see nucleus_principal_t.
using Principal = nucleus_principal_t;

enum class From : uint32_t {
  kProcess = NUCLEUS_FROM_PROCESS,
  kDevice = NUCLEUS_FROM_DEVICE,
  kNucleus = NUCLEUS_FROM_NUCLEUS,
};
inline From from_kind(const Principal &p) {
  return static_cast<From>(p.kind);
}

enum class DeviceKind : int {
  kClock = NUCLEUS_DEVICE_CLOCK,
  kConsole = NUCLEUS_DEVICE_CONSOLE,
  kDisk = NUCLEUS_DEVICE_DISK,
  kNull = NUCLEUS_DEVICE_NULL,
};

// What a device is named with (see nucleus_device_parameters_t).
struct DeviceParameters {
  std::string path;         // disk: backing file; console: output file or terminal
  std::string input_path;   // console: input (empty: path)
  uint32_t block_size = 0;  // disk: 512..65536, a power of two (0: 512)
  bool direct = false;      // disk: O_DIRECT
};

// Messages to devices (docs/devices.md); offsets are in the data area.
namespace device {
inline Message clock_wait(std::chrono::nanoseconds delay) {
  return Message{{NUCLEUS_CLOCK_WAIT, static_cast<uint64_t>(delay.count())}};
}
inline Message clock_now() {
  return Message{{NUCLEUS_CLOCK_NOW}};
}
inline Message console_write(uint64_t offset, uint64_t length) {
  return Message{{NUCLEUS_CONSOLE_WRITE, offset, length}};
}
inline Message console_read(uint64_t offset, uint64_t capacity) {
  return Message{{NUCLEUS_CONSOLE_READ, offset, capacity}};
}
inline Message disk_read(uint64_t block, uint64_t blocks, uint64_t offset) {
  return Message{{NUCLEUS_DISK_READ, block, blocks, offset}};
}
inline Message disk_write(uint64_t block, uint64_t blocks, uint64_t offset) {
  return Message{{NUCLEUS_DISK_WRITE, block, blocks, offset}};
}
inline Message disk_info() {
  return Message{{NUCLEUS_DISK_INFO}};
}
}  // namespace device

// A program a child runs (see nucleus_program_t): empty argv means just the
// path, empty env means only a default PATH, empty cwd nucleusd's; empty
// user and group: it runs as its creator's owner (naming another user or
// group needs a root-owned caller).
struct Program {
  std::string path;
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string cwd;
  std::string user;   // a user name or uid
  std::string group;  // a group name or gid; empty: the user's primary group
};

// What a failed start says (`step` from last_start_step(), `code` what the
// start returned): the step, what it failed on, that step's errno ("cannot
// execute /bin/x: Permission denied"; "cannot enter its working directory
// /srv: No such file or directory"); for a refused start nucleus_strerror's
// text. `path` is what the step concerns: the program's path for exec, its
// working directory for chdir; empty: not known.
inline std::string start_failure(int step, int code, const std::string &path = "") {
  if (step == NUCLEUS_START_STEP_NONE || code >= 0) return nucleus_strerror(code);
  std::string text = nucleus_start_step_text(step);
  if (!path.empty()) text += " " + path;
  if (step == NUCLEUS_START_STEP_DEADLINE) return text + ": not within limits.launch_timeout_ms";
  return text + ": " + std::strerror(-code);
}
inline std::string start_failure(int step, int code, const Program &program) {
  const std::string none;
  return start_failure(step, code,
                       step == NUCLEUS_START_STEP_EXEC || step == NUCLEUS_START_STEP_DEADLINE
                           ? program.path
                       : step == NUCLEUS_START_STEP_CHDIR ? program.cwd
                                                          : none);
}

// How a swap's new program ended, from the words of a NUCLEUS_SWAP_NEW_EXITED
// answer: "it exited with status 3", "it was killed by signal 9", or "it
// hung up and was ended" (it closed its connection and had not ended within
// a second).
inline std::string swap_new_exited(const uint64_t *words) {
  uint64_t detail = words[1];
  switch (words[NUCLEUS_SWAP_WORD_EXIT_KIND]) {
    case NUCLEUS_EXIT_CODE: return "it exited with status " + std::to_string(detail);
    case NUCLEUS_EXIT_SIGNAL: return "it was killed by signal " + std::to_string(detail & 0xff);
    default: return "it hung up and was ended";
  }
}

namespace detail {
// The text of a failure: this thread's nucleus_last_error (the call that
// just failed), else the code's general text. Made only on a failure: a
// Result that succeeds holds a null pointer.
inline std::shared_ptr<const std::string> failure_text(int code, std::string text = {}) {
  if (text.empty()) {
    const char *last = nucleus_last_error();
    text = last != nullptr && *last != '\0' ? last : nucleus_strerror(code);
  }
  return std::make_shared<const std::string>(std::move(text));
}
}  // namespace detail

// Either a value or a negative errno-style code. A failure keeps the text of
// why (message()): failure(code) takes nucleus_last_error, so it is made
// right after the call that failed; failure(code, text) says its own.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  static Result failure(int code, std::string text = {}) {
    return Result(code, detail::failure_text(code, std::move(text)));
  }
  bool ok() const { return error_ == 0; }
  explicit operator bool() const { return ok(); }
  int error() const { return error_; }
  const T &value() const & { return value_; }
  T &value() & { return value_; }
  T &&value() && { return std::move(value_); }
  const T *operator->() const { return &value_; }
  T *operator->() { return &value_; }
  // What was refused and why ("create_process \"w\": the processes claim of
  // the parent is 0 (claims.processes)"); "success" for a value.
  std::string_view message() const {
    return text_ ? std::string_view(*text_) : std::string_view(nucleus_strerror(error_));
  }

 private:
  Result(int code, std::shared_ptr<const std::string> text)
      : error_(code), text_(std::move(text)) {}
  T value_{};
  int error_ = 0;
  std::shared_ptr<const std::string> text_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  static Result failure(int code, std::string text = {}) {
    return Result(code, detail::failure_text(code, std::move(text)));
  }
  bool ok() const { return error_ == 0; }
  explicit operator bool() const { return ok(); }
  int error() const { return error_; }
  std::string_view message() const {
    return text_ ? std::string_view(*text_) : std::string_view(nucleus_strerror(error_));
  }

 private:
  Result(int code, std::shared_ptr<const std::string> text)
      : error_(code), text_(std::move(text)) {}
  int error_ = 0;
  std::shared_ptr<const std::string> text_;
};

struct Received {
  std::string sender;
  Message message{};
  Buffer buffer = 0;
  Principal principal{};  // the sender's: ask it before acting for the sender
  Lend lend{};            // what the message lends (bytes 0: nothing)
};

struct Answer {
  int result = 0;
  Message message{};
  // Who answered: the receiver, a device, or "nucleus" (NUL-terminated; a
  // fixed array, not a string: this is on every round trip), and its
  // principal.
  char from[32] = {};
  Principal principal{};
  // The bytes the answer copied to the start of the range its message lent
  // (send_answer with data; 0 for any other answer).
  uint64_t copied = 0;
  std::string_view from_name() const { return from; }
};

// A timeout: kForever waits forever, kPoll does not wait.
using Timeout = std::chrono::nanoseconds;
inline constexpr Timeout kForever{-1};
inline constexpr Timeout kPoll{0};

class Nucleus {
 public:
  Nucleus() = default;
  Nucleus(Nucleus &&other) noexcept : n_(std::exchange(other.n_, nullptr)) {}
  Nucleus &operator=(Nucleus &&other) noexcept {
    if (this != &other) {
      reset();
      n_ = std::exchange(other.n_, nullptr);
    }
    return *this;
  }
  Nucleus(const Nucleus &) = delete;
  Nucleus &operator=(const Nucleus &) = delete;
  ~Nucleus() { reset(); }

  // Attach under `name`; an empty name attaches through $NUCLEUS_FD.
  static Result<Nucleus> attach(const std::string &name) {
    nucleus_t *n = nullptr;
    int rc = nucleus_attach(name.empty() ? nullptr : name.c_str(), &n);
    if (rc < 0) return Result<Nucleus>::failure(rc);
    return Nucleus(n);
  }

  Result<Buffer> send_message(const std::string &receiver, const Message &message) {
    Buffer b = 0;
    int rc = nucleus_send_message(n_, receiver.c_str(), &message, &b);
    if (rc < 0) return Result<Buffer>::failure(rc);
    return b;
  }
  // With a range of the data area lent to the receiver until the answer.
  Result<Buffer> send_message(const std::string &receiver, const Message &message,
                              const Lend &lend) {
    Buffer b = 0;
    int rc = nucleus_send_message_lend(n_, receiver.c_str(), &message, &lend, &b);
    if (rc < 0) return Result<Buffer>::failure(rc);
    return b;
  }
  // Words and data in one call: `data` is copied to lend.offset of the data
  // area, and the message lends `lend` (data.size() <= lend.bytes).
  Result<Buffer> send_data(const std::string &receiver, const Message &message, const Lend &lend,
                           std::span<const std::byte> data) {
    Buffer b = 0;
    int rc = nucleus_send_data(n_, receiver.c_str(), &message, &lend, data.data(), data.size(), &b);
    if (rc < 0) return Result<Buffer>::failure(rc);
    return b;
  }
  // The same, lending exactly `data`'s bytes at the start of the data area.
  Result<Buffer> send_data(const std::string &receiver, const Message &message,
                           std::span<const std::byte> data, uint32_t rights = NUCLEUS_LEND_READ) {
    return send_data(receiver, message, Lend{0, data.size(), rights, 0}, data);
  }
  Result<Received> wait_message(Timeout timeout = kForever) {
    Received r;
    nucleus_sender_t sender{};
    int rc = nucleus_wait_message_from(n_, timeout.count(), &sender, &r.message, &r.buffer);
    if (rc < 0) return Result<Received>::failure(rc);
    r.sender = sender.name;
    r.principal = sender.principal;
    r.lend = sender.lend;
    return r;
  }
  // The receiver of a message that lends, while it holds it: copies from
  // `lend_offset` of the lent range into `into`, or from `from` into the
  // lent range. The spans must lie in data() (else -EINVAL); errors as
  // nucleus_copy_from.
  Result<void> copy_from(Buffer received, uint64_t lend_offset, std::span<std::byte> into) {
    uint64_t own = 0;
    if (!in_data(into.data(), into.size(), &own)) return Result<void>::failure(-EINVAL);
    return done(nucleus_copy_from(n_, received, lend_offset, own, into.size()));
  }
  Result<void> copy_to(Buffer received, uint64_t lend_offset, std::span<const std::byte> from) {
    uint64_t own = 0;
    if (!in_data(from.data(), from.size(), &own)) return Result<void>::failure(-EINVAL);
    return done(nucleus_copy_to(n_, received, lend_offset, own, from.size()));
  }
  // Withdraws a message its receiver has not taken (see
  // nucleus_regret_message): ok, or -EBUSY (taken: the answer comes),
  // -EALREADY (answered: wait_answer takes it), -EBADF.
  Result<void> regret(Buffer sent) { return done(nucleus_regret_message(n_, sent)); }
  Result<void> send_answer(Buffer buffer, int result, const Message &answer) {
    int rc = nucleus_send_answer(n_, buffer, result, &answer);
    return rc < 0 ? Result<void>::failure(rc) : Result<void>();
  }
  // Answers, copying `data` (a span in data()) to the start of the range the
  // message lent in the same request (nucleus_send_answer_data).
  Result<void> send_answer(Buffer buffer, int result, const Message &answer,
                           std::span<const std::byte> data) {
    uint64_t own = 0;
    if (!in_data(data.data(), data.size(), &own)) return Result<void>::failure(-EINVAL);
    return done(nucleus_send_answer_data(n_, buffer, result, &answer, own, data.size()));
  }
  // A receive window, a span in data() (empty: none): a message's lent
  // bytes come in it, Received::lend.copied of them (nucleus_set_receive_window).
  Result<void> set_receive_window(std::span<std::byte> window) {
    uint64_t own = 0;
    if (!window.empty() && !in_data(window.data(), window.size(), &own)) {
      return Result<void>::failure(-EINVAL);
    }
    return done(nucleus_set_receive_window(n_, own, window.size()));
  }
  Result<Answer> wait_answer(Buffer buffer, Timeout timeout = kForever) {
    Answer a;
    nucleus_sender_t from{};
    int rc = nucleus_wait_answer_from(n_, buffer, timeout.count(), &a.result, &a.message, &from);
    if (rc < 0) return Result<Answer>::failure(rc);
    std::memcpy(a.from, from.name, sizeof(a.from));
    a.principal = from.principal;
    a.copied = from.lend.copied;
    return a;
  }
  Result<Event> wait_event(Buffer previous, Timeout timeout = kForever) {
    Event e{};
    int rc = nucleus_wait_event(n_, previous, timeout.count(), &e);
    if (rc < 0) return Result<Event>::failure(rc);
    return e;
  }
  Result<void> get_event(Buffer buffer) {
    int rc = nucleus_get_event(n_, buffer);
    return rc < 0 ? Result<void>::failure(rc) : Result<void>();
  }
  Result<Stats> get_stats() {
    Stats s{};
    int rc = nucleus_get_stats(n_, &s);
    if (rc < 0) return Result<Stats>::failure(rc);
    return s;
  }
  // A descriptor readable when an event waits (nucleus_poll_descriptor):
  // owned by this handle, closed when it detaches.
  Result<int> poll_descriptor() {
    int fd = nucleus_poll_descriptor(n_);
    if (fd < 0) return Result<int>::failure(fd);
    return fd;
  }

  // ---- process control (own children only; see nucleus.h) ----
  Result<void> create_process(const std::string &name, const Program &program,
                              const Claims &claims) {
    ProgramView view(program);
    return done(nucleus_create_process(n_, name.c_str(), view.get(), &claims));
  }
  // Process control acts for the root ("") or another process; nullopt: for
  // this process again (see nucleus_act_for).
  Result<void> act_for(const std::optional<std::string> &name) {
    return done(nucleus_act_for(n_, name ? name->c_str() : nullptr));
  }
  // A failed start: last_start_step() says which step (start_failure()).
  Result<void> start_process(const std::string &name) {
    return done(nucleus_start_process(n_, name.c_str()));
  }
  int last_start_step() const { return nucleus_last_start_step(n_); }
  // The buffer is answered when the child's whole subtree has stopped.
  Result<Buffer> stop_process(const std::string &name) {
    Buffer b = 0;
    int rc = nucleus_stop_process(n_, name.c_str(), &b);
    if (rc < 0) return Result<Buffer>::failure(rc);
    return b;
  }
  Result<void> modify_process(const std::string &name, const std::optional<Program> &program,
                              const std::optional<Claims> &claims) {
    std::optional<ProgramView> view;
    if (program) view.emplace(*program);
    return done(nucleus_modify_process(n_, name.c_str(), view ? view->get() : nullptr,
                                       claims ? &*claims : nullptr));
  }
  Result<void> remove_process(const std::string &name) {
    return done(nucleus_remove_process(n_, name.c_str()));
  }
  Result<ProcessInfo> get_process(const std::string &name) {
    ProcessInfo p{};
    int rc = nucleus_get_process(n_, name.c_str(), &p);
    if (rc < 0) return Result<ProcessInfo>::failure(rc);
    return p;
  }
  // Every child, oldest first.
  Result<std::vector<ProcessInfo>> list_children() {
    std::vector<ProcessInfo> kids(16);
    for (;;) {
      size_t count = 0;
      int rc = nucleus_list_children(n_, kids.data(), kids.size(), &count);
      if (rc < 0) return Result<std::vector<ProcessInfo>>::failure(rc);
      if (count <= kids.size()) {
        kids.resize(count);
        return kids;
      }
      kids.resize(count);  // more came since: ask again with room for all
    }
  }
  // ---- external processes (see nucleus.h) ----
  Result<void> create_external_process(const std::string &name, DeviceKind kind,
                                       const DeviceParameters &parameters = {}) {
    nucleus_device_parameters_t p{};
    p.path = parameters.path.empty() ? nullptr : parameters.path.c_str();
    p.input_path = parameters.input_path.empty() ? nullptr : parameters.input_path.c_str();
    p.block_size = parameters.block_size;
    p.flags = parameters.direct ? NUCLEUS_DEVICE_DIRECT : 0;
    return done(nucleus_create_external_process(n_, name.c_str(), static_cast<int>(kind), &p));
  }
  Result<void> remove_external_process(const std::string &name) {
    return done(nucleus_remove_external_process(n_, name.c_str()));
  }
  Result<void> reserve_process(const std::string &name) {
    return done(nucleus_reserve_process(n_, name.c_str()));
  }
  Result<void> release_process(const std::string &name) {
    return done(nucleus_release_process(n_, name.c_str()));
  }
  // This process's data area (device I/O reads into and writes from it).
  std::span<uint8_t> data_area() {
    size_t size = 0;
    void *p = nucleus_data_area(n_, &size);
    return {static_cast<uint8_t *>(p), p == nullptr ? 0 : size};
  }
  // The same as bytes: what a lend names and copy_from / copy_to take.
  std::span<std::byte> data() {
    size_t size = 0;
    void *p = nucleus_data_area(n_, &size);
    return {static_cast<std::byte *>(p), p == nullptr ? 0 : size};
  }

  // ---- hot swap (see nucleus.h, docs/hot-swap.md) ----
  // The buffer is answered when the swap is done (result normal, word 0
  // NUCLEUS_SWAP_DONE) or not (rejected, word 0 why).
  Result<Buffer> swap_process(const std::string &name, const Program &program) {
    ProgramView view(program);
    Buffer b = 0;
    int rc = nucleus_swap_process(n_, name.c_str(), view.get(), &b);
    if (rc < 0) return Result<Buffer>::failure(rc);
    return b;
  }
  // Is this the nucleus asking for our state (answer it with hand_over)?
  static bool is_handover(const Received &r) {
    return r.principal.kind == NUCLEUS_FROM_NUCLEUS && r.sender == NUCLEUS_SENDER_NUCLEUS &&
           r.message.word[0] == NUCLEUS_NOTICE_HANDOVER;
  }
  Result<void> hand_over(Buffer handover, std::span<const uint8_t> state) {
    return done(nucleus_hand_over(n_, handover, state.data(), state.size()));
  }
  // The state the old program handed over, when this is a swap's new program
  // that has not said ready; nullopt otherwise.
  std::optional<std::span<const uint8_t>> handover_state() const {
    size_t size = 0;
    const void *p = nucleus_handover_state(n_, &size);
    if (p == nullptr) return std::nullopt;
    return std::span<const uint8_t>(static_cast<const uint8_t *>(p), size);
  }
  Result<void> swap_ready() { return done(nucleus_swap_ready(n_)); }
  // The messages the old program received and did not answer (after swap_ready).
  std::vector<Received> inherited() const {
    size_t count = 0;
    if (nucleus_inherited(n_, nullptr, 0, &count) < 0 || count == 0) return {};
    std::vector<nucleus_event_t> events(count);
    if (nucleus_inherited(n_, events.data(), events.size(), &count) < 0) return {};
    std::vector<Received> out;
    for (size_t i = 0; i < count && i < events.size(); ++i) {
      out.push_back(
          Received{events[i].sender, events[i].message, events[i].buffer, events[i].principal});
    }
    return out;
  }

  // The exit notice in a received message, if it is one: from the nucleus
  // (its principal says so, not only its name).
  static std::optional<ExitNotice> exit_notice(const Received &r) {
    ExitNotice n{};
    if (r.principal.kind != NUCLEUS_FROM_NUCLEUS) return std::nullopt;
    if (nucleus_parse_exit_notice(r.sender.c_str(), &r.message, &n) < 0) return std::nullopt;
    return n;
  }

  std::string_view name() const { return n_ ? nucleus_name(n_) : std::string_view(); }
  nucleus_t *c_handle() const { return n_; }
  explicit operator bool() const { return n_ != nullptr; }

 private:
  // A Program as the C API's pointers, valid while the Program lives.
  class ProgramView {
   public:
    explicit ProgramView(const Program &p) {
      for (const std::string &a : p.argv) argv_.push_back(a.c_str());
      for (const std::string &e : p.env) env_.push_back(e.c_str());
      argv_.push_back(nullptr);
      env_.push_back(nullptr);
      c_.path = p.path.c_str();
      c_.argv = p.argv.empty() ? nullptr : argv_.data();
      c_.envp = p.env.empty() ? nullptr : env_.data();
      c_.cwd = p.cwd.empty() ? nullptr : p.cwd.c_str();
      c_.user = p.user.empty() ? nullptr : p.user.c_str();
      c_.group = p.group.empty() ? nullptr : p.group.c_str();
    }
    ProgramView(const ProgramView &) = delete;
    ProgramView &operator=(const ProgramView &) = delete;
    ~ProgramView() = default;
    const nucleus_program_t *get() const { return &c_; }

   private:
    std::vector<const char *> argv_;
    std::vector<const char *> env_;
    nucleus_program_t c_{};
  };
  static Result<void> done(int rc) { return rc < 0 ? Result<void>::failure(rc) : Result<void>(); }
  // Whether [p, p + size) lies in the data area, and at which offset.
  bool in_data(const void *p, size_t size, uint64_t *offset) const {
    size_t area = 0;
    auto *base = static_cast<const std::byte *>(nucleus_data_area(n_, &area));
    auto *at = static_cast<const std::byte *>(p);
    if (base == nullptr) return false;
    if (size == 0 && at == nullptr) {
      *offset = 0;
      return true;
    }
    auto a = reinterpret_cast<uintptr_t>(at);
    auto b = reinterpret_cast<uintptr_t>(base);
    if (a < b || a - b > area || size > area - (a - b)) return false;
    *offset = a - b;
    return true;
  }

  explicit Nucleus(nucleus_t *n) : n_(n) {}
  void reset() {
    if (n_) nucleus_detach(std::exchange(n_, nullptr));
  }
  nucleus_t *n_ = nullptr;
};

}  // namespace nucleus
