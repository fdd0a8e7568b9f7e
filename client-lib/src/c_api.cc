// The C API (nucleus.h) over client::Channel and its process control
// requests (process_control.h).
#include <cerrno>
#include <cstring>
#include <memory>

#include "causes.h"
#include "client.h"
#include "process_control.h"

// The C header's device constants are the wire's.
namespace wire_check = nucleus::wire;
static_assert(NUCLEUS_DEVICE_CLOCK == static_cast<int>(wire_check::DeviceKind::kClock));
static_assert(NUCLEUS_DEVICE_CONSOLE == static_cast<int>(wire_check::DeviceKind::kConsole));
static_assert(NUCLEUS_DEVICE_DISK == static_cast<int>(wire_check::DeviceKind::kDisk));
static_assert(NUCLEUS_DEVICE_NULL == static_cast<int>(wire_check::DeviceKind::kNull));
static_assert(NUCLEUS_CLOCK_WAIT == wire_check::kClockWait);
static_assert(NUCLEUS_CLOCK_NOW == wire_check::kClockNow);
static_assert(NUCLEUS_CONSOLE_WRITE == wire_check::kConsoleWrite);
static_assert(NUCLEUS_CONSOLE_READ == wire_check::kConsoleRead);
static_assert(NUCLEUS_DISK_READ == wire_check::kDiskRead);
static_assert(NUCLEUS_DISK_WRITE == wire_check::kDiskWrite);
static_assert(NUCLEUS_DISK_INFO == wire_check::kDiskInfo);
static_assert(NUCLEUS_DEVICE_DIRECT == wire_check::kDeviceDirect);
static_assert(NUCLEUS_NOTICE_HANDOVER == wire_check::kNoticeHandover);
static_assert(NUCLEUS_SWAP_DONE == wire_check::kSwapDone);
static_assert(NUCLEUS_SWAP_NO_HANDOVER == wire_check::kSwapNoHandover);
static_assert(NUCLEUS_SWAP_REFUSED == wire_check::kSwapRefused);
static_assert(NUCLEUS_SWAP_START_FAILED == wire_check::kSwapStartFailed);
static_assert(NUCLEUS_SWAP_NEW_EXITED == wire_check::kSwapNewExited);
static_assert(NUCLEUS_SWAP_NOT_READY == wire_check::kSwapNotReady);
static_assert(NUCLEUS_SWAP_OLD_EXITED == wire_check::kSwapOldExited);
static_assert(NUCLEUS_SWAP_CANCELLED == wire_check::kSwapCancelled);
// ... and so are the principal's (client.cc copies it field by field).
static_assert(NUCLEUS_FROM_PROCESS == static_cast<int>(wire_check::PrincipalKind::kProcess));
static_assert(NUCLEUS_FROM_DEVICE == static_cast<int>(wire_check::PrincipalKind::kDevice));
static_assert(NUCLEUS_FROM_NUCLEUS == static_cast<int>(wire_check::PrincipalKind::kNucleus));
static_assert(sizeof(nucleus_principal_t) == sizeof(wire_check::Principal));
// ... and so are a lend's.
static_assert(NUCLEUS_LEND_READ == wire_check::kLendRead);
static_assert(NUCLEUS_LEND_WRITE == wire_check::kLendWrite);
static_assert(NUCLEUS_COPY_MAX == wire_check::kMaxCopyBytes);
static_assert(NUCLEUS_SWAP_WORD_START_STEP == wire_check::kSwapStartStep);
static_assert(NUCLEUS_SWAP_WORD_EXIT_KIND == wire_check::kSwapExitKind);
static_assert(NUCLEUS_START_STEP_NONE == wire_check::kStartStepNone);
static_assert(NUCLEUS_START_STEP_EXEC == wire_check::kStartStepExec);
static_assert(NUCLEUS_START_STEP_CHDIR == wire_check::kStartStepChdir);
static_assert(NUCLEUS_START_STEP_SET_IDS == wire_check::kStartStepSetIds);
static_assert(NUCLEUS_START_STEP_CONNECTION == wire_check::kStartStepConnection);
static_assert(NUCLEUS_START_STEP_OUTPUT == wire_check::kStartStepOutput);
static_assert(NUCLEUS_START_STEP_PROCESS == wire_check::kStartStepProcess);
static_assert(NUCLEUS_START_STEP_DEADLINE == wire_check::kStartStepDeadline);

