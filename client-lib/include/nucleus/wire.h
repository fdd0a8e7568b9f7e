// nucleus wire ABI: the channel that nucleusd and one attached process share,
// and the attach records on nucleusd's socket. Daemon and client-lib both
// include this file; nothing else defines a byte of the protocol.
//
// Channel (one memfd per attached process, mapped only by that process and
// nucleusd):
//
//   offset 0                 ChannelHeader (kHeaderBytes, page aligned)
//   header.slots_offset      u64 buffer handles, one per buffer of the claim
//   header.requests_offset   Request[request_entries]   process -> nucleus
//   header.events_offset     Event[event_entries]       nucleus -> process
//   header.data_offset       data area (the process's storage area)
//
// Ownership of every shared word is fixed: a word is written by exactly one
// side. nucleusd never trusts what it reads from a channel: it reads the
// process-written indices once, bounds-checks them against its own copies,
// and copies each request out before it looks at it.
//
// Doorbells: the request ring's tail is the daemon's futex word and the event
// ring's tail is the process's futex word. A side only makes the wake system
// call when the other side has said it sleeps (daemon_armed / process_waiting);
// both sides use a full fence between publishing and checking (Dekker).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace nucleus::wire {

inline constexpr uint32_t kMagic = 0x4e55434cU;  // "NUCL"
inline constexpr uint32_t kAbiVersion = 9;

inline constexpr size_t kNameBytes = 32;  // names are 1..31 bytes plus NUL
inline constexpr size_t kMaxNameLength = kNameBytes - 1;
inline constexpr size_t kMessageWords = 8;
inline constexpr size_t kCacheLine = 64;
inline constexpr size_t kHeaderBytes = 4096;

// Limits nucleusd enforces on configuration and claims.
inline constexpr uint32_t kMaxPoolBuffers = 1U << 24;  // buffer index is 24 bits
inline constexpr uint32_t kMaxBufferClaim = 65536;
inline constexpr uint32_t kMaxRingEntries = 65536;
inline constexpr uint64_t kMaxDataAreaBytes = 1ULL << 30;
inline constexpr uint64_t kMaxProcessClaim = 1ULL << 20;  // descendants one claim may count
inline constexpr uint64_t kMaxDeviceClaim = 1ULL << 20;   // devices one claim may count

struct Message {
  uint64_t word[kMessageWords];
};

// ---- buffer handles ------------------------------------------------------
// A handle is (generation << 24) | buffer index. The generation of a buffer
// advances by one on every send, so a handle names one use of one buffer:
// after the answer is taken the same value is stale. Handle 0 is never valid
// (generations start at 1).
inline constexpr unsigned kHandleIndexBits = 24;
inline constexpr uint64_t kHandleIndexMask = (1ULL << kHandleIndexBits) - 1;
inline constexpr uint64_t kHandleGenerationMask = (1ULL << (64 - kHandleIndexBits)) - 1;

constexpr uint32_t handle_index(uint64_t handle) {
  return static_cast<uint32_t>(handle & kHandleIndexMask);
}
constexpr uint64_t handle_generation(uint64_t handle) {
  return handle >> kHandleIndexBits;
}
constexpr uint64_t make_handle(uint32_t index, uint64_t generation) {
  return ((generation & kHandleGenerationMask) << kHandleIndexBits) | index;
}
// The handle of the next use of the buffer that `handle` names. Generation 0
// is skipped so that no handle is ever 0.
constexpr uint64_t next_handle(uint64_t handle) {
  uint64_t generation = (handle_generation(handle) + 1) & kHandleGenerationMask;
  if (generation == 0) generation = 1;
  return make_handle(handle_index(handle), generation);
}

// ---- names ------------------------------------------------------------------
constexpr bool is_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}
// The length of a valid name held in `bytes` bytes (NUL-terminated within
// them, 1..31 characters of [A-Za-z0-9._-]), or -1. Reads no byte past
// `bytes`, so it is safe on untrusted fixed-size fields.
constexpr int name_length(const char *name, size_t bytes) {
  for (size_t i = 0; i < bytes && i <= kMaxNameLength; ++i) {
    if (name[i] == '\0') return i == 0 ? -1 : static_cast<int>(i);
    if (!is_name_char(name[i])) return -1;
  }
  return -1;
}

// ---- results and error codes ----------------------------------------------
enum Result : int32_t {
  kResultNormal = 1,
  kResultRejected = 2,
  kResultUnintelligible = 3,
  kResultMalfunction = 4,
  kResultDummy = 5,  // receiver does not exist (made by the nucleus)
};

// Error codes on the wire are Linux errno values (stable on this ABI).

