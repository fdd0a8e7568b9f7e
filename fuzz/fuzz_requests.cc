// Fuzzes the decoder (requests.h) and the core with sequences of requests
// from processes that attach, send, take, answer, release, die and come
// back; every request goes through the one decoder nucleusd uses, with a
// fake Linux side: children are created, started (their launches come back
// when the input says, or fail), stopped, modified, removed, listed and
// swapped; devices are named, reserved, served and removed; processes act
// for the root or for another; staged programs are untrusted bytes (and may
// name another owner); messages lend ranges of their sender's data area,
// receivers copy from and into them and senders regret them (the copies
// touch the fake data areas, so a range the decoder lets through past an
// area is a sanitizer's error); raw requests of any op and any fields come
// too.
// The uids have per-uid budgets (one of them an operator's, and root's) and
// parents a limit of exit notices; the configuration reserves some names
// (the names section, reloaded now and then). After every step the pool's,
// the claims', the uids' and the notices' accounting must hold; every
// program the decoder has run, created or given a new program runs as an
// owner its requester could name (the owner rule) under a name its owner
// may take; when everything is removed and detached every buffer must be
// back and no uid owns anything.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "config.h"
#include "core.h"
#include "log.h"
#include "owner_rule.h"
#include "policy.h"
#include "program.h"
#include "requests.h"

namespace {

using nucleus::daemon::BufferState;
using nucleus::daemon::Claims;
using nucleus::daemon::Config;
using nucleus::daemon::Core;
using nucleus::daemon::Error;
using nucleus::daemon::Inheritance;
using nucleus::daemon::kNone;
using nucleus::daemon::kNoticeOwner;
using nucleus::daemon::NameRule;
using nucleus::daemon::Origin;
using nucleus::daemon::Owner;
using nucleus::daemon::owner_of;
using nucleus::daemon::owner_rule_allows;
using nucleus::daemon::Policy;
using nucleus::daemon::Process;
using nucleus::daemon::Program;
using nucleus::daemon::Requests;
using nucleus::daemon::Result;
using nucleus::daemon::RunState;
using nucleus::daemon::Session;
using nucleus::daemon::StopState;
using nucleus::daemon::UidBudget;
using nucleus::daemon::UidUsage;
using nucleus::daemon::Waiter;
namespace wire = nucleus::wire;

constexpr uint32_t kPool = 64;
constexpr uint32_t kNotices = 4;
constexpr uint32_t kClaim = 8;
constexpr uint64_t kRootProcesses = 64;
constexpr int kProcs = 4;
const char *const kNames[] = {"p0", "p1", "p2", "p3", "c0", "c1", "c2", "c3", "c4", "nobody"};
constexpr int kNameCount = 10;
constexpr int kFirstChildName = 4;
// Two uids: the first is held to a small budget, the second is an operator's;
// root (uid 0) attaches too, and may name any owner.
constexpr uint32_t kUids[] = {1000, 2000};
constexpr UidBudget kBudget{5, 7, 20};
// The name nucleusd hands out to the peer with pid 7 (nucleusctl's).
const char *const kCtlName = "nucleusctl-7";
constexpr int32_t kCtlPid = 7;

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
  // A live lend lies in a data area (the fuzzer's are 4096 bytes) with
  // known rights.
  for (uint32_t i = 0; i < core.pool().size(); ++i) {
    const auto &b = core.pool().at(i);
    if (b.state != BufferState::kQueued && b.state != BufferState::kReceived) continue;
    if (b.lend_bytes == 0) continue;
    check(b.lend_rights <= (wire::kLendRead | wire::kLendWrite));
    check(uint64_t{b.lend_offset} + b.lend_bytes <= 4096);
  }
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

// nucleusd's Linux side as the fuzzer plays it: a start's launch (a swap's
// new program's too) is in flight until the input says it came back (or
// failed); a device's files open unless its path is /nonexistent. The
// server's other reactions are the driver's steps below. A program is run
// only as an owner its requester could name (the owner rule).
class FakeLinux : public nucleus::daemon::LinuxSide {
 public:
  explicit FakeLinux(Core &core) : core_(core) {}

