// External processes (devices): which there are, who reserved each, and
// the messages queued to them, which Devices serves (devices.cc)
// and answers with send_answer. Owns the list of devices, the devices
// removed since Devices last looked, and each
// device's reserver. A device's entry in the table is named and removed by
// the tree (ProcessTree::create_device, remove_device), which tells it here.
//
// Threading: nucleusd's loop thread only.
#pragma once

#include <nucleus/wire.h>

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "error.h"
#include "messages.h"
#include "pool.h"
#include "process_table.h"

namespace nucleus::daemon {

// A message a device took from its queue (Core::take_device_message).
struct DeviceMessage {
  uint64_t handle = 0;
  uint32_t sender = kNone;  // the process that owns the buffer (kNone: gone)
  uint32_t sender_generation = 0;
  wire::Message words{};
};

class CoreDevices {
 public:
  CoreDevices(Pool &pool, ProcessTable &processes, Messages &messages)
      : pool_(pool), processes_(processes), messages_(messages) {}
  CoreDevices(const CoreDevices &) = delete;
  CoreDevices &operator=(const CoreDevices &) = delete;

  // `id` was named by `namer` (kNone: the root).
  void named(uint32_t namer, uint32_t id);
  // `namer` removed `id`.
  void unnamed(uint32_t namer, uint32_t id);
  // The devices `id` named: they leave the table with it.
  std::vector<uint32_t> take_named(uint32_t id);
  // `id` left the table.
  void dropped(uint32_t id);

  // The rest is documented on the Core's surface (core.h).
  Result<uint32_t> own_device(uint32_t caller, std::string_view name) const;
  Result<uint32_t> find_device(std::string_view name) const;
  Error reserve(uint32_t caller, uint32_t device, bool as_operator);
  Error release(uint32_t caller, uint32_t device);
  // CoreDevices reserved by `id` are free again.
  void release_all(uint32_t id);
  bool take_device_message(uint32_t device, DeviceMessage *out);
  std::vector<uint32_t> take_removed() { return std::exchange(removed_, {}); }
  const std::vector<uint32_t> &list() const { return ids_; }

 private:
  Pool &pool_;
  ProcessTable &processes_;
  Messages &messages_;
  std::vector<uint32_t> ids_;
  std::vector<uint32_t> removed_;
};

}  // namespace nucleus::daemon
