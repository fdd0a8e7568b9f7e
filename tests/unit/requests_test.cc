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
  EXPECT_EQ(replies_[0].second.index, 1U);
  EXPECT_STREQ(replies_[1].second.sender, "c2");
  replies_.clear();
  EXPECT_EQ(handle(request(wire::Op::kListChildren, "", 3)), Error::kNone);
  ASSERT_EQ(replies_.size(), 1U);
  EXPECT_EQ(replies_[0].second.index, UINT32_MAX);
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

// ---- data with a message and regret (docs/data-and-regret.md) --------------

class LendRequestsTest : public RequestsTest {
 protected:
  LendRequestsTest() {
    peer_ = core_.attach("peer", Claims{4, 0, 0, 0, 0}, 1000, 1000, 10).value();
    linux_.areas[os_] = std::vector<uint8_t>(4096, 0);
    linux_.areas[peer_] = std::vector<uint8_t>(1024, 0);
    for (size_t i = 0; i < 4096; ++i) linux_.areas[os_][i] = static_cast<uint8_t>(i);
  }
  // A send of os's with a lend of [offset, offset + bytes) and `rights`.
  wire::Request send(uint32_t offset, uint32_t bytes, int64_t rights, const char *to = "peer") {
    wire::Request r = request(wire::Op::kSendMessage, to, rights);
    r.handle = testing::free_handle(core_, os_);
    r.lend_offset = offset;
    r.lend_bytes = bytes;
    return r;
  }
  // os sends with the lend; peer takes it. Returns the handle.
  uint64_t lent(uint32_t offset, uint32_t bytes, int64_t rights) {
    wire::Request r = send(offset, bytes, rights);
    EXPECT_EQ(handle(r), Error::kNone);
    testing::take_events(core_, peer_);
    EXPECT_EQ(core_.get_event(peer_, r.handle), Error::kNone);
    return r.handle;
  }
  int32_t copy(uint64_t h, wire::CopyDirection d, uint64_t at, uint64_t own_at, uint64_t bytes) {
    wire::Request r = request(wire::Op::kCopyData, "", d);
    r.handle = h;
    r.message.word[wire::kCopyLendOffset] = at;
    r.message.word[wire::kCopyOwnOffset] = own_at;
    r.message.word[wire::kCopyBytes] = bytes;
    EXPECT_EQ(handle(r, peer_), Error::kNone);  // replied, never a protocol error
    return answer();
  }
  uint32_t peer_ = kNone;
};

TEST_F(LendRequestsTest, ASendWithoutALendIgnoresTheLendFields) {
  wire::Request r = send(UINT32_MAX, UINT32_MAX, wire::kLendNone);
  EXPECT_EQ(handle(r), Error::kNone);
  auto in = testing::take_events(core_, peer_);
  ASSERT_EQ(in.size(), 1U);
  EXPECT_EQ(in[0].extra, 0U);
}

TEST_F(LendRequestsTest, ALendMustLieInTheSendersDataAreaWithKnownRights) {
  EXPECT_EQ(handle(send(0, 4096, wire::kLendRead)), Error::kNone);   // the whole area
  EXPECT_EQ(handle(send(4095, 1, wire::kLendRead)), Error::kNone);   // the last byte
  EXPECT_EQ(handle(send(4096, 1, wire::kLendRead)), Error::kFault);  // one past
  EXPECT_EQ(handle(send(1, 4096, wire::kLendRead)), Error::kFault);
  EXPECT_EQ(handle(send(UINT32_MAX, UINT32_MAX, wire::kLendRead)), Error::kFault);  // no overflow
  EXPECT_EQ(handle(send(0, 8, 4)), Error::kInvalid);                                // unknown right
  EXPECT_EQ(handle(send(0, 8, -1)), Error::kInvalid);
  // lend_bytes 0 lends nothing, whatever the offset says.
  EXPECT_EQ(handle(send(UINT32_MAX, 0, wire::kLendRead)), Error::kNone);
  auto in = testing::take_events(core_, peer_);
  ASSERT_EQ(in.size(), 3U);
  EXPECT_EQ(in[0].extra, wire::lend_extra(4096, wire::kLendRead));
  EXPECT_EQ(in[2].extra, 0U);
  // A refused send changed nothing: three buffers out.
  EXPECT_EQ(core_.stats(os_).claim_used, 3U);
}

