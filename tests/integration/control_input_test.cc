// Bad process-control input against a real nucleusd: requests libnucleus
// never sends, spoken on the channel directly. Each gets its error code,
// changes nothing, and the daemon serves on.
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "harness.h"

namespace nucleus::test {
namespace {

const char *kProgram = NUCLEUS_TEST_PROGRAM;

// A staged program's bytes: header, path, working directory, argv, env.
std::string program_bytes(const std::vector<std::string> &argv,
                          const std::string &path = kProgram) {
  wire::ProgramHeader h{static_cast<uint32_t>(argv.size()), 0};
  std::string bytes(reinterpret_cast<const char *>(&h), sizeof(h));
  bytes.append(path).push_back('\0');
  bytes.push_back('\0');  // nucleusd's working directory
  for (const std::string &a : argv) bytes.append(a).push_back('\0');
  return bytes;
}

class ControlInput : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon = std::make_unique<Daemon>(
        R"({"default_claims": {"buffers": 16, "processes": 8},
            "protocol": {"max_errors": 1000}})");
    ASSERT_TRUE(daemon->ready()) << daemon->log();
    raw = std::make_unique<RawClient>(daemon->socket_path(), "raw");
    ASSERT_EQ(raw->status(), 0);
  }
  void TearDown() override {
    if (HasFailure() && daemon) std::cerr << daemon->log();
  }

  // Stages `bytes` in chunks of the given size (the last one shorter).
  void stage(const std::string &bytes, size_t chunk = wire::kStageChunkBytes) {
    for (size_t at = 0; at < bytes.size(); at += chunk) stage_chunk(bytes.substr(at, chunk));
  }
  // One kStageProgram whose count says `arg` (the bytes it carries: at most
  // a chunk's worth).
  void stage_chunk(const std::string &bytes, std::optional<int64_t> arg = {}) {
    wire::Request r{};
    r.op = static_cast<uint32_t>(wire::Op::kStageProgram);
    r.arg = arg.value_or(static_cast<int64_t>(bytes.size()));
    char buf[wire::kStageChunkBytes] = {};
    std::memcpy(buf, bytes.data(), std::min(bytes.size(), sizeof(buf)));
    std::memcpy(r.name, buf, sizeof(r.name));
    std::memcpy(&r.message, buf + sizeof(r.name), sizeof(r.message));
    raw->push(r);
  }
  // Sends a control request and returns its reply's result (0 or -errno).
  int control(wire::Op op, const std::string &name, uint64_t buffers = 0, int64_t arg = 0,
              uint64_t handle = 0, wire::Event *out = nullptr) {
    wire::Request r{};
    r.op = static_cast<uint32_t>(op);
    r.seq = ++seq;
    r.arg = arg;
    r.handle = handle;
    std::memcpy(r.name, name.data(), std::min(name.size(), sizeof(r.name)));
    r.message.word[wire::kClaimBuffers] = buffers;
    raw->push(r);
    wire::Event e{};
    EXPECT_TRUE(raw->next_event(&e)) << "no reply to op " << r.op;
    EXPECT_EQ(e.kind, static_cast<uint32_t>(wire::EventKind::kReply));
    EXPECT_EQ(e.seq, seq);
    if (out != nullptr) *out = e;
    return e.result;
  }
  int create(const std::string &name, uint64_t buffers = 1) {
    return control(wire::Op::kCreateProcess, name, buffers);
  }
  // The caller's claim, from kGetStats.
  uint64_t claim() {
    wire::Event e{};
    wire::Request r{};
    r.op = static_cast<uint32_t>(wire::Op::kGetStats);
    raw->push(r);
    EXPECT_TRUE(raw->next_event(&e));
    return e.message.word[wire::kStatsClaimBuffers];
  }

  std::unique_ptr<Daemon> daemon;
  std::unique_ptr<RawClient> raw;
  uint32_t seq = 0;
};

TEST_F(ControlInput, BadStagedProgramsAreRefusedAndChangeNothing) {
  const std::string good = program_bytes({kProgram, "serve"});
  // Nothing staged.
  EXPECT_EQ(create("c"), -EINVAL);
  // A chunk of 0 or over the chunk size spoils the whole staged program.
  stage(good);
  stage_chunk("", 0);
  EXPECT_EQ(create("c"), -E2BIG);
  stage_chunk("x", wire::kStageChunkBytes + 1);
  EXPECT_EQ(create("c"), -E2BIG);
  stage_chunk("x", INT64_MIN);
  EXPECT_EQ(create("c"), -E2BIG);
  // More than kMaxProgramBytes in all.
  stage(std::string(wire::kMaxProgramBytes + 1, 'x'));
  EXPECT_EQ(create("c"), -E2BIG);
  // Malformed: counts beyond the bytes, no terminating NUL, too many strings,
  // a relative path, a header cut short.
  wire::ProgramHeader lying{5, 0};
  std::string short_of_strings(reinterpret_cast<const char *>(&lying), sizeof(lying));
  short_of_strings += std::string(kProgram) + '\0' + '\0' + "one" + '\0';
  stage(short_of_strings);
  EXPECT_EQ(create("c"), -EINVAL);
  std::string unterminated = good;
  unterminated.pop_back();
  stage(unterminated);
  EXPECT_EQ(create("c"), -EINVAL);
  wire::ProgramHeader many{wire::kMaxProgramStrings + 1, 0};
  std::string too_many(reinterpret_cast<const char *>(&many), sizeof(many));
  too_many += std::string(kProgram) + '\0' + '\0';
  for (uint32_t i = 0; i <= wire::kMaxProgramStrings; ++i) too_many += std::string("a") + '\0';
  stage(too_many);
  EXPECT_EQ(create("c"), -EINVAL);
  stage(std::string(3, '\0'));
  EXPECT_EQ(create("c"), -EINVAL);
  stage(program_bytes({"x"}, ""));
  EXPECT_EQ(create("c"), -EINVAL);

  // Nothing was created, nothing was taken from the claim.
  EXPECT_EQ(claim(), 16U);
  EXPECT_EQ(control(wire::Op::kGetProcess, "c"), -ESRCH);
  // And a good program after all of that is taken.
  stage(good, 7);
  EXPECT_EQ(create("c", 4), 0);
  EXPECT_EQ(claim(), 12U);
  // The staged bytes went with that create: another needs its own.
  EXPECT_EQ(create("d"), -EINVAL);
}