// ---- causes ------------------------------------------------------------------
// Why a request was refused, beyond its errno: Event::cause of a kError or
// kReply with result < 0 (with cause_value and cause_errno), and
// AttachReply::reserved of a refused attach (channel_bytes then holds the
// value). The library turns (errno, cause, value, errno of the cause) into
// the per-call text of nucleus_last_error (client-lib/src/causes.cc, one
// table). 0: no cause said (the errno's general text applies). A new cause
// goes before kCauseLast, with its row in that table (a unit test checks
// every cause has one). Values from kCauseLibrary on are the library's own
// (refusals it makes without asking nucleusd) and never travel.
enum Cause : uint32_t {
  kCauseNone = 0,
  // The claims of the process that pays (the creator, or whom it acts for);
  // value: that claim's size (ENOBUFS).
  kCauseClaimBuffers = 1,    // value: the free buffers it holds (fewer than asked)
  kCauseClaimProcesses = 2,  // value: its processes claim
  kCauseClaimMemory = 3,     // value: its memory claim (bytes)
  kCauseClaimDevices = 4,    // value: its devices claim
  kCausePoolEmpty = 5,       // the root pays: value, the pool's unowned free buffers
  kCauseTableFull = 6,       // the root pays: value, processes.max
  kCauseClaimOverLimit = 7,  // a claim over the nucleus's bound (EINVAL); value: the bound
  kCauseClaimsInUse = 8,     // a modify's new claims are below what the child lends or has out
  // What one uid owns (EDQUOT); value: the configured limit | the uid << 32.
  kCauseUidProcesses = 9,  // limits.per_uid.processes
  kCauseUidNames = 10,     // limits.per_uid.names
  kCauseUidBuffers = 11,   // limits.per_uid.buffers
  // Names.
  kCauseBadName = 12,        // EINVAL: not 1..31 bytes of [A-Za-z0-9._-]
  kCauseNameTaken = 13,      // EEXIST
  kCauseNameReserved = 14,   // EPERM: the configuration's names section (value: rule index)
  kCauseNameHandedOut = 15,  // EPERM: nucleusctl-<pid> is only the peer with that pid's
  // Whose children, and who may act (value: a uid where one is named).
  kCauseNotChild = 16,      // ESRCH: no child of that name (of whom it acts for)
  kCauseActedForGone = 17,  // ESRCH: the process it acts for is gone
  kCauseNotOperator = 18,   // EACCES: acting for the root is an operator's
  kCauseOtherOwner = 19,    // EACCES: the process acted for has another owner (value: its uid)
  kCauseNotSocket = 20,     // EACCES: only a process attached through the socket may act for
  kCauseOwnerRule = 21,     // EPERM: the program would run as uid value (the owner rule)
  kCauseSwapOwner = 22,     // EPERM: a swap's program names another owner
  kCauseForeignRoot = 23,   // EPERM: a root's child that attached through the socket
  // Devices.
  kCauseNotDevice = 24,         // ESRCH: no device of that name (or not the caller's to remove)
  kCauseNotReserver = 25,       // EPERM: release of a device it did not reserve
  kCauseReservedByOther = 26,   // EBUSY: another process reserved it
  kCauseDeviceNotRelated = 27,  // EPERM: reserve of a device named by no ancestor of it
  kCauseBadDevice = 28,         // EINVAL: kind, paths, block size or flags
  kCauseDeviceFile = 29,        // opening its file failed: cause_errno
  // Programs and states.
  kCauseStagedTooBig = 30,  // E2BIG: value, limits.per_connection.staged_bytes
  kCauseBadProgram = 31,    // EINVAL: the staged program is malformed
  kCauseNoSuchUser = 32,    // EINVAL: the uid it names is not in the user database
  kCauseStartStep = 33,     // a step of the start failed: value the StartStep, cause_errno
                            // its errno; words 1..7 of the reply: the path (kStartFailedPath)
  kCauseState = 34,         // EBUSY / EALREADY: value, its ProcessState
  kCauseLaunching = 35,     // EBUSY: its start is in flight
  kCauseSwapping = 36,      // EBUSY: a swap of it is in progress
  // Attach.
  kCauseAttachNotAllowed = 37,  // EACCES: the attach section does not let its uid attach
  kCauseAbi = 38,               // EPROTO: value, the nucleus's ABI version
  kCauseNoProcess = 39,         // ESRCH: no process of that name (to act for)
  kCauseNotSwappable = 40,      // EINVAL: only a running, attached OS not stopped is swapped
  kCauseAttachesPending = 41,   // EAGAIN: its uid has value attaches waiting (or nucleusd has)
  kCauseLast = 41,              // a new cause goes before this line
  // The library's own (never on the wire).
  kCauseLibrary = 64,
  kCauseBuffersOut = 64,     // ENOBUFS: every buffer of the claim is out (value: the claim)
  kCauseNoSocket = 65,       // connecting to nucleusd's socket failed (cause_errno)
  kCauseStaleHandle = 66,    // EBADF: not a buffer this process has out or received
  kCauseNoEvent = 67,        // ENOENT: no such event in this process's queue
  kCauseNoNucleusFd = 68,    // attach(NULL) without a NUCLEUS_FD connection
  kCauseProgramTooBig = 69,  // E2BIG: over kMaxProgramBytes or kMaxProgramStrings
  // Data with a message and regret: each errno of copy_from/copy_to and
  // regret_message is one cause (nucleus.h), named here by the library.
  kCauseNoLend = 70,          // ENODATA: the message lends nothing
  kCauseLendEnded = 71,       // ESTALE: the sender's run that lent it is gone
  kCauseLendRight = 72,       // EACCES: the lend does not give that right
  kCauseLendRange = 73,       // EFAULT: outside the lent range (or the sender's area)
  kCauseOwnRange = 74,        // ERANGE: outside the caller's own data area
  kCauseCopyTooBig = 75,      // EMSGSIZE: more than kMaxCopyBytes in one request
  kCauseRegretTaken = 76,     // EBUSY: the receiver has taken it
  kCauseRegretAnswered = 77,  // EALREADY: it is answered already
  kCauseLibraryLast = 77,
};
// ---- requests (process -> nucleus) ---------------------------------------
enum class Op : uint32_t {
  kNop = 0,
  kSendMessage = 1,    // handle = next use of an own buffer; name = receiver
  kGetEvent = 2,       // handle = a message published to the caller (take it)
  kSendAnswer = 3,     // handle = a buffer the caller received; arg = result;
                       // lend_bytes != 0: first copy lend_bytes from lend_offset of the
                       // caller's own area to the start of the message's lent range
  kReleaseAnswer = 4,  // handle = an answer published to the caller
  kGetStats = 5,       // reply: Event kReply with Stats in message words
  // Process control. Each is answered by one kReply (seq, result = 0 or
  // -errno) except kListChildren (see there). A program is passed as bytes
  // staged beforehand with kStageProgram (ProgramHeader, then strings).
  kStageProgram = 6,    // arg = byte count (1..kStageChunkBytes): name then message bytes
  kCreateProcess = 7,   // name = child; message = Claims words; staged program
  kStartProcess = 8,    // name = child
  kStopProcess = 9,     // name = child; handle = next use of an own buffer, answered when stopped
  kModifyProcess = 10,  // name = child; arg = ModifyFlags; message = Claims words; staged program
  kRemoveProcess = 11,  // name = child
  kGetProcess = 12,     // name = child; reply message = ProcessInfo words, sender = name
  kListChildren = 13,   // arg = first index; replies: one per child from there, up to
                        // kListPage, each with handle = child count and index
  // External processes (devices). Paths travel staged like a program: the
  // staged bytes are DeviceHeader's strings (see there).
  kCreateExternal = 14,  // name = device; arg = DeviceKind; message = DeviceParameterWord words
  kRemoveExternal = 15,  // name = a device the caller named
  kReserveProcess = 16,  // name = a device: exclusive use until released or the caller dies
  kReleaseProcess = 17,  // name = a device the caller reserved
  // Hot swap (docs/hot-swap.md).
  kSwapProcess = 18,  // name = child; handle = next use of an own buffer, answered when
                      // swapped or not (SwapOutcome); staged program
  kSwapReady = 19,    // the new program of a swap: take over now. Replied when it bears
                      // the name (after its kInherit events), or with -errno
  // Operators and owners (nucleusctl): process control (create, start,
  // stop, modify, remove, get, list, swap) from here on acts for another:
  // arg = ActFor; name = the process (kActForProcess). Only a process that
  // attached through the socket may ask; -EACCES unless its uid is an
  // operator's, or owns that process.
  kActFor = 20,
  // Applications (docs/data-and-regret.md). kSendMessage with a lend:
  // arg = LendRights, lend_offset and lend_bytes = the range of the sender's
  // data area lent to the receiver until the answer, a regret or the
  // sender's death; the receiver sees lend_bytes and the rights in the
  // message event's `extra` (lend_extra()), never the offset.
  kRegretMessage = 21,   // handle = a message the caller sent; replied (RegretOutcome)
  kCopyData = 22,        // handle = a message the caller received and holds; arg = CopyDirection;
                         // message words = CopyWord; replied with 0 or -errno
  kPollDescriptor = 23,  // a descriptor readable when an event waits; replied, and the
                         // descriptor comes on the caller's socket (docs/data-and-regret.md)
  kReceiveWindow = 24,   // lend_offset, lend_bytes = a range of the caller's own area into
                         // which a message's lent bytes are copied as it is published
                         // (Event::copied; lend_bytes 0: none); replied with 0 or -errno
};

