// Decoding messages to devices: every operation and every malformed word,
// checked against the sender's data area and the disk's size.
#include "device_request.h"

#include <gtest/gtest.h>

namespace nucleus::daemon {
namespace {

using wire::DeviceKind;
constexpr uint64_t kArea = 65536;
const DeviceGeometry kDisk{4096, 100, false};
const DeviceGeometry kDirectDisk{4096, 100, true};

wire::Message msg(uint64_t w0, uint64_t w1 = 0, uint64_t w2 = 0, uint64_t w3 = 0) {
  wire::Message m{};
  m.word[0] = w0;
  m.word[1] = w1;
  m.word[2] = w2;
  m.word[3] = w3;
  return m;
}

DeviceRequest decode(DeviceKind kind, const wire::Message &m, uint64_t area = kArea,
                     const DeviceGeometry &g = kDisk) {
  return decode_device_request(kind, m, area, g);
}

void expect_unintelligible(const DeviceRequest &r, int why) {
  EXPECT_EQ(r.action, DeviceAction::kAnswer);
  EXPECT_EQ(r.result, wire::kResultUnintelligible);
  EXPECT_EQ(r.answer.word[0], static_cast<uint64_t>(why));
}

TEST(DeviceRequest, NullAnswersEverythingNormal) {
  for (uint64_t op : {uint64_t{0}, uint64_t{1}, uint64_t{99}, uint64_t{UINT64_MAX}}) {
    DeviceRequest r = decode(DeviceKind::kNull, msg(op, 1, 2, 3));
    EXPECT_EQ(r.action, DeviceAction::kAnswer);
    EXPECT_EQ(r.result, wire::kResultNormal);
    EXPECT_EQ(r.answer.word[0], 0U);
  }
}

TEST(DeviceRequest, Clock) {
  DeviceRequest r = decode(DeviceKind::kClock, msg(wire::kClockWait, 5000));
  EXPECT_EQ(r.action, DeviceAction::kClockWait);
  EXPECT_EQ(r.nanoseconds, 5000U);
  EXPECT_EQ(decode(DeviceKind::kClock, msg(wire::kClockWait, 0)).action, DeviceAction::kClockWait);
  EXPECT_EQ(decode(DeviceKind::kClock, msg(wire::kClockWait, 1ULL << 62)).nanoseconds, 1ULL << 62);
  expect_unintelligible(decode(DeviceKind::kClock, msg(wire::kClockWait, (1ULL << 62) + 1)),
                        EINVAL);
  expect_unintelligible(decode(DeviceKind::kClock, msg(wire::kClockWait, UINT64_MAX)), EINVAL);
  EXPECT_EQ(decode(DeviceKind::kClock, msg(wire::kClockNow)).action, DeviceAction::kClockNow);
  expect_unintelligible(decode(DeviceKind::kClock, msg(0)), EOPNOTSUPP);
  expect_unintelligible(decode(DeviceKind::kClock, msg(3)), EOPNOTSUPP);
}

TEST(DeviceRequest, ConsoleWithinTheDataAreaOnly) {
  DeviceRequest w = decode(DeviceKind::kConsole, msg(wire::kConsoleWrite, 10, 20));
  EXPECT_EQ(w.action, DeviceAction::kConsoleWrite);
  EXPECT_EQ(w.offset, 10U);
  EXPECT_EQ(w.length, 20U);
  DeviceRequest r = decode(DeviceKind::kConsole, msg(wire::kConsoleRead, kArea - 1, 1));
  EXPECT_EQ(r.action, DeviceAction::kConsoleRead);
  // The whole area, and nothing past it.
  EXPECT_EQ(decode(DeviceKind::kConsole, msg(wire::kConsoleWrite, 0, kArea)).action,
            DeviceAction::kConsoleWrite);
  expect_unintelligible(decode(DeviceKind::kConsole, msg(wire::kConsoleWrite, 0, kArea + 1)),
                        EFAULT);
  expect_unintelligible(decode(DeviceKind::kConsole, msg(wire::kConsoleWrite, kArea, 1)), EFAULT);
  expect_unintelligible(decode(DeviceKind::kConsole, msg(wire::kConsoleWrite, kArea + 1, 0)),
                        EFAULT);
  expect_unintelligible(decode(DeviceKind::kConsole, msg(wire::kConsoleWrite, 1, UINT64_MAX)),
                        EFAULT);  // offset + length wraps
  expect_unintelligible(decode(DeviceKind::kConsole, msg(wire::kConsoleRead, UINT64_MAX, 2)),
                        EFAULT);
  // A sender without a data area (gone) can do no I/O.
  expect_unintelligible(decode(DeviceKind::kConsole, msg(wire::kConsoleWrite, 0, 1), 0), EFAULT);
  // A read needs room; an empty write is done at once.
  expect_unintelligible(decode(DeviceKind::kConsole, msg(wire::kConsoleRead, 0, 0)), EINVAL);
  DeviceRequest empty = decode(DeviceKind::kConsole, msg(wire::kConsoleWrite, 5, 0));
  EXPECT_EQ(empty.action, DeviceAction::kAnswer);
  EXPECT_EQ(empty.result, wire::kResultNormal);
  expect_unintelligible(decode(DeviceKind::kConsole, msg(3, 0, 1)), EOPNOTSUPP);
  // Lengths over 4 GiB cannot be one write.
  expect_unintelligible(
      decode(DeviceKind::kConsole, msg(wire::kConsoleWrite, 0, 1ULL << 32), 1ULL << 33), EINVAL);
}

TEST(DeviceRequest, DiskBlocksAndOffsets) {
  DeviceRequest r = decode(DeviceKind::kDisk, msg(wire::kDiskRead, 3, 2, 8192));
  EXPECT_EQ(r.action, DeviceAction::kDiskRead);
  EXPECT_EQ(r.file_offset, 3U * 4096);
  EXPECT_EQ(r.length, 2U * 4096);
  EXPECT_EQ(r.offset, 8192U);
  EXPECT_EQ(decode(DeviceKind::kDisk, msg(wire::kDiskWrite, 99, 1, 0)).action,
            DeviceAction::kDiskWrite);
  DeviceRequest info = decode(DeviceKind::kDisk, msg(wire::kDiskInfo));
  EXPECT_EQ(info.result, wire::kResultNormal);
  EXPECT_EQ(info.answer.word[0], 4096U);
  EXPECT_EQ(info.answer.word[1], 100U);

  expect_unintelligible(decode(DeviceKind::kDisk, msg(0)), EOPNOTSUPP);
  expect_unintelligible(decode(DeviceKind::kDisk, msg(4)), EOPNOTSUPP);
  expect_unintelligible(decode(DeviceKind::kDisk, msg(wire::kDiskRead, 0, 0, 0)), EINVAL);
  // The data area: the last whole block fits, one byte more does not.
  EXPECT_EQ(decode(DeviceKind::kDisk, msg(wire::kDiskRead, 0, 1, kArea - 4096)).action,
            DeviceAction::kDiskRead);
  expect_unintelligible(decode(DeviceKind::kDisk, msg(wire::kDiskRead, 0, 1, kArea - 4095)),
                        EFAULT);
  expect_unintelligible(decode(DeviceKind::kDisk, msg(wire::kDiskRead, 0, 17, 0)), EFAULT);
  expect_unintelligible(decode(DeviceKind::kDisk, msg(wire::kDiskRead, 0, UINT64_MAX, 0)),
                        EFAULT);  // count * block size wraps
  expect_unintelligible(decode(DeviceKind::kDisk, msg(wire::kDiskRead, 0, 1, UINT64_MAX)), EFAULT);
  // The disk: blocks 0..99.
  expect_unintelligible(decode(DeviceKind::kDisk, msg(wire::kDiskRead, 100, 1, 0)), ENXIO);
  expect_unintelligible(decode(DeviceKind::kDisk, msg(wire::kDiskWrite, 99, 2, 0)), ENXIO);
  expect_unintelligible(decode(DeviceKind::kDisk, msg(wire::kDiskRead, UINT64_MAX, 1, 0)), ENXIO);
  // O_DIRECT needs block-aligned offsets in the area.
  EXPECT_EQ(decode(DeviceKind::kDisk, msg(wire::kDiskRead, 0, 1, 4096), kArea, kDirectDisk).action,
            DeviceAction::kDiskRead);
  expect_unintelligible(
      decode(DeviceKind::kDisk, msg(wire::kDiskRead, 0, 1, 512), kArea, kDirectDisk), EINVAL);
}

TEST(DeviceRequest, UnknownKindIsUnintelligible) {
  expect_unintelligible(decode(static_cast<DeviceKind>(0), msg(1)), EOPNOTSUPP);
  expect_unintelligible(decode(static_cast<DeviceKind>(9), msg(1)), EOPNOTSUPP);
}

}  // namespace
}  // namespace nucleus::daemon
