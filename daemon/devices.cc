// The Linux side of device entries (devices.h): opening their files,
// serving their messages with io_uring, and ending what is in flight when a
// device or a sender goes.
#include "devices.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "log.h"
#include "principal.h"

namespace nucleus::daemon {

namespace {

constexpr size_t kConsoleFillBytes = 4096;

int64_t clock_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// The size of a disk's backing file or block device.
int backing_size(int fd, uint64_t *bytes) {
  struct stat st {};
  if (fstat(fd, &st) < 0) return -errno;
  if (S_ISREG(st.st_mode)) {
    *bytes = static_cast<uint64_t>(st.st_size);
    return 0;
  }
  if (S_ISBLK(st.st_mode)) return ioctl(fd, BLKGETSIZE64, bytes) < 0 ? -errno : 0;
  return -EINVAL;
}

std::shared_ptr<sys::UniqueFd> shared_fd(int fd) {
  return std::make_shared<sys::UniqueFd>(fd);
}

}  // namespace

Devices::Devices(Loop &loop, Core &core, const Config &config, const Connections &connections,
                 PrincipalCache &principals)
    : loop_(loop),
      core_(core),
      config_(config),
      connections_(connections),
      principals_(principals),
      credentials_(loop) {
  loop_.route(Kind::kDevice, [this](const Completion &c) {
    if (c.index < ops_.size() && ops_[c.index]->live && ops_[c.index]->generation == c.generation) {
      on_op(c.index, c.result);
    }
  });
}

void Devices::serve(uint32_t id, uint32_t generation) {
  if (state(id, generation) != nullptr) serve_messages(id);
}

std::optional<DeviceGeometry> Devices::geometry(uint32_t id) const {
  if (id < states_.size() && states_[id].live) return states_[id].geometry;
  return std::nullopt;
}

Devices::State *Devices::state(uint32_t id, uint32_t generation) {
  if (id >= states_.size()) return nullptr;
  State &d = states_[id];
  return d.live && d.generation == generation ? &d : nullptr;
}

void Devices::install(uint32_t id, State state) {
  drop_removed();  // an old device at this index gives up its state first
  if (states_.size() < core_.processes().capacity()) {
    states_.resize(core_.processes().capacity());
  }
  forget(id);  // (none is live here once drop_removed has run)
  state.live = true;
  state.generation = core_.processes().at(id).generation;
  states_[id] = std::move(state);
}

int Devices::open_files(const DeviceConfig &spec, const Principal &who, bool std_streams,
                        State *out) {
  *out = State{};
  out->kind = spec.kind;
  // nucleusd's own stdin, stdout and stderr: only the configuration names them.
  auto open_file = [&](const std::string &path, int flags) -> int {
    int std_fd = !std_streams       ? -1
                 : path == "stdin"  ? STDIN_FILENO
                 : path == "stdout" ? STDOUT_FILENO
                 : path == "stderr" ? STDERR_FILENO
                                    : -1;
    if (std_fd < 0) return open_as(who, path, flags);
    int fd = fcntl(std_fd, F_DUPFD_CLOEXEC, 3);
    return fd < 0 ? -errno : fd;
  };
  if (spec.kind == wire::DeviceKind::kDisk) {
    int fd = open_as(who, spec.path, O_RDWR | (spec.direct ? O_DIRECT : 0));
    if (fd < 0) return fd;
    out->out = shared_fd(fd);
    uint64_t bytes = 0;
    if (int rc = backing_size(fd, &bytes); rc < 0) return rc;
    out->geometry = {spec.block_size, bytes / spec.block_size, spec.direct};
    return out->geometry.blocks == 0 ? -EINVAL : 0;  // smaller than one block
  }
  if (spec.kind == wire::DeviceKind::kConsole) {
    int fd = open_file(spec.path, O_WRONLY | O_APPEND | O_CREAT);
    if (fd < 0) return fd;
    out->out = shared_fd(fd);
    if (spec.input.empty()) return 0;  // no input: reads say end of input
    fd = open_file(spec.input, O_RDONLY);
    // A closed stdin is no input, not an error.
    if (fd < 0) return std_streams && spec.input == "stdin" ? 0 : fd;
    out->in = shared_fd(fd);
  }
  return 0;
}

void Devices::forget(uint32_t id) {
  if (id >= states_.size() || !states_[id].live) return;
  credentials_.release(states_[id].credential);
  states_[id] = State{};
}

bool Devices::create_configured(std::string *error) {
  for (const DeviceConfig &c : config_.devices) {
    State state;
    if (int rc = open_files(c, Principal{geteuid(), getegid(), {}}, true, &state); rc < 0) {
      *error = "devices: " + c.name + ": cannot open " + c.path + ": " + std::strerror(-rc);
      return false;
    }
    // The root's devices: their I/O is nucleusd's.
    state.credential = credentials_.own();
    state.spec = c;
    Result<uint32_t> id = core_.create_device(kNone, c.name, c.kind);
    if (!id.ok()) {
      *error = "devices: " + c.name + ": " + std::strerror(to_errno(id.error()));
      return false;
    }
    install(id.value(), std::move(state));
    log::info("device {} ({})", c.name, c.path.empty() ? "built in" : c.path);
  }
  return true;
}

int Devices::open_device(uint32_t caller, uint32_t id, const DeviceConfig &spec) {
  const Process &p = core_.processes().at(caller);
  const Principal &who = principals_.get(p.uid, p.gid);
  State state;
  if (int rc = open_files(spec, who, false, &state); rc < 0) return rc;
  // Its reads and writes run with the rights its files were opened with.
  // A clock and a null do no I/O on files and need none.
  if (spec.kind == wire::DeviceKind::kDisk || spec.kind == wire::DeviceKind::kConsole) {
    int credential = credentials_.acquire(who);
    if (credential < 0) {
      refusals_.warn(sys::monotonic_ns(),
                     static_cast<int64_t>(config_.limits.log_interval_ms) * 1000000,
                     "process {} (uid {}) may not name device {}: its I/O cannot run with its "
                     "credentials: {}",
                     p.name, p.uid, spec.name, std::strerror(-credential));
      return credential;
    }
    state.credential = static_cast<uint16_t>(credential);
  }
  state.spec = spec;
  install(id, std::move(state));
  log::info("process {} named device {} ({}{}), I/O as uid {} gid {}", p.name, spec.name,
            spec.path.empty() ? "built in" : spec.path,
            spec.input.empty() ? "" : ", input " + spec.input, p.uid, p.gid);
  return 0;
}

bool Devices::named_with(uint32_t id, const DeviceConfig &spec) const {
  return id < states_.size() && states_[id].live &&
         states_[id].generation == core_.processes().at(id).generation && states_[id].spec == spec;
}

void Devices::drop_removed() {
  for (uint32_t id : core_.take_removed_devices()) {
    if (id >= states_.size() || !states_[id].live) continue;
    State &d = states_[id];
    // The messages it held got dummy answers from the core; its operations
    // end here (their completions find no device and are dropped).
    uint32_t generation = d.generation;
    for (uint32_t i = 0; i < ops_.size(); ++i) {
      Op &op = *ops_[i];
      if (op.live && op.device == id && op.device_generation == generation) cancel_op(i);
    }
    // Its operations in flight keep the credentials they were submitted
    // with (the kernel holds them per request); none is submitted again.
    forget(id);
  }
}

uint32_t Devices::new_op(uint32_t device, const DeviceMessage &m, const DeviceRequest &r) {
  uint32_t index = 0;
  if (!free_ops_.empty()) {
    index = free_ops_.back();
    free_ops_.pop_back();
  } else {
    index = static_cast<uint32_t>(ops_.size());
    ops_.push_back(std::make_unique<Op>());
  }
  Op &op = *ops_[index];
  uint32_t generation = op.generation + 1;
  op = Op{};
  op.live = true;
  op.generation = generation;
  op.device = device;
  op.device_generation = core_.processes().at(device).generation;
  op.handle = m.handle;
  op.sender = m.sender;
  op.sender_generation = m.sender_generation;
  op.request = r;
  op.credential = states_[device].credential;
  return index;
}

void Devices::serve_messages(uint32_t id) {
  DeviceMessage m;
  while (core_.take_device_message(id, &m)) {
    State &d = states_[id];
    // The sender's data area, if it is still attached (an orphan has none).
    std::shared_ptr<Channel> channel = connections_.channel(m.sender, m.sender_generation);
    DeviceRequest r =
        decode_device_request(d.kind, m.words, channel ? channel->data_bytes() : 0, d.geometry);
    switch (r.action) {
      case DeviceAction::kAnswer: core_.send_answer(id, m.handle, r.result, r.answer); continue;
      case DeviceAction::kClockNow:
        r.answer.word[0] = static_cast<uint64_t>(clock_ns(CLOCK_MONOTONIC));
        r.answer.word[1] = static_cast<uint64_t>(clock_ns(CLOCK_REALTIME));
        core_.send_answer(id, m.handle, wire::kResultNormal, r.answer);
        continue;
      case DeviceAction::kClockWait:
        if (r.nanoseconds == 0) {
          r.answer.word[0] = static_cast<uint64_t>(clock_ns(CLOCK_MONOTONIC));
          core_.send_answer(id, m.handle, wire::kResultNormal, r.answer);
          continue;
        }
        break;
      default: break;
    }
    bool console = d.kind == wire::DeviceKind::kConsole;
    if (console && r.action == DeviceAction::kConsoleRead && !d.in) {
      wire::Message end{};
      end.word[1] = 1;  // no input at all: end of input at once
      core_.send_answer(id, m.handle, wire::kResultNormal, end);
      continue;
    }
    uint32_t op = new_op(id, m, r);
    ops_[op]->channel = std::move(channel);
    ops_[op]->file = d.out;
    if (r.action == DeviceAction::kConsoleWrite) {
      d.writes.push_back(op);
      next_console_write(id);
    } else if (r.action == DeviceAction::kConsoleRead) {
      d.readers.push_back(op);
      serve_console_readers(id);
    } else {
      submit_op(op);
    }
  }
}

void Devices::submit_op(uint32_t index) {
  Op &op = *ops_[index];
  const DeviceRequest &r = op.request;
  io_uring_sqe *sqe = loop_.sqe();
  switch (r.action) {
    case DeviceAction::kClockWait:
      op.timeout.tv_sec = static_cast<int64_t>(r.nanoseconds / 1000000000);
      op.timeout.tv_nsec = static_cast<int64_t>(r.nanoseconds % 1000000000);
      io_uring_prep_timeout(sqe, &op.timeout, 0, 0);
      break;
    case DeviceAction::kDiskRead:
      io_uring_prep_read(sqe, op.file->get(), op.channel->data() + r.offset,
                         static_cast<unsigned>(r.length), r.file_offset);
      break;
    case DeviceAction::kDiskWrite:
      io_uring_prep_write(sqe, op.file->get(), op.channel->data() + r.offset,
                          static_cast<unsigned>(r.length), r.file_offset);
      break;
    case DeviceAction::kConsoleWrite:
      // -1: the file's position (the output is O_APPEND or a stream).
      io_uring_prep_write(sqe, op.file->get(), op.channel->data() + r.offset + op.done,
                          static_cast<unsigned>(r.length - op.done), static_cast<uint64_t>(-1));
      break;
    case DeviceAction::kConsoleRead:  // the console's fill of its input buffer
      io_uring_prep_read(sqe, op.file->get(), op.fill.data(), static_cast<unsigned>(op.fill.size()),
                         static_cast<uint64_t>(-1));
      break;
    default: break;
  }
  // Reads and writes with the rights of the device's namer (devices.h,
  // "Rights"); a clock's timeout needs none.
  if (r.action != DeviceAction::kClockWait) sqe->personality = op.credential;
  Loop::set_tag(sqe, Kind::kDevice, index, op.generation);
  op.submitted = true;
}

void Devices::on_op(uint32_t index, int result) {
  Op &op = *ops_[index];
  op.submitted = false;
  State *d = state(op.device, op.device_generation);
  wire::Message answer{};
  if (op.handle == 0) {  // the console's input fill
    uint32_t device = op.device;
    if (d != nullptr) {
      d->filling = false;
      if (result > 0) {
        d->input.append(op.fill.data(), static_cast<size_t>(result));
      } else if (result == 0) {
        d->input_end = true;
      } else if (result != -ECANCELED) {
        d->input_error = -result;
      }
    }
    uint32_t generation = op.generation;
    op = Op{};
    op.generation = generation;
    free_ops_.push_back(index);
    if (d != nullptr) serve_console_readers(device);
    return;
  }
  switch (op.request.action) {
    case DeviceAction::kClockWait:
      // -ETIME: the time passed. -ECANCELED: device or sender gone.
      answer.word[0] = static_cast<uint64_t>(clock_ns(CLOCK_MONOTONIC));
      finish_op(index,
                result == -ETIME || result == 0 ? wire::kResultNormal : wire::kResultMalfunction,
                answer);
      return;
    case DeviceAction::kConsoleWrite:
      if (result > 0 && op.done + static_cast<uint64_t>(result) < op.request.length && d) {
        op.done += static_cast<uint64_t>(result);  // a short write: the rest
        submit_op(index);
        return;
      }
      [[fallthrough]];
    default:
      if (result < 0) {
        answer.word[0] = static_cast<uint64_t>(-result);
        finish_op(index, wire::kResultMalfunction, answer);
      } else {
        answer.word[0] = op.done + static_cast<uint64_t>(result);
        finish_op(index, wire::kResultNormal, answer);
      }
      return;
  }
}

void Devices::finish_op(uint32_t index, int32_t result, const wire::Message &answer) {
  Op &op = *ops_[index];
  uint32_t device = op.device;
  State *d = state(device, op.device_generation);
  // The device may be gone (its messages got dummy answers) or the buffer
  // answered otherwise: send_answer refuses a handle it no longer has.
  if (d != nullptr) core_.send_answer(device, op.handle, result, answer);
  uint32_t generation = op.generation;
  op = Op{};
  op.generation = generation;
  free_ops_.push_back(index);
  if (d != nullptr && d->writer == index) {
    d->writer = kNone;
    next_console_write(device);
  }
}

void Devices::next_console_write(uint32_t device) {
  State &d = states_[device];
  if (d.writer != kNone || d.writes.empty()) return;
  uint32_t op = d.writes.front();
  d.writes.pop_front();
  d.writer = op;
  submit_op(op);
}

void Devices::serve_console_readers(uint32_t device) {
  State &d = states_[device];
  while (!d.readers.empty()) {
    uint32_t index = d.readers.front();
    Op &op = *ops_[index];
    size_t capacity = op.request.length;
    size_t newline = d.input.find('\n');
    size_t n = 0;
    bool end = false;
    if (newline != std::string::npos && newline < capacity) {
      n = newline + 1;
    } else if (d.input.size() >= capacity) {
      n = capacity;  // a line longer than the room: the rest comes next read
    } else if (d.input_error != 0) {
      wire::Message answer{};
      answer.word[0] = static_cast<uint64_t>(d.input_error);
      d.readers.pop_front();
      finish_op(index, wire::kResultMalfunction, answer);
      continue;
    } else if (d.input_end) {
      n = d.input.size();  // the last line without its newline, or nothing
      end = true;
    } else {
      if (!d.filling) {
        // One read of the input at a time, into a buffer of nucleusd's.
        DeviceMessage none;
        uint32_t fill = new_op(device, none, DeviceRequest{});
        Op &f = *ops_[fill];
        f.request.action = DeviceAction::kConsoleRead;
        f.file = d.in;
        f.fill.resize(kConsoleFillBytes);
        d.filling = true;
        submit_op(fill);
      }
      return;
    }
    d.readers.pop_front();
    if (op.channel) std::memcpy(op.channel->data() + op.request.offset, d.input.data(), n);
    d.input.erase(0, n);
    wire::Message answer{};
    answer.word[0] = n;
    answer.word[1] = end ? 1 : 0;
    finish_op(index, wire::kResultNormal, answer);
  }
}

void Devices::cancel_op(uint32_t index) {
  Op &op = *ops_[index];
  if (op.submitted) {
    // Its completion (-ECANCELED, or done after all) ends it.
    loop_.cancel(Kind::kDevice, index, op.generation);
    return;
  }
  // Waiting in a console's queue: it ends now.
  if (State *d = state(op.device, op.device_generation)) {
    std::erase(d->writes, index);
    std::erase(d->readers, index);
  }
  wire::Message answer{};
  answer.word[0] = ECANCELED;
  finish_op(index, wire::kResultMalfunction, answer);
}

void Devices::cancel_ops_of(uint32_t sender, uint32_t generation) {
  for (uint32_t i = 0; i < ops_.size(); ++i) {
    Op &op = *ops_[i];
    if (op.live && op.handle != 0 && op.sender == sender && op.sender_generation == generation) {
      cancel_op(i);
    }
  }
}

}  // namespace nucleus::daemon