enum ActFor : int64_t {
  kActForSelf = 0,     // its own children again
  kActForRoot = 1,     // the root's children (operators only)
  kActForProcess = 2,  // the children of the process named
};
inline constexpr uint32_t kOpCount = 25;

// ---- data lent with a message -------------------------------------------------
enum LendRights : int64_t {
  kLendNone = 0,
  kLendRead = 1,   // the receiver may copy from the range (kCopyFrom)
  kLendWrite = 2,  // the receiver may copy into the range (kCopyTo)
};
// A message event's `extra`: the bytes lent | rights << 32 (0: no lend).
constexpr uint64_t lend_extra(uint32_t bytes, uint32_t rights) {
  return uint64_t{bytes} | uint64_t{rights} << 32;
}
// The most one kCopyData moves (nucleus_copy_* split larger copies), so one
// request never holds nucleusd's loop for long: about 50 µs of memcpy.
inline constexpr uint64_t kMaxCopyBytes = 1ULL << 20;
enum CopyDirection : int64_t {
  kCopyFrom = 0,  // lent range -> the caller's own data area
  kCopyTo = 1,    // the caller's own data area -> lent range
};
enum CopyWord : uint32_t {
  kCopyLendOffset = 0,  // offset within the lent range
  kCopyOwnOffset = 1,   // offset within the caller's data area
  kCopyBytes = 2,
};

