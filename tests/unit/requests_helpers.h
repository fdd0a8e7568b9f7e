// What the decoder's unit tests share (requests_test.cc, owner_rule_test.cc):
// a fake Linux side that records what process control asked of it, and a
// fixture with a Core, a Policy and the decoder, and one attached process
// ("os", uid 1000 gid 1000) whose requests it sends.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core_helpers.h"
#include "requests.h"

namespace nucleus::daemon::testing {

using namespace std::string_literals;

// Records every call and answers what the test set.
class FakeLinux : public LinuxSide {
 public:
  bool launching(uint32_t child) const override { return child == launching_id; }
  int spawn(uint32_t id, const Waiter &waiter, uint64_t *step) override {
    calls.push_back("spawn " + std::to_string(id));
    *step = spawn_step;
    last_waiter = waiter;
    return spawn_result;
  }
  void stop_subtree(uint32_t id) override { calls.push_back("stop " + std::to_string(id)); }
  void resume_subtree(uint32_t id) override { calls.push_back("resume " + std::to_string(id)); }
  void end_subtree(uint32_t id) override { calls.push_back("end " + std::to_string(id)); }
  void begin_swap(uint32_t requester, uint32_t child, uint32_t cand) override {
    calls.push_back("swap " + std::to_string(requester) + " " + std::to_string(child) + " " +
                    std::to_string(cand));
  }
  int swap_ready(uint32_t cand, uint32_t) override {
    calls.push_back("ready " + std::to_string(cand));
    return ready_result;
  }
  int open_device(uint32_t caller, uint32_t device, const DeviceConfig &spec) override {
    calls.push_back("open " + std::to_string(caller) + " " + spec.name + " " + spec.path);
    last_device = device;
    return open_result;
  }
  std::span<uint8_t> data_area(uint32_t id) override {
    auto it = areas.find(id);
    if (it == areas.end()) return {};
    return it->second;
  }

  uint32_t launching_id = kNone;
  int spawn_result = 0;
  uint64_t spawn_step = wire::kStartStepNone;
  int ready_result = -EINVAL;
  int open_result = 0;
  uint32_t last_device = kNone;
  Waiter last_waiter;
  std::vector<std::string> calls;
  std::map<uint32_t, std::vector<uint8_t>> areas;  // data areas of attached runs
};

// A staged program: `path`, no arguments, and the owner it names
// (wire::kOwnerDefault: none).
inline std::string program_bytes(const std::string &path, uint32_t uid = wire::kOwnerDefault,
                                 uint32_t gid = wire::kOwnerDefault) {
  wire::ProgramHeader h{0, 0, uid, gid};
  return std::string(reinterpret_cast<const char *>(&h), sizeof(h)) + path + "\0\0"s;
}

class RequestsTest : public ::testing::Test {
 protected:
  RequestsTest()
      : core_(64, 4, 64),
        policy_(config_, core_),
        requests_(core_, config_, policy_, linux_,
                  [this](uint32_t id, const wire::Event &e) { replies_.emplace_back(id, e); }) {
    config_.operators_own_uid = false;
    config_.operator_uids = {0};
    config_.data_bytes = 4096;
    os_ = core_.attach("os", Claims{8, 6, 0, 2, 0}, 1000, 1000, 9).value();
  }

  wire::Request request(wire::Op op, const std::string &name = "", int64_t arg = 0) {
    wire::Request r{};
    r.op = static_cast<uint32_t>(op);
    r.seq = ++seq_;
    std::strncpy(r.name, name.c_str(), sizeof(r.name) - 1);
    r.arg = arg;
    return r;
  }
  Error handle(const wire::Request &r, uint32_t id = kNone) {
    return requests_.handle(id == kNone ? os_ : id, 7, session_, r);
  }
  // Stages `bytes` as the library does: chunks of the name and message fields.
  void stage(const std::string &bytes) {
    for (size_t at = 0; at < bytes.size(); at += wire::kStageChunkBytes) {
      wire::Request r = request(wire::Op::kStageProgram);
      size_t n = std::min<size_t>(wire::kStageChunkBytes, bytes.size() - at);
      char chunk[wire::kStageChunkBytes] = {};
      std::memcpy(chunk, bytes.data() + at, n);
      std::memcpy(r.name, chunk, sizeof(r.name));
      std::memcpy(&r.message, chunk + sizeof(r.name), sizeof(r.message));
      r.arg = static_cast<int64_t>(n);
      ASSERT_EQ(handle(r), Error::kNone);
    }
  }
  // The result of the one reply the last request had.
  int32_t answer() {
    EXPECT_EQ(replies_.size(), 1U);
    if (replies_.empty()) return INT32_MIN;
    int32_t result = replies_.back().second.result;
    EXPECT_EQ(replies_.back().second.seq, seq_);
    EXPECT_EQ(replies_.back().second.kind, static_cast<uint32_t>(wire::EventKind::kReply));
    replies_.clear();
    return result;
  }
  int32_t control(const wire::Request &r) {
    EXPECT_EQ(handle(r), Error::kNone);
    return answer();
  }
  uint32_t create_child(const std::string &name) {
    stage(program_bytes("/bin/true"));
    EXPECT_EQ(control(request(wire::Op::kCreateProcess, name)), 0);
    return core_.child(os_, name).value();
  }

  Config config_;
  Core core_;
  FakeLinux linux_;
  Policy policy_;
  Requests requests_;
  Session session_;
  std::vector<std::pair<uint32_t, wire::Event>> replies_;
  uint32_t os_ = kNone;  // whose requests handle() sends
  uint32_t seq_ = 0;
};

}  // namespace nucleus::daemon::testing
