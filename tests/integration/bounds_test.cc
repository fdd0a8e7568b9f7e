// Bounds and rights of the process table against a root nucleusd, attacked as
// uid 65534 (DESIGN.md, "Principals, privilege and bounds"): what one uid may
// own, names nucleusd hands out, exit notices per parent, and who may
// reserve a device. Each test asserts on effects: the attacker is refused
// with the errno, and the root (an operator) and other parents still work.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness.h"
#include "run_program.h"

namespace nucleus::test {
namespace {

using nlohmann::json;
using nucleus::Claims;
using nucleus::Nucleus;
using nucleus::Program;

const char *kCtl = NUCLEUSCTL_PATH;
const char *kProgram = NUCLEUS_TEST_PROGRAM;

// The pool's notice_free as nucleusctl status reports it (-1: no answer).
int64_t notice_free(const Daemon &d) {
  Ran r = run_program(kCtl, {"--socket", d.socket_path(), "--json", "status"});
  json j = json::parse(r.out, nullptr, false);
  if (r.code != 0 || j.is_discarded()) return -1;
  return j["pool"].value("notice_free", int64_t{-1});
}

// Waits (with the deadline) until nucleusctl reports `want` notice buffers free.
bool wait_notice_free(const Daemon &d, int64_t want) {
  return eventually([&] { return notice_free(d) == want; });
}

// Exit notices waiting for `n` now (none is waited for).
int drain_notices(Nucleus &n) {
  int count = 0;
  while (auto m = n.wait_message(nucleus::kPoll)) {
    if (Nucleus::exit_notice(m.value())) ++count;
  }
  return count;
}

TEST(Bounds, AUidThatAttachesInALoopIsRefusedAndTheRootStillAttaches) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  Daemon d(R"({"pool": {"buffers": 1024}, "default_claims": {"buffers": 8},
               "attach": {"uids": [65534]},
               "limits": {"per_uid": {"processes": 20}}})");
  ASSERT_TRUE(d.ready()) << d.log();
  d.let_others_in();
  Signal holding;
  Signal done;
  auto attack = [&] {
    if (!become()) return 10;
    // Its own nucleusctl name is its own to take; another pid's is not.
    if (!Nucleus::attach("nucleusctl-" + std::to_string(getpid()))) return 11;
    auto squat = Nucleus::attach("nucleusctl-" + std::to_string(getppid()));
    if (squat || squat.error() != -EPERM) return 12;
    std::vector<Nucleus> held;
    int refused = 0;
    for (int i = 0; i < 1000 && refused == 0; ++i) {
      auto n = Nucleus::attach("n" + std::to_string(i));
      if (n) {
        held.push_back(std::move(n.value()));
      } else {
        refused = n.error();
      }
    }
    if (refused != -EDQUOT) return 13;
    if (held.size() != 20) return 14;
    holding.notify();
    done.wait();  // keeps them while the root attaches
    return 0;
  };
  pid_t attacker = spawn([&] {
    int rc = attack();
    if (rc != 0) holding.notify('f');  // not to be waited for until the deadline
    return rc;
  });
  ASSERT_EQ(holding.wait(), 'x') << "attacker: " << exit_code(wait_exit(attacker));
  // The root attaches, and nucleusctl (as nucleusctl-<its pid>) works.
  auto root = attach("root-still");
  Ran r = run_program(kCtl, {"--socket", d.socket_path(), "send", "null", "1"});
  EXPECT_EQ(r.code, 0) << r.err;
  done.notify();
  EXPECT_EQ(exit_code(wait_exit(attacker)), 0);
  std::string log = d.log();
  EXPECT_NE(log.find("uid 65534 refused (attach as n20): at its limit"), std::string::npos) << log;
  EXPECT_NE(log.find("uid 65534 refused (attach as nucleusctl-"), std::string::npos);
}