// ---- a descriptor to poll ---------------------------------------------------
// kPollDescriptor's arg. kPollOpen: nucleusd makes a pipe for the caller's
// connection, keeps its write end (O_NONBLOCK, held by nobody else) and sends
// the read end on the caller's socket as one PollDescriptorRecord with
// SCM_RIGHTS, then replies 0 (-EEXIST: the connection has one already; an
// errno of pipe2 or sendmsg). From then on, whenever nucleusd publishes
// events while the process has kWaitingOnDescriptor set in process_waiting,
// it writes a byte to the pipe. kPollRing (no reply): write a byte now, for
// a process that found events after it had emptied the pipe.
enum PollDescriptorArg : int64_t {
  kPollOpen = 0,
  kPollRing = 1,
};
struct PollDescriptorRecord {
  uint32_t magic;  // kMagic
  uint32_t op;     // Op::kPollDescriptor
};
static_assert(sizeof(PollDescriptorRecord) == 8);

// ---- process control ---------------------------------------------------------
inline constexpr uint32_t kStageChunkBytes = kNameBytes + 64;  // name + message fields
inline constexpr uint32_t kMaxProgramBytes = 32768;
inline constexpr uint32_t kMaxProgramStrings = 1024;  // argv + env entries
inline constexpr uint32_t kListPage = 16;

// A staged program: this header, then NUL-terminated strings: path, working
// directory (empty: nucleusd's), argc arguments, envc environment entries.
// Every string is UTF-8. uid/gid: the user and group the program runs as;
// kOwnerDefault: its creator's (only a root-owned creator may name others).
inline constexpr uint32_t kOwnerDefault = UINT32_MAX;
struct ProgramHeader {
  uint32_t argc;
  uint32_t envc;
  uint32_t uid = kOwnerDefault;
  uint32_t gid = kOwnerDefault;
};
static_assert(sizeof(ProgramHeader) == 16);

// Claims in a request's or reply's message words.
enum ClaimWord : uint32_t {
  kClaimBuffers = 0,
  kClaimProcesses = 1,  // descendants it may create
  kClaimMemory = 2,     // bytes; 0: no limit of its own (its parent's applies)
  kClaimDevices = 3,    // devices it (and its descendants, out of its share) may name
  kClaimDataBytes = 4,  // size of its data area; 0: the configured channel.data_bytes
};

enum ModifyFlags : uint32_t {
  kModifyProgram = 1,
  kModifyClaims = 2,
};

