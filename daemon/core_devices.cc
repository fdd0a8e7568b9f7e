#include "core_devices.h"

#include <cassert>

namespace nucleus::daemon {

void CoreDevices::named(uint32_t namer, uint32_t id) {
  // The root's devices (the configuration's) are only in the list of all.
  if (namer != kNone) processes_.at(namer).devices.push_back(id);
  ids_.push_back(id);
}

void CoreDevices::unnamed(uint32_t namer, uint32_t id) {
  if (namer != kNone) std::erase(processes_.at(namer).devices, id);
}

std::vector<uint32_t> CoreDevices::take_named(uint32_t id) {
  return std::exchange(processes_.at(id).devices, {});
}

void CoreDevices::dropped(uint32_t id) {
  std::erase(ids_, id);
  removed_.push_back(id);
}

Result<uint32_t> CoreDevices::own_device(uint32_t caller, std::string_view name) const {
  uint32_t id = processes_.find(name);
  if (id == kNone || !processes_.at(id).is_device() || processes_.at(id).parent != caller) {
    return Error::kNoChild;
  }
  return id;
}

Result<uint32_t> CoreDevices::find_device(std::string_view name) const {
  uint32_t id = processes_.find(name);
  if (id == kNone) return Error::kNoChild;
  if (!processes_.at(id).is_device()) return Error::kInvalid;
  return id;
}

Error CoreDevices::reserve(uint32_t caller, uint32_t device, bool as_operator) {
  Process &d = processes_.at(device);
  // Whoever may reserve a device can take it from everyone else, so it
  // needs the right to it: it is the namer's, the namer lends it to its
  // subtree and answers to its ancestors. Every process descends from the
  // root, so the root's own devices are only for operators (acting for it).
  if (!as_operator) {
    uint32_t namer = d.parent;
    if (namer == kNone) return Error::kNotPermitted;
    bool related = false;
    for (uint32_t i = caller; i != kNone && !related; i = processes_.at(i).parent) {
      related = i == namer;  // the caller is the namer or below it
    }
    for (uint32_t i = namer; i != kNone && !related; i = processes_.at(i).parent) {
      related = i == caller;  // the caller is above the namer
    }
    if (!related) return Error::kNotPermitted;
  }
  if (d.reserver == caller) return Error::kNone;
  if (d.reserver != kNone) return Error::kBusy;
  d.reserver = caller;
  return Error::kNone;
}

Error CoreDevices::release(uint32_t caller, uint32_t device) {
  Process &d = processes_.at(device);
  if (d.reserver != caller) return Error::kNotReserver;
  d.reserver = kNone;
  return Error::kNone;
}

void CoreDevices::release_all(uint32_t id) {
  for (uint32_t d : ids_) {
    if (processes_.at(d).reserver == id) processes_.at(d).reserver = kNone;
  }
}

bool CoreDevices::take_device_message(uint32_t device, DeviceMessage *out) {
  for (;;) {
    Process &d = processes_.at(device);
    uint32_t index = d.fifo_head;
    if (index == kNone) return false;
    messages_.pop_event(device);
    bool taken = pool_.apply(index, BufferEvent::kTake);
    assert(taken);
    (void)taken;
    Buffer &b = pool_.at(index);
    if (d.reserver != kNone && b.owner != d.reserver) {
      messages_.inbox_remove(d, index);
      messages_.answer(index, wire::kResultRejected, wire::Message{}, device);
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