// What a connection's copies moved this turn: Connections takes no more of
// its requests in the turn once it reaches wire::kMaxCopyBytes. A refused
// copy moved nothing.
TEST_F(LendRequestsTest, ACopyCountsItsBytesForTheTurn) {
  uint64_t h = lent(100, 200, wire::kLendRead | wire::kLendWrite);
  session_.copied_this_turn = 0;
  EXPECT_EQ(copy(h, wire::kCopyFrom, 0, 0, 200), 0);
  EXPECT_EQ(copy(h, wire::kCopyTo, 10, 0, 50), 0);
  EXPECT_EQ(session_.copied_this_turn, 250U);
  EXPECT_EQ(copy(h, wire::kCopyFrom, 0, 0, 201), -EFAULT);
  EXPECT_EQ(session_.copied_this_turn, 250U);
}

TEST_F(LendRequestsTest, ASenderWithNoDataAreaCannotLend) {
  linux_.areas.erase(os_);
  EXPECT_EQ(handle(send(0, 1, wire::kLendRead)), Error::kFault);
}

TEST_F(LendRequestsTest, CopyFromAndToMoveTheBytesBetweenTheTwoAreas) {
  uint64_t h = lent(100, 200, wire::kLendRead | wire::kLendWrite);
  EXPECT_EQ(copy(h, wire::kCopyFrom, 10, 5, 50), 0);
  for (size_t i = 0; i < 50; ++i) {
    ASSERT_EQ(linux_.areas[peer_][5 + i], static_cast<uint8_t>(110 + i));
  }
  std::fill(linux_.areas[peer_].begin(), linux_.areas[peer_].end(), 0xee);
  EXPECT_EQ(copy(h, wire::kCopyTo, 0, 0, 200), 0);  // the whole lend
  EXPECT_EQ(linux_.areas[os_][99], 99);             // not a byte before it
  EXPECT_EQ(linux_.areas[os_][100], 0xee);
  EXPECT_EQ(linux_.areas[os_][299], 0xee);
  EXPECT_EQ(linux_.areas[os_][300], static_cast<uint8_t>(300));  // nor after it
  EXPECT_EQ(copy(h, wire::kCopyFrom, 200, 0, 0), 0);             // nothing, at the end: fine
}

TEST_F(LendRequestsTest, EachRefusedCopyNamesItsCauseAndMovesNothing) {
  uint64_t ro = lent(0, 64, wire::kLendRead);
  std::vector<uint8_t> before = linux_.areas[os_];
  EXPECT_EQ(copy(ro, wire::kCopyTo, 0, 0, 1), -EACCES);
  EXPECT_EQ(copy(ro, wire::kCopyFrom, 0, 0, 65), -EFAULT);  // past the lend
  EXPECT_EQ(copy(ro, wire::kCopyFrom, 65, 0, 0), -EFAULT);
  EXPECT_EQ(copy(ro, wire::kCopyFrom, UINT64_MAX, 0, 2), -EFAULT);  // overflow-safe
  EXPECT_EQ(copy(ro, wire::kCopyFrom, 1, UINT64_MAX, 2), -ERANGE);
  EXPECT_EQ(copy(ro, wire::kCopyFrom, 0, 1000, 25), -ERANGE);  // past its own area (1024)
  EXPECT_EQ(copy(ro, wire::kCopyFrom, 0, 1024, 0), 0);
  EXPECT_EQ(copy(ro, wire::kCopyFrom, 0, 0, wire::kMaxCopyBytes + 1), -EMSGSIZE);
  EXPECT_EQ(copy(ro, static_cast<wire::CopyDirection>(2), 0, 0, 1), -EINVAL);
  EXPECT_EQ(copy(ro + 1, wire::kCopyFrom, 0, 0, 1), -EBADF);  // forged
  uint64_t none = lent(0, 0, wire::kLendRead);
  EXPECT_EQ(copy(none, wire::kCopyFrom, 0, 0, 0), -ENODATA);
  EXPECT_EQ(linux_.areas[os_], before);
  EXPECT_EQ(core_.processes().at(peer_).protocol_errors, 0U);
}

