// libnucleus: the texts of refusals (causes.h). One table: a row per
// wire::Cause, with the words its value and errno fill in. A cause added
// to wire.h gets its row here (every_cause_has_text, checked by the unit
// tests).
#include "causes.h"

#include <nucleus/nucleus.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace nucleus::client {

namespace {

namespace w = wire;

// Placeholders: {value}; {limit} and {uid}: the value's low and high 32
// bits; {errno}: strerror of the cause's errno; {path}; {state}: the value
// as a ProcessState; {step}: the value as a StartStep's text.
struct CauseRow {
  uint32_t cause;
  const char *text;
  const char *text_if_zero;  // when the value is 0 (null: text)
};

constexpr CauseRow kRows[] = {
    {w::kCauseClaimBuffers,
     "the parent's buffers claim holds {value} free buffers, fewer than the child's claim asks "
     "(claims.buffers)",
     nullptr},
    {w::kCauseClaimProcesses,
     "the processes claim of the parent is {value}, and all of it is in use (claims.processes)",
     "the processes claim of the parent is 0 (claims.processes)"},
    {w::kCauseClaimMemory,
     "the parent's memory claim ({value} bytes) has not that much left to lend "
     "(claims.memory_bytes)",
     nullptr},
    {w::kCauseClaimDevices,
     "the devices claim of this process is {value}, and every one is in use by a device it "
     "named (claims.devices)",
     "the devices claim of this process is 0 (claims.devices)"},
    {w::kCausePoolEmpty,
     "the nucleus's pool has {value} unowned free buffers, fewer than the claim asks "
     "(pool.buffers)",
     nullptr},
    {w::kCauseTableFull, "the nucleus's process table is full (processes.max {value})", nullptr},
    {w::kCauseClaimOverLimit,
     "a claim is over the nucleus's bounds (buffers 65536, processes and devices 1048576, "
     "data_bytes 1 GiB)",
     nullptr},
    {w::kCauseClaimsInUse,
     "the new claims are below what the child holds: what it lends its children, or buffers it "
     "has out",
     nullptr},
    {w::kCauseUidProcesses,
     "uid {uid} owns as many processes as limits.per_uid.processes ({limit}) allows", nullptr},
    {w::kCauseUidNames, "uid {uid} owns as many names as limits.per_uid.names ({limit}) allows",
     nullptr},
    {w::kCauseUidBuffers,
     "the claims of uid {uid}'s processes hold as many buffers as limits.per_uid.buffers "
     "({limit}) allows",
     nullptr},
    {w::kCauseBadName, "a name is 1 to 31 bytes of [A-Za-z0-9._-]", nullptr},
    {w::kCauseNameTaken, "the name is taken by another process or device", nullptr},
    {w::kCauseNameReserved,
     "the name is reserved by the configuration's names section for other uids", nullptr},
    {w::kCauseNameHandedOut,
     "nucleusctl-<pid> is a name nucleusd hands out to the process with that pid only", nullptr},
    {w::kCauseNotChild, "no child of that name (of this process, or of the one it acts for)",
     nullptr},
    {w::kCauseActedForGone, "the process this one acts for is gone (nucleus_act_for)", nullptr},
    {w::kCauseNotOperator, "only an operator (the configuration's operators) may act for the root",
     nullptr},
    {w::kCauseOtherOwner,
     "the process acted for is owned by uid {value}, and this process's uid is not an operator",
     nullptr},
    {w::kCauseNotSocket,
     "only a process that attached through nucleusd's socket may act for another", nullptr},
    {w::kCauseOwnerRule,
     "its program would run as uid {value}, an owner only root or that uid may name (the owner "
     "rule)",
     nullptr},
    {w::kCauseSwapOwner,
     "a swap's new program runs as the swapped process's owner; naming another is a modify's",
     nullptr},
    {w::kCauseForeignRoot,
     "a child of the root that attached through the socket is controlled by nobody but itself",
     nullptr},
    {w::kCauseNotDevice, "no device of that name (to remove: none this process named)", nullptr},
    {w::kCauseNotReserver, "the device is not reserved by this process", nullptr},
    {w::kCauseReservedByOther, "the device is reserved by another process", nullptr},
    {w::kCauseDeviceNotRelated,
     "the device's namer is neither an ancestor nor a descendant of this process (the root's "
     "devices are operators' only)",
     nullptr},
    {w::kCauseBadDevice,
     "the device's kind, paths, block size or flags are not valid (docs/devices.md)", nullptr},
    {w::kCauseDeviceFile, "cannot open the device's file: {errno}", nullptr},
    {w::kCauseStagedTooBig,
     "the program's strings are over limits.per_connection.staged_bytes ({value} bytes)", nullptr},
    {w::kCauseBadProgram,
     "the program is malformed (an empty path, strings not UTF-8, an environment entry "
     "without '=')",
     nullptr},
    {w::kCauseNoSuchUser, "uid {value} is not in the user database", nullptr},
    {w::kCauseStartStep, "{step}{path}: {errno}", nullptr},
    {w::kCauseState, "it is {state}, which does not allow this", nullptr},
    {w::kCauseLaunching, "its start is in flight", nullptr},
    {w::kCauseSwapping, "a swap of it is in progress", nullptr},
    {w::kCauseAttachNotAllowed, "the configuration's attach section does not let this uid attach",
     nullptr},
    {w::kCauseAbi, "nucleusd speaks wire ABI {value}, this library another", nullptr},
    {w::kCauseNoProcess, "no process of that name", nullptr},
    {w::kCauseNotSwappable,
     "only a running process that is attached and not stopped can be swapped (it is {state})",
     nullptr},
    {w::kCauseAttachesPending, "{value} attaches wait already (limits.per_uid.pending_attaches)",
     nullptr},
    // The library's own.
    {w::kCauseBuffersOut, "every buffer of this process's claim ({value}) is out",
     "this process's buffer claim is 0"},
    {w::kCauseNoSocket, "cannot connect to {path}: {errno}", nullptr},
    {w::kCauseStaleHandle,
     "not a buffer this process has out, or received (stale, forged or another's handle)", nullptr},
    {w::kCauseNoEvent, "no such event in this process's queue", nullptr},
    {w::kCauseProgramTooBig,
     "the program's strings are over the wire's bound (32768 bytes, 1024 arguments and "
     "environment entries)",
     nullptr},
    {w::kCauseNoLend, "the message lends nothing", nullptr},
    {w::kCauseLendEnded,
     "the sender's run that lent the range is gone (it died, detached or was swapped): answer "
     "the message",
     nullptr},
    {w::kCauseLendRight,
     "the lend does not give that right (read for copy_from, write for copy_to)", nullptr},
    {w::kCauseLendRange, "the range is not inside the lent range", nullptr},
    {w::kCauseOwnRange, "the range is not inside this process's own data area", nullptr},
    {w::kCauseCopyTooBig, "more than NUCLEUS_COPY_MAX (1 MiB) in one copy request", nullptr},
    {w::kCauseRegretTaken, "its receiver has taken it: its answer comes as usual", nullptr},
    {w::kCauseRegretAnswered, "it is answered already: wait_answer takes the answer", nullptr},
    {w::kCauseNoNucleusFd,
     "no NUCLEUS_FD connection: the program was not started by nucleusd (attach with a name)",
     nullptr},
};

const CauseRow *row_of(uint32_t cause) {
  for (const CauseRow &r : kRows) {
    if (r.cause == cause) return &r;
  }
  return nullptr;
}

const char *state_text(uint64_t state) {
  switch (static_cast<w::ProcessState>(state)) {
    case w::ProcessState::kCreated: return "created and not started";
    case w::ProcessState::kRunning: return "running";
    case w::ProcessState::kStopping: return "being stopped";
    case w::ProcessState::kStopped: return "stopped";
    case w::ProcessState::kExited: return "exited";
  }
  return "in another state";
}

// The record of a noted cause and the last text, per thread: plain arrays,
// so that a thread pays nothing for them until a call fails.
struct Noted {
  int code = 0;
  uint32_t cause = 0;
  int32_t cause_errno = 0;
  uint64_t value = 0;
  char path[w::kStartFailedPathBytes + 64] = {};
};
thread_local Noted t_noted;
thread_local char t_text[512];

}  // namespace

