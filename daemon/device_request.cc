#include "device_request.h"

#include <cerrno>

namespace nucleus::daemon {

namespace {

constexpr uint64_t kMaxWaitNs = uint64_t{1} << 62;  // about 146 years

// [offset, offset + length) lies within the data area (no overflow).
bool inside(uint64_t offset, uint64_t length, uint64_t data_bytes) {
  return offset <= data_bytes && length <= data_bytes - offset;
}

DeviceRequest clock_request(const wire::Message &m) {
  DeviceRequest r;
  switch (m.word[wire::kDeviceOp]) {
    case wire::kClockWait:
      if (m.word[wire::kDeviceArg1] > kMaxWaitNs) return unintelligible(EINVAL);
      r.action = DeviceAction::kClockWait;
      r.nanoseconds = m.word[wire::kDeviceArg1];
      return r;
    case wire::kClockNow: r.action = DeviceAction::kClockNow; return r;
    default: return unintelligible(EOPNOTSUPP);
  }
}

DeviceRequest console_request(const wire::Message &m, uint64_t data_bytes) {
  DeviceRequest r;
  uint64_t op = m.word[wire::kDeviceOp];
  if (op != wire::kConsoleWrite && op != wire::kConsoleRead) return unintelligible(EOPNOTSUPP);
  r.offset = m.word[wire::kDeviceArg1];
  r.length = m.word[wire::kDeviceArg2];
  if (!inside(r.offset, r.length, data_bytes)) return unintelligible(EFAULT);
  if (r.length > UINT32_MAX) return unintelligible(EINVAL);
  if (op == wire::kConsoleRead) {
    if (r.length == 0) return unintelligible(EINVAL);  // no room for a line
    r.action = DeviceAction::kConsoleRead;
    return r;
  }
  if (r.length == 0) return r;  // nothing to write: answered at once, 0 bytes
  r.action = DeviceAction::kConsoleWrite;
  return r;
}

DeviceRequest disk_request(const wire::Message &m, uint64_t data_bytes, const DeviceGeometry &g) {
  DeviceRequest r;
  uint64_t op = m.word[wire::kDeviceOp];
  if (op == wire::kDiskInfo) {
    r.answer.word[0] = g.block_size;
    r.answer.word[1] = g.blocks;
    return r;
  }
  if (op != wire::kDiskRead && op != wire::kDiskWrite) return unintelligible(EOPNOTSUPP);
  uint64_t block = m.word[wire::kDeviceArg1];
  uint64_t count = m.word[wire::kDeviceArg2];
  r.offset = m.word[wire::kDeviceArg3];
  if (count == 0) return unintelligible(EINVAL);
  // count * block_size cannot overflow once it is within the data area.
  if (count > data_bytes / g.block_size) return unintelligible(EFAULT);
  r.length = count * g.block_size;
  if (!inside(r.offset, r.length, data_bytes)) return unintelligible(EFAULT);
  if (g.direct && r.offset % g.block_size != 0) return unintelligible(EINVAL);
  if (block > g.blocks || count > g.blocks - block) return unintelligible(ENXIO);
  r.file_offset = block * g.block_size;
  r.action = op == wire::kDiskRead ? DeviceAction::kDiskRead : DeviceAction::kDiskWrite;
  return r;
}

}  // namespace

DeviceRequest unintelligible(int why) {
  DeviceRequest r;
  r.result = wire::kResultUnintelligible;
  r.answer.word[0] = static_cast<uint64_t>(why);
  return r;
}

DeviceRequest decode_device_request(wire::DeviceKind kind, const wire::Message &message,
                                    uint64_t data_bytes, const DeviceGeometry &geometry) {
  switch (kind) {
    case wire::DeviceKind::kClock: return clock_request(message);
    case wire::DeviceKind::kConsole: return console_request(message, data_bytes);
    case wire::DeviceKind::kDisk: return disk_request(message, data_bytes, geometry);
    case wire::DeviceKind::kNull: return DeviceRequest{};
  }
  return unintelligible(EOPNOTSUPP);
}

}  // namespace nucleus::daemon