TEST_F(LendRequestsTest, ACopyFromASenderWhoseChannelIsGoneIsStale) {
  uint64_t h = lent(0, 64, wire::kLendRead);
  linux_.areas.erase(os_);  // its connection ended; the Core has not heard yet
  EXPECT_EQ(copy(h, wire::kCopyFrom, 0, 0, 8), -ESTALE);
  linux_.areas[os_] = std::vector<uint8_t>(32, 0);  // a run with a smaller area
  EXPECT_EQ(copy(h, wire::kCopyFrom, 0, 0, 8), -ESTALE);
  core_.detach(os_);
  EXPECT_EQ(copy(h, wire::kCopyFrom, 0, 0, 8), -ESTALE);
}

// An answer that carries data (kSendAnswer with lend_bytes): peer's own
// [lend_offset, +lend_bytes) to the start of the lent range, then the
// answer, whose event says how many bytes came.
TEST_F(LendRequestsTest, AnAnswerWithDataCopiesToTheStartOfTheLendAndSaysHowMany) {
  uint64_t h = lent(100, 200, wire::kLendRead | wire::kLendWrite);
  std::fill(linux_.areas[peer_].begin(), linux_.areas[peer_].end(), 0xab);
  session_.copied_this_turn = 0;
  wire::Request a = request(wire::Op::kSendAnswer, "", wire::kResultNormal);
  a.handle = h;
  a.lend_offset = 1000;
  a.lend_bytes = 24;
  EXPECT_EQ(handle(a, peer_), Error::kNone);
  EXPECT_EQ(linux_.areas[os_][99], 99);  // not a byte before the lent range
  for (size_t i = 100; i < 124; ++i) ASSERT_EQ(linux_.areas[os_][i], 0xab) << i;
  EXPECT_EQ(linux_.areas[os_][124], 124);  // nor after the bytes copied
  EXPECT_EQ(session_.copied_this_turn, 24U);
  auto answers = testing::take_events(core_, os_);
  ASSERT_EQ(answers.size(), 1U);
  EXPECT_EQ(answers[0].kind, static_cast<uint32_t>(wire::EventKind::kAnswer));
  EXPECT_EQ(answers[0].copied, 24U);
  // The buffer's next answer, without data, says 0.
  uint64_t again = lent(0, 8, wire::kLendWrite);
  wire::Request plain = request(wire::Op::kSendAnswer, "", wire::kResultNormal);
  plain.handle = again;
  EXPECT_EQ(handle(plain, peer_), Error::kNone);
  answers = testing::take_events(core_, os_);
  ASSERT_EQ(answers.size(), 1U);
  EXPECT_EQ(answers[0].copied, 0U);
}

// What the library checks before it pushes such an answer, nucleusd checks
// again: a refusal is a protocol error (kError) and the message is still
// held, unanswered; nothing moved.
TEST_F(LendRequestsTest, AnAnswerWhoseCopyIsRefusedIsNotGiven) {
  uint64_t ro = lent(0, 64, wire::kLendRead);
  uint64_t rw = lent(64, 64, wire::kLendRead | wire::kLendWrite);
  uint64_t none = lent(0, 0, wire::kLendRead);
  std::vector<uint8_t> before = linux_.areas[os_];
  auto answer_with = [&](uint64_t h, uint32_t own_at, uint32_t bytes) {
    wire::Request a = request(wire::Op::kSendAnswer, "", wire::kResultNormal);
    a.handle = h;
    a.lend_offset = own_at;
    a.lend_bytes = bytes;
    return handle(a, peer_);
  };
  EXPECT_EQ(answer_with(ro, 0, 8), Error::kDenied);          // no write right
  EXPECT_EQ(answer_with(rw, 0, 65), Error::kFault);          // past the lent range
  EXPECT_EQ(answer_with(rw, 1000, 25), Error::kOutOfRange);  // past its own area (1024)
  EXPECT_EQ(answer_with(rw, UINT32_MAX, 8), Error::kOutOfRange);
  EXPECT_EQ(answer_with(none, 0, 1), Error::kNoLend);
  EXPECT_EQ(answer_with(rw, 0, UINT32_MAX), Error::kTooMuch);
  EXPECT_EQ(linux_.areas[os_], before);
  EXPECT_TRUE(testing::take_events(core_, os_).empty()) << "an answer was given";
  // Each is still held: answered now, without data.
  for (uint64_t h : {ro, rw, none}) {
    wire::Request a = request(wire::Op::kSendAnswer, "", wire::kResultNormal);
    a.handle = h;
    EXPECT_EQ(handle(a, peer_), Error::kNone);
  }
  EXPECT_EQ(testing::take_events(core_, os_).size(), 3U);
}