struct nucleus_handle {
  std::unique_ptr<nucleus::client::Channel> channel;
  int last_start_step = NUCLEUS_START_STEP_NONE;  // of the last start that failed
};

namespace {

using nucleus::client::failed;

// The call's result; a failure leaves its text (nucleus_last_error).
int checked(const char *call, const char *name, int rc) {
  return rc < 0 ? failed(call, name, rc) : rc;
}

// Which side of a lend a call is on: a send lends a range of the sender's
// own area (data it sends must fit in it); a copy, an answer with data or a
// receive window is the receiver's; a regret is the sender's withdrawal.
enum class LendCall { kSend, kReceiver, kRegret };

// The lend calls: each errno is one cause (nucleus.h), which nucleusd's
// reply does not spell out.
int lend_checked(LendCall kind, const char *call, int rc, const char *name = nullptr) {
  if (rc >= 0) return rc;
  namespace w = nucleus::wire;
  bool regret = kind == LendCall::kRegret;
  bool send = kind == LendCall::kSend;
  uint32_t cause = w::kCauseNone;
  switch (rc) {
    case -EBADF: cause = send ? w::kCauseNone : w::kCauseStaleHandle; break;
    case -ENODATA: cause = w::kCauseNoLend; break;
    case -ESTALE: cause = w::kCauseLendEnded; break;
    case -EACCES: cause = send ? w::kCauseNone : w::kCauseLendRight; break;
    case -EFAULT: cause = send ? w::kCauseOwnRange : w::kCauseLendRange; break;
    case -ERANGE: cause = w::kCauseOwnRange; break;
    case -EMSGSIZE: cause = w::kCauseCopyTooBig; break;
    case -EBUSY: cause = regret ? w::kCauseRegretTaken : w::kCauseNone; break;
    case -EALREADY: cause = regret ? w::kCauseRegretAnswered : w::kCauseNone; break;
    default: break;
  }
  if (cause != w::kCauseNone) nucleus::client::note_cause(rc, cause);
  return failed(call, name, rc);
}

}  // namespace

