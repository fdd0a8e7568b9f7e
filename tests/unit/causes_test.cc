// The text builder of nucleus_last_error (client-lib/src/causes.cc): every
// wire::Cause has its row, and each makes its text from the value, the
// errno and the path it is given. The integration test
// (tests/integration/error_table_test.cc) pins each situation met through a
// real nucleusd to its text.
#include <gtest/gtest.h>
#include <nucleus/nucleus.h>
#include <nucleus/wire.h>

#include <cerrno>
#include <string>

#include "causes.h"

namespace nucleus::client {
namespace {

namespace w = wire;

TEST(Causes, EveryCauseHasARow) {
  EXPECT_TRUE(every_cause_has_text());
}

struct Row {
  uint32_t cause;
  int code;
  int32_t cause_errno;
  uint64_t value;
  const char *path;
  const char *text;
};

constexpr uint64_t uid_and_limit(uint64_t uid, uint64_t limit) {
  return limit | uid << 32;
}

const Row kRows[] = {
    {w::kCauseClaimBuffers, -ENOBUFS, 0, 3, "",
     "the parent's buffers claim holds 3 free buffers, fewer than the child's claim asks "
     "(claims.buffers)"},
    {w::kCauseClaimProcesses, -ENOBUFS, 0, 0, "",
     "the processes claim of the parent is 0 (claims.processes)"},
    {w::kCauseClaimProcesses, -ENOBUFS, 0, 4, "",
     "the processes claim of the parent is 4, and all of it is in use (claims.processes)"},
    {w::kCauseClaimMemory, -ENOBUFS, 0, 4096, "",
     "the parent's memory claim (4096 bytes) has not that much left to lend "
     "(claims.memory_bytes)"},
    {w::kCauseClaimDevices, -ENOBUFS, 0, 0, "",
     "the devices claim of this process is 0 (claims.devices)"},
    {w::kCauseClaimDevices, -ENOBUFS, 0, 2, "",
     "the devices claim of this process is 2, and every one is in use by a device it named "
     "(claims.devices)"},
    {w::kCausePoolEmpty, -ENOBUFS, 0, 5, "",
     "the nucleus's pool has 5 unowned free buffers, fewer than the claim asks (pool.buffers)"},
    {w::kCauseTableFull, -ENOBUFS, 0, 64, "",
     "the nucleus's process table is full (processes.max 64)"},
    {w::kCauseUidProcesses, -EDQUOT, 0, uid_and_limit(65534, 16), "",
     "uid 65534 owns as many processes as limits.per_uid.processes (16) allows"},
    {w::kCauseUidNames, -EDQUOT, 0, uid_and_limit(7, 3), "",
     "uid 7 owns as many names as limits.per_uid.names (3) allows"},
    {w::kCauseUidBuffers, -EDQUOT, 0, uid_and_limit(7, 100), "",
     "the claims of uid 7's processes hold as many buffers as limits.per_uid.buffers (100) "
     "allows"},
    {w::kCauseOtherOwner, -EACCES, 0, 1000, "",
     "the process acted for is owned by uid 1000, and this process's uid is not an operator"},
    {w::kCauseOwnerRule, -EPERM, 0, 0, "",
     "its program would run as uid 0, an owner only root or that uid may name (the owner "
     "rule)"},
    {w::kCauseDeviceFile, -ENOENT, ENOENT, 0, "",
     "cannot open the device's file: No such file or directory"},
    {w::kCauseStagedTooBig, -E2BIG, 0, 4096, "",
     "the program's strings are over limits.per_connection.staged_bytes (4096 bytes)"},
    {w::kCauseNoSuchUser, -EINVAL, 0, 4242, "", "uid 4242 is not in the user database"},
    {w::kCauseStartStep, -EACCES, EACCES, w::kStartStepExec, "/bin/x",
     "cannot execute /bin/x: Permission denied"},
    {w::kCauseStartStep, -ENOENT, ENOENT, w::kStartStepChdir, "/nowhere",
     "cannot enter its working directory /nowhere: No such file or directory"},
    {w::kCauseStartStep, -EPERM, EPERM, w::kStartStepSetIds, "",
     "cannot take its owner's groups, gid and uid: Operation not permitted"},
    {w::kCauseStartStep, -ETIMEDOUT, ETIMEDOUT, w::kStartStepDeadline, "/bin/slow",
     "was ended before it could execute /bin/slow: Connection timed out"},
    {w::kCauseState, -EALREADY, 0, static_cast<uint64_t>(w::ProcessState::kRunning), "",
     "it is running already"},
    {w::kCauseState, -EBUSY, 0, static_cast<uint64_t>(w::ProcessState::kStopping), "",
     "it is being stopped, which does not allow this"},
    {w::kCauseNotSwappable, -EINVAL, 0, static_cast<uint64_t>(w::ProcessState::kStopped), "",
     "only a running process that is attached and not stopped can be swapped (it is stopped)"},
    {w::kCauseAbi, -EPROTO, 0, 8, "", "nucleusd speaks wire ABI 8, this library another"},
    {w::kCauseAttachesPending, -EAGAIN, 0, 4, "",
     "4 attaches wait already (limits.per_uid.pending_attaches)"},
    {w::kCauseBuffersOut, -ENOBUFS, 0, 8, "", "every buffer of this process's claim (8) is out"},
    {w::kCauseBuffersOut, -ENOBUFS, 0, 0, "", "this process's buffer claim is 0"},
    {w::kCauseNoSocket, -ENOENT, ENOENT, 0, "/run/x.sock",
     "cannot connect to /run/x.sock: No such file or directory"},
};

TEST(Causes, EachRowFillsItsWords) {
  for (const Row &r : kRows) {
    EXPECT_EQ(cause_text(r.code, r.cause, r.cause_errno, r.value, r.path), r.text)
        << "cause " << r.cause;
  }
}

// A cause with no words of its own is its text alone; none (0) or one this
// library does not know is the errno's general text.
TEST(Causes, NoneOrUnknownIsTheGeneralText) {
  EXPECT_EQ(cause_text(-ENOBUFS, w::kCauseNone, 0, 0, ""), nucleus_strerror(-ENOBUFS));
  EXPECT_EQ(cause_text(-EPERM, 999, 0, 0, ""), nucleus_strerror(-EPERM));
  EXPECT_EQ(cause_text(-EPERM, w::kCauseNotReserver, 0, 0, ""),
            "the device is not reserved by this process");
  for (uint32_t c = 1; c <= w::kCauseLast; ++c) {
    EXPECT_FALSE(cause_text(-EINVAL, c, 0, 1, "").empty()) << "cause " << c;
    EXPECT_EQ(cause_text(-EINVAL, c, 0, 1, "").find('{'), std::string::npos) << "cause " << c;
  }
}

// The per-call text: the call, the name, the cause noted for that code;
// a note for another code is not this failure's.
TEST(Causes, FailedMakesThePerCallText) {
  note_cause(-ENOBUFS, w::kCauseClaimProcesses, 0);
  EXPECT_EQ(failed("create_process", "w", -ENOBUFS), -ENOBUFS);
  EXPECT_STREQ(last_error(),
               "create_process \"w\": the processes claim of the parent is 0 (claims.processes)");
  note_cause(-EPERM, w::kCauseNotReserver);
  failed("send_message", nullptr, -ENOBUFS);
  EXPECT_EQ(std::string(last_error()), std::string("send_message: ") + nucleus_strerror(-ENOBUFS));
  // Taken once: the next failure without a note says the general text.
  failed("release_process", "disk", -EPERM);
  EXPECT_EQ(std::string(last_error()),
            std::string("release_process \"disk\": ") + nucleus_strerror(-EPERM));
}

// nucleus_strerror is a general text per errno: none names one situation
// the issue found it naming for all (a missing program, a devices claim).
TEST(Causes, GeneralTextsAreHonest) {
  EXPECT_EQ(std::string(nucleus_strerror(-ENOENT)).find("nucleus socket"), std::string::npos);
  EXPECT_EQ(std::string(nucleus_strerror(-ENOBUFS)).find("every message buffer"),
            std::string::npos);
  EXPECT_EQ(std::string(nucleus_strerror(-EPERM)).find("reserved"), std::string::npos);
  EXPECT_NE(std::string(nucleus_strerror(-EDQUOT)), "Disk quota exceeded");
}

}  // namespace
}  // namespace nucleus::client