  bool launching(uint32_t child) const override {
    auto it = launches.find(child);
    return it != launches.end() && core_.processes().live(child) &&
           core_.processes().at(child).generation == it->second.generation;
  }
  int spawn(uint32_t id, const Waiter &waiter, uint64_t *) override {
    // A start's waiter is its requester.
    if (waiter.id != kNone) {
      check(owner_rule_allows(owner_of(core_.processes().at(waiter.id)),
                              owner_of(core_.processes().at(id))));
    }
    launches[id] = Launch{core_.processes().at(id).generation, waiter};
    return nucleus::daemon::kAnswerLater;
  }
  void stop_subtree(uint32_t) override {}
  void resume_subtree(uint32_t) override {}
  void end_subtree(uint32_t) override {}
  void begin_swap(uint32_t requester, uint32_t, uint32_t cand) override {
    check(owner_rule_allows(owner_of(core_.processes().at(requester)),
                            owner_of(core_.processes().at(cand))));
    uint64_t step = 0;
    spawn(cand, Waiter{}, &step);
  }
  int swap_ready(uint32_t cand, uint32_t) override {
    const Process &p = core_.processes().at(cand);
    return p.swap_of != kNone && core_.processes().at(p.swap_of).handed_over ? 0 : -EINVAL;
  }
  int open_device(uint32_t, uint32_t, const nucleus::daemon::DeviceConfig &spec) override {
    // A file that cannot be opened: the decoder removes the entry it named.
    return spec.path == "/nonexistent" ? -ENOENT : 0;
  }
  // A descriptor to poll: once per process, as Connections does.
  int open_poll_descriptor(uint32_t id) override { return polled.insert(id).second ? 0 : -EEXIST; }
  void ring_poll_descriptor(uint32_t) override {}
  std::set<uint32_t> polled;
  // A device named again is the same (0) when its path is /tmp/d, else
  // named otherwise (-EEXIST): the fuzzer reaches both answers.
  bool named_with(uint32_t, const nucleus::daemon::DeviceConfig &spec) const override {
    return spec.path == "/tmp/d";
  }
  // An attached run's data area: kDataBytes of its own (a fresh one for
  // each run), none otherwise.
  std::span<uint8_t> data_area(uint32_t id) override {
    if (!core_.processes().live(id) || !core_.processes().at(id).attached) {
      areas.erase(id);
      return {};
    }
    std::vector<uint8_t> &a = areas[id];
    if (a.empty()) a.resize(kDataBytes);
    return a;
  }
  static constexpr size_t kDataBytes = 4096;
  std::map<uint32_t, std::vector<uint8_t>> areas;

  struct Launch {
    uint32_t generation;
    Waiter waiter;
  };
  std::map<uint32_t, Launch> launches;