TEST_F(ControlInput, BadNamesFlagsClaimsAndHandlesAreRefused) {
  const std::string good = program_bytes({kProgram, "serve"});
  stage(good);
  std::string unterminated(wire::kNameBytes, 'n');
  EXPECT_EQ(create(unterminated), -EINVAL);
  stage(good);
  EXPECT_EQ(create("bad name"), -EINVAL);
  stage(good);
  EXPECT_EQ(create(""), -EINVAL);
  stage(good);
  EXPECT_EQ(create(wire::kNucleusName), -EEXIST);  // the nucleus's own name
  stage(good);
  EXPECT_EQ(create("raw"), -EEXIST);  // its own
  stage(good);
  EXPECT_EQ(create("huge", UINT64_MAX), -EINVAL);  // over any claim there can be
  stage(good);
  EXPECT_EQ(create("huge", 17), -ENOBUFS);  // over the caller's
  stage(good);
  EXPECT_EQ(create("c", 2), 0);
  stage(good);
  EXPECT_EQ(create("c", 2), -EEXIST);

  // Control of a name that is no child of the caller's.
  EXPECT_EQ(control(wire::Op::kStartProcess, unterminated), -EINVAL);
  EXPECT_EQ(control(wire::Op::kStartProcess, "nobody"), -ESRCH);
  EXPECT_EQ(control(wire::Op::kRemoveProcess, "raw"), -ESRCH);
  EXPECT_EQ(control(wire::Op::kStopProcess, wire::kNucleusName), -ESRCH);

  // Modify: unknown flags, and claims beyond what the caller has.
  EXPECT_EQ(control(wire::Op::kModifyProcess, "c", 3, 1 << 7), -EINVAL);
  EXPECT_EQ(control(wire::Op::kModifyProcess, "c", UINT64_MAX, wire::kModifyClaims), -EINVAL);
  EXPECT_EQ(control(wire::Op::kModifyProcess, "c", 17, wire::kModifyClaims), -ENOBUFS);
  EXPECT_EQ(control(wire::Op::kModifyProcess, "c", 0, wire::kModifyProgram), -EINVAL);

  // Stop with a buffer that is not the caller's, or is out already.
  EXPECT_EQ(control(wire::Op::kStartProcess, "c"), 0);
  EXPECT_EQ(control(wire::Op::kStopProcess, "c", 0, 0, 0xdeadbeef12345ULL), -EBADF);
  EXPECT_EQ(control(wire::Op::kStopProcess, "c", 0, 0, wire::make_handle(4000, 1)), -EBADF);

  // Listing from an index far past the end says how many there are.
  wire::Event e{};
  EXPECT_EQ(control(wire::Op::kListChildren, "", 0, INT64_MAX, 0, &e), 0);
  EXPECT_EQ(e.handle, 1U);
  EXPECT_EQ(e.index, UINT32_MAX);

  // Nothing of that changed the claim: 16 less the 2 given to c.
  EXPECT_EQ(claim(), 14U);
  EXPECT_EQ(control(wire::Op::kRemoveProcess, "c"), 0);
  EXPECT_EQ(claim(), 16U);
}

// A started program may attach only under the name its parent gave it.
TEST_F(ControlInput, AStartedProgramCannotAttachUnderAnotherName) {
  auto parent = attach("parent");
  const char *argv[] = {kProgram, "impostor", "raw2", nullptr};
  nucleus_program_t impostor{kProgram, argv, nullptr, nullptr};
  nucleus_claims_t c{1, 0, 0};
  ASSERT_EQ(nucleus_create_process(parent.c_handle(), "honest", &impostor, &c), 0);
  ASSERT_EQ(nucleus_start_process(parent.c_handle(), "honest"), 0);
  auto m = parent.wait_message(kDeadline);
  ASSERT_TRUE(m) << m.message();
  nucleus_exit_notice_t notice{};
  ASSERT_EQ(nucleus_parse_exit_notice(m->sender.c_str(), &m->message, &notice), 0);
  EXPECT_STREQ(notice.name, "honest");
  EXPECT_EQ(notice.exit_kind, NUCLEUS_EXIT_CODE);
  EXPECT_EQ(notice.exit_value, EINVAL);
  EXPECT_NE(daemon->log().find("attach refused"), std::string::npos);
  // Nobody got the name it asked for.
  auto b = parent.send_message("raw2", Message{});
  ASSERT_TRUE(b);
  ASSERT_TRUE(parent.send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, Message{}));
  auto a = parent.wait_answer(b.value(), kDeadline);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result, NUCLEUS_RESULT_DUMMY);
}

}  // namespace
}  // namespace nucleus::test
