// The sender's principal on every event (wire::Principal): stamped by the
// Core from the entries it knows, for each way an event comes about — a
// message, an answer, a dummy answer, a device's answer, a notice, a stop's
// answer, a swap's inherited buffers. Nothing of it comes from the sender.
#include <gtest/gtest.h>

#include <cstring>

#include "core.h"
#include "core_helpers.h"

namespace nucleus::daemon {
namespace {

using testing::free_handle;
using testing::take_events;

constexpr uint32_t kProcess = static_cast<uint32_t>(wire::PrincipalKind::kProcess);
constexpr uint32_t kDevice = static_cast<uint32_t>(wire::PrincipalKind::kDevice);
constexpr uint32_t kNucleusKind = static_cast<uint32_t>(wire::PrincipalKind::kNucleus);
// nucleusd's, as the server sets them.
constexpr uint32_t kDaemonUid = 0;
constexpr uint32_t kDaemonGid = 0;
constexpr int32_t kDaemonPid = 4242;

class CorePrincipal : public ::testing::Test {
 protected:
  void SetUp() override {
    core.set_nucleus_principal(kDaemonUid, kDaemonGid, kDaemonPid);
    // Two socket-born processes of different owners and pids.
    a = core.attach("a", Claims{4, 4, 0, 2, 0}, 1000, 100, 501).value();
    b = core.attach("b", Claims{4, 0, 0, 0, 0}, 2000, 200, 502).value();
  }
  uint64_t send(uint32_t from, const char *to, uint64_t w0 = 0) {
    uint64_t h = free_handle(core, from);
    wire::Message m{};
    m.word[0] = w0;
    EXPECT_EQ(core.send_message(from, h, to, m), Error::kNone);
    return h;
  }
  // The only event waiting for `id`.
  wire::Event one_event(uint32_t id) {
    auto events = take_events(core, id);
    EXPECT_EQ(events.size(), 1U);
    return events.empty() ? wire::Event{} : events[0];
  }
  static void expect_principal(const wire::Event &e, uint32_t kind, uint32_t uid, uint32_t gid,
                               int32_t pid, const char *name) {
    EXPECT_EQ(e.principal.kind, kind);
    EXPECT_EQ(e.principal.uid, uid);
    EXPECT_EQ(e.principal.gid, gid);
    EXPECT_EQ(e.principal.pid, pid);
    EXPECT_STREQ(e.sender, name);
  }

