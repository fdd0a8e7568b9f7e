// External processes in nucleusd's Server: devices named by the
// configuration or by processes, and serving their messages with io_uring.
// (Split from server.cc; same class.) The rules (names, claims, reserve)
// are in Core (core_devices.cc); what a message asks for is decoded in
// device_request.cc.
//
// Memory: an operation that reads into or writes from a data area holds a
// reference to the sender's Channel, so the mapping stays until the
// operation's completion arrives, even when the sender dies or the device is
// removed first; its descriptor is shared the same way. A completion whose
// device or buffer is gone is dropped.
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
#include "server.h"

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

// The strings of a kCreateExternal: path and input path, NUL-terminated.
bool split_paths(const std::string &staged, std::string *path, std::string *input) {
  if (staged.empty()) return true;
  size_t first = staged.find('\0');
  if (first == std::string::npos) return false;
  size_t second = staged.find('\0', first + 1);
  if (second == std::string::npos || second + 1 != staged.size()) return false;
  *path = staged.substr(0, first);
  *input = staged.substr(first + 1, second - first - 1);
  return true;
}

}  // namespace

Server::DeviceState *Server::device_state(uint32_t id, uint32_t generation) {
  if (id >= device_states_.size()) return nullptr;
  DeviceState &d = device_states_[id];
  return d.live && d.generation == generation ? &d : nullptr;
}

void Server::install_device(uint32_t id, DeviceState state) {
  drop_removed_devices();  // an old device at this index gives up its state first
  if (device_states_.size() < core_.processes().capacity()) {
    device_states_.resize(core_.processes().capacity());
  }
  state.live = true;
  state.generation = core_.processes().at(id).generation;
  device_states_[id] = std::move(state);
}

