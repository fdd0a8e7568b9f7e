// The decoder (requests.h): every op through the one table, with a fake
// Linux side that records what process control asked of it.
#include "requests.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core_helpers.h"
#include "requests_helpers.h"

namespace nucleus::daemon {
namespace {

using namespace std::string_literals;

using testing::FakeLinux;
using testing::program_bytes;
using testing::RequestsTest;

TEST(RequestsTable, EveryOpHasAHandler) {
  EXPECT_TRUE(Requests::every_op_handled());
}

TEST_F(RequestsTest, AnOpOutOfRangeIsAProtocolErrorAndChangesNothing) {
  wire::Request r{};
  r.op = wire::kOpCount;
  EXPECT_EQ(handle(r), Error::kProtocol);
  r.op = UINT32_MAX;
  EXPECT_EQ(handle(r), Error::kProtocol);
  EXPECT_TRUE(replies_.empty());
  EXPECT_TRUE(linux_.calls.empty());
}

TEST_F(RequestsTest, MessagePrimitivesReachTheCore) {
  uint32_t peer = core_.attach("peer", 4).value();
  wire::Request send = request(wire::Op::kSendMessage, "peer");
  send.handle = testing::free_handle(core_, os_);
  EXPECT_EQ(handle(send), Error::kNone);
  EXPECT_EQ(testing::take_events(core_, peer).size(), 1U);
  // A receiver name without its NUL, a forged handle, an answer kind out
  // of range: refused, as protocol errors, with no reply.
  wire::Request bad = request(wire::Op::kSendMessage);
  std::memset(bad.name, 'x', sizeof(bad.name));
  bad.handle = testing::free_handle(core_, os_);
  EXPECT_EQ(handle(bad), Error::kInvalid);
  wire::Request forged = request(wire::Op::kGetEvent);
  forged.handle = 12345;
  EXPECT_EQ(handle(forged), Error::kBadHandle);
  wire::Request answer_kind = request(wire::Op::kSendAnswer, "", 5);
  EXPECT_EQ(handle(answer_kind), Error::kInvalid);
  EXPECT_EQ(handle(request(wire::Op::kNop)), Error::kNone);
  EXPECT_TRUE(replies_.empty());
}

TEST_F(RequestsTest, StatsAreAReplyWithThePoolAndTheCallersClaim) {
  EXPECT_EQ(handle(request(wire::Op::kGetStats)), Error::kNone);
  ASSERT_EQ(replies_.size(), 1U);
  const wire::Message &m = replies_[0].second.message;
  EXPECT_EQ(m.word[wire::kStatsPoolBuffers], core_.pool().size());
  EXPECT_EQ(m.word[wire::kStatsClaimBuffers], 8U);
  EXPECT_EQ(m.word[wire::kStatsProcesses], 1U);
}

TEST_F(RequestsTest, CreateAndStartAskTheLinuxSideToSpawnWithTheWaiter) {
  uint32_t child = create_child("c");
  linux_.spawn_result = kAnswerLater;
  EXPECT_EQ(handle(request(wire::Op::kStartProcess, "c")), Error::kNone);
  EXPECT_TRUE(replies_.empty());  // answered when the launch comes back
  EXPECT_EQ(linux_.calls, std::vector<std::string>{"spawn " + std::to_string(child)});
  EXPECT_EQ(linux_.last_waiter.id, os_);
  EXPECT_EQ(linux_.last_waiter.serial, 7U);
  EXPECT_EQ(linux_.last_waiter.seq, seq_);
}

TEST_F(RequestsTest, ASpawnThatFailsIsTheStartsAnswer) {
  create_child("c");
  linux_.spawn_result = -ENOENT;
  EXPECT_EQ(control(request(wire::Op::kStartProcess, "c")), -ENOENT);
}

// The reply says which step of the start failed, so that exec's EACCES is
// not read as a refusal; a refused start says no step ran.
TEST_F(RequestsTest, AFailedStartsReplyNamesTheStepThatFailed) {
  create_child("c");
  linux_.spawn_result = -EACCES;
  linux_.spawn_step = wire::kStartStepExec;
  ASSERT_EQ(handle(request(wire::Op::kStartProcess, "c")), Error::kNone);
  ASSERT_EQ(replies_.size(), 1U);
  EXPECT_EQ(replies_.back().second.result, -EACCES);
  EXPECT_EQ(replies_.back().second.message.word[wire::kStartFailedStep], wire::kStartStepExec);
  replies_.clear();
  // Refused before any step: no such child.
  ASSERT_EQ(handle(request(wire::Op::kStartProcess, "nobody")), Error::kNone);
  ASSERT_EQ(replies_.size(), 1U);
  EXPECT_EQ(replies_.back().second.result, -ESRCH);
  EXPECT_EQ(replies_.back().second.message.word[wire::kStartFailedStep], wire::kStartStepNone);
}

TEST_F(RequestsTest, WhileLaunchingOnlyGetAndRemoveAreServed) {
  uint32_t child = create_child("c");
  linux_.launching_id = child;
  EXPECT_EQ(control(request(wire::Op::kStartProcess, "c")), -EBUSY);
  EXPECT_EQ(control(request(wire::Op::kModifyProcess, "c", wire::kModifyClaims)), -EBUSY);
  EXPECT_EQ(control(request(wire::Op::kStopProcess, "c")), -EBUSY);
  EXPECT_EQ(control(request(wire::Op::kGetProcess, "c")), 0);
  EXPECT_EQ(control(request(wire::Op::kRemoveProcess, "c")), 0);
  EXPECT_EQ(linux_.calls, std::vector<std::string>{"end " + std::to_string(child)});
  EXPECT_FALSE(core_.child(os_, "c").ok());
}

TEST_F(RequestsTest, StopAsksTheLinuxSideToStopTheSubtree) {
  uint32_t child = create_child("c");
  ASSERT_EQ(control(request(wire::Op::kStartProcess, "c")), 0);
  core_.program_started(child, 4242);
  wire::Request stop = request(wire::Op::kStopProcess, "c");
  stop.handle = testing::free_handle(core_, os_);
  EXPECT_EQ(control(stop), 0);
  EXPECT_EQ(linux_.calls.back(), "stop " + std::to_string(child));
  EXPECT_EQ(core_.processes().at(child).stop, StopState::kStopping);
}

TEST_F(RequestsTest, GetProcessFillsTheReplyWithTheEntry) {
  create_child("c");
  EXPECT_EQ(handle(request(wire::Op::kGetProcess, "c")), Error::kNone);
  ASSERT_EQ(replies_.size(), 1U);
  EXPECT_EQ(replies_[0].second.result, 0);
  EXPECT_STREQ(replies_[0].second.sender, "c");
  EXPECT_EQ(replies_[0].second.extra & 0xffffffffU, 4096U);  // the default data area
}

TEST_F(RequestsTest, ListChildrenPagesAndCountsThem) {
  for (int i = 0; i < 3; ++i) create_child("c" + std::to_string(i));
  EXPECT_EQ(handle(request(wire::Op::kListChildren, "", 1)), Error::kNone);
  ASSERT_EQ(replies_.size(), 2U);
  EXPECT_EQ(replies_[0].second.handle, 3U);
  EXPECT_EQ(replies_[0].second.reserved0, 1U);
  EXPECT_STREQ(replies_[1].second.sender, "c2");
  replies_.clear();
  EXPECT_EQ(handle(request(wire::Op::kListChildren, "", 3)), Error::kNone);
  ASSERT_EQ(replies_.size(), 1U);
  EXPECT_EQ(replies_[0].second.reserved0, UINT32_MAX);
}

TEST_F(RequestsTest, StagedBytesOverTheLimitMakeTheNextOpTooBigAndAreDropped) {
  config_.limits.connection_staged_bytes = 64;
  stage(program_bytes("/bin/" + std::string(80, 'x')));
  EXPECT_EQ(control(request(wire::Op::kCreateProcess, "c")), -E2BIG);
  // The op took them: the next create starts from nothing (an empty
  // program is malformed, not too big).
  EXPECT_EQ(control(request(wire::Op::kCreateProcess, "c")), -EINVAL);
  EXPECT_FALSE(core_.child(os_, "c").ok());
}

TEST_F(RequestsTest, ARefusedOpStillTakesWhatWasStaged) {
  stage(program_bytes("/bin/true"));
  EXPECT_EQ(control(request(wire::Op::kStartProcess, "nobody")), -ESRCH);
  EXPECT_EQ(control(request(wire::Op::kCreateProcess, "c")), -EINVAL);
}

TEST_F(RequestsTest, SwapBeginsInTheCoreAndStartsTheNewProgramOnTheLinuxSide) {
  uint32_t child = create_child("c");
  ASSERT_EQ(control(request(wire::Op::kStartProcess, "c")), 0);
  core_.program_started(child, 4242);
  core_.attach_run(child);
  stage(program_bytes("/bin/os2"));
  wire::Request swap = request(wire::Op::kSwapProcess, "c");
  swap.handle = testing::free_handle(core_, os_);
  EXPECT_EQ(control(swap), 0);
  uint32_t cand = core_.processes().at(child).swap_candidate;
  ASSERT_NE(cand, kNone);
  EXPECT_EQ(core_.processes().at(cand).program.path, "/bin/os2");
  EXPECT_EQ(linux_.calls.back(), "swap " + std::to_string(os_) + " " + std::to_string(child) + " " +
                                     std::to_string(cand));
}

TEST_F(RequestsTest, ASwapsNewProgramRunsAsTheOsOwnerAndNoOther) {
  uint32_t child = create_child("c");
  ASSERT_EQ(control(request(wire::Op::kStartProcess, "c")), 0);
  core_.program_started(child, 4242);
  core_.attach_run(child);
  wire::ProgramHeader h{0, 0, 0, 0};  // root's
  stage(std::string(reinterpret_cast<const char *>(&h), sizeof(h)) + "/bin/os2\0\0"s);
  wire::Request swap = request(wire::Op::kSwapProcess, "c");
  swap.handle = testing::free_handle(core_, os_);
  EXPECT_EQ(control(swap), -EPERM);
  EXPECT_EQ(core_.processes().at(child).swap_candidate, kNone);
  EXPECT_EQ(linux_.calls.back(), "spawn " + std::to_string(child));  // nothing after the start
}

TEST_F(RequestsTest, SwapReadyIsAnsweredNowOnlyWhenRefused) {
  linux_.ready_result = 0;
  EXPECT_EQ(handle(request(wire::Op::kSwapReady)), Error::kNone);
  EXPECT_TRUE(replies_.empty());
  linux_.ready_result = -EINVAL;
  EXPECT_EQ(control(request(wire::Op::kSwapReady)), -EINVAL);
}

TEST_F(RequestsTest, CreateExternalNamesTheEntryThenHasItsFilesOpened) {
  stage("/tmp/disk\0\0"s);
  wire::Request r =
      request(wire::Op::kCreateExternal, "d", static_cast<int64_t>(wire::DeviceKind::kDisk));
  EXPECT_EQ(control(r), 0);
  EXPECT_EQ(linux_.calls.back(), "open " + std::to_string(os_) + " d /tmp/disk");
  EXPECT_EQ(core_.own_device(os_, "d").value(), linux_.last_device);
}

// Decision 73: a namer that restarted names its devices again; the same
// parameters keep the device it has, anything else is -EEXIST (never its
// devices claim used up, which naming again would not take).
TEST_F(RequestsTest, NamingItsOwnDeviceAgainAsBeforeKeepsItOtherwiseTheNameIsTaken) {
  auto external = [&](const std::string &name, wire::DeviceKind kind, const std::string &paths,
                      uint64_t block_size = 0) {
    stage(paths);
    wire::Request r = request(wire::Op::kCreateExternal, name, static_cast<int64_t>(kind));
    r.message.word[wire::kDeviceBlockSize] = block_size;
    return control(r);
  };
  using wire::DeviceKind;
  ASSERT_EQ(external("d", DeviceKind::kDisk, "/tmp/disk\0\0"s), 0);
  uint32_t d = core_.own_device(os_, "d").value();
  ASSERT_EQ(external("c", DeviceKind::kClock, "\0\0"s), 0);
  ASSERT_EQ(core_.processes().at(os_).account.lent().devices, 2U);  // the whole claim
  linux_.calls.clear();
  // As before (the block size 0 is 512, as it was): kept, nothing opened.
  EXPECT_EQ(external("d", DeviceKind::kDisk, "/tmp/disk\0\0"s), 0);
  EXPECT_EQ(external("d", DeviceKind::kDisk, "/tmp/disk\0\0"s, 512), 0);
  EXPECT_EQ(external("c", DeviceKind::kClock, "\0\0"s), 0);
  EXPECT_TRUE(linux_.calls.empty());
  EXPECT_EQ(core_.own_device(os_, "d").value(), d);
  EXPECT_EQ(core_.processes().at(os_).account.lent().devices, 2U);
  // Otherwise: the name is taken (and the device stays as it was).
  EXPECT_EQ(external("d", DeviceKind::kDisk, "/tmp/other\0\0"s), -EEXIST);
  EXPECT_EQ(external("d", DeviceKind::kDisk, "/tmp/disk\0\0"s, 4096), -EEXIST);
  EXPECT_EQ(external("d", DeviceKind::kNull, "\0\0"s), -EEXIST);
  EXPECT_EQ(external("c", DeviceKind::kNull, "\0\0"s), -EEXIST);
  EXPECT_EQ(core_.own_device(os_, "d").value(), d);
  // Names of others: a process (its own), the root's device, another's.
  core_.create_device(kNone, "rootdev", DeviceKind::kNull);
  EXPECT_EQ(external("os", DeviceKind::kClock, "\0\0"s), -EEXIST);
  EXPECT_EQ(external("rootdev", DeviceKind::kNull, "\0\0"s), -EEXIST);
  uint32_t other = core_.attach("other", Claims{8, 0, 0, 1, 0}, 1000, 1000, 10).value();
  stage("\0\0"s);
  EXPECT_EQ(
      handle(request(wire::Op::kCreateExternal, "c", static_cast<int64_t>(DeviceKind::kClock)),
             other),
      Error::kNone);
  EXPECT_EQ(answer(), -EEXIST);
  EXPECT_TRUE(linux_.calls.empty());
  // A free name: the claim used up is what refuses it.
  EXPECT_EQ(external("e", DeviceKind::kClock, "\0\0"s), -ENOBUFS);
}

TEST_F(RequestsTest, ADeviceWhoseFilesCannotBeOpenedIsNotNamed) {
  linux_.open_result = -EACCES;
  stage("/tmp/disk\0\0"s);
  wire::Request r =
      request(wire::Op::kCreateExternal, "d", static_cast<int64_t>(wire::DeviceKind::kDisk));
  EXPECT_EQ(control(r), -EACCES);
  EXPECT_FALSE(core_.own_device(os_, "d").ok());
  EXPECT_FALSE(core_.find_device("d").ok());
}

TEST_F(RequestsTest, MalformedDeviceRequestsAreRefusedBeforeAnythingIsNamed) {
  auto external = [&](int64_t kind, const std::string &paths, uint64_t block_size, uint64_t flags) {
    stage(paths);
    wire::Request r = request(wire::Op::kCreateExternal, "d", kind);
    r.message.word[wire::kDeviceBlockSize] = block_size;
    r.message.word[wire::kDeviceFlags] = flags;
    return control(r);
  };
  auto disk = static_cast<int64_t>(wire::DeviceKind::kDisk);
  auto null = static_cast<int64_t>(wire::DeviceKind::kNull);
  EXPECT_EQ(external(0, "/tmp/disk\0\0"s, 0, 0), -EINVAL);        // no such kind
  EXPECT_EQ(external(disk, ""s, 0, 0), -EINVAL);                  // a disk needs a file
  EXPECT_EQ(external(disk, "/tmp/disk\0"s, 0, 0), -EINVAL);       // one NUL short
  EXPECT_EQ(external(disk, "/tmp/disk\0in\0"s, 0, 0), -EINVAL);   // a disk has no input
  EXPECT_EQ(external(disk, "/tmp/disk\0\0"s, 3000, 0), -EINVAL);  // not a power of two
  EXPECT_EQ(external(disk, "/tmp/disk\0\0"s, 0, 2), -EINVAL);     // an unknown flag
  EXPECT_EQ(external(null, "/tmp/x\0\0"s, 0, 0), -EINVAL);        // built in: no file
  EXPECT_TRUE(linux_.calls.empty());
  EXPECT_FALSE(core_.find_device("d").ok());
}

TEST_F(RequestsTest, ActingForTheRootNeedsAnOperator) {
  EXPECT_EQ(control(request(wire::Op::kActFor, "", wire::kActForRoot)), -EACCES);
  config_.operator_uids = {1000};
  EXPECT_EQ(control(request(wire::Op::kActFor, "", wire::kActForRoot)), 0);
  EXPECT_EQ(session_.acting, kNone);
  // A reload that ends its operator status ends its authority.
  config_.operator_uids = {};
  EXPECT_EQ(control(request(wire::Op::kCreateProcess, "c")), -EACCES);
  EXPECT_EQ(control(request(wire::Op::kActFor, "", wire::kActForSelf)), 0);
  EXPECT_EQ(session_.acting, Session::kActSelf);
  EXPECT_EQ(control(request(wire::Op::kActFor, "", 7)), -EINVAL);
}

TEST_F(RequestsTest, ActingForAnotherUidsProcessIsRefused) {
  core_.attach("stranger", Claims{2, 1, 0}, 2000, 2000, 11);
  EXPECT_EQ(control(request(wire::Op::kActFor, "stranger", wire::kActForProcess)), -EACCES);
  EXPECT_EQ(control(request(wire::Op::kActFor, "nobody", wire::kActForProcess)), -ESRCH);
  core_.attach("mine", Claims{2, 1, 0}, 1000, 1000, 12);
  EXPECT_EQ(control(request(wire::Op::kActFor, "mine", wire::kActForProcess)), 0);
}

TEST_F(RequestsTest, TheRootsSocketChildrenAreNobodysToControl) {
  config_.operator_uids = {1000};
  ASSERT_EQ(control(request(wire::Op::kActFor, "", wire::kActForRoot)), 0);
  core_.attach("other", Claims{2, 1, 0}, 1000, 1000, 12);
  EXPECT_EQ(control(request(wire::Op::kStopProcess, "other")), -EPERM);
  EXPECT_EQ(control(request(wire::Op::kRemoveProcess, "other")), -EPERM);
  EXPECT_EQ(control(request(wire::Op::kGetProcess, "other")), 0);
  EXPECT_TRUE(linux_.calls.empty());
}

// Every process-control op that names an entry refuses a name field
// without its NUL the same way, before it looks at anything else.
class UnterminatedName : public RequestsTest, public ::testing::WithParamInterface<wire::Op> {};

TEST_P(UnterminatedName, IsInvalid) {
  wire::Request r = request(GetParam(), "", wire::kActForProcess);
  std::memset(r.name, 'x', sizeof(r.name));
  EXPECT_EQ(control(r), -EINVAL);
  EXPECT_TRUE(linux_.calls.empty());
}

INSTANTIATE_TEST_SUITE_P(EveryNamingOp, UnterminatedName,
                         ::testing::Values(wire::Op::kCreateProcess, wire::Op::kStartProcess,
                                           wire::Op::kStopProcess, wire::Op::kModifyProcess,
                                           wire::Op::kRemoveProcess, wire::Op::kGetProcess,
                                           wire::Op::kCreateExternal, wire::Op::kRemoveExternal,
                                           wire::Op::kReserveProcess, wire::Op::kReleaseProcess,
                                           wire::Op::kSwapProcess, wire::Op::kActFor),
                         [](const ::testing::TestParamInfo<wire::Op> &info) {
                           return "Op" + std::to_string(static_cast<uint32_t>(info.param));
                         });

}  // namespace
}  // namespace nucleus::daemon

