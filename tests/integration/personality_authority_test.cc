// The shipped OSes never do for a sender what the sender could not do
// itself (docs/personalities.md, "Who may ask an OS what"). Each test is
// an attack by uid 65534 (kNobody) on a root nucleusd and a root-owned
// personality, decided from effects: the uid a job ran as (a file it
// wrote), files that were or were not created or written, pids that did
// not change, the answers the attacker got. They need root to run the
// attacker as another uid and skip without it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <nucleus/personalities.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "harness.h"

namespace nucleus::test {
namespace {

const char *kSupervisor = NUCLEUS_SUPERVISOR_PATH;
const char *kBatch = NUCLEUS_BATCH_PATH;
const char *kConsole = NUCLEUS_CONSOLE_PATH;
const char *kWorker = NUCLEUS_WORKER_PATH;

std::string read_all(const std::string &path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool exists(const std::string &path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

void write_file(const std::string &path, const std::string &text, mode_t mode) {
  std::ofstream(path) << text;
  EXPECT_EQ(chmod(path.c_str(), mode), 0);
}

// A directory uid 65534 may write to, under the test's runtime directory.
std::string drop_dir(const Daemon &d) {
  std::string dir = d.dir() + "/drop";
  EXPECT_EQ(mkdir(dir.c_str(), 0777), 0);
  EXPECT_EQ(chmod(dir.c_str(), 0777), 0);
  return dir;
}

// What a personality root owns logged: <runtime dir>/output/0/<name>.log.
std::string log_of(const Daemon &d, const std::string &name) {
  return read_all(d.dir() + "/run/output/0/" + name + ".log");
}

Message job(const std::string &text) {
  Message m{};
  m.word[0] = os::kJob;
  m.word[1] = 4;
  EXPECT_LE(text.size(), os::kJobTextBytes);
  std::memcpy(&m.word[2], text.data(), std::min<size_t>(text.size(), os::kJobTextBytes));
  return m;
}

// Three numbers an attacker reports back through a pipe.
struct Report {
  int64_t result = -1;
  int64_t word0 = -1;
  int64_t word1 = -1;
};
class Reports {
 public:
  Reports() { EXPECT_EQ(pipe(fds_), 0); }
  ~Reports() {
    close(fds_[0]);
    close(fds_[1]);
  }
  void put(const Report &r) {
    EXPECT_EQ(write(fds_[1], &r, sizeof(r)), static_cast<ssize_t>(sizeof(r)));
  }
  void put(const nucleus::Result<nucleus::Answer> &a) {
    put(a ? Report{a->result, static_cast<int64_t>(a->message.word[0]),
                   static_cast<int64_t>(a->message.word[1])}
          : Report{a.error(), -1, -1});
  }
  Report get() {
    Report r;
    return read(fds_[0], &r, sizeof(r)) == sizeof(r) ? r : Report{};
  }

 private:
  int fds_[2] = {-1, -1};
};

nucleus::Result<nucleus::Answer> ask(nucleus::Nucleus &n, const std::string &who,
                                     const Message &m) {
  auto b = n.send_message(who, m);
  if (!b) return nucleus::Result<nucleus::Answer>::failure(b.error());
  return n.wait_answer(b.value(), kDeadline);
}

// ---- 1. batch ---------------------------------------------------------------

// A root batch (the spawn-file example names no user) runs uid 65534's job
// as 65534, reads its job file with 65534's rights, and refuses a job file
// in a root-only directory with the same answer whether it is there or not.
TEST(PersonalityAuthority, ARootBatchRunsAJobAsItsSenderAndReadsItsFileWithTheSendersRights) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to attack as another uid";
  Daemon d(R"({"default_claims": {"buffers": 64, "processes": 8}, "attach": {"uids": [65534]}})");
  ASSERT_TRUE(d.ready());
  d.let_others_in();
  std::string drop = drop_dir(d);
  // The job 65534 sends: it says whom it ran as.
  std::string job_file = drop + "/j.json";
  write_file(job_file,
             R"({"program": "/bin/sh", "argv": ["sh", "-c", "id -u > )" + drop +
                 R"(/ran; id -g >> )" + drop + R"(/ran"]})",
             0644);
  // A job file in a directory only root may search: it would leave a mark.
  std::string secret = d.dir() + "/s";
  ASSERT_EQ(mkdir(secret.c_str(), 0700), 0);
  write_file(secret + "/j.json",
             R"({"program": "/bin/sh", "argv": ["sh", "-c", "id -u > )" + drop + R"(/secret"]})",
             0600);
  ASSERT_LT(job_file.size(), os::kJobTextBytes);
  ASSERT_LT(secret.size() + 10, os::kJobTextBytes);

  Nucleus top = attach("top");
  ASSERT_TRUE(top.create_process("batch", Program{kBatch, {kBatch, "--slots", "2"}, {}, {}},
                                 Claims{32, 6, 0, 0, 0}));
  ASSERT_TRUE(top.start_process("batch"));

  Reports reports;
  pid_t attacker = spawn([&]() {
    if (!become()) return 10;
    auto n = Nucleus::attach("attacker");
    if (!n) return 11;
    reports.put(ask(n.value(), "batch", job("@" + job_file)));
    reports.put(ask(n.value(), "batch", job("@" + secret + "/j.json")));
    reports.put(ask(n.value(), "batch", job("@" + secret + "/no.json")));
    return 0;
  });
  Report ran = reports.get();
  Report there = reports.get();
  Report missing = reports.get();
  EXPECT_EQ(exit_code(wait_exit(attacker)), 0);

  // The job ran, and ran as 65534: the kernel says so in what it wrote.
  EXPECT_EQ(ran.result, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(ran.word0, NUCLEUS_EXIT_CODE);
  EXPECT_EQ(ran.word1, 0);
  EXPECT_EQ(read_all(drop + "/ran"), "65534\n65534\n");
  struct stat st {};
  ASSERT_EQ(stat((drop + "/ran").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kNobody);

  // The root-only file: refused, nothing ran, and the answer is the one a
  // missing file gets.
  EXPECT_EQ(there.result, NUCLEUS_RESULT_REJECTED);
  EXPECT_EQ(there.word0, EACCES);
  EXPECT_EQ(missing.result, there.result);
  EXPECT_EQ(missing.word0, there.word0);
  EXPECT_EQ(missing.word1, there.word1);
  EXPECT_FALSE(exists(drop + "/secret"));

  // Refusals are logged with the sender's name and uid.
  EXPECT_TRUE(eventually([&] {
    return log_of(d, "batch").find("refused a message from attacker (a process of uid 65534") !=
           std::string::npos;
  })) << log_of(d, "batch");

  // Root's own job from that file is root's to read, and runs as root.
  auto b = top.send_message("batch", job("@" + secret + "/j.json"));
  ASSERT_TRUE(b);
  auto a = top.wait_answer(b.value(), kDeadline);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(read_all(drop + "/secret"), "0\n");
}

// uid 65534 holds job-1, the name a root batch would give the next job: the
// job takes the next number and runs, rather than fail.
TEST(PersonalityAuthority, AJobNameAnotherUidHoldsDoesNotFailTheJob) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to attack as another uid";
  Daemon d(R"({"default_claims": {"buffers": 64, "processes": 8}, "attach": {"uids": [65534]}})");
  ASSERT_TRUE(d.ready());
  d.let_others_in();
  Signal holding;
  Signal done;
  pid_t attacker = spawn([&]() {
    if (!become()) return 10;
    auto n = Nucleus::attach("job-1");
    if (!n) return 11;
    holding.notify();
    return done.wait() == 'x' ? 0 : 12;
  });
  ASSERT_EQ(holding.wait(), 'x');
  Nucleus top = attach("top");
  ASSERT_TRUE(
      top.create_process("batch", Program{kBatch, {kBatch}, {}, {}}, Claims{32, 6, 0, 0, 0}));
  ASSERT_TRUE(top.start_process("batch"));
  auto a = ask(top, "batch", job(std::string("/bin/sh\0-c\0exit 7", 17)));
  ASSERT_TRUE(a) << a.message();
  EXPECT_EQ(a->result, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(a->message.word[1], 7U);
  EXPECT_EQ(a->message.word[3], 2U) << "it ran as job-2";
  done.notify();
  EXPECT_EQ(exit_code(wait_exit(attacker)), 0);
}

// ---- 2. console -------------------------------------------------------------

// The configuration names no console device; uid 65534 names one on files
// it wrote. A root console refuses it: none of its lines runs, nothing is
// written into the attacker's file, and it says why. A process that
// answers under a device's name is refused too; root's own device is read.
TEST(PersonalityAuthority, ARootConsoleReadsNoCommandFromADeviceAnotherUidNamed) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to attack as another uid";
  Daemon d(R"({"devices": [{"name": "clock", "kind": "clock"}, {"name": "null", "kind": "null"}],
               "default_claims": {"buffers": 32, "processes": 4, "devices": 1},
               "attach": {"uids": [65534]}})");
  ASSERT_TRUE(d.ready());
  d.let_others_in();
  std::string drop = drop_dir(d);
  std::string in = drop + "/in.txt";
  std::string out = drop + "/out.txt";

  Signal named;
  Signal served;
  Signal done;
  pid_t attacker = spawn([&]() {
    if (!become()) return 10;
    std::ofstream(in) << "create pwn /bin/touch " << drop << "/pwned\nstart pwn\necho owned\n";
    std::ofstream(out).flush();
    auto n = Nucleus::attach("attacker");
    if (!n) return 11;
    DeviceParameters p;
    p.path = out;
    p.input_path = in;
    if (!n->create_external_process("console", DeviceKind::kConsole, p)) return 12;
    named.notify();
    done.wait();
    return 0;
  });
  // And a process that answers as a device would: every message normal,
  // "5 bytes read".
  pid_t impostor = spawn([&]() {
    if (!become()) return 10;
    auto n = Nucleus::attach("tty9");
    if (!n) return 11;
    served.notify();
    for (;;) {
      auto r = n->wait_message(kDeadline);
      if (!r) return 0;
      (void)n->send_answer(r->buffer, NUCLEUS_RESULT_NORMAL, Message{{5}});
    }
  });
  ASSERT_EQ(named.wait(), 'x');
  ASSERT_EQ(served.wait(), 'x');

  // A root console on each: root's child, as an OS starts one; its stdout
  // and stderr go to its log. It could create processes (a claim of 2).
  Nucleus top = attach("top");
  auto run_console = [&](const std::string &name, const std::string &device) {
    EXPECT_TRUE(top.create_process(name, Program{kConsole, {kConsole, "--device", device}, {}, {}},
                                   Claims{8, 2, 0, 0, 0}));
    EXPECT_TRUE(top.start_process(name));
    auto r = top.wait_message(kDeadline);
    EXPECT_TRUE(r) << r.message();
    auto n = r ? Nucleus::exit_notice(r.value()) : std::nullopt;
    EXPECT_TRUE(n.has_value());
    if (r) (void)top.send_answer(r->buffer, NUCLEUS_RESULT_NORMAL, Message{});
    EXPECT_STREQ(n ? n->name : "", name.c_str());
    int code = n && n->exit_kind == NUCLEUS_EXIT_CODE ? n->exit_value : -1;
    EXPECT_TRUE(top.remove_process(name));  // its claims come back for the next
    return std::make_pair(code, log_of(d, name));
  };
  auto [code, err] = run_console("con1", "console");
  EXPECT_EQ(code, 77) << err;
  EXPECT_NE(err.find("not using \"console\": the device \"console\" was named by uid 65534: "
                     "the console reads commands only from a device named by its owner (uid 0) "
                     "or root"),
            std::string::npos)
      << err;
  EXPECT_FALSE(exists(drop + "/pwned")) << "a line of the attacker's ran";
  struct stat st {};
  ASSERT_EQ(stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 0) << "the console wrote into the attacker's file: " << read_all(out);

  auto [code2, err2] = run_console("con2", "tty9");
  EXPECT_EQ(code2, 77) << err2;
  EXPECT_NE(err2.find("\"tty9\" is a process of uid 65534"), std::string::npos) << err2;

  done.notify();
  EXPECT_EQ(exit_code(wait_exit(attacker)), 0);
  kill(impostor, SIGKILL);
  wait_exit(impostor);

  // Root's own console device: its lines run.
  std::string root_in = d.dir() + "/root-in.txt";
  std::string root_out = d.dir() + "/root-out.txt";
  write_file(root_in, "echo hello\ncreate ok /bin/touch " + drop + "/ok\nstart ok\nwait ok\nquit\n",
             0600);
  DeviceParameters p;
  p.path = root_out;
  p.input_path = root_in;
  ASSERT_TRUE(top.create_external_process("rootcons", DeviceKind::kConsole, p));
  auto [code3, err3] = run_console("con3", "rootcons");
  EXPECT_EQ(code3, 0) << err3;
  EXPECT_NE(read_all(root_out).find("hello"), std::string::npos) << read_all(root_out);
  EXPECT_TRUE(exists(drop + "/ok")) << "the console waited for it";
  EXPECT_NE(read_all(root_out).find("ok ended: status 0"), std::string::npos) << read_all(root_out);
}