int Server::open_device(const DeviceConfig &spec, const Principal &who, bool std_streams,
                        DeviceState *out) {
  *out = DeviceState{};
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

bool Server::create_configured_devices(std::string *error) {
  for (const DeviceConfig &c : config_.devices) {
    DeviceState state;
    if (int rc = open_device(c, Principal{geteuid(), getegid(), {}}, true, &state); rc < 0) {
      *error = "devices: " + c.name + ": cannot open " + c.path + ": " + std::strerror(-rc);
      return false;
    }
    Result<uint32_t> id = core_.create_device(kNone, c.name, c.kind);
    if (!id.ok()) {
      *error = "devices: " + c.name + ": " + std::strerror(to_errno(id.error()));
      return false;
    }
    install_device(id.value(), std::move(state));
    log::info("device {} ({})", c.name, c.path.empty() ? "built in" : c.path);
  }
  return true;
}

int Server::create_external(uint32_t caller, std::string_view name, const wire::Request &r,
                            const std::string &staged) {
  if (r.arg < 1 || r.arg >= static_cast<int64_t>(wire::kDeviceKindCount)) return -EINVAL;
  DeviceConfig spec;
  spec.name = name;
  spec.kind = static_cast<wire::DeviceKind>(r.arg);
  if (!split_paths(staged, &spec.path, &spec.input)) return -EINVAL;
  uint64_t flags = r.message.word[wire::kDeviceFlags];
  uint64_t block_size = r.message.word[wire::kDeviceBlockSize];
  if (block_size == 0) block_size = wire::kMinBlockSize;
  if ((flags & ~uint64_t{wire::kDeviceDirect}) != 0 || block_size < wire::kMinBlockSize ||
      block_size > wire::kMaxBlockSize ||
      !wire::is_power_of_two(static_cast<uint32_t>(block_size))) {
    return -EINVAL;
  }
  spec.block_size = static_cast<uint32_t>(block_size);
  spec.direct = (flags & wire::kDeviceDirect) != 0;
  bool disk = spec.kind == wire::DeviceKind::kDisk;
  bool files = disk || spec.kind == wire::DeviceKind::kConsole;
  if (files ? spec.path.empty() : !(spec.path.empty() && spec.input.empty())) return -EINVAL;
  if ((disk && !spec.input.empty()) || (spec.direct && !disk)) return -EINVAL;
  if (spec.kind == wire::DeviceKind::kConsole && spec.input.empty()) spec.input = spec.path;

  // The entry first: the name and the claim are checked before any file is
  // opened (or created) for the caller.
  const Process &namer = core_.processes().at(caller);
  Result<uint32_t> id =
      core_.create_device(caller, name, spec.kind, policy_.uid_budget(namer.uid, namer.gid));
  if (!id.ok()) {
    policy_.log_uid_refusal(id.error(), namer.uid, "name device", name);
    return -to_errno(id.error());
  }
  const Process &p = core_.processes().at(caller);
  DeviceState state;
  if (int rc = open_device(spec, principals_.get(p.uid, p.gid), false, &state); rc < 0) {
    core_.remove_device(caller, id.value());
    return rc;
  }
  install_device(id.value(), std::move(state));
  log::info("process {} named device {} ({}{})", p.name, name,
            spec.path.empty() ? "built in" : spec.path,
            spec.input.empty() ? "" : ", input " + spec.input);
  return 0;
}

void Server::drop_removed_devices() {
  for (uint32_t id : core_.take_removed_devices()) {
    if (id >= device_states_.size() || !device_states_[id].live) continue;
    DeviceState &d = device_states_[id];
    // The messages it held got dummy answers from the core; its operations
    // end here (their completions find no device and are dropped).
    uint32_t generation = d.generation;
    for (uint32_t i = 0; i < device_ops_.size(); ++i) {
      DeviceOp &op = *device_ops_[i];
      if (op.live && op.device == id && op.device_generation == generation) cancel_device_op(i);
    }
    device_states_[id] = DeviceState{};
  }
}

uint32_t Server::new_device_op(uint32_t device, const DeviceMessage &m, const DeviceRequest &r) {
  uint32_t index = 0;
  if (!free_device_ops_.empty()) {
    index = free_device_ops_.back();
    free_device_ops_.pop_back();
  } else {
    index = static_cast<uint32_t>(device_ops_.size());
    device_ops_.push_back(std::make_unique<DeviceOp>());
  }
  DeviceOp &op = *device_ops_[index];
  uint32_t generation = op.generation + 1;
  op = DeviceOp{};
  op.live = true;
  op.generation = generation;
  op.device = device;
  op.device_generation = core_.processes().at(device).generation;
  op.handle = m.handle;
  op.sender = m.sender;
  op.sender_generation = m.sender_generation;
  op.request = r;
  return index;
}

void Server::serve_device(uint32_t id) {
  DeviceMessage m;
  while (core_.take_device_message(id, &m)) {
    DeviceState &d = device_states_[id];
    // The sender's data area, if it is still attached (an orphan has none).
    std::shared_ptr<Channel> channel;
    if (m.sender < connections_.size() && connections_[m.sender].live &&
        connections_[m.sender].generation == m.sender_generation) {
      channel = connections_[m.sender].channel;
    }
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
    uint32_t op = new_device_op(id, m, r);
    device_ops_[op]->channel = std::move(channel);
    device_ops_[op]->file = d.out;
    if (r.action == DeviceAction::kConsoleWrite) {
      d.writes.push_back(op);
      next_console_write(id);
    } else if (r.action == DeviceAction::kConsoleRead) {
      d.readers.push_back(op);
      serve_console_readers(id);
    } else {
      submit_device_op(op);
    }
  }
}

void Server::submit_device_op(uint32_t index) {
  DeviceOp &op = *device_ops_[index];
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
  Loop::set_tag(sqe, Kind::kDevice, index, op.generation);
  op.submitted = true;
}

void Server::on_device_op(uint32_t index, int result) {
  DeviceOp &op = *device_ops_[index];
  op.submitted = false;
  DeviceState *d = device_state(op.device, op.device_generation);
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
    op = DeviceOp{};
    op.generation = generation;
    free_device_ops_.push_back(index);
    if (d != nullptr) serve_console_readers(device);
    return;
  }
  switch (op.request.action) {
    case DeviceAction::kClockWait:
      // -ETIME: the time passed. -ECANCELED: device or sender gone.
      answer.word[0] = static_cast<uint64_t>(clock_ns(CLOCK_MONOTONIC));
      finish_device_op(
          index, result == -ETIME || result == 0 ? wire::kResultNormal : wire::kResultMalfunction,
          answer);
      return;
    case DeviceAction::kConsoleWrite:
      if (result > 0 && op.done + static_cast<uint64_t>(result) < op.request.length && d) {
        op.done += static_cast<uint64_t>(result);  // a short write: the rest
        submit_device_op(index);
        return;
      }
      [[fallthrough]];
    default:
      if (result < 0) {
        answer.word[0] = static_cast<uint64_t>(-result);
        finish_device_op(index, wire::kResultMalfunction, answer);
      } else {
        answer.word[0] = op.done + static_cast<uint64_t>(result);
        finish_device_op(index, wire::kResultNormal, answer);
      }
      return;
  }
}