std::string cause_text(int code, uint32_t cause, int32_t cause_errno, uint64_t value,
                       std::string_view path) {
  const CauseRow *row = row_of(cause);
  if (row == nullptr) return nucleus_strerror(code);
  std::string_view text =
      value == 0 && row->text_if_zero != nullptr ? row->text_if_zero : row->text;
  // A state that refuses with EALREADY is the one asked for (a start of a
  // child that runs).
  if (cause == w::kCauseState && code == -EALREADY) text = "it is {state} already";
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text[i] != '{') {
      out.push_back(text[i++]);
      continue;
    }
    size_t end = text.find('}', i);
    std::string_view word = text.substr(i + 1, end - i - 1);
    i = end + 1;
    if (word == "value") {
      out += std::to_string(value);
    } else if (word == "limit") {
      out += std::to_string(value & UINT32_MAX);
    } else if (word == "uid") {
      out += std::to_string(value >> 32);
    } else if (word == "errno") {
      out += std::strerror(cause_errno != 0 ? cause_errno : (code < 0 ? -code : 0));
    } else if (word == "path") {
      if (!path.empty()) {
        if (cause == w::kCauseStartStep) out.push_back(' ');
        out += path;
      }
    } else if (word == "state") {
      out += state_text(value);
    } else if (word == "step") {
      out += w::start_step_text(value);
    }
  }
  return out;
}