TEST(Bounds, AParentThatNeverAnswersHoldsAtMostItsExitNotices) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  constexpr int kChildren = 40;
  constexpr int kPerParent = 4;
  constexpr int kNotices = 64;
  Daemon d(R"({"default_claims": {"buffers": 8, "processes": 48},
               "processes": {"notice_buffers": 64},
               "attach": {"uids": [65534]},
               "limits": {"per_parent": {"exit_notices": 4}}})");
  ASSERT_TRUE(d.ready()) << d.log();
  d.let_others_in();
  Signal hogging;
  Signal others_served;
  Program quick{"/bin/true", {"/bin/true"}, {}, ""};
  auto hog_body = [&] {
    if (!become()) return 10;
    auto n = Nucleus::attach("hog");
    if (!n) return 11;
    for (int i = 0; i < kChildren; ++i) {
      std::string name = "k" + std::to_string(i);
      if (!n->create_process(name, quick, Claims{0, 0, 0})) return 12;
      if (!n->start_process(name)) return 13;
    }
    // Every child has exited (their state is in the table) ...
    bool unknown = false;
    bool exited = eventually([&] {
      for (int i = 0; i < kChildren; ++i) {
        auto info = n->get_process("k" + std::to_string(i));
        if (!info) {
          unknown = true;  // no use trying on
          return true;
        }
        if (info->state != NUCLEUS_PROCESS_EXITED) return false;
      }
      return true;
    });
    if (unknown) return 14;
    if (!exited) return 15;
    // ... and it has taken its limit of notices and answers none.
    std::vector<nucleus::Received> taken;
    for (int i = 0; i < kPerParent; ++i) {
      auto m = n->wait_message(kDeadline);
      if (!m || !Nucleus::exit_notice(m.value())) return 16;
      taken.push_back(m.value());
    }
    if (drain_notices(n.value()) != 0) return 17;
    hogging.notify();
    if (others_served.wait() != 'x') return 18;
    // Answering one delivers the next, and only one.
    if (!n->send_answer(taken[0].buffer, NUCLEUS_RESULT_NORMAL, nucleus::Message{})) return 19;
    auto next = n->wait_message(kDeadline);
    if (!next || !Nucleus::exit_notice(next.value())) return 20;
    if (drain_notices(n.value()) != 0) return 21;
    return 0;  // detaches holding 4 notices, 35 still waiting
  };
  pid_t hog = spawn([&] {
    int rc = hog_body();
    if (rc != 0) hogging.notify('f');  // not to be waited for until the deadline
    return rc;
  });
  ASSERT_EQ(hogging.wait(), 'x') << "hog: " << exit_code(wait_exit(hog));
  EXPECT_EQ(notice_free(d), kNotices - kPerParent);
  // Another parent still gets its notices.
  auto other = attach("other");
  ASSERT_TRUE(other.create_process("o", quick, Claims{0, 0, 0}));
  ASSERT_TRUE(other.start_process("o"));
  auto m = other.wait_message(kDeadline);
  ASSERT_TRUE(m) << m.message();
  auto notice = Nucleus::exit_notice(m.value());
  ASSERT_TRUE(notice);
  EXPECT_STREQ(notice->name, "o");
  ASSERT_TRUE(other.send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, nucleus::Message{}));
  others_served.notify();
  EXPECT_EQ(exit_code(wait_exit(hog)), 0);
  // The hog is gone: the reserve is whole again.
  EXPECT_TRUE(wait_notice_free(d, kNotices)) << notice_free(d);
  // Its children's notices waited for its next run: it gets its limit.
  pid_t again = spawn([&] {
    if (!become()) return 10;
    auto n = Nucleus::attach("hog");
    if (!n) return 11;
    for (int i = 0; i < kPerParent; ++i) {
      auto m = n->wait_message(kDeadline);
      if (!m || !Nucleus::exit_notice(m.value())) return 12;
    }
    return drain_notices(n.value()) == 0 ? 0 : 13;
  });
  EXPECT_EQ(exit_code(wait_exit(again)), 0);
  EXPECT_TRUE(wait_notice_free(d, kNotices)) << notice_free(d);
}

TEST(Bounds, ReservingADeviceNeedsTheRightToIt) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  Daemon d(R"({"default_claims": {"buffers": 8, "processes": 4, "devices": 1},
               "attach": {"uids": [65534]}})");
  ASSERT_TRUE(d.ready()) << d.log();
  d.let_others_in();
  std::string program = for_others(kProgram);
  pid_t attacker = spawn([&] {
    if (!become()) return 10;
    auto n = Nucleus::attach("user");
    if (!n) return 11;
    // The root's devices are not a uid's to take from everyone.
    for (const char *dev : {"console", "clock", "null"}) {
      auto r = n->reserve_process(dev);
      if (r || r.error() != -EPERM) return 12;
    }
    // A device it named is its own, and its child's.
    if (!n->create_external_process("mine", nucleus::DeviceKind::kNull, {})) return 13;
    if (!n->reserve_process("mine")) return 14;
    if (!n->release_process("mine")) return 15;
    auto check = [&](const char *name, const char *device, int expect) {
      Program p{program, {program, "reserve", device}, {}, ""};
      if (!n->create_process(name, p, Claims{2, 0, 0}) || !n->start_process(name)) return false;
      auto m = n->wait_message(kDeadline);
      if (!m) return false;
      auto notice = Nucleus::exit_notice(m.value());
      (void)n->send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, nucleus::Message{});
      return notice && notice->exit_kind == NUCLEUS_EXIT_CODE && notice->exit_value == expect;
    };
    if (!check("kid", "mine", 0)) return 16;
    if (!check("kid2", "console", EPERM)) return 17;
    return 0;
  });
  EXPECT_EQ(exit_code(wait_exit(attacker)), 0);
  // The root (an operator) may.
  auto root = attach("root");
  EXPECT_TRUE(root.reserve_process("console"));
  EXPECT_TRUE(root.release_process("console"));
  EXPECT_NE(d.log().find("uid 65534 refused (reserve console): not its to take"),
            std::string::npos);
}