// ---- 3. supervisor ----------------------------------------------------------

// uid 65534 attaches under the name of a root supervisor's third child. The
// supervisor cannot create it: that child's failure, logged and retried
// after its back-off; the other children keep their pids and the
// supervisor runs on, however many messages the attacker sends (none makes
// it try again sooner, none counts against the intensity of 1). Status and
// restart from 65534 are rejected; root's are served.
TEST(PersonalityAuthority, ANameHeldByAnotherUidFailsOnlyThatChildAndStrangersCannotControl) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to attack as another uid";
  Daemon d(R"({"default_claims": {"buffers": 64, "processes": 8}, "attach": {"uids": [65534]}})");
  ASSERT_TRUE(d.ready());
  d.let_others_in();
  std::string worker = std::string(R"({"program": ")") + kWorker + R"(", "name": ")";
  std::string spec_path = d.dir() + "/spec.json";
  // A back-off long enough that no second try falls within the test: any
  // further try before the restart below would have been made by a message.
  write_file(spec_path,
             R"({"strategy": "one_for_all", "intensity": 1, "period_ms": 600000,
                 "backoff_ms": 600000, "backoff_max_ms": 600000, "children": [)" +
                 worker + R"(a"}, )" + worker + R"(b"}, )" + worker + R"(c"}]})",
             0644);

  Signal holding;
  Signal release;
  Reports reports;
  pid_t attacker = spawn([&]() {
    if (!become()) return 10;
    auto n = Nucleus::attach("c");
    if (!n) return 11;
    holding.notify();
    // Control it would like to have, and a flood of anything.
    if (release.wait() != 'g') return 12;
    reports.put(ask(n.value(), "sup", Message{{os::kStatus, os::kSummary}}));
    reports.put(ask(n.value(), "sup", Message{{os::kRestart, 0}}));
    for (int i = 0; i < 40; ++i) {
      auto a = ask(n.value(), "sup", Message{{i % 2 ? os::kStatus : 7, os::kSummary}});
      if (!a || a->result == NUCLEUS_RESULT_NORMAL) return 13;
    }
    reports.put(Report{0, 0, 0});           // the flood is answered
    return release.wait() == 'q' ? 0 : 14;  // holds the name until told
  });
  ASSERT_EQ(holding.wait(), 'x');

  Nucleus top = attach("top");
  ASSERT_TRUE(top.create_process("sup", Program{kSupervisor, {kSupervisor, spec_path}, {}, {}},
                                 Claims{32, 6, 0, 0, 1 << 20}));
  ASSERT_TRUE(top.start_process("sup"));
  auto status = [&](uint64_t i) {
    auto a = ask(top, "sup", Message{{os::kStatus, i}});
    EXPECT_TRUE(a);
    return a ? a->message : Message{};
  };
  uint64_t pid_a = 0;
  uint64_t pid_b = 0;
  ASSERT_TRUE(eventually([&] {
    pid_a = status(0).word[3];
    pid_b = status(1).word[3];
    return pid_a != 0 && pid_b != 0;
  }));
  ASSERT_TRUE(eventually([&] {
    return log_of(d, "sup").find(
               "cannot create c: another process, not a child of this "
               "supervisor, holds the name; trying again in 600000 ms (try 1)") !=
           std::string::npos;
  })) << log_of(d, "sup");

  release.notify('g');
  Report summary = reports.get();
  Report restart = reports.get();
  EXPECT_EQ(summary.result, NUCLEUS_RESULT_REJECTED);
  EXPECT_EQ(summary.word0, EACCES);
  EXPECT_EQ(restart.result, NUCLEUS_RESULT_REJECTED);
  EXPECT_EQ(restart.word0, EACCES);
  EXPECT_EQ(reports.get().result, 0) << "the flood was answered";

  // The attacker's flood is answered (so the supervisor has seen it all):
  // its other children kept their pids, it made no second try, and it runs.
  auto sum = ask(top, "sup", Message{{os::kStatus, os::kSummary}});
  ASSERT_TRUE(sum);
  EXPECT_EQ(sum->result, NUCLEUS_RESULT_NORMAL);
  EXPECT_EQ(sum->message.word[5], 1U) << "one child waits for a held name";
  auto sup = top.get_process("sup");
  ASSERT_TRUE(sup);
  EXPECT_EQ(sup->state, NUCLEUS_PROCESS_RUNNING);
  EXPECT_EQ(status(0).word[3], pid_a);
  EXPECT_EQ(status(1).word[3], pid_b);
  EXPECT_EQ(status(2).word[1], 0U) << "c is not created: the name is not its child's";
  EXPECT_EQ(log_of(d, "sup").find("(try 2)"), std::string::npos) << log_of(d, "sup");
  EXPECT_NE(log_of(d, "sup").find("refused a message (word 0 " + std::to_string(os::kRestart) +
                                  ") from c: uid 65534 is not the supervisor's owner (uid 0)"),
            std::string::npos)
      << log_of(d, "sup");

  // The name comes free; root asks for the restart now, and is served.
  release.notify('q');
  EXPECT_EQ(exit_code(wait_exit(attacker)), 0);
  ASSERT_TRUE(eventually([&] {
    auto a = ask(top, "sup", Message{{os::kRestart, 2}});
    return a && a->result == NUCLEUS_RESULT_NORMAL && a->message.word[0] != 0;
  }));
  ASSERT_TRUE(eventually([&] {
    Message c = status(2);
    return c.word[1] == NUCLEUS_PROCESS_RUNNING && c.word[7] == 1;
  }));
  EXPECT_EQ(status(0).word[3], pid_a);
  EXPECT_EQ(status(1).word[3], pid_b);
}

}  // namespace
}  // namespace nucleus::test