bool every_cause_has_text() {
  for (uint32_t c = 1; c <= w::kCauseLast; ++c) {
    if (row_of(c) == nullptr) return false;
  }
  for (uint32_t c = w::kCauseLibrary; c <= w::kCauseLibraryLast; ++c) {
    if (row_of(c) == nullptr) return false;
  }
  return true;
}

void note_cause(int code, uint32_t cause, uint64_t value, int32_t cause_errno,
                std::string_view path) {
  Noted &n = t_noted;
  n.code = code;
  n.cause = cause;
  n.value = value;
  n.cause_errno = cause_errno;
  // An empty path may have a null data(): memcpy's source must not be null.
  size_t len = std::min(path.size(), sizeof(n.path) - 1);
  if (len != 0) std::memcpy(n.path, path.data(), len);
  n.path[len] = '\0';
}

void note_reply_cause(const wire::Event &reply) {
  std::string_view path;
  char words[w::kStartFailedPathBytes + 1] = {};
  if (reply.cause == w::kCauseStartStep) {
    std::memcpy(words, &reply.message.word[w::kStartFailedPath], w::kStartFailedPathBytes);
    path = words;
  }
  note_cause(reply.result, reply.cause, reply.cause_value, reply.cause_errno, path);
}

int failed(const char *call, const char *name, int code) {
  Noted &n = t_noted;
  std::string why = n.code == code ? cause_text(code, n.cause, n.cause_errno, n.value, n.path)
                                   : std::string(nucleus_strerror(code));
  n = Noted{};
  if (name != nullptr && *name != '\0') {
    std::snprintf(t_text, sizeof(t_text), "%s \"%s\": %s", call, name, why.c_str());
  } else {
    std::snprintf(t_text, sizeof(t_text), "%s: %s", call, why.c_str());
  }
  return code;
}

const char *last_error() {
  return t_text;
}

}  // namespace nucleus::client