// Which step of running a program failed: word kStartFailedStep of a failed
// kStartProcess's kReply (result -errno), word kSwapStartStep of a
// kSwapStartFailed answer. The errno is that step's own (exec's EACCES: the
// owner may not run that file), never a refusal by the nucleus, which is
// kStartStepNone (no step ran; the result says why).
enum StartStep : uint64_t {
  kStartStepNone = 0,
  kStartStepExec = 1,        // exec of the program's path, as its owner
  kStartStepChdir = 2,       // entering its working directory, as its owner
  kStartStepSetIds = 3,      // taking its owner's groups, gid and uid (or a nucleusd not root)
  kStartStepConnection = 4,  // its bound connection (NUCLEUS_FD) and standard descriptors
  kStartStepOutput = 5,      // its output file, opened as its owner
  kStartStepProcess = 6,     // the process itself: clone, cgroup, session, limits
  kStartStepDeadline = 7,    // it did not reach its exec within limits.launch_timeout_ms (ended)
};
inline constexpr uint64_t kStartStepLast = kStartStepDeadline;  // a new step goes before this line
inline constexpr uint32_t kStartFailedStep = 0;
// Reply words of a start whose step failed (kCauseStartStep): word
// kStartFailedStep the step, words kStartFailedPath.. the path or directory
// (NUL-terminated, cut to fit; empty for steps without one).
inline constexpr uint32_t kStartFailedPath = 1;
inline constexpr size_t kStartFailedPathBytes = (kMessageWords - kStartFailedPath) * 8;
// What each step's failure is called, one text for nucleusd's log and the
// library (nucleus_start_step_text): the path or directory and the errno
// follow it.
constexpr const char *start_step_text(uint64_t step) {
  switch (step) {
    case kStartStepExec: return "cannot execute";
    case kStartStepChdir: return "cannot enter its working directory";
    case kStartStepSetIds: return "cannot take its owner's groups, gid and uid";
    case kStartStepConnection: return "cannot set up its connection to the nucleus";
    case kStartStepOutput: return "cannot open its output file";
    case kStartStepProcess: return "cannot create its process (clone, cgroup or limits)";
    case kStartStepDeadline: return "was ended before it could execute";
    default: return "the start was refused";
  }
}

enum class ProcessState : uint32_t {
  kCreated = 1,
  kRunning = 2,
  kStopping = 3,  // a stop is asked for and not yet complete
  kStopped = 4,
  kExited = 5,  // its program ended; its children (if any) run on
};

enum class ExitKind : uint32_t {
  kNone = 0,
  kCode = 1,    // exit(value)
  kSignal = 2,  // killed by signal value
};

// kGetProcess / kListChildren reply, in Event::message.word[] (name in sender).
// The reply's Event::extra holds the data area size it was given (claims).
enum ProcessInfoWord : uint32_t {
  kInfoState = 0,  // ProcessState | ExitKind << 8 | exit value << 32
  kInfoPid = 1,    // Linux pid of its current or last run (0: never ran) | owner uid << 32
  kInfoGivenBuffers = 2,
  kInfoGivenProcesses = 3,  // processes | devices << 32 (both claims < 2^32)
  kInfoGivenMemory = 4,
  kInfoUsedBuffers = 5,    // out, or given to its own children
  kInfoUsedProcesses = 6,  // its descendants' share: children + what they hold; | devices << 32
  kInfoUsedMemory = 7,     // given to its own children
};

// ---- external processes (devices) -------------------------------------------
// A device is a process served inside nucleusd: messages to it are ordinary
// messages, answered like any process's. Word 0 of a message is the
// operation. Offsets and lengths are in the sender's own data area. Results:
// normal; rejected (reserved by another process); unintelligible (answer
// word 0 = why, an errno: EOPNOTSUPP unknown operation, EFAULT outside the
// data area, EINVAL a malformed word, ENXIO blocks beyond the disk);
// malfunction (answer word 0 = the errno of the I/O). docs/devices.md.
enum class DeviceKind : uint32_t {
  kClock = 1,
  kConsole = 2,
  kDisk = 3,
  kNull = 4,
};
inline constexpr uint32_t kDeviceKindCount = 5;

// kCreateExternal: staged bytes are two NUL-terminated strings, path then
// input path (disk: the backing file, then empty; console: output file or
// terminal, then input (empty: the same path)).
enum DeviceParameterWord : uint32_t {
  kDeviceBlockSize = 0,  // disk: bytes per block, a power of two 512..65536 (0: 512)
  kDeviceFlags = 1,      // DeviceFlags
};
enum DeviceFlags : uint64_t {
  kDeviceDirect = 1,  // disk: the backing file is opened with O_DIRECT
};
inline constexpr uint32_t kMinBlockSize = 512;
inline constexpr uint32_t kMaxBlockSize = 65536;

enum DeviceWord : uint32_t {
  kDeviceOp = 0,
  kDeviceArg1 = 1,
  kDeviceArg2 = 2,
  kDeviceArg3 = 3,
};
// clock
inline constexpr uint64_t kClockWait =
    1;  // word 1 = nanoseconds (< 2^63); answer word 0 = CLOCK_MONOTONIC ns
inline constexpr uint64_t kClockNow =
    2;  // answer word 0 = CLOCK_MONOTONIC ns, word 1 = CLOCK_REALTIME ns
// console
inline constexpr uint64_t kConsoleWrite =
    1;  // word 1 = offset, word 2 = length; answer word 0 = bytes
