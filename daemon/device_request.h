// Decoding a message to a device (docs/devices.md): what the words ask for,
// checked against the device and the sender's data area. Pure: no I/O, so
// every malformed case is unit-tested. Devices carries the result out.
#pragma once

#include <nucleus/wire.h>

#include <cstdint>

namespace nucleus::daemon {

// What the device is, as far as a request needs to know.
struct DeviceGeometry {
  uint32_t block_size = 0;  // disk
  uint64_t blocks = 0;      // disk
  bool direct = false;      // disk: O_DIRECT, data-area offsets must be block aligned
};

enum class DeviceAction : uint8_t {
  kAnswer,        // answer now with `result` and `answer`
  kClockWait,     // answer normal after `nanoseconds`
  kClockNow,      // answer with the clocks now
  kConsoleWrite,  // write [offset, offset + length) of the data area
  kConsoleRead,   // read one line into [offset, offset + length)
  kDiskRead,      // read `length` bytes at `file_offset` into the data area at `offset`
  kDiskWrite,     // write `length` bytes of the data area at `offset` to `file_offset`
};

struct DeviceRequest {
  DeviceAction action = DeviceAction::kAnswer;
  int32_t result = wire::kResultNormal;
  wire::Message answer{};
  uint64_t nanoseconds = 0;
  uint64_t offset = 0;  // in the sender's data area
  uint64_t length = 0;
  uint64_t file_offset = 0;
};

// `data_bytes` is the size of the sender's data area (from nucleusd's own
// record of it, never from the channel).
DeviceRequest decode_device_request(wire::DeviceKind kind, const wire::Message &message,
                                    uint64_t data_bytes, const DeviceGeometry &geometry);

// An answer of result unintelligible saying why (an errno in word 0).
DeviceRequest unintelligible(int why);

}  // namespace nucleus::daemon
