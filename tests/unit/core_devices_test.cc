// Devices on the core, without Linux: naming and removing them against the
// devices claim, reserve and release (every cell), messages taken and
// answered, and what the death or removal of a reserver, sender or creator
// leaves.
#include <gtest/gtest.h>

#include "core.h"

namespace nucleus::daemon {
namespace {

using wire::DeviceKind;

// `dev` is the root's: only an operator (acting for the root) may reserve it.
constexpr bool kOperator = true;

class CoreDevices : public ::testing::Test {
 protected:
  void SetUp() override {
    a = core.attach("a", Claims{4, 4, 0, 2, 0}).value();
    b = core.attach("b", Claims{4, 0, 0, 0, 0}).value();
    dev = core.create_device(kNone, "dev", DeviceKind::kNull).value();
  }
  uint64_t free_handle(uint32_t id) {
    for (uint32_t index : core.processes().at(id).slots) {
      if (core.pool().at(index).state == BufferState::kFree) {
        return wire::next_handle(core.pool().handle(index));
      }
    }
    return 0;
  }
  // Sends from `from` to `to`; returns the handle.
  uint64_t send(uint32_t from, const char *to) {
    uint64_t h = free_handle(from);
    EXPECT_EQ(core.send_message(from, h, to, wire::Message{}), Error::kNone);
    return h;
  }
  // The answers published to `id`, by result (each taken, so its buffer
  // is free again).
  std::vector<int32_t> answers(uint32_t id) {
    std::vector<int32_t> out;
    wire::Event e;
    while (core.next_event(id, &e)) {
      core.pop_event(id);
      if (e.kind != static_cast<uint32_t>(wire::EventKind::kAnswer)) continue;
      out.push_back(e.result);
      EXPECT_EQ(core.release_answer(id, e.handle), Error::kNone);
    }
    return out;
  }
  uint32_t in_use() const {
    uint32_t n = 0;
    for (uint32_t i = 0; i < core.pool().size(); ++i) {
      n += core.pool().at(i).state == BufferState::kFree ? 0 : 1;
    }
    return n;
  }

