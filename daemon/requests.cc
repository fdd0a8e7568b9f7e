#include "requests.h"

#include <cerrno>
#include <cstring>

#include "launch.h"
#include "log.h"
#include "principal.h"
#include "program.h"

namespace nucleus::daemon {

namespace {

Claims claims_from(const wire::Message &m) {
  return Claims{m.word[wire::kClaimBuffers], m.word[wire::kClaimProcesses],
                m.word[wire::kClaimMemory], m.word[wire::kClaimDevices],
                m.word[wire::kClaimDataBytes]};
}

wire::Event reply_to(const wire::Request &r) {
  wire::Event reply{};
  reply.kind = static_cast<uint32_t>(wire::EventKind::kReply);
  reply.seq = r.seq;
  return reply;
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

constexpr size_t op_index(wire::Op op) {
  return static_cast<size_t>(op);
}

}  // namespace

// The table: one handler an op, in wire.h's order.
const Requests::Handler Requests::kHandlers[wire::kOpCount] = {
    &Requests::nop,                                   // kNop
    &Requests::send_message,                          // kSendMessage
    &Requests::get_event,                             // kGetEvent
    &Requests::send_answer,                           // kSendAnswer
    &Requests::release_answer,                        // kReleaseAnswer
    &Requests::get_stats,                             // kGetStats
    &Requests::stage_program,                         // kStageProgram
    &Requests::answered<&Requests::create_process>,   // kCreateProcess
    &Requests::answered<&Requests::start_process>,    // kStartProcess
    &Requests::answered<&Requests::stop_process>,     // kStopProcess
    &Requests::answered<&Requests::modify_process>,   // kModifyProcess
    &Requests::answered<&Requests::remove_process>,   // kRemoveProcess
    &Requests::answered<&Requests::get_process>,      // kGetProcess
    &Requests::list_children,                         // kListChildren
    &Requests::answered<&Requests::create_external>,  // kCreateExternal
    &Requests::answered<&Requests::remove_external>,  // kRemoveExternal
    &Requests::answered<&Requests::reserve_process>,  // kReserveProcess
    &Requests::answered<&Requests::release_process>,  // kReleaseProcess
    &Requests::answered<&Requests::swap_process>,     // kSwapProcess
    &Requests::swap_ready,                            // kSwapReady
    &Requests::answered<&Requests::act_for>,          // kActFor
    &Requests::regret_message,                        // kRegretMessage
    &Requests::copy_data,                             // kCopyData
    &Requests::poll_descriptor,                       // kPollDescriptor
    &Requests::receive_window,                        // kReceiveWindow
};
static_assert(op_index(wire::Op::kReceiveWindow) + 1 == wire::kOpCount,
              "a new op needs its handler in Requests::kHandlers");

bool Requests::every_op_handled() {
  for (Handler h : kHandlers) {
    if (h == nullptr) return false;
  }
  return true;
}

Error Requests::handle(uint32_t id, uint32_t serial, Session &session,
                       const wire::Request &request) {
  if (request.op >= wire::kOpCount) return Error::kProtocol;
  Call call{id, serial, session, request};
  return (this->*kHandlers[request.op])(call);
}

void Requests::reply_result(const Call &call, int result) {
  wire::Event reply = reply_to(call.r);
  reply.result = result;
  if (result < 0) fill_cause(&reply);
  reply_(call.id, reply);
}

void Requests::fill_cause(wire::Event *reply) {
  if (reply->cause != wire::kCauseNone) return;  // said already (a start's step)
  auto e = static_cast<Error>(-reply->result);
  Refusal r = note_.take(e);
  if (r.cause == wire::kCauseNone) r = core_.take_refusal(e);
  set_cause(reply, r);
}

int Requests::state_refusal(Error e, uint32_t child) const {
  if (e == Error::kBusy || e == Error::kAlready) {
    return refuse(e, wire::kCauseState, static_cast<uint64_t>(core_.state(child)));
  }
  return -to_errno(e);
}

template <Requests::ControlOp op>
Error Requests::answered(Call &call) {
  // Every process-control op takes what was staged for it, even one that
  // is refused: the next op starts from nothing.
  call.staged = std::move(call.session.staged);
  call.staged_overflow = call.session.staged_overflow;
  call.session.staged.clear();
  call.session.staged_overflow = false;
  int len = wire::name_length(call.r.name, sizeof(call.r.name));
  call.name_ok = len >= 0;
  if (call.name_ok) call.name = std::string_view(call.r.name, static_cast<size_t>(len));
  // Notes of an earlier request are not this one's.
  note_.clear();
  (void)core_.take_refusal(Error::kNone);
  wire::Event reply = reply_to(call.r);
  reply.result = (this->*op)(call, &reply);
  if (reply.result == kAnswerLater) return Error::kNone;
  if (reply.result < 0) fill_cause(&reply);
  reply_(call.id, reply);
  return Error::kNone;
}

// ---- message primitives --------------------------------------------------

Error Requests::nop(Call &) {
  return Error::kNone;
}

// An op this nucleusd does not serve yet: refused as an unknown op is.
Error Requests::unknown(Call &) {
  return Error::kProtocol;
}

// kPollOpen is replied (the descriptor came on the socket, or why not);
// kPollRing is not, as a staged chunk is not; any other arg is malformed.
Error Requests::poll_descriptor(Call &call) {
  switch (call.r.arg) {
    case wire::kPollOpen:
      reply_result(call, linux_.open_poll_descriptor(call.id));
      return Error::kNone;
    case wire::kPollRing: linux_.ring_poll_descriptor(call.id); return Error::kNone;
    default: return Error::kInvalid;
  }
}

Error Requests::send_message(Call &call) {
  int len = wire::name_length(call.r.name, sizeof(call.r.name));
  if (len < 0) return Error::kInvalid;
  std::string_view receiver(call.r.name, static_cast<size_t>(len));
  // No lend (arg 0): the lend fields are not looked at, and the send costs
  // what it did before lends.
  if (call.r.arg == wire::kLendNone) {
    return core_.send_message(call.id, call.r.handle, receiver, call.r.message);
  }
  if (call.r.arg < wire::kLendRead || call.r.arg > (wire::kLendRead | wire::kLendWrite)) {
    return Error::kInvalid;
  }
  // lend_bytes 0 lends nothing (whatever the offset): the receiver sees no
  // lend. Else the range must lie in the sender's data area (both fields
  // are 32 bits: their sum cannot overflow 64).
  Lend lend;
  if (call.r.lend_bytes != 0) {
    uint64_t area = linux_.data_area(call.id).size();
    if (uint64_t{call.r.lend_offset} + call.r.lend_bytes > area) return Error::kFault;
    lend = Lend{call.r.lend_offset, call.r.lend_bytes, static_cast<uint8_t>(call.r.arg)};
  }
  return core_.send_message(call.id, call.r.handle, receiver, call.r.message, lend);
}

Error Requests::regret_message(Call &call) {
  Result<uint32_t> tell = core_.regret_message(call.id, call.r.handle);
  if (tell.ok() && tell.value() != kNone) {
    // Its receiver had it in its event ring: its library drops it.
    wire::Event e{};
    e.kind = static_cast<uint32_t>(wire::EventKind::kWithdrawn);
    e.handle = call.r.handle;
    reply_(tell.value(), e);
  }
  reply_result(call, tell.ok() ? 0 : -to_errno(tell.error()));
  return Error::kNone;
}

Error Requests::copy_data(Call &call) {
  reply_result(call, copy(call));
  return Error::kNone;
}

// One copy between a lent range and the caller's own data area. Each errno
// is one cause (nucleus.h, nucleus_copy_from).
int Requests::copy(Call &call) {
  const wire::Request &r = call.r;
  if (r.arg != wire::kCopyFrom && r.arg != wire::kCopyTo) return -EINVAL;
  auto direction = static_cast<wire::CopyDirection>(r.arg);
  uint64_t at = r.message.word[wire::kCopyLendOffset];
  uint64_t own_at = r.message.word[wire::kCopyOwnOffset];
  uint64_t bytes = r.message.word[wire::kCopyBytes];
  if (bytes > wire::kMaxCopyBytes) return -to_errno(Error::kTooMuch);
  Result<LentRange> lent = core_.lent_range(call.id, r.handle, direction);
  if (!lent.ok()) return -to_errno(lent.error());
  const LentRange &l = lent.value();
  // Subtractions, not sums: no offset a client writes can overflow them.
  if (at > l.bytes || bytes > l.bytes - at) return -to_errno(Error::kFault);
  std::span<uint8_t> own = linux_.data_area(call.id);
  if (own_at > own.size() || bytes > own.size() - own_at) return -to_errno(Error::kOutOfRange);
  std::span<uint8_t> sender = linux_.data_area(l.sender);
  // The Core ends a lend with its sender's run; a sender whose channel is
  // already gone, or smaller than the lend, has no run that lent it.
  if (sender.size() < uint64_t{l.offset} + l.bytes) return -to_errno(Error::kLendEnded);
  if (bytes == 0) return 0;
  uint8_t *lent_at = sender.data() + l.offset + at;
  uint8_t *own_ptr = own.data() + own_at;
  // memmove: a process may lend to itself, and the ranges may overlap.
  if (direction == wire::kCopyFrom) {
    std::memmove(own_ptr, lent_at, bytes);
  } else {
    std::memmove(lent_at, own_ptr, bytes);
  }
  call.session.copied_this_turn += bytes;
  return 0;
}

Error Requests::get_event(Call &call) {
  return core_.get_event(call.id, call.r.handle);
}

Error Requests::send_answer(Call &call) {
  if (call.r.arg < wire::kResultNormal || call.r.arg > wire::kResultMalfunction) {
    return Error::kInvalid;
  }
  uint32_t copied = 0;
  if (call.r.lend_bytes != 0) {
    Result<uint32_t> c = answer_copy(call);
    if (!c.ok()) return c.error();  // refused whole: the message is still held
    copied = c.value();
  }
  return core_.send_answer(call.id, call.r.handle, static_cast<int32_t>(call.r.arg), call.r.message,
                           copied);
}

// An answer pushed without a reply: the library checked all that it could
// (nucleus_send_answer_data), so a refusal here is a protocol error (a
// kError event), and the answer is not given. A lend whose sender's run is
// gone takes nothing: the answer goes, saying it copied 0 bytes. A handle
// that is not a message held (a withdrawn use among them) copies nothing
// and is the answer's to judge.
Result<uint32_t> Requests::answer_copy(Call &call) {
  const wire::Request &r = call.r;
  uint64_t bytes = r.lend_bytes;
  if (bytes > wire::kMaxCopyBytes) return Error::kTooMuch;
  Result<LentRange> lent = core_.lent_range(call.id, r.handle, wire::kCopyTo);
  if (!lent.ok()) {
    if (lent.error() == Error::kLendEnded || lent.error() == Error::kBadHandle) return 0U;
    return lent.error();
  }
  const LentRange &l = lent.value();
  if (bytes > l.bytes) return Error::kFault;
  std::span<uint8_t> own = linux_.data_area(call.id);
  if (uint64_t{r.lend_offset} > own.size() || bytes > own.size() - r.lend_offset) {
    return Error::kOutOfRange;
  }
  std::span<uint8_t> sender = linux_.data_area(l.sender);
  if (sender.size() < uint64_t{l.offset} + l.bytes) return 0U;  // its run is gone
  std::memmove(sender.data() + l.offset, own.data() + r.lend_offset, bytes);
  call.session.copied_this_turn += bytes;
  return static_cast<uint32_t>(bytes);
}

// A receive window: a range of the caller's own area (at most
// kMaxCopyBytes; bytes 0: none). Naming one frees the window: a message
// whose bytes the old one holds keeps them where they are.
Error Requests::receive_window(Call &call) {
  const wire::Request &r = call.r;
  int result = 0;
  uint64_t own = linux_.data_area(call.id).size();
  if (r.lend_bytes > wire::kMaxCopyBytes) {
    result = -to_errno(Error::kTooMuch);
  } else if (r.lend_bytes != 0 && uint64_t{r.lend_offset} + r.lend_bytes > own) {
    result = -to_errno(Error::kOutOfRange);
  } else {
    call.session.window_offset = r.lend_bytes == 0 ? 0 : r.lend_offset;
    call.session.window_bytes = r.lend_bytes;
    call.session.window_holder = 0;
  }
  reply_result(call, result);
  return Error::kNone;
}

Error Requests::release_answer(Call &call) {
  return core_.release_answer(call.id, call.r.handle);
}

Error Requests::get_stats(Call &call) {
  ProcessStats s = core_.stats(call.id);
  wire::Event reply = reply_to(call.r);
  uint64_t *w = reply.message.word;
  w[wire::kStatsPoolBuffers] = core_.pool().size();
  w[wire::kStatsPoolFree] = core_.pool().free_count() + core_.notice_free();
  w[wire::kStatsProcesses] = core_.processes().count() - core_.devices().size();
  w[wire::kStatsDevices] = core_.devices().size();
  w[wire::kStatsClaimBuffers] = s.claim_buffers;
  w[wire::kStatsClaimUsed] = s.claim_used;
  w[wire::kStatsProtocolErrors] = core_.processes().at(call.id).protocol_errors;
  w[wire::kStatsQueueLength] = s.queue_length;
  reply_(call.id, reply);
  return Error::kNone;
}

// ---- process control -----------------------------------------------------

Error Requests::stage_program(Call &call) {
  Session &s = call.session;
  const wire::Request &r = call.r;
  // At most limits.per_connection.staged_bytes (<= kMaxProgramBytes); past
  // it the next create, modify or swap is -E2BIG and nothing more is kept.
  if (r.arg <= 0 || r.arg > static_cast<int64_t>(wire::kStageChunkBytes) ||
      s.staged.size() + static_cast<size_t>(r.arg) > config_.limits.connection_staged_bytes) {
    s.staged_overflow = true;
    return Error::kNone;
  }
  // The chunk is the name field followed by the message field.
  char chunk[wire::kStageChunkBytes];
  std::memcpy(chunk, r.name, sizeof(r.name));
  std::memcpy(chunk + sizeof(r.name), &r.message, sizeof(r.message));
  s.staged.append(chunk, static_cast<size_t>(r.arg));
  return Error::kNone;
}

Error Requests::list_children(Call &call) {
  note_.clear();
  Result<uint32_t> caller = authority(call.id, call.session);
  if (!caller.ok()) {
    reply_result(call, -to_errno(caller.error()));
    return Error::kNone;
  }
  const std::vector<uint32_t> &kids = core_.children_of(caller.value());
  uint64_t first = call.r.arg < 0 ? 0 : static_cast<uint64_t>(call.r.arg);
  wire::Event reply = reply_to(call.r);
  reply.handle = kids.size();
  if (first >= kids.size()) {  // one reply that says how many there are
    reply.index = UINT32_MAX;
    reply_(call.id, reply);
    return Error::kNone;
  }
  for (uint64_t i = first; i < kids.size() && i < first + wire::kListPage; ++i) {
    const Process &p = core_.processes().at(kids[i]);
    reply.index = static_cast<uint32_t>(i);
    reply.message = core_.info(kids[i]);
    reply.extra = data_area_bytes(core_, config_, kids[i]) | uint64_t{p.gid} << 32;
    std::memset(reply.sender, 0, sizeof(reply.sender));
    std::memcpy(reply.sender, p.name.c_str(), p.name.size());
    reply_(call.id, reply);
  }
  return Error::kNone;
}

Error Requests::swap_ready(Call &call) {
  // Replied when it has taken over, or now when it may not.
  if (int rc = linux_.swap_ready(call.id, call.r.seq); rc < 0) reply_result(call, rc);
  return Error::kNone;
}

int Requests::create_external(Call &call, wire::Event *) {
  if (!call.name_ok) return refuse(Error::kInvalid, wire::kCauseBadName);
  if (call.staged_overflow) {
    return refuse(Error::kTooBig, wire::kCauseStagedTooBig, config_.limits.connection_staged_bytes);
  }
  DeviceConfig spec;
  if (int rc = device_spec(call, &spec); rc < 0)
    return refuse(Error::kInvalid, wire::kCauseBadDevice);
  // The entry first: the name and the claim are checked before any file is
  // opened (or created) for the caller.
  // (A copy of the namer's uid: adding an entry may move the table.)
  uint32_t uid = core_.processes().at(call.id).uid;
  uint32_t gid = core_.processes().at(call.id).gid;
  if (!policy_.may_own(call.name, Owner{uid, gid}, "name device")) {
    return refuse(Error::kNotPermitted, wire::kCauseNameReserved);
  }
  // A name in use is -EEXIST before any claim is asked (it is not a claim
  // used up), except a device the caller named itself with these
  // parameters: a namer that restarted (its entry kept its devices) names
  // it again and has it, unchanged (decision 73).
  if (core_.processes().find(call.name) != kNone) {
    Result<uint32_t> own = core_.own_device(call.id, call.name);
    if (own.ok() && linux_.named_with(own.value(), spec)) return 0;
    return refuse(Error::kNameTaken, wire::kCauseNameTaken);
  }
  Result<uint32_t> device =
      core_.create_device(call.id, call.name, spec.kind, policy_.uid_budget(uid, gid));
  if (!device.ok()) {
    policy_.log_uid_refusal(device.error(), uid, "name device", call.name);
    return -to_errno(device.error());
  }
  if (int rc = linux_.open_device(call.id, device.value(), spec); rc < 0) {
    core_.remove_device(call.id, device.value());
    return refuse(static_cast<Error>(-rc), wire::kCauseDeviceFile, 0, -rc);
  }
  return 0;
}

int Requests::device_spec(const Call &call, DeviceConfig *spec) {
  const wire::Request &r = call.r;
  if (r.arg < 1 || r.arg >= static_cast<int64_t>(wire::kDeviceKindCount)) return -EINVAL;
  spec->name = call.name;
  spec->kind = static_cast<wire::DeviceKind>(r.arg);
  if (!split_paths(call.staged, &spec->path, &spec->input)) return -EINVAL;
  uint64_t flags = r.message.word[wire::kDeviceFlags];
  uint64_t block_size = r.message.word[wire::kDeviceBlockSize];
  if (block_size == 0) block_size = wire::kMinBlockSize;
  if ((flags & ~uint64_t{wire::kDeviceDirect}) != 0 || block_size < wire::kMinBlockSize ||
      block_size > wire::kMaxBlockSize ||
      !wire::is_power_of_two(static_cast<uint32_t>(block_size))) {
    return -EINVAL;
  }
  spec->block_size = static_cast<uint32_t>(block_size);
  spec->direct = (flags & wire::kDeviceDirect) != 0;
  bool disk = spec->kind == wire::DeviceKind::kDisk;
  bool files = disk || spec->kind == wire::DeviceKind::kConsole;
  if (files ? spec->path.empty() : !(spec->path.empty() && spec->input.empty())) return -EINVAL;
  if ((disk && !spec->input.empty()) || (spec->direct && !disk)) return -EINVAL;
  if (spec->kind == wire::DeviceKind::kConsole && spec->input.empty()) spec->input = spec->path;
  return 0;
}

int Requests::remove_external(Call &call, wire::Event *) {
  if (!call.name_ok) return refuse(Error::kInvalid, wire::kCauseBadName);
  Result<uint32_t> device = core_.own_device(call.id, call.name);
  if (!device.ok()) return refuse(device.error(), wire::kCauseNotDevice);
  log::info("process {} removes device {}", core_.processes().at(call.id).name, call.name);
  return -to_errno(core_.remove_device(call.id, device.value()));
}

int Requests::reserve_process(Call &call, wire::Event *) {
  if (!call.name_ok) return refuse(Error::kInvalid, wire::kCauseBadName);
  Result<uint32_t> device = core_.find_device(call.name);
  if (!device.ok()) return refuse(device.error(), wire::kCauseNotDevice);
  const Process &self = core_.processes().at(call.id);
  Error e = core_.reserve(call.id, device.value(), policy_.is_operator(self.uid, self.gid));
  if (e == Error::kNotPermitted) {
    policy_.log_uid_refusal(e, self.uid, "reserve", call.name);
    return refuse(e, wire::kCauseDeviceNotRelated);
  }
  if (e == Error::kBusy) return refuse(e, wire::kCauseReservedByOther);
  return -to_errno(e);
}

int Requests::release_process(Call &call, wire::Event *) {
  if (!call.name_ok) return refuse(Error::kInvalid, wire::kCauseBadName);
  Result<uint32_t> device = core_.find_device(call.name);
  if (!device.ok()) return refuse(device.error(), wire::kCauseNotDevice);
  Error e = core_.release(call.id, device.value());
  if (e == Error::kNotReserver) return refuse(e, wire::kCauseNotReserver);
  return -to_errno(e);
}

// ---- the owner rule (owner_rule.h) -----------------------------------------

int Requests::settle_owner(const Call &call, std::string_view what, Program *program) {
  if (program->uid == kNone && program->gid == kNone) return 0;
  // What it names, each part else the requester's own: only root names
  // another (before the user database is asked, so that nobody learns
  // from the answer which uids exist).
  Owner requester = owner_of(core_.processes().at(call.id));
  if (int rc = owner_rule(call.id, what, call.name, owner_named(*program, requester)); rc < 0) {
    return rc;
  }
  if (program->uid != kNone && program->gid == kNone) {
    uint32_t uid = program->uid;
    uint32_t gid = kNoGroup;
    if (lookup_user(std::to_string(uid), &uid, &gid) < 0) {
      return refuse(Error::kInvalid, wire::kCauseNoSuchUser, program->uid);
    }
    program->gid = gid;
  }
  return 0;
}

int Requests::owner_rule(uint32_t requester, std::string_view what, std::string_view name,
                         Owner owner) {
  const Process &self = core_.processes().at(requester);
  if (owner_rule_allows(owner_of(self), owner)) return 0;
  policy_.log_owner_refusal(self.name, owner_of(self), what, name, owner);
  return refuse(Error::kNotPermitted, wire::kCauseOwnerRule, owner.uid);
}

int Requests::create_process(Call &call, wire::Event *) {
  if (!call.name_ok) return refuse(Error::kInvalid, wire::kCauseBadName);
  // For the caller's children, or for whoever it acts for.
  Result<uint32_t> caller = authority(call.id, call.session);
  if (!caller.ok()) return -to_errno(caller.error());
  if (call.staged_overflow) {
    return refuse(Error::kTooBig, wire::kCauseStagedTooBig, config_.limits.connection_staged_bytes);
  }
  Result<Program> program = parse_program(call.staged);
  if (!program.ok()) return refuse(program.error(), wire::kCauseBadProgram);
  if (int rc = settle_owner(call, "create", &program.value()); rc < 0) return rc;
  // A child of the root is owned by whoever acts for the root; another's
  // inherits its parent's, which the requester must be able to name too:
  // acting for a process gives authority over its children, not its owner.
  // (Copies: adding an entry may move the table.)
  Owner requester = owner_of(core_.processes().at(call.id));
  Owner owner = core_.child_owner(caller.value(), program.value(), requester);
  if (int rc = owner_rule(call.id, "create", call.name, owner); rc < 0) return rc;
  // The name is the requester's choice, whoever will own the entry: a name
  // reserved for root is taken by a root batch for a job its sender owns,
  // and by no process of another uid.
  if (!policy_.may_own(call.name, requester, "create")) {
    return refuse(Error::kNotPermitted, wire::kCauseNameReserved);
  }
  // The bound is the requester's: an operator acting for another is not
  // bounded (acting for the root must always work).
  uint32_t uid = requester.uid;
  uint32_t gid = requester.gid;
  Result<uint32_t> child =
      core_.create(caller.value(), call.name, std::move(program.value()),
                   claims_from(call.r.message), uid, gid, policy_.uid_budget(uid, gid));
  if (!child.ok()) {
    policy_.log_uid_refusal(child.error(), uid, "create", call.name);
    return -to_errno(child.error());
  }
  log::info("process {} created {}{}", core_.processes().at(call.id).name, call.name,
            acting_note(call.session));
  return 0;
}

Result<uint32_t> Requests::child_named(Call &call, uint32_t *caller) const {
  if (!call.name_ok) return note_.refuse(Error::kInvalid, wire::kCauseBadName);
  Result<uint32_t> authority_id = authority(call.id, call.session);
  if (!authority_id.ok()) return authority_id.error();
  *caller = authority_id.value();
  Result<uint32_t> child = core_.child(*caller, call.name);
  if (!child.ok()) return note_.refuse(child.error(), wire::kCauseNotChild);
  auto op = static_cast<wire::Op>(call.r.op);
  // The root's children that attached through the socket are programs the
  // nucleus did not start: nobody controls them but themselves.
  if (*caller == kNone && core_.processes().at(child.value()).origin == Origin::kSocket &&
      op != wire::Op::kGetProcess) {
    return note_.refuse(Error::kNotPermitted, wire::kCauseForeignRoot);
  }
  // Starting on a launcher thread: only get and remove until it is in.
  if (linux_.launching(child.value()) && op != wire::Op::kGetProcess &&
      op != wire::Op::kRemoveProcess) {
    return note_.refuse(Error::kBusy, wire::kCauseLaunching);
  }
  return child;
}

int Requests::start_process(Call &call, wire::Event *reply) {
  uint32_t caller = kNone;
  Result<uint32_t> child = child_named(call, &caller);
  if (!child.ok()) return -to_errno(child.error());
  // A step of the program's start that failed says so in the reply: its
  // errno is that step's (exec's EACCES), not a refusal of the request.
  uint64_t *step = &reply->message.word[wire::kStartFailedStep];
  int rc = start(call.id, caller, child.value(), Waiter{call.id, call.serial, call.r.seq}, step);
  if (rc < 0 && *step != wire::kStartStepNone) {
    const Process &c = core_.processes().at(child.value());
    set_start_failure(reply, rc, *step, start_step_subject(*step, c.program));
  }
  return rc;
}

int Requests::start(uint32_t requester, uint32_t caller, uint32_t child, const Waiter &waiter,
                    uint64_t *step) {
  *step = wire::kStartStepNone;
  // One start at a time: the entry is not running until its launch is taken.
  if (linux_.launching(child)) return refuse(Error::kBusy, wire::kCauseLaunching);
  // A start that runs the program runs it as the entry's owner, whom the
  // requester must be able to name (the configuration's are root's). A
  // start that only resumes runs nothing new.
  if (requester != kNone && core_.start_runs_program(child)) {
    const Process &c = core_.processes().at(child);
    if (int rc = owner_rule(requester, "start", c.name, owner_of(c)); rc < 0) return rc;
  }
  StartPlan plan;
  Error e = core_.start(caller, child, &plan);
  if (e != Error::kNone) return state_refusal(e, child);
  if (plan.resume) linux_.resume_subtree(child);
  if (!plan.spawn) return 0;
  int rc = linux_.spawn(child, waiter, step);
  if (rc >= 0) *step = wire::kStartStepNone;
  return rc;
}

int Requests::stop_process(Call &call, wire::Event *) {
  uint32_t caller = kNone;
  Result<uint32_t> child = child_named(call, &caller);
  if (!child.ok()) return -to_errno(child.error());
  if (core_.processes().at(child.value()).swap_candidate != kNone) {
    return refuse(Error::kBusy, wire::kCauseSwapping);
  }
  Error e = core_.begin_stop(call.id, child.value(), call.r.handle);
  if (e != Error::kNone) return state_refusal(e, child.value());
  linux_.stop_subtree(child.value());
  return 0;
}

int Requests::modify_process(Call &call, wire::Event *) {
  uint32_t caller = kNone;
  Result<uint32_t> child = child_named(call, &caller);
  if (!child.ok()) return -to_errno(child.error());
  if (core_.processes().at(child.value()).swap_candidate != kNone) {
    return refuse(Error::kBusy, wire::kCauseSwapping);
  }
  int64_t what = call.r.arg;
  if ((what & ~int64_t{wire::kModifyProgram | wire::kModifyClaims}) != 0) return -EINVAL;
  if (call.staged_overflow) {
    return refuse(Error::kTooBig, wire::kCauseStagedTooBig, config_.limits.connection_staged_bytes);
  }
  Program program;
  if ((what & wire::kModifyProgram) != 0) {
    Result<Program> parsed = parse_program(call.staged);
    if (!parsed.ok()) return refuse(parsed.error(), wire::kCauseBadProgram);
    program = std::move(parsed.value());
    if (int rc = settle_owner(call, "modify", &program); rc < 0) return rc;
    // The child runs the new program as its owner (the one the program
    // names, else the one it has): the requester must be able to name it,
    // whoever it acts for. (Its name stays: it was its creator's to take.)
    const Process &c = core_.processes().at(child.value());
    Owner owner = owner_named(program, owner_of(c));
    if (int rc = owner_rule(call.id, "modify", call.name, owner); rc < 0) return rc;
  }
  Claims claims = claims_from(call.r.message);
  return state_refusal(
      core_.modify(caller, child.value(), (what & wire::kModifyProgram) != 0 ? &program : nullptr,
                   (what & wire::kModifyClaims) != 0 ? &claims : nullptr),
      child.value());
}

int Requests::remove_process(Call &call, wire::Event *) {
  uint32_t caller = kNone;
  Result<uint32_t> child = child_named(call, &caller);
  if (!child.ok()) return -to_errno(child.error());
  log::info("process {} removes {}{}", core_.processes().at(call.id).name, call.name,
            acting_note(call.session));
  linux_.end_subtree(child.value());
  return -to_errno(core_.remove(caller, child.value()));
}

int Requests::get_process(Call &call, wire::Event *reply) {
  uint32_t caller = kNone;
  Result<uint32_t> child = child_named(call, &caller);
  if (!child.ok()) return -to_errno(child.error());
  reply->message = core_.info(child.value());
  reply->extra = data_area_bytes(core_, config_, child.value()) |
                 uint64_t{core_.processes().at(child.value()).gid} << 32;
  std::memcpy(reply->sender, call.name.data(), call.name.size());
  return 0;
}

int Requests::swap_process(Call &call, wire::Event *) {
  uint32_t caller = kNone;
  Result<uint32_t> child = child_named(call, &caller);
  if (!child.ok()) return -to_errno(child.error());
  if (call.staged_overflow) {
    return refuse(Error::kTooBig, wire::kCauseStagedTooBig, config_.limits.connection_staged_bytes);
  }
  Result<Program> program = parse_program(call.staged);
  if (!program.ok()) return refuse(program.error(), wire::kCauseBadProgram);
  // The new program takes over the OS's entry, owner included: it runs as
  // the OS's owner. Naming another is a modify's business, not a swap's.
  const Process &os = core_.processes().at(child.value());
  if (owner_named(program.value(), owner_of(os)) != owner_of(os)) {
    return refuse(Error::kNotPermitted, wire::kCauseSwapOwner);
  }
  // ... and the requester must be able to name that owner.
  if (int rc = owner_rule(call.id, "swap", call.name, owner_of(os)); rc < 0) return rc;
  Result<uint32_t> cand =
      core_.begin_swap(call.id, child.value(), call.r.handle, std::move(program.value()));
  if (cand.error() == Error::kBusy) return refuse(Error::kBusy, wire::kCauseSwapping);
  if (cand.error() == Error::kInvalid) {
    return refuse(Error::kInvalid, wire::kCauseNotSwappable,
                  static_cast<uint64_t>(core_.state(child.value())));
  }
  if (!cand.ok()) return -to_errno(cand.error());
  linux_.begin_swap(call.id, child.value(), cand.value());
  return 0;  // the request is taken: its buffer is answered when the swap ends
}

int Requests::act_for(Call &call, wire::Event *) {
  Session &s = call.session;
  const Process &self = core_.processes().at(call.id);
  int64_t how = call.r.arg;
  if (how != wire::kActForProcess) {
    if (how == wire::kActForSelf) {
      s.acting = Session::kActSelf;
      return 0;
    }
  } else if (!call.name_ok) {
    return refuse(Error::kInvalid, wire::kCauseBadName);
  }
  // The uid that counts is the one SO_PEERCRED gave: only processes that
  // attached through the socket have one of their own.
  if (self.origin != Origin::kSocket) return refuse(Error::kDenied, wire::kCauseNotSocket);
  bool op = policy_.is_operator(self.uid, self.gid);
  if (how == wire::kActForRoot) {
    if (!op) {
      policy_.log_act_for_refusal(self.name, owner_of(self), "the root", "not an operator");
      return refuse(Error::kDenied, wire::kCauseNotOperator);
    }
    s.acting = kNone;
    return 0;
  }
  if (how != wire::kActForProcess) return -EINVAL;
  uint32_t target = core_.processes().find(call.name);
  if (target == kNone || core_.processes().at(target).is_device()) {
    return refuse(Error::kNoChild, wire::kCauseNoProcess);
  }
  const Process &t = core_.processes().at(target);
  // Its whole principal: a uid that owns an entry with another group has
  // not that group (operators excepted; the owner rule still bounds what
  // they run).
  if (!op && owner_of(t) != owner_of(self)) {
    policy_.log_act_for_refusal(self.name, owner_of(self), t.name,
                                "its owner is uid " + std::to_string(t.uid) + " gid " +
                                    std::to_string(t.gid) + ", and it is not an operator");
    return refuse(Error::kDenied, wire::kCauseOtherOwner, t.uid);
  }
  s.acting = target;
  s.acting_generation = t.generation;
  return 0;
}

Result<uint32_t> Requests::authority(uint32_t id, const Session &session) const {
  if (session.acting == Session::kActSelf) return id;
  if (session.acting == kNone) {
    // The root: only while its uid is an operator's (a reload may end it).
    const Process &p = core_.processes().at(id);
    if (!policy_.is_operator(p.uid, p.gid)) {
      return note_.refuse(Error::kDenied, wire::kCauseNotOperator);
    }
    return kNone;
  }
  if (!core_.processes().live(session.acting) ||
      core_.processes().at(session.acting).generation != session.acting_generation) {
    return note_.refuse(Error::kNoChild, wire::kCauseActedForGone);
  }
  // Still its owner's (a modify may have given it to another) or an
  // operator's (a reload may end that).
  const Process &p = core_.processes().at(id);
  if (owner_of(core_.processes().at(session.acting)) != owner_of(p) &&
      !policy_.is_operator(p.uid, p.gid)) {
    return note_.refuse(Error::kDenied, wire::kCauseOtherOwner,
                        core_.processes().at(session.acting).uid);
  }
  return session.acting;
}

std::string Requests::acting_note(const Session &session) const {
  if (session.acting == Session::kActSelf) return {};
  if (session.acting == kNone) return " for the root";
  return " for " + core_.processes().at(session.acting).name;
}

}  // namespace nucleus::daemon