inline constexpr uint64_t kConsoleRead =
    2;  // word 1 = offset, word 2 = capacity; reads one line:
        // answer word 0 = bytes (with its newline), word 1 = 1 at end of input
// disk
inline constexpr uint64_t kDiskRead =
    1;  // word 1 = first block, word 2 = block count, word 3 = offset
inline constexpr uint64_t kDiskWrite = 2;  // same words; answer word 0 = bytes moved
inline constexpr uint64_t kDiskInfo = 3;   // answer word 0 = block size, word 1 = block count
// null answers every message normal at once, with all answer words 0.

// The message the nucleus (sender kNucleusName) sends a parent when a child's
// program ends. Words 4..7 hold the child's name, NUL-terminated.
inline constexpr char kNucleusName[] = "nucleus";
inline constexpr uint64_t kNoticeChildExited = 1;
// The message the nucleus sends an OS whose parent asked to swap it: word 1
// is the size of its data area. The OS writes its state into its data area
// and answers normal with word 0 = offset, word 1 = length; any other answer
// refuses the swap. It must not use the nucleus afterwards: its requests wait
// until the swap is done (it is ended) or rolled back (they are served).
inline constexpr uint64_t kNoticeHandover = 2;
enum HandoverWord : uint32_t {
  kHandoverDataBytes = 1,  // in the request
  kHandoverOffset = 0,     // in the answer
  kHandoverLength = 1,
};

// The answer to kSwapProcess: result normal and word 0 kSwapDone, or result
// rejected and word 0 why; word 1 a detail (errno; exit code, or 0x100 +
// signal), word 2 the new pid, word 3 the old pid, word 4 the state's bytes,
// word 5 the pause (ns from the handover answer to the takeover).
enum SwapOutcome : uint64_t {
  kSwapDone = 0,
  kSwapNoHandover = 1,   // the OS did not answer the handover in time
  kSwapRefused = 2,      // the OS answered other than normal, or a bad offset/length
  kSwapStartFailed = 3,  // the new program could not be run (word 1: errno)
  kSwapNewExited = 4,    // the new program ended before it was ready (words 1 and 7: how)
  kSwapNotReady = 5,     // the new program did not say ready in time
  kSwapOldExited = 6,    // the OS ended during the swap
  kSwapCancelled = 7,    // the OS was removed or stopped during the swap
};
enum SwapWord : uint32_t {
  kSwapOutcome = 0,
  kSwapDetail = 1,
  kSwapNewPid = 2,
  kSwapOldPid = 3,
  kSwapStateBytes = 4,
  kSwapPauseNs = 5,
  kSwapStartStep = 6,  // kSwapStartFailed: the StartStep that failed
  // kSwapNewExited: how the new program ended (ExitKind: kCode with word 1
  // its exit code, kSignal with word 1 0x100 + the signal; kNone: it hung
  // up and had not ended within kSwapHungUpGraceMs, so nucleusd ended it).
  kSwapExitKind = 7,
};
// How long a swap's new program that hung up has to end before nucleusd
// ends it: its exit status, not its hang-up, is the answer's detail.
inline constexpr uint64_t kSwapHungUpGraceMs = 1000;

enum NoticeWord : uint32_t {
  kNoticeKind = 0,       // kNoticeChildExited
  kNoticeExitKind = 1,   // ExitKind
  kNoticeExitValue = 2,  // exit code or signal number
  kNoticePid = 3,
  kNoticeName = 4,  // 32 bytes: words 4..7
};

struct Request {
  uint32_t op;   // Op
  uint32_t seq;  // echoed in kError / kReply events
  uint64_t handle;
  int64_t arg;
  char name[kNameBytes];
  Message message;
  uint32_t lend_offset;  // kSendMessage with arg != kLendNone: the range lent
  uint32_t lend_bytes;
};

// ---- principals --------------------------------------------------------------
// Who sent a message, an answer or any other event: stamped by nucleusd from
// what it knows, never taken from the sender (DESIGN.md, "An OS authorises by
// the sender's principal"). A receiver asks "may this sender do this?" of
// these fields, not of a name.
enum class PrincipalKind : uint32_t {
  kNone = 0,
  // An internal process: uid and gid are its entry's owner (what its program
  // runs as), pid its program's (the run that sent it; 0: a run nucleusd
  // does not know the pid of).
  kProcess = 1,
  // An external process (device) answering: uid and gid are the owner of the
  // process that named it (nucleusd's own for the configuration's devices),
  // pid nucleusd's.
  kDevice = 2,
  // The nucleus itself: an exit notice, a handover request, a dummy answer
  // (result kResultDummy), the answer to a stop or a swap, a reply, an error;
  // uid, gid and pid are nucleusd's.
  kNucleus = 3,
};
struct Principal {
  uint32_t uid;
  uint32_t gid;
  int32_t pid;
  uint32_t kind;  // PrincipalKind
};