// Finding 7 of issue 20: a root supervisor's children bear names any uid
// could take first. The names section reserves them for root (in the
// manner of D-Bus's own policy): uid 65534 takes none of them, by attach
// or by create or as a device's name, and messages to them reach root's
// process. A reload that drops the section gives them back to everyone.
TEST(Bounds, ANameReservedForRootIsNotTakenByAnotherUidAtAttachOrCreate) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  const std::string open_config = R"({"attach": {"uids": [65534]},
      "default_claims": {"buffers": 8, "processes": 2, "devices": 1})";
  Daemon d(open_config + R"(, "names": [{"own": "web", "uids": [0]},
      {"own_prefix": "sup.", "uids": [0]}]})");
  ASSERT_TRUE(d.ready()) << d.log();
  d.let_others_in();
  Signal refused;
  Signal root_ready;
  pid_t attacker = spawn([&] {
    if (!become()) return 10;
    for (const char *name : {"web", "sup.db", "sup.web"}) {
      auto squat = Nucleus::attach(name);
      if (squat || squat.error() != -EPERM) return 11;
    }
    auto n = Nucleus::attach("attacker");
    if (!n) return 12;
    Program p{"/bin/sleep", {"sleep", "600"}, {}, ""};
    for (const char *name : {"web", "sup.db"}) {
      if (n->create_process(name, p, Claims{1, 0, 0}).error() != -EPERM) return 13;
    }
    if (n->create_external_process("sup.clock", nucleus::DeviceKind::kClock, {}).error() !=
        -EPERM) {
      return 14;
    }
    if (!n->create_process("webby", p, Claims{1, 0, 0})) return 15;  // no rule covers it
    refused.notify();
    root_ready.wait();
    // The name is root's process's: what is sent to it reaches root.
    auto b = n->send_message("web", words(7));
    if (!b) return 16;
    auto answer = n->wait_answer(b.value(), kDeadline);
    if (!answer || answer->result != NUCLEUS_RESULT_NORMAL || answer->message.word[0] != 8) {
      return 17;
    }
    return 0;
  });
  ASSERT_EQ(refused.wait(), 'x');
  auto web = attach("web");
  auto op = attach("operator");
  ASSERT_TRUE(op.act_for(std::string()));
  EXPECT_TRUE(op.create_process("sup.db", Program{"/bin/sleep", {"sleep", "600"}, {}, ""},
                                Claims{1, 0, 0}));
  // The name is the requester's to take, whoever owns the entry: root
  // names a child it runs as another user (a root batch's job for its
  // sender) under a name reserved for root.
  EXPECT_TRUE(op.create_process(
      "sup.job", Program{"/bin/sleep", {"sleep", "600"}, {}, "", std::to_string(kNobody)},
      Claims{1, 0, 0}));
  root_ready.notify();
  auto m = web.wait_message(kDeadline);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->message.word[0], 7U);
  ASSERT_TRUE(web.send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, words(8)));
  EXPECT_EQ(exit_code(wait_exit(attacker)), 0);
  std::string log = d.log();
  EXPECT_NE(log.find("uid 65534 gid 65534 refused (attach as web): the name is reserved by "
                     "names[0] (own \"web\")"),
            std::string::npos)
      << log;
  // Reloaded without the section, the names are anyone's again.
  std::ofstream(d.dir() + "/config.json") << open_config << "}";
  ASSERT_EQ(kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(eventually([&] { return d.log().find("reloaded ") != std::string::npos; }));
  pid_t again = spawn([&] {
    if (!become()) return 10;
    return Nucleus::attach("sup.other") ? 0 : 11;
  });
  EXPECT_EQ(exit_code(wait_exit(again)), 0);
}

}  // namespace
}  // namespace nucleus::test