 private:
  Core &core_;
};

// A request as a byte picks it: the fields the op reads, with a name from
// the list (or none).
wire::Request make_request(wire::Op op, const char *name, int64_t arg = 0) {
  wire::Request r{};
  r.op = static_cast<uint32_t>(op);
  r.arg = arg;
  if (name != nullptr) std::strcpy(r.name, name);
  return r;
}

// The handle of the next use of one of `id`'s own buffers, or a forged one.
uint64_t own_or_forged(const Core &core, uint32_t id, Input &in) {
  const auto &slots = core.processes().at(id).slots;
  uint64_t handle = in.byte();
  if (!slots.empty() && (handle & 1)) {
    handle = wire::next_handle(core.pool().handle(slots[in.byte() % slots.size()]));
  }
  return handle;
}

// A program as a client stages it: a header (sometimes naming another
// owner or group, as a root-owned creator may) and untrusted bytes.
std::string staged_program(Input &in) {
  uint8_t shape = in.byte();
  wire::ProgramHeader header{shape % 3U, (shape >> 2) % 2U};
  if ((shape & 16) != 0) header.uid = kUids[(shape >> 5) & 1];
  if ((shape & 64) != 0) header.gid = (shape & 32) != 0 ? 42 : 0;
  std::string staged(reinterpret_cast<const char *>(&header), sizeof(header));
  std::string strings(in.byte() % 40U, '\0');
  in.bytes(strings.data(), strings.size());
  if ((shape & 128) != 0) strings = std::string("/bin/os2\0\0", 10);
  return staged + strings;
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

// Every event a process is given says who it is from, stamped by the Core
// (wire::Principal): a process, a device or the nucleus, never nothing; the
// nucleus's name goes with the nucleus's principal only, and a dummy answer
// is the nucleus's.
void check_principal(const wire::Event &e) {
  using Kind = nucleus::wire::PrincipalKind;
  uint32_t kind = e.principal.kind;
  check(kind == static_cast<uint32_t>(Kind::kProcess) ||
        kind == static_cast<uint32_t>(Kind::kDevice) ||
        kind == static_cast<uint32_t>(Kind::kNucleus));
  bool named_nucleus = std::strcmp(e.sender, wire::kNucleusName) == 0;
  check(named_nucleus == (kind == static_cast<uint32_t>(Kind::kNucleus)));
  if (e.kind == static_cast<uint32_t>(wire::EventKind::kAnswer) && e.result == wire::kResultDummy) {
    check(kind == static_cast<uint32_t>(Kind::kNucleus));
  }
}

// nucleusd as the fuzzer drives it: the Core, the decoder and a fake
// Linux side; one method a step.
class Driver {
 public:
  Driver() : policy_(config_, core_), linux_(core_), requests_(make_requests()) {
    // uid 2000 is an operator's (unbounded, may act for the root); 1000 is
    // held to a small budget.
    config_.operators_own_uid = false;
    config_.operator_uids = {kUids[1]};
    config_.limits.uid_processes = kBudget.processes;
    config_.limits.uid_names = kBudget.names;
    config_.limits.uid_buffers = kBudget.buffers;
    config_.limits.connection_staged_bytes = 256;
    config_.data_bytes = 4096;
    config_.names = names_;
    for (int i = 0; i < kProcs; ++i) {
      check(core_.attach(kNames[i], Claims{kClaim, 6, 0, 2, 0}, kUids[i % 2], 0).ok());
    }
    core_.set_notice_limit(2);
    check(core_.create_device(kNone, "d0", nucleus::wire::DeviceKind::kNull).ok());
  }

  void step(Input &in) {
    uint8_t op = in.byte();
    std::vector<uint32_t> ids = live_ids(core_);
    id_ = ids.empty() ? kNone : ids[in.byte() % ids.size()];
    // An operator acting for the root (nucleusctl's act_for): process
    // control with the root's authority, requests on the requester's
    // buffers.
    for_root_ = op / 25 == 9 && attached(id_) &&
                core_.processes().at(id_).origin == Origin::kSocket &&
                core_.processes().at(id_).uid == kUids[1];
    uint32_t caller = for_root_ ? kNone : id_;
    const std::vector<uint32_t> *kids =
        caller == kNone && !for_root_ ? nullptr : &core_.children_of(caller);
    kid_ = (kids == nullptr || kids->empty()) ? kNone : (*kids)[in.byte() % kids->size()];
    // The root's children that attached through the socket are nobody's to
    // control (the decoder refuses with EPERM).
    if (for_root_ && kid_ != kNone && core_.processes().at(kid_).origin == Origin::kSocket) {
      kid_ = kNone;
    }
    check(core_.trace().size() <= nucleus::daemon::kMaxTrace);
    switch (op % 27) {
      case 0: attach(in); break;
      case 1: detach(); break;
      case 2: take_events(in); break;
      case 3: create(in); break;
      case 4: control(wire::Op::kStartProcess); break;
      case 5: program_attaches(); break;
      case 6: program_exits(in); break;
      case 7: stop(in); break;
      case 8: stop_completes(); break;
      case 9: modify(in); break;
      case 10: remove(); break;
      case 11: name_device(in); break;
      case 12: remove_device(in); break;
      case 13: reserve_or_release(in); break;
      case 14: device_takes(in); break;
      case 15: device_answers(in); break;
      case 16: launch_comes_back(in); break;
      case 17: get_or_list(in); break;
      case 18: act_for(in); break;
      case 21: swap(in); break;
      case 22: handover(in); break;
      case 23: take_over(); break;
      case 24: swap_fails(); break;
      case 25: send_or_copy(in); break;
      case 26: regret(in); break;
      default: raw_request(in); break;
    }
    // The server's part: it writes slot tables and publishes events.
    (void)core_.take_slot_changes();
    (void)core_.take_dirty();
    (void)core_.take_handovers();  // the server looks at them each turn
    check(core_.trace().size() <= nucleus::daemon::kMaxTrace);
    check(core_.tracing() || core_.trace().empty());
    (void)core_.take_trace();  // the server sends them to the monitors each turn
    check_invariants(core_);
  }

  // Everything removed from the top: every buffer comes back.
  void tear_down_all() {
    (void)core_.take_handovers();
    std::vector<uint32_t> top(core_.children_of(kNone));
    for (uint32_t id : top) {
      // The root's children an operator created go with their subtrees.
      if (core_.processes().at(id).origin == Origin::kNucleus) {
        check(core_.remove(kNone, id) == Error::kNone);
      } else {
        tear_down(core_, id);
      }
    }
    while (!core_.devices().empty()) {  // the root's own devices
      check(core_.processes().at(core_.devices().front()).parent == kNone);
      check(core_.remove_device(kNone, core_.devices().front()) == Error::kNone);
    }
    check(core_.processes().count() == 0);
    check(core_.uid_accounts().size() == 0);
    check(core_.pool().free_count() + core_.notice_free() == kPool + kNotices);
  }

 private:
  Requests make_requests() {
    return Requests(core_, config_, policy_, linux_, [this](uint32_t id, const wire::Event &e) {
      if (e.kind == static_cast<uint32_t>(wire::EventKind::kWithdrawn)) {
        // A regret told a receiver that had it in its ring: the buffer is
        // free again, and the receiver is attached.
        check(attached(id));
        check(core_.pool().at(wire::handle_index(e.handle)).state == BufferState::kFree);
        return;
      }
      check(e.kind == static_cast<uint32_t>(wire::EventKind::kReply));
      replies_.emplace_back(id, e);
    });
  }
  bool attached(uint32_t id) const { return id != kNone && core_.processes().at(id).attached; }

  // One request of `id_` through the decoder, as its connection's service
  // does; for the root when for_root_. Returns its one reply's result, or
  // 1 when there was no reply (or more than one).
  int32_t request(wire::Request r) {
    replies_.clear();
    Session &session = sessions_[id_];
    if (for_root_) session.acting = kNone;
    Error e = requests_.handle(id_, serial_of(id_), session, r);
    if (for_root_) session.acting = Session::kActSelf;
    if (e != Error::kNone) (void)core_.count_protocol_error(id_);
    return replies_.size() == 1 ? replies_[0].second.result : 1;
  }
  uint32_t serial_of(uint32_t id) const { return core_.processes().at(id).generation; }
  // Process control of `kid_` by name.
  int32_t control(wire::Op op, int64_t arg = 0, uint64_t handle = 0) {
    if (kid_ == kNone || !attached(id_)) return 1;
    wire::Request r = make_request(op, core_.processes().at(kid_).name.c_str(), arg);
    r.handle = handle;
    return request(r);
  }
  void stage(const std::string &bytes) {
    for (size_t at = 0; at < bytes.size(); at += wire::kStageChunkBytes) {
      size_t n = std::min<size_t>(wire::kStageChunkBytes, bytes.size() - at);
      char chunk[wire::kStageChunkBytes] = {};
      std::memcpy(chunk, bytes.data() + at, n);
      wire::Request r = make_request(wire::Op::kStageProgram, nullptr, static_cast<int64_t>(n));
      std::memcpy(r.name, chunk, sizeof(r.name));
      std::memcpy(&r.message, chunk + sizeof(r.name), sizeof(r.message));
      request(r);
    }
  }

  void attach(Input &in) {  // a socket process comes (back), maybe as nucleusctl, maybe not its pid
    uint8_t who = in.byte();
    const char *name = who & 8 ? kCtlName : kNames[who % kProcs];
    Claims c{in.byte() % (kClaim + 1U), in.byte() % 7U, 0};
    uint32_t uid = (who & 64) != 0 ? 0 : kUids[(who >> 4) & 1];
    // As Attach does: the names section first (it names no p*, so the
    // processes the driver starts with may come back).
    if (!policy_.may_own(name, Owner{uid, 0}, "attach as")) return;
    Result<uint32_t> id =
        core_.attach(name, c, uid, 0, who & 32 ? kCtlPid : 9, policy_.uid_budget(uid, 0));
    if (id.ok()) sessions_[id.value()] = Session{};
  }
  void detach() {  // its connection closes
    if (id_ == kNone) return;
    core_.detach(id_);
    sessions_.erase(id_);
  }
  void take_events(Input &in) {
    if (for_root_) core_.set_tracing(!core_.tracing());  // a monitor comes or goes
    if (uint8_t b = in.byte(); b & 1) {                  // a reload
      core_.set_notice_limit(1 + b % 8U);
      config_.limits.connection_staged_bytes = b & 2 ? 256 : 48;
      config_.names = b & 4 ? names_ : std::vector<NameRule>{};
    }
    if (!attached(id_)) return;
    wire::Event e;
    while (core_.next_event(id_, &e)) {
      check_principal(e);
      seen_.push_back(e.handle);
      core_.pop_event(id_);
    }
  }
  void create(Input &in) {
    if (!attached(id_)) return;
    stage(staged_program(in));
    uint8_t b = in.byte();
    const char *name = b & 64 ? kCtlName : kNames[kFirstChildName + b % 6];
    wire::Request r = make_request(wire::Op::kCreateProcess, name);
    r.message.word[wire::kClaimBuffers] = in.byte() % 5U;
    r.message.word[wire::kClaimProcesses] = in.byte() % 4U;
    r.message.word[wire::kClaimMemory] = in.byte() % 3U * 4096U;
    r.message.word[wire::kClaimDevices] = in.byte() % 3U;
    if (request(r) == 0) {
      uint32_t made = core_.processes().find(name);
      check_owner_rule(made);
      // Its name was its requester's to take, whoever the entry runs as
      // (the names section as it is now; decision 66).
      Owner owner = owner_of(core_.processes().at(id_));
      const NameRule *rule = nucleus::daemon::name_rule(config_.names, name);
      check(rule == nullptr ||
            std::find(rule->uids.begin(), rule->uids.end(), owner.uid) != rule->uids.end() ||
            std::find(rule->gids.begin(), rule->gids.end(), owner.gid) != rule->gids.end());
    }
  }
  // An entry the decoder just created or gave a program to runs it as an
  // owner its requester could name.
  void check_owner_rule(uint32_t entry) {
    check(entry != kNone);
    check(owner_rule_allows(owner_of(core_.processes().at(id_)),
                            owner_of(core_.processes().at(entry))));
  }
  void launch_comes_back(Input &in) {  // a start's launch comes back: started, or not
    if (linux_.launches.empty()) return;
    auto it = linux_.launches.begin();
    std::advance(it, in.byte() % linux_.launches.size());
    uint32_t id = it->first;
    FakeLinux::Launch launch = it->second;
    linux_.launches.erase(it);
    bool current =
        core_.processes().live(id) && core_.processes().at(id).generation == launch.generation;
    bool ok = (in.byte() & 3) != 0;
    if (current && ok) core_.program_started(id, ++next_pid_);
    if (current && !ok && core_.processes().at(id).swap_of != kNone) {
      (void)core_.take_handovers();  // the swap ends (START_FAILED)
      core_.end_swap(core_.processes().at(id).swap_of, wire::kResultRejected, wire::Message{});
    }
  }
  void program_attaches() {  // the started program attaches on its bound connection
    if (kid_ == kNone) return;
    const Process &p = core_.processes().at(kid_);
    if (p.origin == Origin::kNucleus && p.run == RunState::kRunning && !p.attached) {
      core_.attach_run(kid_);
      sessions_[kid_] = Session{};
    }
  }
  void program_exits(Input &in) {  // the program exits or is killed
    if (kid_ == kNone) return;
    const Process &p = core_.processes().at(kid_);
    if (p.origin != Origin::kNucleus || p.run != RunState::kRunning) return;
    // The server ends a swap of it first (OLD_EXITED).
    if (p.swap_candidate != kNone) core_.end_swap(kid_, wire::kResultRejected, wire::Message{});
    uint8_t how = in.byte();
    core_.program_exited(kid_, how & 1 ? wire::ExitKind::kSignal : wire::ExitKind::kCode, how >> 1);
    sessions_.erase(kid_);
  }
  void stop(Input &in) {  // with one of its own buffers (or a forged one)
    if (kid_ == kNone || !attached(id_)) return;
    control(wire::Op::kStopProcess, 0, own_or_forged(core_, id_, in));
  }
  void stop_completes() {  // the subtree has really stopped
    if (kid_ != kNone && core_.processes().at(kid_).stop == StopState::kStopping) {
      core_.finish_stop(kid_);
    }
  }
  void modify(Input &in) {
    if (kid_ == kNone || !attached(id_)) return;
    uint8_t what = in.byte();
    if (what & 1) stage(staged_program(in));
    wire::Request r =
        make_request(wire::Op::kModifyProcess, core_.processes().at(kid_).name.c_str(), what & 7);
    r.message.word[wire::kClaimBuffers] = in.byte() % 6U;
    r.message.word[wire::kClaimProcesses] = in.byte() % 4U;
    r.message.word[wire::kClaimMemory] = in.byte() % 3U * 4096U;
    uint32_t kid = kid_;
    if (request(r) == 0 && (what & 1) != 0) check_owner_rule(kid);
  }
  void remove() {
    if (kid_ == kNone || !attached(id_)) return;
    // A remove of a child it may control always works, launching or not
    // (acting for another, its own children are not the ones it controls).
    bool own = for_root_ || sessions_[id_].acting == Session::kActSelf;
    int32_t result = control(wire::Op::kRemoveProcess);
    check(!own || result == 0);
    linux_.launches.erase(kid_);  // its launch is answered for an entry that is gone
  }
  void name_device(Input &in) {  // by a process (a request), or by the configuration
    uint8_t b = in.byte();
    const char *name = (b & 64) && (b & 8) ? kCtlName : kNames[kFirstChildName + b % 6];
    auto kind = static_cast<int64_t>(1 + (b >> 1) % 4);
    if (b & 1) {
      (void)core_.create_device(kNone, name, static_cast<wire::DeviceKind>(kind));
    } else if (attached(id_)) {
      // Its paths as a client stages them: a file, one that cannot be
      // opened, or untrusted bytes.
      uint8_t paths = in.byte();
      if (paths % 4 == 1) stage(std::string("/tmp/d\0\0", 8));
      if (paths % 4 == 2) stage(std::string("/nonexistent\0\0", 14));
      if (paths % 4 == 3) {
        std::string bytes(in.byte() % 16U, '\0');
        in.bytes(bytes.data(), bytes.size());
        stage(bytes);
      }
      wire::Request r = make_request(wire::Op::kCreateExternal, name, (b & 128) ? in.byte() : kind);
      r.message.word[wire::kDeviceBlockSize] = (paths & 16) ? in.byte() * 64U : 0;
      r.message.word[wire::kDeviceFlags] = (paths >> 5) % 3U;
      request(r);
    }
  }
  void remove_device(Input &in) {  // one it named
    if (!attached(id_)) return;
    request(make_request(wire::Op::kRemoveExternal, kNames[kFirstChildName + in.byte() % 6]));
  }
  void reserve_or_release(Input &in) {
    if (!attached(id_)) return;
    uint8_t b = in.byte();
    request(make_request(b & 16 ? wire::Op::kReleaseProcess : wire::Op::kReserveProcess,
                         b & 1 ? "d0" : kNames[kFirstChildName + (b >> 1) % 6]));
  }
  void device_takes(Input &in) {  // a device takes what is queued to it
    if (core_.devices().empty()) return;
    uint32_t dev = core_.devices()[in.byte() % core_.devices().size()];
    nucleus::daemon::DeviceMessage m;
    while (core_.take_device_message(dev, &m)) held_.emplace_back(dev, m.handle);
  }
  void device_answers(Input &in) {  // and answers one (its device may be gone)
    if (held_.empty()) return;
    size_t i = in.byte() % held_.size();
    (void)core_.send_answer(held_[i].first, held_[i].second, 1 + in.byte() % 4, wire::Message{});
    held_.erase(held_.begin() + static_cast<std::ptrdiff_t>(i));
  }
  void get_or_list(Input &in) {
    uint8_t b = in.byte();
    if (b & 1) {
      control(wire::Op::kGetProcess);
    } else if (attached(id_)) {
      request(make_request(wire::Op::kListChildren, nullptr, b >> 1));
    }
  }
  void act_for(Input &in) {  // for itself, the root or another, from then on
    if (!attached(id_)) return;
    uint8_t b = in.byte();
    request(make_request(wire::Op::kActFor, kNames[b % kNameCount], b % 4));
  }
  void swap(Input &in) {  // a child, with one of its own buffers (or a forged one)
    if (kid_ == kNone || !attached(id_)) return;
    uint64_t handle = own_or_forged(core_, id_, in);
    stage(staged_program(in));
    control(wire::Op::kSwapProcess, 0, handle);
  }
  void handover(Input &in) {  // the new program attached: the nucleus asks for the handover
    if (kid_ == kNone || core_.processes().at(kid_).swap_candidate == kNone ||
        core_.processes().at(kid_).handed_over) {
      return;
    }
    if (core_.processes().at(kid_).handover_buffer == kNone) {
      (void)core_.request_handover(kid_, 4096);
    }
    uint8_t how = in.byte();
    uint32_t index = core_.processes().at(kid_).handover_buffer;
    if ((how & 1) == 0 || index == kNone || !attached(kid_)) return;
    // ... and the OS answers it at once (normal, or a refusal).
    uint64_t handle = core_.pool().handle(index);
    wire::Event e;
    while (!core_.pool().at(index).published && core_.next_event(kid_, &e)) {
      check_principal(e);
      seen_.push_back(e.handle);
      core_.pop_event(kid_);
    }
    if (core_.get_event(kid_, handle) == Error::kNone) {
      check(core_.send_answer(kid_, handle, (how & 2) ? 1 : 2, wire::Message{}) == Error::kNone);
    }
  }
  void take_over() {  // the new program is ready: the takeover
    if (kid_ == kNone || !core_.processes().at(kid_).handed_over) return;
    uint32_t cand = core_.processes().at(kid_).swap_candidate;
    if (attached(cand)) {  // it asks (the fake answers later: no reply now)
      uint32_t requester = id_;
      id_ = cand;
      check(request(make_request(wire::Op::kSwapReady, nullptr)) == 1);
      id_ = requester;
    }
    (void)core_.take_handovers();
    Inheritance inh = core_.commit_swap(kid_, ++next_pid_);
    for (uint32_t index : inh.received)
      check(core_.pool().at(index).state == BufferState::kReceived);
    for (uint32_t index : inh.out) check(core_.pool().at(index).state != BufferState::kFree);
    core_.end_swap(kid_, wire::kResultNormal, wire::Message{});
    linux_.launches.erase(cand);
  }
  void swap_fails() {  // any reason: the old program is served again
    if (kid_ == kNone || core_.processes().at(kid_).swap_candidate == kNone) return;
    linux_.launches.erase(core_.processes().at(kid_).swap_candidate);
    (void)core_.take_handovers();
    core_.end_swap(kid_, wire::kResultRejected, wire::Message{});
  }
  // A send with a lend (in the area or not, any rights), or a copy on a
  // handle that was in use (held or not, with any offsets).
  void send_or_copy(Input &in) {
    if (!attached(id_)) return;
    uint8_t shape = in.byte();
    auto pick = [&]() -> uint32_t {
      uint8_t b = in.byte();
      uint32_t edge = (b & 1) != 0 ? 4096U : 4095U;
      return (b & 6) == 0 ? edge : (b & 6) == 2 ? UINT32_MAX - b : b * 17U;
    };
    if ((shape & 1) != 0) {
      wire::Request r = make_request(wire::Op::kSendMessage, kNames[in.byte() % kNameCount],
                                     static_cast<int64_t>(shape >> 5) - 1);
      r.handle = own_or_forged(core_, id_, in);
      r.lend_offset = pick();
      r.lend_bytes = pick();
      request(r);
      return;
    }
    if (seen_.empty()) return;
    if ((shape & 64) != 0) {
      // An answer that carries data to the start of the lent range: given
      // only with a live write lend at least that long, or a lend that
      // ended (then without the data).
      wire::Request a = make_request(wire::Op::kSendAnswer, nullptr, wire::kResultNormal);
      a.handle = seen_[in.byte() % seen_.size()];
      a.lend_offset = pick();
      a.lend_bytes = pick();
      uint32_t index = wire::handle_index(a.handle);
      bool was_held =
          core_.holds(id_, a.handle) && core_.pool().at(index).state == BufferState::kReceived;
      nucleus::daemon::Result<nucleus::daemon::LentRange> lent =
          core_.lent_range(id_, a.handle, wire::kCopyTo);
      request(a);
      bool answered = was_held && !core_.holds(id_, a.handle) && a.lend_bytes != 0;
      if (answered && lent.ok()) {
        check(a.lend_bytes <= lent.value().bytes && a.lend_bytes <= wire::kMaxCopyBytes);
      }
      if (answered && !lent.ok()) check(lent.error() == Error::kLendEnded);
      return;
    }
    wire::Request r = make_request(wire::Op::kCopyData, nullptr, (shape >> 1) % 3);
    r.handle = seen_[in.byte() % seen_.size()];
    uint64_t at = (shape & 8) != 0 ? UINT64_MAX - in.byte() : pick();
    r.message.word[wire::kCopyLendOffset] = at;
    r.message.word[wire::kCopyOwnOffset] = pick();
    r.message.word[wire::kCopyBytes] = (shape & 16) != 0 ? wire::kMaxCopyBytes + 1 : pick();
    bool held = core_.lent_range(id_, r.handle, wire::kCopyFrom).ok() ||
                core_.lent_range(id_, r.handle, wire::kCopyTo).ok();
    int32_t rc = request(r);
    check(rc == 0 || rc == -EBADF || rc == -ENODATA || rc == -EACCES || rc == -EFAULT ||
          rc == -ERANGE || rc == -ESTALE || rc == -EMSGSIZE || rc == -EINVAL);
    check(rc != 0 || held);  // a copy happens only on a live lend the caller holds
  }
  // The sender regrets a buffer it has out (or one that was in use).
  void regret(Input &in) {
    if (!attached(id_)) return;
    wire::Request r = make_request(wire::Op::kRegretMessage, nullptr);
    const auto &slots = core_.processes().at(id_).slots;
    uint8_t b = in.byte();
    if ((b & 1) != 0 && !slots.empty()) {
      r.handle = core_.pool().handle(slots[in.byte() % slots.size()]);
    } else if (!seen_.empty()) {
      r.handle = seen_[in.byte() % seen_.size()];
    }
    uint32_t index = wire::handle_index(r.handle);
    bool queued = index < core_.pool().size() && core_.pool().handle(index) == r.handle &&
                  core_.pool().at(index).owner == id_ &&
                  core_.pool().at(index).state == BufferState::kQueued;
    int32_t rc = request(r);
    check(rc == 0 || rc == -EBUSY || rc == -EALREADY || rc == -EBADF);
    check((rc == 0) == queued);
    if (rc == 0) check(core_.pool().at(index).state == BufferState::kFree);
  }

  void raw_request(Input &in) {  // a request on its channel, well-formed or not, of any op
    if (!attached(id_)) return;
    wire::Request r{};
    uint8_t shape = in.byte();
    in.bytes(&r, (shape & 16) ? sizeof(r) : 8);
    if (shape & 1) r.op = in.byte() % (wire::kOpCount + 1);
    if ((shape & 2) && !seen_.empty()) r.handle = seen_[in.byte() % seen_.size()];
    if (shape & 4) {
      const auto &slots = core_.processes().at(id_).slots;
      if (!slots.empty()) {
        r.handle = wire::next_handle(core_.pool().handle(slots[in.byte() % slots.size()]));
      }
    }
    if (shape & 8) {
      std::strcpy(r.name, kNames[in.byte() % kNameCount]);
      r.arg = 1 + in.byte() % 4;
    }
    // A remove by a raw request: its launch, if any, is answered as gone.
    uint32_t named =
        r.op == static_cast<uint32_t>(wire::Op::kRemoveProcess)
            ? core_.processes().find(std::string_view(r.name, strnlen(r.name, sizeof(r.name))))
            : kNone;
    request(r);
    if (named != kNone && !core_.processes().live(named)) linux_.launches.erase(named);
  }

  // The names section: c0 only root's; c1 only uid 2000's but for its own
  // rule (any primary gid 0), which wins over the prefix; c2 no one's.
  const std::vector<NameRule> names_{NameRule{"c0", false, {0}, {}},
                                     NameRule{"c1", true, {2000}, {}},
                                     NameRule{"c1", false, {}, {0}}, NameRule{"c2", false, {}, {}}};
  Config config_;
  Core core_{kPool + kNotices, kNotices, kRootProcesses};
  Policy policy_;
  FakeLinux linux_;
  Requests requests_;
  std::map<uint32_t, Session> sessions_;
  std::vector<std::pair<uint32_t, wire::Event>> replies_;
  std::vector<std::pair<uint32_t, uint64_t>> held_;  // messages devices took, not yet answered
  std::vector<uint64_t> seen_;  // handles that were really in use, to reach deep states
  int32_t next_pid_ = 100;
  uint32_t id_ = kNone;
  uint32_t kid_ = kNone;
  bool for_root_ = false;
};

}  // namespace

// The decoder logs what it does, as nucleusd does; not here.
extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  nucleus::daemon::log::setup("off");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Driver driver;
  Input in(data, size);
  while (!in.empty()) driver.step(in);
  driver.tear_down_all();
  return 0;
}