  Core core{32, 0, 100};
  uint32_t a = 0, b = 0, dev = 0;
};

TEST_F(CoreDevices, NamingCostsTheDevicesClaim) {
  EXPECT_EQ(core.create_device(b, "bd", DeviceKind::kClock).error(), Error::kNoBuffers);
  auto d1 = core.create_device(a, "d1", DeviceKind::kClock);
  ASSERT_TRUE(d1.ok());
  EXPECT_EQ(core.create_device(a, "dev", DeviceKind::kClock).error(), Error::kNameTaken);
  auto d2 = core.create_device(a, "d2", DeviceKind::kDisk);
  ASSERT_TRUE(d2.ok());
  EXPECT_EQ(core.create_device(a, "d3", DeviceKind::kClock).error(), Error::kNoBuffers);
  EXPECT_EQ(core.processes().at(a).account.lent().devices, 2U);
  EXPECT_EQ(core.info(a).word[wire::kInfoUsedProcesses] >> 32, 2U);
  // Removing gives the claim back.
  EXPECT_EQ(core.own_device(a, "d1").value(), d1.value());
  EXPECT_EQ(core.remove_device(a, d1.value()), Error::kNone);
  EXPECT_EQ(core.processes().at(a).account.lent().devices, 1U);
  EXPECT_TRUE(core.create_device(a, "d3", DeviceKind::kClock).ok());
  EXPECT_EQ(core.take_removed_devices().size(), 1U);
  EXPECT_TRUE(core.take_removed_devices().empty()) << "taken";
}

// Issue 21: a name taken was reported as the devices claim used up when
// the claim was, so a namer that restarted and named its device again (its
// entry kept the device and the claim it cost) was told -ENOBUFS.
TEST_F(CoreDevices, ANameTakenIsTakenBeforeAnyClaimIsAsked) {
  ASSERT_TRUE(core.create_device(a, "d1", DeviceKind::kClock).ok());
  ASSERT_TRUE(core.create_device(a, "d2", DeviceKind::kClock).ok());
  ASSERT_EQ(core.processes().at(a).account.lent().devices, 2U);  // all of it
  EXPECT_EQ(core.create_device(a, "d1", DeviceKind::kClock).error(), Error::kNameTaken);
  EXPECT_EQ(core.create_device(a, "dev", DeviceKind::kClock).error(), Error::kNameTaken);
  EXPECT_EQ(core.create_device(a, "b", DeviceKind::kClock).error(), Error::kNameTaken);
  EXPECT_EQ(core.create_device(a, "nucleus", DeviceKind::kClock).error(), Error::kNameTaken);
  EXPECT_EQ(core.create_device(b, "d1", DeviceKind::kClock).error(), Error::kNameTaken);
  EXPECT_EQ(core.create_device(a, "bad name", DeviceKind::kClock).error(), Error::kInvalid);
  // A free name: now the claim is what refuses it.
  EXPECT_EQ(core.create_device(a, "d3", DeviceKind::kClock).error(), Error::kNoBuffers);
  // Nothing of that was lent.
  EXPECT_EQ(core.processes().at(a).account.lent().devices, 2U);
  // A process's create, too: b has no processes claim.
  EXPECT_EQ(core.create(b, "d1", Program{"/bin/true", "", {}, {}}, Claims{0, 0, 0}).error(),
            Error::kNameTaken);
  EXPECT_EQ(core.create(b, "p", Program{"/bin/true", "", {}, {}}, Claims{0, 0, 0}).error(),
            Error::kNoBuffers);
}

TEST_F(CoreDevices, OnlyTheCreatorFindsItsOwnDeviceAndDevicesAreNotChildren) {
  uint32_t d = core.create_device(a, "d", DeviceKind::kClock).value();
  EXPECT_EQ(core.own_device(b, "d").error(), Error::kNoChild);
  EXPECT_EQ(core.own_device(a, "dev").error(), Error::kNoChild);  // the root's
  EXPECT_EQ(core.own_device(a, "a").error(), Error::kNoChild);
  EXPECT_EQ(core.own_device(a, "nosuch").error(), Error::kNoChild);
  EXPECT_EQ(core.child(a, "d").error(), Error::kNoChild);
  EXPECT_TRUE(core.children_of(a).empty());
  EXPECT_EQ(core.find_device("d").value(), d);
  EXPECT_EQ(core.find_device("b").error(), Error::kInvalid);
  EXPECT_EQ(core.find_device("nosuch").error(), Error::kNoChild);
}

TEST_F(CoreDevices, ReserveAndReleaseTable) {
  // free: reserve -> reserved by the caller; release -> refused
  EXPECT_EQ(core.release(a, dev), Error::kNotReserver);
  EXPECT_EQ(core.reserve(a, dev, kOperator), Error::kNone);
  // reserved by the caller: reserve -> still; release -> free
  EXPECT_EQ(core.reserve(a, dev, kOperator), Error::kNone);
  // reserved by another: reserve -> busy; release -> refused
  EXPECT_EQ(core.reserve(b, dev, kOperator), Error::kBusy);
  EXPECT_EQ(core.release(b, dev), Error::kNotReserver);
  EXPECT_EQ(core.release(a, dev), Error::kNone);
  EXPECT_EQ(core.processes().at(dev).reserver, kNone);
  EXPECT_EQ(core.reserve(b, dev, kOperator), Error::kNone);
}

TEST_F(CoreDevices, MessagesFromAnyoneButTheReserverAreRejected) {
  EXPECT_EQ(core.reserve(a, dev, kOperator), Error::kNone);
  uint64_t from_a = send(a, "dev");
  uint64_t from_b = send(b, "dev");
  DeviceMessage m;
  ASSERT_TRUE(core.take_device_message(dev, &m));
  EXPECT_EQ(m.handle, from_a);
  EXPECT_EQ(m.sender, a);
  EXPECT_FALSE(core.take_device_message(dev, &m));  // b's was answered rejected
  EXPECT_EQ(answers(b), std::vector<int32_t>{wire::kResultRejected});
  (void)from_b;
  EXPECT_EQ(core.send_answer(dev, from_a, wire::kResultNormal, wire::Message{}), Error::kNone);
  EXPECT_EQ(answers(a), std::vector<int32_t>{wire::kResultNormal});
  EXPECT_EQ(in_use(), 0U);
}

TEST_F(CoreDevices, AReserverThatDiesReleases) {
  EXPECT_EQ(core.reserve(b, dev, kOperator), Error::kNone);
  core.detach(b);
  EXPECT_EQ(core.processes().at(dev).reserver, kNone);
  EXPECT_EQ(core.reserve(a, dev, kOperator), Error::kNone);
}

TEST_F(CoreDevices, ASenderThatDiesLeavesAnOrphanTheDeviceStillAnswers) {
  send(b, "dev");
  DeviceMessage m;
  ASSERT_TRUE(core.take_device_message(dev, &m));
  core.detach(b);
  EXPECT_EQ(in_use(), 1U);  // out at the device
  EXPECT_EQ(core.send_answer(dev, m.handle, wire::kResultNormal, wire::Message{}), Error::kNone);
  EXPECT_EQ(in_use(), 0U);
  EXPECT_EQ(core.pool().free_count(), 32U - 4U);  // b's claim is back with the pool
}

TEST_F(CoreDevices, ARemovedDeviceDummyAnswersQueuedAndTakenMessages) {
  uint32_t d = core.create_device(a, "d", DeviceKind::kClock).value();
  uint64_t taken = send(b, "d");
  DeviceMessage m;
  ASSERT_TRUE(core.take_device_message(d, &m));
  send(b, "d");  // still queued
  EXPECT_EQ(core.remove_device(a, d), Error::kNone);
  EXPECT_EQ(answers(b), (std::vector<int32_t>{wire::kResultDummy, wire::kResultDummy}));
  // Its late answer is refused: the buffer is no longer the device's.
  EXPECT_EQ(core.send_answer(d, taken, wire::kResultNormal, wire::Message{}), Error::kBadHandle);
  EXPECT_EQ(in_use(), 0U);
  EXPECT_EQ(core.find_device("d").error(), Error::kNoChild);
}

TEST_F(CoreDevices, ACreatorWithDevicesStaysWhenItDiesAndGoesWhenRemoved) {
  uint32_t d = core.create_device(a, "d", DeviceKind::kClock).value();
  core.detach(a);
  ASSERT_TRUE(core.processes().live(a));  // keeps its device for a next run
  EXPECT_EQ(core.find_device("d").value(), d);
  // Its next run (same name and uid) owns it.
  EXPECT_EQ(core.attach("a", Claims{}).value(), a);
  EXPECT_EQ(core.own_device(a, "d").value(), d);

  // A child that named a device: removing the child removes the device.
  Program p{"/bin/true", "", {}, {}};
  uint32_t c = core.create(a, "c", p, Claims{1, 0, 0, 1, 0}).value();
  EXPECT_EQ(core.processes().at(a).account.lent().devices, 2U);
  uint32_t cd = core.create_device(c, "cd", DeviceKind::kNull).value();
  send(b, "cd");
  (void)core.take_removed_devices();
  EXPECT_EQ(core.remove(a, c), Error::kNone);
  EXPECT_EQ(core.take_removed_devices(), std::vector<uint32_t>{cd});
  EXPECT_EQ(answers(b), std::vector<int32_t>{wire::kResultDummy});
  EXPECT_EQ(core.processes().at(a).account.lent().devices, 1U);
}

TEST_F(CoreDevices, ClaimsOutsideEveryLimitAreInvalid) {
  Program p{"/bin/true", "", {}, {}};
  EXPECT_EQ(core.create(a, "x", p, Claims{0, UINT64_MAX, 0, 0, 0}).error(), Error::kInvalid);
  EXPECT_EQ(core.create(a, "x", p, Claims{0, 0, 0, UINT64_MAX, 0}).error(), Error::kInvalid);
  EXPECT_EQ(core.create(a, "x", p, Claims{0, 0, 0, 0, wire::kMaxDataAreaBytes + 1}).error(),
            Error::kInvalid);
  EXPECT_EQ(core.create(a, "x", p, Claims{0, 0, 0, 3, 0}).error(), Error::kNoBuffers);
  uint32_t x = core.create(a, "x", p, Claims{0, 0, 0, 1, 4096}).value();
  Claims bad{0, 0, 0, UINT64_MAX, 0};
  EXPECT_EQ(core.modify(a, x, nullptr, &bad), Error::kInvalid);
  Claims more{0, 0, 0, 3, 0};
  EXPECT_EQ(core.modify(a, x, nullptr, &more), Error::kNoBuffers);  // 2 more; a has 1 left
  Claims one_more{0, 0, 0, 2, 0};
  EXPECT_EQ(core.modify(a, x, nullptr, &one_more), Error::kNone);
  EXPECT_EQ(core.attach("y", Claims{0, UINT64_MAX, 0, 0, 0}).error(), Error::kInvalid);
}

}  // namespace
}  // namespace nucleus::daemon