// ---- events (nucleus -> process) -----------------------------------------
enum class EventKind : uint32_t {
  kMessage = 1,  // a message arrived: handle, sender, message
  kAnswer = 2,   // an answer arrived: handle, result, message
  kError = 3,    // a request was refused: seq, code (errno), handle
  kReply = 4,    // reply to a request that is not messaging (stats, process control,
                 // devices): seq, code, message
  kClosed = 5,   // the channel is closed: header.state says why
  // After a swap, before the kSwapReady reply: a buffer the new program
  // inherits. result kInheritReceived: a message received and not answered
  // (handle, sender, message); kInheritOut: a buffer of its claim that is out
  // (its answer comes as a kAnswer event, or has come).
  kInherit = 6,
  // To a swap's new program: the old OS's state is at the start of its data
  // area, `extra` bytes of it.
  kHandover = 7,
  // The sender regretted a message already published to this process
  // (handle) before this process took it: it is not this process's to
  // take, answer or copy. A take of it that was already on its way is void
  // (not a protocol error).
  kWithdrawn = 8,
};
inline constexpr int32_t kInheritReceived = 1;
inline constexpr int32_t kInheritOut = 2;

struct Event {
  uint32_t kind;  // EventKind
  uint32_t seq;
  uint64_t handle;
  int32_t result;  // answer result, or errno for kError / kReply
  union {
    // kMessage: the lent bytes nucleusd copied into the receiver's receive
    // window (kReceiveWindow) as it published the message; kAnswer: the
    // bytes the answer copied to the start of the lent range.
    uint32_t copied;
    uint32_t index;  // a kListChildren reply: the child's (UINT32_MAX: the end)
  };
  char sender[kNameBytes];
  Message message;
  uint64_t extra;  // kGetProcess / kListChildren replies: the data area size given
                   // (< 2^31) | owner gid << 32; a message (and a kInherit of a
                   // received one): what it lends, lend_extra()
  // Who the event is from: a message's sender, an answer's answerer (a
  // process, a device, or the nucleus for a dummy answer), the nucleus for
  // every other kind. `sender` is that one's name (kNucleusName for the
  // nucleus; a reply to kGetProcess / kListChildren names the child there).
  Principal principal;
  // kError / kReply with result < 0: why, beyond the errno (wire::Cause, 0:
  // none said), an errno of the cause (exec's, for instance) and a value
  // (the claim or bound that was met). The library makes the per-call text.
  uint32_t cause;
  int32_t cause_errno;
  uint64_t cause_value;
  uint8_t reserved1[32];  // zero; keeps the record three cache lines
};

// kGetStats reply, in Event::message.word[]
enum StatsWord : uint32_t {
  kStatsPoolBuffers = 0,
  kStatsPoolFree = 1,  // buffers owned by nobody and not in use
  kStatsProcesses = 2,
  kStatsClaimBuffers = 3,  // caller's claim
  kStatsClaimUsed = 4,     // caller's buffers out or unreleased
  kStatsProtocolErrors = 5,
  kStatsQueueLength = 6,  // messages queued to or received by the caller
  kStatsDevices = 7,      // external processes (not counted in kStatsProcesses)
};

// ---- channel header ---------------------------------------------------------
enum class ChannelState : uint32_t {
  kAttached = 1,
  kShutdown = 2,  // nucleusd is stopping: every call returns -ESHUTDOWN
  kDetached = 3,  // nucleusd detached this process (protocol violations)
};

// Why the process sleeps on events_tail (ChannelHeader::process_waiting).
enum WaitReason : uint32_t {
  kNotWaiting = 0,
  kWaitingForEvents = 1,        // wake me when you publish an event
  kWaitingForRequestSpace = 2,  // ... or when you take requests off a full ring
  // A bit with the others: the process waits on its poll descriptor
  // (kPollDescriptor); nucleusd makes it readable when it publishes events.
  kWaitingOnDescriptor = 4,
};
// The bits that ask for a futex wake (kWaitingOnDescriptor asks for a byte
// in the pipe instead).
inline constexpr uint32_t kWaitingOnFutex = kWaitingForEvents | kWaitingForRequestSpace;

enum class Doorbell : uint32_t {
  kFutex = 1,    // futex_wake on requests_tail
  kEventfd = 2,  // write 1 to the eventfd received at attach
};