// A lend whose sender's run is gone takes nothing: the answer still goes
// (the Core gives it to whoever holds the buffer now), saying 0 bytes.
TEST_F(LendRequestsTest, AnAnswerWithDataToAnEndedLendGoesWithoutIt) {
  uint64_t h = lent(0, 64, wire::kLendRead | wire::kLendWrite);
  linux_.areas[os_] = std::vector<uint8_t>(32, 0);  // a run with a smaller area
  wire::Request a = request(wire::Op::kSendAnswer, "", wire::kResultNormal);
  a.handle = h;
  a.lend_bytes = 16;
  EXPECT_EQ(handle(a, peer_), Error::kNone);
  EXPECT_EQ(linux_.areas[os_], std::vector<uint8_t>(32, 0));
  auto answers = testing::take_events(core_, os_);
  ASSERT_EQ(answers.size(), 1U);
  EXPECT_EQ(answers[0].copied, 0U);
}

// kReceiveWindow: a range of the caller's own area, replied; naming one
// frees the window (Connections::flush copies into it; the integration
// tests see that).
TEST_F(LendRequestsTest, AReceiveWindowLiesInTheCallersAreaAndIsReplied) {
  auto window = [&](uint32_t offset, uint32_t bytes) {
    wire::Request r = request(wire::Op::kReceiveWindow);
    r.lend_offset = offset;
    r.lend_bytes = bytes;
    EXPECT_EQ(handle(r, peer_), Error::kNone);  // replied, never a protocol error
    return answer();
  };
  session_.window_holder = 77;
  EXPECT_EQ(window(24, 1000), 0);  // to the end of its area (1024)
  EXPECT_EQ(session_.window_offset, 24U);
  EXPECT_EQ(session_.window_bytes, 1000U);
  EXPECT_EQ(session_.window_holder, 0U);
  EXPECT_EQ(window(25, 1000), -ERANGE);
  EXPECT_EQ(window(UINT32_MAX, 1), -ERANGE);
  EXPECT_EQ(window(0, UINT32_MAX), -EMSGSIZE);
  EXPECT_EQ(session_.window_bytes, 1000U) << "a refused window changed it";
  EXPECT_EQ(window(UINT32_MAX, 0), 0);  // none, whatever the offset
  EXPECT_EQ(session_.window_bytes, 0U);
  EXPECT_EQ(session_.window_offset, 0U);
  EXPECT_EQ(core_.processes().at(peer_).protocol_errors, 0U);
}

TEST_F(LendRequestsTest, RegretIsRepliedAndTellsAReceiverThatHadItInItsRing) {
  wire::Request r = send(0, 8, wire::kLendRead);
  ASSERT_EQ(handle(r), Error::kNone);
  testing::take_events(core_, peer_);  // published to peer
  wire::Request regret = request(wire::Op::kRegretMessage);
  regret.handle = r.handle;
  ASSERT_EQ(handle(regret), Error::kNone);
  ASSERT_EQ(replies_.size(), 2U);
  EXPECT_EQ(replies_[0].first, peer_);
  EXPECT_EQ(replies_[0].second.kind, static_cast<uint32_t>(wire::EventKind::kWithdrawn));
  EXPECT_EQ(replies_[0].second.handle, r.handle);
  replies_.erase(replies_.begin());
  EXPECT_EQ(answer(), 0);
  // Twice: not out any more.
  regret.seq = ++seq_;
  ASSERT_EQ(handle(regret), Error::kNone);
  EXPECT_EQ(answer(), -EBADF);
  // peer's take that was on its way is void, not a protocol error.
  wire::Request take = request(wire::Op::kGetEvent);
  take.handle = r.handle;
  EXPECT_EQ(handle(take, peer_), Error::kNone);
  // Taken, then regretted: busy; answered: already.
  uint64_t h = lent(0, 8, wire::kLendRead);
  regret = request(wire::Op::kRegretMessage);
  regret.handle = h;
  ASSERT_EQ(handle(regret), Error::kNone);
  EXPECT_EQ(answer(), -EBUSY);
  ASSERT_EQ(core_.send_answer(peer_, h, wire::kResultNormal, wire::Message{}), Error::kNone);
  regret.seq = ++seq_;
  ASSERT_EQ(handle(regret), Error::kNone);
  EXPECT_EQ(answer(), -EALREADY);
}

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
