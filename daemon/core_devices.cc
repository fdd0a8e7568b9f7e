// External processes on the Core: naming and removing devices, reserve and
// release, and taking messages off a device's queue. No I/O: Devices
// serves each message (devices.cc) and answers with send_answer.
#include <algorithm>
#include <cassert>

#include "core.h"

namespace nucleus::daemon {

Result<uint32_t> Core::create_device(uint32_t caller, std::string_view name, wire::DeviceKind kind,
                                     const UidBudget &budget) {
  if (Error e = may_take_name(name, 0); e != Error::kNone) return e;
  // The caller's account pays one device claim; undone unless the entry is
  // made. Its account stays where it is: the table makes room first.
  processes_.make_room();
  ClaimsAccount::Loan loan = account_of(caller).try_lend(kDeviceCost, 0);
  if (!loan) return Error::kNoBuffers;
  uint32_t owner = 0, group = 0;
  if (caller != kNone) {
    const Process &c = processes_.at(caller);
    owner = c.uid;
    group = c.gid;
    if (Error e = uid_accounts_.fits(owner, UidUsage{0, 1, 0}, budget); e != Error::kNone) {
      return e;
    }
  }
  Result<uint32_t> id = processes_.add(name);
  if (!id.ok()) return id;
  Process &d = processes_.at(id.value());
  d.uid = owner;  // its namer's owner (the root's own devices: nobody's)
  d.gid = group;
  if (caller != kNone) uid_accounts_.add_entry(owner, false);
  d.parent = caller;
  d.origin = Origin::kDevice;
  d.device_kind = kind;
  d.run = RunState::kRunning;
  d.attached = true;  // its queue is served by nucleusd
  if (caller == kNone) {
    root_devices_.push_back(id.value());
  } else {
    processes_.at(caller).devices.push_back(id.value());
  }
  device_ids_.push_back(id.value());
  loan.commit();
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
  account_of(caller).repay(kDeviceCost);
  std::erase(caller == kNone ? root_devices_ : processes_.at(caller).devices, id);
  drop_device(id);
  return Error::kNone;
}

void Core::drop_device(uint32_t id) {
  std::erase(device_ids_, id);
  removed_devices_.push_back(id);
  drop_entry(id, kNone);  // a device holds no buffers of its own
}

Error Core::reserve(uint32_t caller, uint32_t device, bool as_operator) {
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