namespace nucleus::daemon::testing {
namespace {

// A refused request's reply says why beyond its errno (wire::Event::cause):
// the claim that was short with its size, the rule, the step and its path;
// a request that succeeds says none, and a cause is not left over for the
// next refusal.
class RequestsCauseTest : public RequestsTest {
 protected:
  // The reply to `r`: its result, and its cause fields.
  wire::Event reply(const wire::Request &r) {
    EXPECT_EQ(handle(r), Error::kNone);
    EXPECT_EQ(replies_.size(), 1U);
    wire::Event e = replies_.empty() ? wire::Event{} : replies_.back().second;
    replies_.clear();
    return e;
  }
};

TEST_F(RequestsCauseTest, AClaimUsedUpSaysWhichAndItsSize) {
  // os has processes 6: a child asking for 6 more costs 7.
  stage(program_bytes("/bin/true"));
  wire::Request r = request(wire::Op::kCreateProcess, "big");
  r.message.word[wire::kClaimProcesses] = 6;
  wire::Event e = reply(r);
  EXPECT_EQ(e.result, -ENOBUFS);
  EXPECT_EQ(e.cause, wire::kCauseClaimProcesses);
  EXPECT_EQ(e.cause_value, 6U);
  // Buffers: os holds 8.
  stage(program_bytes("/bin/true"));
  r = request(wire::Op::kCreateProcess, "big");
  r.message.word[wire::kClaimBuffers] = 9;
  e = reply(r);
  EXPECT_EQ(e.cause, wire::kCauseClaimBuffers);
  EXPECT_EQ(e.cause_value, 8U);
  // Devices: os has 2.
  for (const char *name : {"n1", "n2"}) {
    EXPECT_EQ(control(request(wire::Op::kCreateExternal, name, 4)), 0);
  }
  e = reply(request(wire::Op::kCreateExternal, "n3", 4));
  EXPECT_EQ(e.result, -ENOBUFS);
  EXPECT_EQ(e.cause, wire::kCauseClaimDevices);
  EXPECT_EQ(e.cause_value, 2U);
  // A success says none.
  stage(program_bytes("/bin/true"));
  e = reply(request(wire::Op::kCreateProcess, "ok"));
  EXPECT_EQ(e.result, 0);
  EXPECT_EQ(e.cause, wire::kCauseNone);
}

TEST_F(RequestsCauseTest, RulesNamesAndDevicesSayWhich) {
  wire::Event e = reply(request(wire::Op::kStartProcess, "ghost"));
  EXPECT_EQ(e.result, -ESRCH);
  EXPECT_EQ(e.cause, wire::kCauseNotChild);
  e = reply(request(wire::Op::kActFor, "", wire::kActForRoot));
  EXPECT_EQ(e.result, -EACCES);
  EXPECT_EQ(e.cause, wire::kCauseNotOperator);  // uid 1000 is not an operator
  stage(program_bytes("/bin/true", 0, 0));
  e = reply(request(wire::Op::kCreateProcess, "root"));
  EXPECT_EQ(e.result, -EPERM);
  EXPECT_EQ(e.cause, wire::kCauseOwnerRule);
  EXPECT_EQ(e.cause_value, 0U);
  create_child("c");
  stage(program_bytes("/bin/true"));
  e = reply(request(wire::Op::kCreateProcess, "c"));
  EXPECT_EQ(e.result, -EEXIST);
  EXPECT_EQ(e.cause, wire::kCauseNameTaken);
  EXPECT_EQ(control(request(wire::Op::kCreateExternal, "nul", 4)), 0);
  e = reply(request(wire::Op::kReleaseProcess, "nul"));
  EXPECT_EQ(e.result, -EPERM);
  EXPECT_EQ(e.cause, wire::kCauseNotReserver);
  e = reply(request(wire::Op::kReserveProcess, "none"));
  EXPECT_EQ(e.cause, wire::kCauseNotDevice);
}

TEST_F(RequestsCauseTest, AFailedStepSaysItsErrnoAndPath) {
  create_child("c");
  linux_.spawn_result = -EACCES;
  linux_.spawn_step = wire::kStartStepExec;
  wire::Event e = reply(request(wire::Op::kStartProcess, "c"));
  EXPECT_EQ(e.result, -EACCES);
  EXPECT_EQ(e.cause, wire::kCauseStartStep);
  EXPECT_EQ(e.cause_errno, EACCES);
  EXPECT_EQ(e.cause_value, wire::kStartStepExec);
  EXPECT_STREQ(reinterpret_cast<const char *>(&e.message.word[wire::kStartFailedPath]),
               "/bin/true");
  // A start of one that runs: its state.
  linux_.spawn_result = 0;
  EXPECT_EQ(control(request(wire::Op::kStartProcess, "c")), 0);
  core_.program_started(core_.child(os_, "c").value(), 4242);
  e = reply(request(wire::Op::kStartProcess, "c"));
  EXPECT_EQ(e.result, -EALREADY);
  EXPECT_EQ(e.cause, wire::kCauseState);
  EXPECT_EQ(e.cause_value, static_cast<uint64_t>(wire::ProcessState::kRunning));
}

}  // namespace
}  // namespace nucleus::daemon::testing

