// Fuzzes the decode layer and the core with sequences of requests and process
// control from processes that attach, send, take, answer, release, die and
// come back, and create, start, stop, modify and remove children whose
// programs start, attach, exit and detach, and name, reserve, serve and
// remove devices, under per-uid budgets and a per-parent limit of exit
// notices; a created child's program is parsed from the input as nucleusd
// parses a client's staged program (and may name another owner). After
// every step the pool's, the claims', the uids' and the
// notices' accounting must hold; when everything is removed and detached
// every buffer must be back and no uid owns anything.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "core.h"
#include "dispatch.h"
#include "program.h"

namespace {

using nucleus::daemon::BufferState;
using nucleus::daemon::Claims;
using nucleus::daemon::Core;
using nucleus::daemon::Inheritance;
using nucleus::daemon::kNone;
using nucleus::daemon::kNoticeOwner;
using nucleus::daemon::Origin;
using nucleus::daemon::Process;
using nucleus::daemon::Program;
using nucleus::daemon::RunState;
using nucleus::daemon::StartPlan;
using nucleus::daemon::StopState;
using nucleus::daemon::UidBudget;
using nucleus::daemon::UidUsage;
namespace wire = nucleus::wire;

constexpr uint32_t kPool = 64;
constexpr uint32_t kNotices = 4;
constexpr uint32_t kClaim = 8;
constexpr uint64_t kRootProcesses = 64;
constexpr int kProcs = 4;
const char *const kNames[] = {"p0", "p1", "p2", "p3", "c0", "c1", "c2", "c3", "c4", "nobody"};
constexpr int kNameCount = 10;
constexpr int kFirstChildName = 4;
// Two uids share a small budget; a byte picks an operator (unbounded) instead.
constexpr uint32_t kUids[] = {1000, 2000};
constexpr UidBudget kBudget{5, 7, 20};
// The name nucleusd hands out to the peer with pid 7 (nucleusctl's).
const char *const kCtlName = "nucleusctl-7";
constexpr int32_t kCtlPid = 7;

UidBudget budget_of(uint8_t byte) {
  return byte & 128 ? UidBudget::unbounded() : kBudget;
}

void check(bool ok) {
  if (!ok) std::abort();
}

void check_claims(const Core &core, uint32_t parent, const Claims &lent) {
  Claims sum;
  for (uint32_t c : core.children_of(parent)) {
    check(core.processes().live(c));
    const Process &p = core.processes().at(c);
    check(p.parent == parent && !p.is_device());
    sum.buffers += p.account.given().buffers;
    sum.processes += 1 + p.account.given().processes;
    sum.memory += p.account.given().memory;
    sum.devices += p.account.given().devices;
  }
  if (parent != kNone) {
    for (uint32_t d : core.processes().at(parent).devices) {
      check(core.processes().live(d) && core.processes().at(d).is_device());
      check(core.processes().at(d).parent == parent);
      sum.devices += 1;
    }
  } else {
    for (uint32_t d : core.devices()) sum.devices += core.processes().at(d).parent == kNone;
  }
  check(sum.buffers == lent.buffers && sum.processes == lent.processes &&
        sum.memory == lent.memory && sum.devices == lent.devices);
}

void check_invariants(const Core &core) {
  uint32_t unowned_free = 0;
  std::vector<uint32_t> owned(core.processes().capacity());
  for (uint32_t i = 0; i < core.pool().size(); ++i) {
    const auto &b = core.pool().at(i);
    if (b.owner == kNone) {
      if (b.state == BufferState::kFree)
        ++unowned_free;
      else
        check(b.sender_gone);  // in use and owned by nobody: an orphan
    } else if (b.owner != kNoticeOwner) {
      check(core.processes().live(b.owner));
      ++owned[b.owner];
      // Every answer reaches its sender: waiting to be published, or published.
      if (b.state == BufferState::kAnswered && core.processes().at(b.owner).attached) {
        check(b.in_fifo || b.published);
      }
    }
  }
  check(unowned_free == core.pool().free_count());
  // The uids' accounts are what a scan of the table finds.
  std::map<uint32_t, UidUsage> scan;
  uint64_t notices_out = 0;
  for (uint32_t id = 0; id < core.processes().capacity(); ++id) {
    if (!core.processes().live(id)) continue;
    const Process &p = core.processes().at(id);
    // A parent that is not running holds no notice buffer.
    check(p.attached || p.notices_out == 0);
    notices_out += p.notices_out;
    if (p.hidden || (p.is_device() && p.parent == kNone)) continue;
    UidUsage &u = scan[p.uid];
    u.names += 1;
    u.processes += p.is_device() ? 0 : 1;
    u.buffers += p.slots.size();
  }
  check(notices_out <= kNotices - core.notice_free());
  check(core.uid_accounts().size() == scan.size());
  for (const auto &[uid, u] : scan) {
    UidUsage got = core.uid_accounts().usage(uid);
    check(got.processes == u.processes && got.names == u.names && got.buffers == u.buffers);
  }
  check_claims(core, kNone, core.root_lent());
  check(core.root_lent().processes <= kRootProcesses);
  for (uint32_t id = 0; id < core.processes().capacity(); ++id) {
    if (!core.processes().live(id)) continue;
    const Process &p = core.processes().at(id);
    // A claim is the buffers it holds plus what it lent its children.
    check(p.account.given().buffers == p.slots.size() + p.account.lent().buffers);
    check(p.slots.size() == owned[id]);
    check(p.account.lent().processes <= p.account.given().processes);
    check(p.account.lent().devices <= p.account.given().devices || p.is_device());
    if (p.is_device()) {
      check(p.slots.empty() && p.children.empty() && p.devices.empty() && p.attached);
      check(p.reserver == kNone || core.processes().live(p.reserver));
    }
    check_claims(core, id, p.account.lent());
    if (p.hidden) {
      check(p.swap_of != kNone && core.processes().live(p.swap_of));
      check(core.processes().at(p.swap_of).swap_candidate == id);
      check(p.slots.empty() && p.children.empty());
    }
    if (p.swap_candidate != kNone) check(p.swap_buffer != kNone);
    if (p.parent != kNone) check(core.processes().live(p.parent));
    check(p.stop_buffer == kNone || p.stop == StopState::kStopping);
    check(!p.attached || p.run == RunState::kRunning);
  }
}

class Input {
 public:
  Input(const uint8_t *data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  void bytes(void *out, size_t n) {
    size_t take = std::min(n, size_ - std::min(pos_, size_));
    std::memcpy(out, data_ + pos_, take);
    pos_ += take;
  }

 private:
  const uint8_t *data_;
  size_t size_;
  size_t pos_ = 0;
};

// Every live internal process, so that a byte can pick one.
std::vector<uint32_t> live_ids(const Core &core) {
  std::vector<uint32_t> ids;
  for (uint32_t id = 0; id < core.processes().capacity(); ++id) {
    if (core.processes().live(id) && !core.processes().at(id).is_device() &&
        !core.processes().at(id).hidden) {
      ids.push_back(id);
    }
  }
  return ids;
}

// Removes every child and device of `id`, attaching a dead socket-born
// entry again first (only its own run may remove them), then detaches it.
void tear_down(Core &core, uint32_t id) {
  const Process &p = core.processes().at(id);
  if (!p.attached) check(core.attach(p.name, Claims{}, p.uid, p.gid, kCtlPid).value() == id);
  while (!core.processes().at(id).devices.empty()) {
    uint32_t d = core.processes().at(id).devices.front();
    check(core.remove_device(id, d) == nucleus::daemon::Error::kNone);
  }
  while (!core.children_of(id).empty()) {
    check(core.remove(id, core.children_of(id).front()) == nucleus::daemon::Error::kNone);
  }
  wire::Event e;
  while (core.next_event(id, &e)) core.pop_event(id);
  core.detach(id);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Core core(kPool + kNotices, kNotices, kRootProcesses);
  for (int i = 0; i < kProcs; ++i) {
    check(core.attach(kNames[i], Claims{kClaim, 6, 0, 2, 0}, kUids[i % 2], 0).ok());
  }
  core.set_notice_limit(2);
  check(core.create_device(kNone, "d0", nucleus::wire::DeviceKind::kNull).ok());
  std::vector<std::pair<uint32_t, uint64_t>> held;  // messages devices took, not yet answered
  std::vector<uint64_t> seen;  // handles that were really in use, to reach deep states
  int32_t next_pid = 100;
  Input in(data, size);
  while (!in.empty()) {
    uint8_t op = in.byte();
    std::vector<uint32_t> ids = live_ids(core);
    uint32_t id = ids.empty() ? kNone : ids[in.byte() % ids.size()];
    // An operator acting for the root (nucleusctl's act_for): process control
    // with the root's authority, requests on the requester's (id's) buffers.
    bool for_root = op / 25 == 9 && id != kNone && core.processes().at(id).attached &&
                    core.processes().at(id).origin == Origin::kSocket;
    uint32_t caller = for_root ? kNone : id;
    const std::vector<uint32_t> *kids =
        for_root ? &core.children_of(kNone) : (id == kNone ? nullptr : &core.children_of(id));
    uint32_t kid = (kids == nullptr || kids->empty()) ? kNone : (*kids)[in.byte() % kids->size()];
    // The root's children that attached through the socket are nobody's to
    // control (the server refuses with EPERM).
    if (for_root && kid != kNone && core.processes().at(kid).origin == Origin::kSocket) {
      kid = kNone;
    }
    if (core.tracing()) check(core.trace().size() <= nucleus::daemon::kMaxTrace);
    switch (op % 25) {
      case 0: {  // a socket process comes (back), maybe as nucleusctl, maybe not its pid
        uint8_t who = in.byte();
        const char *name = who & 8 ? kCtlName : kNames[who % kProcs];
        Claims c{in.byte() % (kClaim + 1U), in.byte() % 7U, 0};
        (void)core.attach(name, c, kUids[(who >> 4) & 1], 0, who & 32 ? kCtlPid : 9,
                          budget_of(who));
        break;
      }
      case 1:  // its connection closes
        if (id != kNone) core.detach(id);
        break;
      case 2: {          // takes its events
        if (for_root) {  // a monitor comes or goes
          core.set_tracing(!core.tracing());
        }
        if (uint8_t b = in.byte(); b & 1) core.set_notice_limit(1 + b % 8U);  // a reload
        if (id == kNone || !core.processes().at(id).attached) break;
        wire::Event e;
        while (core.next_event(id, &e)) {
          seen.push_back(e.handle);
          core.pop_event(id);
        }
        break;
      }
      case 3: {  // create
        if (id == kNone) break;
        Claims c{in.byte() % 5U, in.byte() % 4U, in.byte() % 3U * 4096U};
        c.devices = in.byte() % 3U;
        uint8_t b = in.byte();
        const char *name = b & 64 ? kCtlName : kNames[kFirstChildName + b % 6];
        // The program as a client stages it: a header (sometimes naming
        // another owner, as a root-owned creator may) and untrusted bytes.
        uint8_t shape = in.byte();
        wire::ProgramHeader header{shape % 3U, (shape >> 2) % 2U};
        if ((shape & 16) != 0) header.uid = kUids[(shape >> 5) & 1];
        std::string staged(reinterpret_cast<const char *>(&header), sizeof(header));
        std::string strings(in.byte() % 40U, '\0');
        in.bytes(strings.data(), strings.size());
        auto program = nucleus::daemon::parse_program(staged + strings);
        (void)core.create(caller, name, program.ok() ? program.value() : Program{}, c, kUids[b & 1],
                          0, budget_of(b));
        break;
      }
      case 11: {  // name a device (a process, or the root)
        uint8_t b = in.byte();
        uint32_t by = b & 1 ? kNone : id;
        if (by == kNone && id == kNone) break;
        const char *name = (b & 64) && (b & 8) ? kCtlName : kNames[kFirstChildName + b % 6];
        (void)core.create_device(by, name, static_cast<nucleus::wire::DeviceKind>(1 + (b >> 1) % 4),
                                 budget_of(in.byte()));
        break;
      }
      case 12: {  // remove a device it named
        if (id == kNone) break;
        auto d = core.own_device(id, kNames[kFirstChildName + in.byte() % 6]);
        if (d.ok()) check(core.remove_device(id, d.value()) == nucleus::daemon::Error::kNone);
        break;
      }
      case 13: {  // reserve or release
        if (id == kNone || !core.processes().at(id).attached) break;
        uint8_t b = in.byte();
        auto d = core.find_device(b & 1 ? "d0" : kNames[kFirstChildName + (b >> 1) % 6]);
        if (d.ok()) {
          (void)(b & 16 ? core.release(id, d.value()) : core.reserve(id, d.value(), b & 32));
        }
        break;
      }
      case 14: {  // a device takes what is queued to it
        if (core.devices().empty()) break;
        uint32_t dev = core.devices()[in.byte() % core.devices().size()];
        nucleus::daemon::DeviceMessage m;
        while (core.take_device_message(dev, &m)) held.emplace_back(dev, m.handle);
        break;
      }
      case 15: {  // and answers one (its device may be gone)
        if (held.empty()) break;
        size_t i = in.byte() % held.size();
        (void)core.send_answer(held[i].first, held[i].second, 1 + in.byte() % 4, wire::Message{});
        held.erase(held.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
      case 4: {  // start; the program starts at once
        if (kid == kNone) break;
        StartPlan plan;
        if (core.start(caller, kid, &plan) == nucleus::daemon::Error::kNone && plan.spawn) {
          core.program_started(kid, ++next_pid);
        }
        break;
      }
      case 5: {  // the started program attaches on its bound connection
        if (kid == kNone) break;
        const Process &p = core.processes().at(kid);
        if (p.origin == Origin::kNucleus && p.run == RunState::kRunning && !p.attached) {
          core.attach_run(kid);
        }
        break;
      }
      case 6: {  // the program exits or is killed
        if (kid == kNone) break;
        const Process &p = core.processes().at(kid);
        if (p.origin == Origin::kNucleus && p.run == RunState::kRunning) {
          // The server ends a swap of it first (OLD_EXITED).
          if (p.swap_candidate != kNone) core.end_swap(kid, wire::kResultRejected, wire::Message{});
          uint8_t how = in.byte();
          core.program_exited(kid, how & 1 ? wire::ExitKind::kSignal : wire::ExitKind::kCode,
                              how >> 1);
        }
        break;
      }
      case 7: {  // stop with one of its own buffers (or a forged one)
        // A request: only a process with a channel makes one.
        if (kid == kNone || !core.processes().at(id).attached) break;
        const auto &slots = core.processes().at(id).slots;
        uint64_t handle = in.byte();
        if (!slots.empty() && (handle & 1)) {
          handle = wire::next_handle(core.pool().handle(slots[in.byte() % slots.size()]));
        }
        (void)core.begin_stop(id, kid, handle);
        break;
      }
      case 8:  // the subtree has really stopped
        if (kid != kNone && core.processes().at(kid).stop == StopState::kStopping) {
          core.finish_stop(kid);
        }
        break;
      case 9: {  // modify
        if (kid == kNone) break;
        Claims c{in.byte() % 6U, in.byte() % 4U, in.byte() % 3U * 4096U};
        Program program;
        uint8_t what = in.byte();
        (void)core.modify(caller, kid, what & 1 ? &program : nullptr, what & 2 ? &c : nullptr);
        break;
      }
      case 10:  // remove
        if (kid != kNone) check(core.remove(caller, kid) == nucleus::daemon::Error::kNone);
        break;
      case 21: {  // swap a child, with one of its own buffers (or a forged one)
        if (kid == kNone || !core.processes().at(id).attached) break;
        const auto &slots = core.processes().at(id).slots;
        uint64_t handle = in.byte();
        if (!slots.empty() && (handle & 1)) {
          handle = wire::next_handle(core.pool().handle(slots[in.byte() % slots.size()]));
        }
        (void)core.begin_swap(id, kid, handle, Program{"/bin/os2", "", {}, {}});
        break;
      }
      case 22: {  // the new program attached: the nucleus asks for the handover
        if (kid == kNone || core.processes().at(kid).swap_candidate == kNone ||
            core.processes().at(kid).handed_over) {
          break;
        }
        if (core.processes().at(kid).handover_buffer == kNone) {
          (void)core.request_handover(kid, 4096);
        }
        uint8_t how = in.byte();
        uint32_t index = core.processes().at(kid).handover_buffer;
        if ((how & 1) == 0 || index == kNone || !core.processes().at(kid).attached) break;
        // ... and the OS answers it at once (normal, or a refusal).
        uint64_t handle = core.pool().handle(index);
        wire::Event e;
        while (!core.pool().at(index).published && core.next_event(kid, &e)) {
          seen.push_back(e.handle);
          core.pop_event(kid);
        }
        if (core.get_event(kid, handle) == nucleus::daemon::Error::kNone) {
          check(core.send_answer(kid, handle, (how & 2) ? 1 : 2, wire::Message{}) ==
                nucleus::daemon::Error::kNone);
        }
        break;
      }
      case 23: {  // the new program is ready: the takeover
        if (kid == kNone || !core.processes().at(kid).handed_over) break;
        (void)core.take_handovers();
        Inheritance inh = core.commit_swap(kid, ++next_pid);
        for (uint32_t index : inh.received)
          check(core.pool().at(index).state == BufferState::kReceived);
        for (uint32_t index : inh.out) check(core.pool().at(index).state != BufferState::kFree);
        core.end_swap(kid, wire::kResultNormal, wire::Message{});
        break;
      }
      case 24:  // the swap fails (any reason): the old program is served again
        if (kid != kNone && core.processes().at(kid).swap_candidate != kNone) {
          (void)core.take_handovers();
          core.end_swap(kid, wire::kResultRejected, wire::Message{});
        }
        break;
      default: {  // a request on its channel, well-formed or not
        if (id == kNone || !core.processes().at(id).attached) break;
        wire::Request r{};
        uint8_t shape = in.byte();
        in.bytes(&r, (shape & 16) ? sizeof(r) : 8);
        if (shape & 1) r.op = (shape >> 5) % 6;  // the ops dispatch serves
        if ((shape & 2) && !seen.empty()) r.handle = seen[in.byte() % seen.size()];
        if (shape & 4) {
          const auto &slots = core.processes().at(id).slots;
          if (!slots.empty()) {
            r.handle = wire::next_handle(core.pool().handle(slots[in.byte() % slots.size()]));
          }
        }
        if (shape & 8) {
          std::strcpy(r.name, kNames[in.byte() % kNameCount]);
          r.arg = 1 + in.byte() % 4;
        }
        wire::Event reply;
        nucleus::daemon::dispatch_request(core, id, r, &reply);
        break;
      }
    }
    // The server's part: it writes slot tables and publishes events.
    (void)core.take_slot_changes();
    (void)core.take_dirty();
    (void)core.take_handovers();  // the server looks at them each turn
    check(core.trace().size() <= nucleus::daemon::kMaxTrace);
    check(core.tracing() || core.trace().empty());
    (void)core.take_trace();  // the server sends them to the monitors each turn
    check_invariants(core);
  }
  // Everything removed from the top: every buffer comes back.
  (void)core.take_handovers();
  std::vector<uint32_t> top(core.children_of(kNone));
  for (uint32_t id : top) {
    // The root's children an operator created go with their subtrees.
    if (core.processes().at(id).origin == Origin::kNucleus) {
      check(core.remove(kNone, id) == nucleus::daemon::Error::kNone);
    } else {
      tear_down(core, id);
    }
  }
  while (!core.devices().empty()) {  // the root's own devices
    check(core.processes().at(core.devices().front()).parent == kNone);
    check(core.remove_device(kNone, core.devices().front()) == nucleus::daemon::Error::kNone);
  }
  check(core.processes().count() == 0);
  check(core.uid_accounts().size() == 0);
  check(core.pool().free_count() + core.notice_free() == kPool + kNotices);
  return 0;
}