void Server::finish_device_op(uint32_t index, int32_t result, const wire::Message &answer) {
  DeviceOp &op = *device_ops_[index];
  uint32_t device = op.device;
  DeviceState *d = device_state(device, op.device_generation);
  // The device may be gone (its messages got dummy answers) or the buffer
  // answered otherwise: send_answer refuses a handle it no longer has.
  if (d != nullptr) core_.send_answer(device, op.handle, result, answer);
  uint32_t generation = op.generation;
  op = DeviceOp{};
  op.generation = generation;
  free_device_ops_.push_back(index);
  if (d != nullptr && d->writer == index) {
    d->writer = kNone;
    next_console_write(device);
  }
}

void Server::next_console_write(uint32_t device) {
  DeviceState &d = device_states_[device];
  if (d.writer != kNone || d.writes.empty()) return;
  uint32_t op = d.writes.front();
  d.writes.pop_front();
  d.writer = op;
  submit_device_op(op);
}

void Server::serve_console_readers(uint32_t device) {
  DeviceState &d = device_states_[device];
  while (!d.readers.empty()) {
    uint32_t index = d.readers.front();
    DeviceOp &op = *device_ops_[index];
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
      finish_device_op(index, wire::kResultMalfunction, answer);
      continue;
    } else if (d.input_end) {
      n = d.input.size();  // the last line without its newline, or nothing
      end = true;
    } else {
      if (!d.filling) {
        // One read of the input at a time, into a buffer of nucleusd's.
        DeviceMessage none;
        uint32_t fill = new_device_op(device, none, DeviceRequest{});
        DeviceOp &f = *device_ops_[fill];
        f.request.action = DeviceAction::kConsoleRead;
        f.file = d.in;
        f.fill.resize(kConsoleFillBytes);
        d.filling = true;
        submit_device_op(fill);
      }
      return;
    }
    d.readers.pop_front();
    if (op.channel) std::memcpy(op.channel->data() + op.request.offset, d.input.data(), n);
    d.input.erase(0, n);
    wire::Message answer{};
    answer.word[0] = n;
    answer.word[1] = end ? 1 : 0;
    finish_device_op(index, wire::kResultNormal, answer);
  }
}

void Server::cancel_device_op(uint32_t index) {
  DeviceOp &op = *device_ops_[index];
  if (op.submitted) {
    // Its completion (-ECANCELED, or done after all) ends it.
    loop_.cancel(Kind::kDevice, index, op.generation);
    return;
  }
  // Waiting in a console's queue: it ends now.
  if (DeviceState *d = device_state(op.device, op.device_generation)) {
    std::erase(d->writes, index);
    std::erase(d->readers, index);
  }
  wire::Message answer{};
  answer.word[0] = ECANCELED;
  finish_device_op(index, wire::kResultMalfunction, answer);
}

void Server::cancel_device_ops_of(uint32_t sender, uint32_t generation) {
  for (uint32_t i = 0; i < device_ops_.size(); ++i) {
    DeviceOp &op = *device_ops_[i];
    if (op.live && op.handle != 0 && op.sender == sender && op.sender_generation == generation) {
      cancel_device_op(i);
    }
  }
}

}  // namespace nucleus::daemon