namespace nucleus::daemon {
namespace {

using testing::RequestsTest;

// kPollDescriptor: kPollOpen is replied with what Connections said (the
// descriptor went on the socket, or why not); kPollRing is not replied; any
// other arg is malformed (a protocol error, nothing asked of Connections).
TEST_F(RequestsTest, PollDescriptorOpenIsReplied) {
  EXPECT_EQ(control(request(wire::Op::kPollDescriptor, "", wire::kPollOpen)), 0);
  linux_.poll_result = -EEXIST;
  EXPECT_EQ(control(request(wire::Op::kPollDescriptor, "", wire::kPollOpen)), -EEXIST);
  EXPECT_EQ(linux_.calls, (std::vector<std::string>{"poll " + std::to_string(os_),
                                                    "poll " + std::to_string(os_)}));
}

TEST_F(RequestsTest, PollDescriptorRingIsNotReplied) {
  EXPECT_EQ(handle(request(wire::Op::kPollDescriptor, "", wire::kPollRing)), Error::kNone);
  EXPECT_TRUE(replies_.empty());
  EXPECT_EQ(linux_.calls, (std::vector<std::string>{"ring " + std::to_string(os_)}));
}

TEST_F(RequestsTest, PollDescriptorWithAnUnknownArgIsMalformed) {
  for (int64_t arg : {int64_t{2}, int64_t{-1}, INT64_MAX}) {
    EXPECT_EQ(handle(request(wire::Op::kPollDescriptor, "", arg)), Error::kInvalid) << arg;
  }
  EXPECT_TRUE(replies_.empty());
  EXPECT_TRUE(linux_.calls.empty());
}

}  // namespace
}  // namespace nucleus::daemon