struct alignas(kCacheLine) ChannelHeader {
  // Lines 0-1: written once by nucleusd before the fd is sent; read-only after.
  uint32_t magic;
  uint32_t abi_version;
  uint32_t doorbell;         // Doorbell
  uint32_t request_entries;  // power of two
  uint32_t event_entries;    // power of two
  uint32_t slot_count;       // capacity of the slot table (kMaxBufferClaim)
  uint64_t channel_bytes;
  uint64_t slots_offset;
  uint64_t requests_offset;
  uint64_t events_offset;
  uint64_t data_offset;
  uint64_t data_bytes;

  // Line 2: written by the process.
  alignas(kCacheLine) std::atomic<uint32_t> requests_tail;  // futex word
  std::atomic<uint32_t> events_head;
  std::atomic<uint32_t> process_waiting;  // WaitReason: sleeping on events_tail

  // Line 3: written by nucleusd.
  alignas(kCacheLine) std::atomic<uint32_t> requests_head;
  std::atomic<uint32_t> events_tail;   // futex word
  std::atomic<uint32_t> daemon_armed;  // 1: nucleusd needs a doorbell
  std::atomic<uint32_t> backlog;       // 1: events wait for ring space
  std::atomic<uint32_t> state;         // ChannelState
  // The slot table changed (buffers were given to or taken from the claim):
  // bumped with release after the table is written. Entries past slot_high
  // are 0; an entry of 0 is not the process's.
  std::atomic<uint32_t> slots_version;
  std::atomic<uint32_t> slot_high;
};

static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<uint32_t>) == 4);
static_assert(std::is_trivially_copyable_v<Message>);
static_assert(std::is_trivially_copyable_v<Request>);
static_assert(std::is_trivially_copyable_v<Event>);
static_assert(std::is_trivially_copyable_v<Principal>);
static_assert(std::is_standard_layout_v<ChannelHeader>);
static_assert(sizeof(Message) == 64);
static_assert(sizeof(Request) == 128);
static_assert(sizeof(Principal) == 16);
static_assert(sizeof(Event) == 192);
static_assert(offsetof(Request, name) == 24);
static_assert(offsetof(Request, message) == 56);
static_assert(offsetof(Event, sender) == 24);
static_assert(offsetof(Event, message) == 56);
static_assert(offsetof(Event, principal) == 128);
static_assert(offsetof(Event, cause) == 144);
static_assert(offsetof(Request, lend_offset) == 120);
static_assert(offsetof(ChannelHeader, requests_tail) == 128);
static_assert(offsetof(ChannelHeader, requests_head) == 192);
static_assert(sizeof(ChannelHeader) <= kHeaderBytes);

// ---- attach records (nucleusd's socket) -----------------------------------
// The process sends AttachRequest as one SOCK_SEQPACKET record; nucleusd
// answers with one AttachReply and, on success, the channel memfd (and the
// doorbell eventfd when header.doorbell is kEventfd) as SCM_RIGHTS.
struct AttachRequest {
  uint32_t magic;
  uint32_t abi_version;
  char name[kNameBytes];  // empty: the connection was bound to a name by nucleusd
};

enum AttachFlags : uint32_t {
  kAttachSuccessor = 1,  // the new program of a swap: its state comes as a kHandover event
};

struct AttachReply {
  uint32_t magic;
  uint32_t abi_version;
  int32_t status;  // 0 or -errno
  uint32_t fd_count;
  uint64_t channel_bytes;
  char name[kNameBytes];
  uint32_t flags;  // AttachFlags
  uint32_t reserved;
};

static_assert(std::is_trivially_copyable_v<AttachRequest>);
static_assert(std::is_trivially_copyable_v<AttachReply>);
static_assert(sizeof(AttachRequest) == 40);
static_assert(sizeof(AttachReply) == 64);

// Computes the layout for the given sizes; both sides use it, so a header
// whose offsets disagree with it is refused by the client.
struct Layout {
  uint64_t slots_offset;
  uint64_t requests_offset;
  uint64_t events_offset;
  uint64_t data_offset;
  uint64_t channel_bytes;
};

constexpr uint64_t round_up(uint64_t value, uint64_t to) {
  return (value + to - 1) / to * to;
}

constexpr Layout compute_layout(uint32_t slot_count, uint32_t request_entries,
                                uint32_t event_entries, uint64_t data_bytes) {
  Layout l{};
  l.slots_offset = kHeaderBytes;
  l.requests_offset = round_up(l.slots_offset + uint64_t{slot_count} * 8, 4096);
  l.events_offset = l.requests_offset + uint64_t{request_entries} * sizeof(Request);
  l.data_offset = round_up(l.events_offset + uint64_t{event_entries} * sizeof(Event), 4096);
  l.channel_bytes = round_up(l.data_offset + data_bytes, 4096);
  return l;
}

constexpr bool is_power_of_two(uint32_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

}  // namespace nucleus::wire