extern "C" {

int nucleus_attach(const char *name, nucleus_t **out) {
  if (out == nullptr) return failed("attach", name, -EINVAL);
  std::unique_ptr<nucleus::client::Channel> ch;
  if (int rc = nucleus::client::Channel::attach(name, &ch); rc < 0) {
    return failed("attach", name, rc);
  }
  *out = new nucleus_t{std::move(ch)};
  return 0;
}

void nucleus_detach(nucleus_t *n) {
  delete n;
}

const char *nucleus_name(const nucleus_t *n) {
  return n == nullptr ? "" : n->channel->name().c_str();
}

int nucleus_send_message(nucleus_t *n, const char *receiver, const nucleus_message_t *message,
                         nucleus_buffer_t *out) {
  if (n == nullptr) return failed("send_message", receiver, -EINVAL);
  return checked("send_message", receiver, n->channel->send_message(receiver, message, out));
}

int nucleus_wait_message(nucleus_t *n, int64_t timeout_ns, char sender[32],
                         nucleus_message_t *message, nucleus_buffer_t *out) {
  if (n == nullptr) return failed("wait_message", nullptr, -EINVAL);
  nucleus_sender_t from{};
  int rc = n->channel->wait_message(timeout_ns, sender != nullptr ? &from : nullptr, message, out);
  if (rc == 0 && sender != nullptr) std::memcpy(sender, from.name, sizeof(from.name));
  return checked("wait_message", nullptr, rc);
}

int nucleus_wait_message_from(nucleus_t *n, int64_t timeout_ns, nucleus_sender_t *sender,
                              nucleus_message_t *message, nucleus_buffer_t *out) {
  if (n == nullptr) return failed("wait_message_from", nullptr, -EINVAL);
  return checked("wait_message_from", nullptr,
                 n->channel->wait_message(timeout_ns, sender, message, out));
}

int nucleus_send_answer(nucleus_t *n, nucleus_buffer_t buffer, int result,
                        const nucleus_message_t *answer) {
  if (n == nullptr) return failed("send_answer", nullptr, -EINVAL);
  return checked("send_answer", nullptr, n->channel->send_answer(buffer, result, answer));
}

int nucleus_wait_answer(nucleus_t *n, nucleus_buffer_t buffer, int64_t timeout_ns, int *result,
                        nucleus_message_t *answer) {
  if (n == nullptr) return failed("wait_answer", nullptr, -EINVAL);
  return checked("wait_answer", nullptr,
                 n->channel->wait_answer(buffer, timeout_ns, result, answer));
}

int nucleus_wait_answer_from(nucleus_t *n, nucleus_buffer_t buffer, int64_t timeout_ns, int *result,
                             nucleus_message_t *answer, nucleus_sender_t *from) {
  if (n == nullptr) return failed("wait_answer_from", nullptr, -EINVAL);
  return checked("wait_answer_from", nullptr,
                 n->channel->wait_answer(buffer, timeout_ns, result, answer, from));
}

int nucleus_wait_event(nucleus_t *n, nucleus_buffer_t previous, int64_t timeout_ns,
                       nucleus_event_t *out) {
  if (n == nullptr) return failed("wait_event", nullptr, -EINVAL);
  return checked("wait_event", nullptr, n->channel->wait_event(previous, timeout_ns, out));
}

int nucleus_send_message_lend(nucleus_t *n, const char *receiver, const nucleus_message_t *message,
                              const nucleus_lend_t *lend, nucleus_buffer_t *out) {
  if (n == nullptr) return failed("send_message", receiver, -EINVAL);
  return lend_checked(LendCall::kSend, "send_message",
                      n->channel->send_message(receiver, message, out, lend), receiver);
}

int nucleus_send_data(nucleus_t *n, const char *receiver, const nucleus_message_t *message,
                      const nucleus_lend_t *lend, const void *data, size_t size,
                      nucleus_buffer_t *out) {
  if (n == nullptr || lend == nullptr || (data == nullptr && size != 0)) {
    return failed("send_data", receiver, -EINVAL);
  }
  size_t area = 0;
  auto *base = static_cast<uint8_t *>(n->channel->data_area(&area));
  if (size > lend->bytes || lend->offset > area || lend->bytes > area - lend->offset) {
    return lend_checked(LendCall::kSend, "send_data", -EFAULT, receiver);
  }
  // memmove: the caller may have built the data in the data area already.
  if (size != 0) std::memmove(base + lend->offset, data, size);
  return lend_checked(LendCall::kSend, "send_data",
                      n->channel->send_message(receiver, message, out, lend), receiver);
}

int nucleus_copy_from(nucleus_t *n, nucleus_buffer_t received, uint64_t lend_offset,
                      uint64_t own_offset, uint64_t bytes) {
  if (n == nullptr) return failed("copy_from", nullptr, -EINVAL);
  return lend_checked(
      LendCall::kReceiver, "copy_from",
      n->channel->copy_data(received, nucleus::wire::kCopyFrom, lend_offset, own_offset, bytes));
}

int nucleus_copy_to(nucleus_t *n, nucleus_buffer_t received, uint64_t lend_offset,
                    uint64_t own_offset, uint64_t bytes) {
  if (n == nullptr) return failed("copy_to", nullptr, -EINVAL);
  return lend_checked(
      LendCall::kReceiver, "copy_to",
      n->channel->copy_data(received, nucleus::wire::kCopyTo, lend_offset, own_offset, bytes));
}

int nucleus_set_receive_window(nucleus_t *n, uint64_t offset, uint64_t bytes) {
  if (n == nullptr) return failed("set_receive_window", nullptr, -EINVAL);
  return lend_checked(LendCall::kReceiver, "set_receive_window",
                      n->channel->set_receive_window(offset, bytes));
}

int nucleus_send_answer_data(nucleus_t *n, nucleus_buffer_t buffer, int result,
                             const nucleus_message_t *answer, uint64_t own_offset, uint64_t bytes) {
  if (n == nullptr) return failed("send_answer", nullptr, -EINVAL);
  return lend_checked(LendCall::kReceiver, "send_answer",
                      n->channel->send_answer(buffer, result, answer, own_offset, bytes));
}

int nucleus_regret_message(nucleus_t *n, nucleus_buffer_t sent) {
  if (n == nullptr) return failed("regret_message", nullptr, -EINVAL);
  return lend_checked(LendCall::kRegret, "regret_message", n->channel->regret_message(sent));
}

int nucleus_get_event(nucleus_t *n, nucleus_buffer_t buffer) {
  if (n == nullptr) return failed("get_event", nullptr, -EINVAL);
  return checked("get_event", nullptr, n->channel->get_event(buffer));
}

int nucleus_get_stats(nucleus_t *n, nucleus_stats_t *out) {
  if (n == nullptr) return failed("get_stats", nullptr, -EINVAL);
  return checked("get_stats", nullptr, n->channel->get_stats(out));
}

int nucleus_poll_descriptor(nucleus_t *n) {
  if (n == nullptr) return -EINVAL;
  return n->channel->poll_descriptor();
}

void *nucleus_data_area(nucleus_t *n, size_t *size) {
  if (n == nullptr) return nullptr;
  return n->channel->data_area(size);
}

int nucleus_create_process(nucleus_t *n, const char *name, const nucleus_program_t *program,
                           const nucleus_claims_t *claims) {
  if (n == nullptr) return failed("create_process", name, -EINVAL);
  return checked("create_process", name,
                 nucleus::client::create_process(*n->channel, name, program, claims));
}

int nucleus_act_for(nucleus_t *n, const char *name) {
  if (n == nullptr) return failed("act_for", name, -EINVAL);
  return checked("act_for", name, nucleus::client::act_for(*n->channel, name));
}

int nucleus_start_process(nucleus_t *n, const char *name) {
  if (n == nullptr) return failed("start_process", name, -EINVAL);
  return checked("start_process", name,
                 nucleus::client::start_process(*n->channel, name, &n->last_start_step));
}

int nucleus_last_start_step(const nucleus_t *n) {
  return n == nullptr ? NUCLEUS_START_STEP_NONE : n->last_start_step;
}

const char *nucleus_start_step_text(int step) {
  return nucleus::wire::start_step_text(step < 0 ? UINT64_MAX : static_cast<uint64_t>(step));
}

int nucleus_stop_process(nucleus_t *n, const char *name, nucleus_buffer_t *out) {
  if (n == nullptr) return failed("stop_process", name, -EINVAL);
  return checked("stop_process", name, nucleus::client::stop_process(*n->channel, name, out));
}

int nucleus_swap_process(nucleus_t *n, const char *name, const nucleus_program_t *program,
                         nucleus_buffer_t *out) {
  if (n == nullptr) return failed("swap_process", name, -EINVAL);
  return checked("swap_process", name,
                 nucleus::client::swap_process(*n->channel, name, program, out));
}

int nucleus_hand_over(nucleus_t *n, nucleus_buffer_t handover, const void *state, size_t size) {
  if (n == nullptr) return failed("hand_over", nullptr, -EINVAL);
  return checked("hand_over", nullptr, n->channel->hand_over(handover, state, size));
}

const void *nucleus_handover_state(nucleus_t *n, size_t *size) {
  if (size != nullptr) *size = 0;
  if (n == nullptr) return nullptr;
  return n->channel->handover_state(size);
}

int nucleus_swap_ready(nucleus_t *n) {
  if (n == nullptr) return failed("swap_ready", nullptr, -EINVAL);
  return checked("swap_ready", nullptr, n->channel->swap_ready());
}

int nucleus_inherited(nucleus_t *n, nucleus_event_t *out, size_t capacity, size_t *count) {
  if (n == nullptr || count == nullptr || (out == nullptr && capacity != 0))
    return failed("inherited", nullptr, -EINVAL);
  const auto &all = n->channel->inherited();
  *count = all.size();
  for (size_t i = 0; i < all.size() && i < capacity; ++i) out[i] = all[i];
  return 0;
}

int nucleus_modify_process(nucleus_t *n, const char *name, const nucleus_program_t *program,
                           const nucleus_claims_t *claims) {
  if (n == nullptr) return failed("modify_process", name, -EINVAL);
  return checked("modify_process", name,
                 nucleus::client::modify_process(*n->channel, name, program, claims));
}

int nucleus_remove_process(nucleus_t *n, const char *name) {
  if (n == nullptr) return failed("remove_process", name, -EINVAL);
  return checked("remove_process", name, nucleus::client::remove_process(*n->channel, name));
}

int nucleus_list_children(nucleus_t *n, nucleus_process_t *out, size_t capacity, size_t *count) {
  if (n == nullptr) return failed("list_children", nullptr, -EINVAL);
  return checked("list_children", nullptr,
                 nucleus::client::list_children(*n->channel, out, capacity, count));
}

int nucleus_get_process(nucleus_t *n, const char *name, nucleus_process_t *out) {
  if (n == nullptr) return failed("get_process", name, -EINVAL);
  return checked("get_process", name, nucleus::client::get_process(*n->channel, name, out));
}

int nucleus_create_external_process(nucleus_t *n, const char *name, int kind,
                                    const nucleus_device_parameters_t *parameters) {
  if (n == nullptr) return failed("create_external_process", name, -EINVAL);
  return checked("create_external_process", name,
                 nucleus::client::create_external_process(*n->channel, name, kind, parameters));
}

int nucleus_remove_external_process(nucleus_t *n, const char *name) {
  if (n == nullptr) return failed("remove_external_process", name, -EINVAL);
  return checked(
      "remove_external_process", name,
      nucleus::client::device_request(*n->channel, nucleus::wire::Op::kRemoveExternal, name));
}

int nucleus_reserve_process(nucleus_t *n, const char *name) {
  if (n == nullptr) return failed("reserve_process", name, -EINVAL);
  return checked(
      "reserve_process", name,
      nucleus::client::device_request(*n->channel, nucleus::wire::Op::kReserveProcess, name));
}

int nucleus_release_process(nucleus_t *n, const char *name) {
  if (n == nullptr) return failed("release_process", name, -EINVAL);
  return checked(
      "release_process", name,
      nucleus::client::device_request(*n->channel, nucleus::wire::Op::kReleaseProcess, name));
}

int nucleus_parse_exit_notice(const char *sender, const nucleus_message_t *message,
                              nucleus_exit_notice_t *out) {
  namespace wire = nucleus::wire;
  if (sender == nullptr || message == nullptr || out == nullptr) return -EINVAL;
  if (std::strcmp(sender, wire::kNucleusName) != 0 ||
      message->word[wire::kNoticeKind] != wire::kNoticeChildExited) {
    return -EINVAL;
  }
  *out = nucleus_exit_notice_t{};
  std::memcpy(out->name, &message->word[wire::kNoticeName], sizeof(out->name));
  out->name[sizeof(out->name) - 1] = '\0';
  out->exit_kind = static_cast<int>(message->word[wire::kNoticeExitKind]);
  out->exit_value = static_cast<int32_t>(message->word[wire::kNoticeExitValue]);
  out->pid = static_cast<int64_t>(message->word[wire::kNoticePid]);
  return 0;
}

const char *nucleus_last_error(void) {
  return nucleus::client::last_error();
}

const char *nucleus_strerror(int code) {
  switch (code) {
    case 0: return "success";
    case NUCLEUS_RESULT_NORMAL: return "normal answer";
    case NUCLEUS_RESULT_REJECTED: return "rejected";
    case NUCLEUS_RESULT_UNINTELLIGIBLE: return "unintelligible";
    case NUCLEUS_RESULT_MALFUNCTION: return "malfunction";
    case NUCLEUS_RESULT_DUMMY: return "dummy answer: the receiver does not exist";
    // General texts, true of every call that returns the code: which claim,
    // right or bound is in nucleus_last_error (the per-call text).
    case -ENOBUFS:
      return "a claim or the nucleus's pool is used up (nucleus_last_error says which)";
    case -EBADF: return "not a buffer this process may use here (stale, forged or foreign handle)";
    case -EEXIST: return "name already taken";
    case -EINVAL: return "invalid argument";
    case -EACCES:
      return "permission denied (by the configuration, or in a start by the file system: see "
             "nucleus_last_error)";
    case -ETIMEDOUT: return "timed out";
    case -ENOENT:
      return "not found (an event, a program or nucleusd's socket: see nucleus_last_error)";
    case -ESHUTDOWN: return "the nucleus is shutting down or detached this process";
    case -ECONNRESET: return "the nucleus went away";
    case -ECONNREFUSED: return "no nucleus is listening on the socket";
    case -EPROTO: return "protocol mismatch with the nucleus";
    case -ESRCH: return "no such process (or not one this process may name)";
    case -EALREADY: return "already so (a child that runs already)";
    case -EBUSY: return "not in a state that allows this (a child or device busy)";
    case -E2BIG: return "the program's strings are over the limit";
    case -EPERM: return "not permitted (see nucleus_last_error for which rule)";
    case -EDQUOT: return "a per-uid bound of the nucleus is reached (limits.per_uid)";
    case -EAGAIN: return "try again: too many attaches wait";
    default: break;
  }
  if (code < 0) return std::strerror(-code);
  return "unknown code";
}

}  // extern "C"