  Core core{64, 4, 100};
  uint32_t a = 0, b = 0;
};

TEST_F(CorePrincipal, AMessageCarriesItsSendersOwnerAndPid) {
  send(a, "b", 7);
  wire::Event e = one_event(b);
  EXPECT_EQ(e.kind, static_cast<uint32_t>(wire::EventKind::kMessage));
  expect_principal(e, kProcess, 1000, 100, 501, "a");
}

TEST_F(CorePrincipal, AnAnswerCarriesTheAnswerersPrincipalNotTheSenders) {
  uint64_t h = send(a, "b");
  take_events(core, b);
  ASSERT_EQ(core.get_event(b, h), Error::kNone);
  ASSERT_EQ(core.send_answer(b, h, wire::kResultNormal, wire::Message{}), Error::kNone);
  wire::Event e = one_event(a);
  EXPECT_EQ(e.kind, static_cast<uint32_t>(wire::EventKind::kAnswer));
  expect_principal(e, kProcess, 2000, 200, 502, "b");
}

TEST_F(CorePrincipal, AnUndeliverableMessagesDummyAnswerIsTheNucleuss) {
  send(a, "nobody-here");
  wire::Event e = one_event(a);
  EXPECT_EQ(e.result, wire::kResultDummy);
  expect_principal(e, kNucleusKind, kDaemonUid, kDaemonGid, kDaemonPid, wire::kNucleusName);
}

TEST_F(CorePrincipal, TheDummyAnswerForAReceiverThatDiedIsTheNucleuss) {
  uint64_t h = send(a, "b");
  take_events(core, b);
  ASSERT_EQ(core.get_event(b, h), Error::kNone);
  core.detach(b);
  wire::Event e = one_event(a);
  EXPECT_EQ(e.result, wire::kResultDummy);
  expect_principal(e, kNucleusKind, kDaemonUid, kDaemonGid, kDaemonPid, wire::kNucleusName);
}

TEST_F(CorePrincipal, ADeviceAnswersAsItsNamersOwnerAndTheConfiguredOnesAsTheNucleus) {
  uint32_t own = core.create_device(a, "mine", wire::DeviceKind::kNull).value();
  uint32_t root_own = core.create_device(kNone, "theirs", wire::DeviceKind::kNull).value();
  for (uint32_t device : {own, root_own}) {
    const std::string name = core.processes().at(device).name;
    send(b, name.c_str());
    DeviceMessage m;
    ASSERT_TRUE(core.take_device_message(device, &m));
    ASSERT_EQ(core.send_answer(device, m.handle, wire::kResultNormal, wire::Message{}),
              Error::kNone);
    wire::Event e = one_event(b);
    uint32_t uid = device == own ? 1000 : kDaemonUid;
    uint32_t gid = device == own ? 100 : kDaemonGid;
    expect_principal(e, kDevice, uid, gid, kDaemonPid, name.c_str());
    ASSERT_EQ(core.release_answer(b, e.handle), Error::kNone);
  }
}

TEST_F(CorePrincipal, ADeviceRefusingAnotherThanItsReserverSaysSoAsTheDevice) {
  uint32_t device = core.create_device(a, "mine", wire::DeviceKind::kNull).value();
  ASSERT_EQ(core.reserve(a, device), Error::kNone);
  send(b, "mine");
  DeviceMessage m;
  EXPECT_FALSE(core.take_device_message(device, &m));  // b's was answered rejected
  wire::Event e = one_event(b);
  EXPECT_EQ(e.result, wire::kResultRejected);
  expect_principal(e, kDevice, 1000, 100, kDaemonPid, "mine");
}

TEST_F(CorePrincipal, AChildsMessagesCarryItsRunsPidAndTheExitNoticeIsTheNucleuss) {
  Program program{"/bin/true", "", {}, {}};
  uint32_t c = core.create(a, "c", program, Claims{2, 0, 0, 0, 0}).value();
  StartPlan plan;
  ASSERT_EQ(core.start(a, c, &plan), Error::kNone);
  core.program_started(c, 777);
  core.attach_run(c);
  send(c, "b");
  expect_principal(one_event(b), kProcess, 1000, 100, 777, "c");
  core.detach(c);
  core.program_exited(c, wire::ExitKind::kCode, 3);
  wire::Event notice = one_event(a);
  EXPECT_EQ(notice.message.word[wire::kNoticeKind], wire::kNoticeChildExited);
  expect_principal(notice, kNucleusKind, kDaemonUid, kDaemonGid, kDaemonPid, wire::kNucleusName);
}

TEST_F(CorePrincipal, AStopIsAnsweredByTheNucleus) {
  Program program{"/bin/true", "", {}, {}};
  uint32_t c = core.create(a, "c", program, Claims{1, 0, 0, 0, 0}).value();
  StartPlan plan;
  ASSERT_EQ(core.start(a, c, &plan), Error::kNone);
  core.program_started(c, 778);
  ASSERT_EQ(core.begin_stop(a, c, free_handle(core, a)), Error::kNone);
  core.finish_stop(c);
  wire::Event e = one_event(a);
  EXPECT_EQ(e.kind, static_cast<uint32_t>(wire::EventKind::kAnswer));
  expect_principal(e, kNucleusKind, kDaemonUid, kDaemonGid, kDaemonPid, wire::kNucleusName);
}

TEST_F(CorePrincipal, ASocketProcessAttachedAgainIsItsNewRunsPid) {
  // A socket-born entry with a child stays when it dies; its next run has
  // another pid, and its messages say so.
  Program program{"/bin/true", "", {}, {}};
  ASSERT_TRUE(core.create(a, "kid", program, Claims{1, 0, 0, 0, 0}).ok());
  core.detach(a);
  ASSERT_EQ(core.attach("a", Claims{4, 4, 0, 2, 0}, 1000, 100, 601).value(), a);
  take_events(core, a);
  send(a, "b");
  expect_principal(one_event(b), kProcess, 1000, 100, 601, "a");
}

TEST_F(CorePrincipal, AnInheritedMessageKeepsItsSendersPrincipal) {
  uint64_t h = send(b, "a", 9);
  take_events(core, a);
  ASSERT_EQ(core.get_event(a, h), Error::kNone);
  uint32_t index = wire::handle_index(h);
  wire::Event e = core.inherit_event(index, wire::kInheritReceived);
  EXPECT_EQ(e.kind, static_cast<uint32_t>(wire::EventKind::kInherit));
  EXPECT_EQ(e.message.word[0], 9U);
  expect_principal(e, kProcess, 2000, 200, 502, "b");
  wire::Event out = core.inherit_event(index, wire::kInheritOut);
  expect_principal(out, kNucleusKind, kDaemonUid, kDaemonGid, kDaemonPid, wire::kNucleusName);
}

}  // namespace
}  // namespace nucleus::daemon
