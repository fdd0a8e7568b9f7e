// External processes on the Core: naming and removing devices, reserve and
// release, and taking messages off a device's queue. No I/O: the server
// serves each message (server_devices.cc) and answers with send_answer.
#include <algorithm>
#include <cassert>

#include "core.h"

namespace nucleus::daemon {

Result<uint32_t> Core::create_device(uint32_t caller, std::string_view name,
                                     wire::DeviceKind kind) {
  if (caller != kNone) {
    const Process &c = processes_.at(caller);
    if (c.given.devices - c.lent.devices < 1) return Error::kNoBuffers;
  }
  Result<uint32_t> id = processes_.add(name);
  if (!id.ok()) return id;
  Process &d = processes_.at(id.value());
  d.parent = caller;
  d.origin = Origin::kDevice;
  d.device_kind = kind;
  d.run = RunState::kRunning;
  d.attached = true;  // its queue is served by nucleusd
  if (caller == kNone) {
    root_devices_.push_back(id.value());
  } else {
    Process &c = processes_.at(caller);
    c.lent.devices += 1;
    c.devices.push_back(id.value());
  }
  device_ids_.push_back(id.value());
  return id;
}

Result<uint32_t> Core::own_device(uint32_t caller, std::string_view name) const {
  uint32_t id = processes_.find(name);
  if (id == kNone || !processes_.at(id).is_device() || processes_.at(id).parent != caller) {
    return Error::kNoChild;
  }
  return id;
}

Result<uint32_t> Core::find_device(std::string_view name) const {
  uint32_t id = processes_.find(name);
  if (id == kNone) return Error::kNoChild;
  if (!processes_.at(id).is_device()) return Error::kInvalid;
  return id;
}

Error Core::remove_device(uint32_t caller, uint32_t id) {
  if (caller == kNone) {
    std::erase(root_devices_, id);
  } else {
    Process &c = processes_.at(caller);
    c.lent.devices -= 1;
    std::erase(c.devices, id);
  }
  drop_device(id);
  return Error::kNone;
}

void Core::drop_device(uint32_t id) {
  std::erase(device_ids_, id);
  removed_devices_.push_back(id);
  drop_entry(id, kNone);  // a device holds no buffers of its own
}

Error Core::reserve(uint32_t caller, uint32_t device) {
  Process &d = processes_.at(device);
  if (d.reserver == caller) return Error::kNone;
  if (d.reserver != kNone) return Error::kBusy;
  d.reserver = caller;
  return Error::kNone;
}

Error Core::release(uint32_t caller, uint32_t device) {
  Process &d = processes_.at(device);
  if (d.reserver != caller) return Error::kNotReserver;
  d.reserver = kNone;
  return Error::kNone;
}

void Core::release_all(uint32_t id) {
  for (uint32_t d : device_ids_) {
    if (processes_.at(d).reserver == id) processes_.at(d).reserver = kNone;
  }
}

bool Core::take_device_message(uint32_t device, DeviceMessage *out) {
  for (;;) {
    Process &d = processes_.at(device);
    uint32_t index = d.fifo_head;
    if (index == kNone) return false;
    pop_event(device);
    bool taken = pool_.apply(index, BufferEvent::kTake);
    assert(taken);
    (void)taken;
    Buffer &b = pool_.at(index);
    if (d.reserver != kNone && b.owner != d.reserver) {
      pool_.apply(index, BufferEvent::kAnswer);
      inbox_remove(d, index);
      b.result = wire::kResultRejected;
      b.words = wire::Message{};
      deliver_answer(index);
      continue;
    }
    out->handle = pool_.handle(index);
    out->sender = b.sender_gone ? kNone : b.owner;
    out->sender_generation = processes_.live(b.owner) ? processes_.at(b.owner).generation : 0;
    out->words = b.words;
    return true;
  }
}

}  // namespace nucleus::daemon
