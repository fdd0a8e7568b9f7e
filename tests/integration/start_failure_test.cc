// A program that cannot run: its start is answered with the errno of the
// step that failed and says which step (exec, chdir), never as a refusal by
// the nucleus; nucleusctl, nucleusd's log and the personalities name the
// step, the path and the errno ("start of x failed: cannot execute /p:
// Permission denied"). As root and as uid 65534: a file that is not
// executable, a path that is not there, a program in a directory its owner
// cannot enter, a working directory that is not there; and a swap, a
// supervisor's child, a batch job and a console command with such a program.
#include <gtest/gtest.h>
#include <nucleus/personalities.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "commands.h"
#include "harness.h"
#include "run_program.h"

namespace nucleus::test {
namespace {

const char *kCtl = NUCLEUSCTL_PATH;
const char *kProgram = NUCLEUS_TEST_PROGRAM;
const char *kSupervisor = NUCLEUS_SUPERVISOR_PATH;
const char *kBatch = NUCLEUS_BATCH_PATH;
const char *kConsole = NUCLEUS_CONSOLE_PATH;

// A child whose program cannot run, and what its start must say.
struct Case {
  std::string name;
  Program program;
  int code;          // what start_process returns
  int step;          // NUCLEUS_START_STEP_*
  std::string text;  // the step, the path and the errno's text
};

// What went wrong with `c` as `n`'s child ("" when its start said it right).
std::string check_start(Nucleus &n, const Case &c) {
  if (auto r = n.create_process(c.name, c.program, Claims{2, 0, 0, 0, 0}); !r) {
    return "create: " + std::string(r.message());
  }
  auto r = n.start_process(c.name);
  std::ostringstream out;
  if (r.error() != c.code) out << "code " << r.error() << " (want " << c.code << ") ";
  if (n.last_start_step() != c.step) out << "step " << n.last_start_step() << " ";
  std::string text = start_failure(n.last_start_step(), r.error(), c.program);
  if (text != c.text) out << "text \"" << text << "\"";
  return out.str();
}

class StartFailure : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to run programs as another uid";
    daemon_ = std::make_unique<Daemon>(R"({"attach": {"uids": [65534]},
        "default_claims": {"buffers": 32, "processes": 8}})");
    ASSERT_TRUE(daemon_->ready()) << daemon_->log();
    daemon_->let_others_in();
    files_ = daemon_->dir() + "/files";
    ASSERT_EQ(mkdir(files_.c_str(), 0755), 0);
    ASSERT_EQ(chmod(files_.c_str(), 0755), 0);
    plain_ = files_ + "/plain";  // a script with no x bit: exec's EACCES, even for root
    std::ofstream(plain_) << "#!/bin/sh\nexit 0\n";
    ASSERT_EQ(chmod(plain_.c_str(), 0644), 0);
    // A program others may run, in a directory only root may enter.
    std::string closed = files_ + "/closed";
    ASSERT_EQ(mkdir(closed.c_str(), 0700), 0);
    closed_ = closed + "/prog";
    std::filesystem::copy_file("/bin/true", closed_);
    ASSERT_EQ(chmod(closed_.c_str(), 0755), 0);
  }

  // As root, the program in the closed directory is given to uid 65534
  // (root itself may enter any directory); the others run as their
  // creator's owner.
  std::vector<Case> cases(bool as_root) const {
    const std::string user;
    const std::string closed_user = as_root ? "nobody" : "";
    const std::string denied = ": Permission denied";
    const std::string missing = files_ + "/missing";
    const std::string nowhere = files_ + "/nowhere";
    return {
        {"plain", Program{plain_, {}, {}, "", user}, -EACCES, NUCLEUS_START_STEP_EXEC,
         "cannot execute " + plain_ + denied},
        {"missing", Program{missing, {}, {}, "", user}, -ENOENT, NUCLEUS_START_STEP_EXEC,
         "cannot execute " + missing + ": No such file or directory"},
        {"closed", Program{closed_, {}, {}, "", closed_user}, -EACCES, NUCLEUS_START_STEP_EXEC,
         "cannot execute " + closed_ + denied},
        {"nowhere", Program{"/bin/true", {}, {}, nowhere, user}, -ENOENT, NUCLEUS_START_STEP_CHDIR,
         "cannot enter its working directory " + nowhere + ": No such file or directory"},
    };
  }

  Ran ctl(const std::string &path, std::vector<std::string> args) {
    args.insert(args.begin(), {"--socket", daemon_->socket_path()});
    return run_program(path, args);
  }

  // nucleusctl as uid 65534 (its exit code and stderr).
  Ran ctl_as_nobody(std::vector<std::string> args) {
    std::string path = for_others(kCtl);
    args.insert(args.begin(), {"--socket", daemon_->socket_path()});
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    pid_t pid = spawn([&] {
      close(fds[0]);
      if (!become()) return 126;
      Ran r = run_program(path, args);
      std::string said = std::to_string(r.code) + "\n" + r.err;
      return write(fds[1], said.data(), said.size()) == static_cast<ssize_t>(said.size()) ? 0 : 1;
    });
    close(fds[1]);
    std::string said;
    char buf[4096];
    for (ssize_t got; (got = read(fds[0], buf, sizeof(buf))) > 0;) said.append(buf, got);
    close(fds[0]);
    EXPECT_EQ(exit_code(wait_exit(pid)), 0);
    Ran r;
    size_t eol = said.find('\n');
    if (eol == std::string::npos) return r;
    r.code = std::stoi(said.substr(0, eol));
    r.err = said.substr(eol + 1);
    return r;
  }

  // Waits for `needle` in the file at `path` (a program's output file).
  static bool shows(const std::string &path, const std::string &needle, std::string *text) {
    return eventually([&] {
      std::ifstream in(path);
      std::stringstream ss;
      ss << in.rdbuf();
      *text = ss.str();
      return text->find(needle) != std::string::npos;
    });
  }

  std::unique_ptr<Daemon> daemon_;
  std::string files_;
  std::string plain_;
  std::string closed_;
};

TEST_F(StartFailure, AsRootTheAnswerNucleusctlAndTheLogNameTheStepThePathAndTheErrno) {
  Nucleus top = attach("top");
  for (const Case &c : cases(true)) {
    EXPECT_EQ(check_start(top, c), "") << c.name;
    // The operator's nucleusctl starts the same entry: the same words.
    Ran r = ctl(kCtl, {"start", c.name});
    EXPECT_EQ(r.code, 1) << c.name;
    EXPECT_NE(r.err.find("start of " + c.name + " failed: " + c.text), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("operator"), std::string::npos) << r.err;
    EXPECT_NE(daemon_->log().find("process " + c.name + ": " + c.text), std::string::npos)
        << c.name;
  }
  // Nothing of them runs: each is still created, never started.
  for (const Case &c : cases(true)) {
    auto info = top.get_process(c.name);
    ASSERT_TRUE(info) << c.name;
    EXPECT_EQ(info->state, NUCLEUS_PROCESS_CREATED) << c.name;
    EXPECT_EQ(info->pid, 0) << c.name;
  }
}

TEST_F(StartFailure, AsUid65534TheAnswerAndNucleusctlNameTheStepThePathAndTheErrno) {
  std::vector<Case> all = cases(false);
  Signal checked;
  Signal done;
  int report[2];
  ASSERT_EQ(pipe(report), 0);
  pid_t owner = spawn([&] {
    close(report[0]);
    if (!become()) return 10;
    auto n = Nucleus::attach("mallory");
    if (!n) return 11;
    std::string failures;
    for (const Case &c : all) {
      std::string wrong = check_start(n.value(), c);
      if (!wrong.empty()) failures += c.name + ": " + wrong + "\n";
    }
    (void)!write(report[1], failures.data(), failures.size());
    close(report[1]);
    checked.notify();
    return done.wait() == 'x' ? 0 : 12;  // attached while nucleusctl acts for it
  });
  close(report[1]);
  ASSERT_EQ(checked.wait(), 'x');
  std::string failures;
  char buf[4096];
  for (ssize_t got; (got = read(report[0], buf, sizeof(buf))) > 0;) failures.append(buf, got);
  close(report[0]);
  EXPECT_EQ(failures, "");
  // nucleusctl as the same uid, acting for its process.
  for (const Case &c : all) {
    Ran r = ctl_as_nobody({"start", c.name});
    EXPECT_EQ(r.code, 1) << c.name;
    EXPECT_NE(r.err.find("start of " + c.name + " failed: " + c.text), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("operator"), std::string::npos) << r.err;
  }
  done.notify();
  EXPECT_EQ(exit_code(wait_exit(owner)), 0);
}

TEST_F(StartFailure, ASwapToAProgramThatCannotRunSaysTheStepAndTheOldProgramRunsOn) {
  Nucleus top = attach("top");
  ASSERT_TRUE(top.create_process("os", Program{kProgram, {kProgram, "serve"}, {}, ""},
                                 Claims{4, 0, 0, 0, 0}));
  ASSERT_TRUE(top.start_process("os"));
  ask(top, "os", command(::test::Command::kEcho));  // it serves: attached, so it may be swapped
  auto before = top.get_process("os");
  ASSERT_TRUE(before);
  auto b = top.swap_process("os", Program{plain_, {}, {}, ""});
  ASSERT_TRUE(b) << b.message();
  auto a = top.wait_answer(b.value(), kDeadline);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result, NUCLEUS_RESULT_REJECTED);
  EXPECT_EQ(a->message.word[0], static_cast<uint64_t>(NUCLEUS_SWAP_START_FAILED));
  EXPECT_EQ(a->message.word[1], static_cast<uint64_t>(EACCES));
  EXPECT_EQ(a->message.word[NUCLEUS_SWAP_WORD_START_STEP],
            static_cast<uint64_t>(NUCLEUS_START_STEP_EXEC));
  Ran r = ctl(kCtl, {"swap", "os", plain_});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("swap os not done: the new program could not be started: cannot execute " +
                       plain_ + ": Permission denied; the old program runs on"),
            std::string::npos)
      << r.err;
  auto after = top.get_process("os");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->state, NUCLEUS_PROCESS_RUNNING);
  EXPECT_EQ(after->pid, before->pid);
}

TEST_F(StartFailure, ThePersonalitiesNameTheStepThePathAndTheErrno) {
  Nucleus top = attach("top");
  const std::string text = "cannot execute " + plain_ + ": Permission denied";
  // The supervisor's log (its output file).
  std::string spec = daemon_->dir() + "/spec.json";
  std::ofstream(spec) << R"({"strategy": "one_for_one", "children": [{"name": "a", "program": ")"
                      << plain_ << R"("}]})";
  ASSERT_TRUE(top.create_process("sup", Program{kSupervisor, {kSupervisor, spec}, {}, ""},
                                 Claims{8, 2, 0, 0, 0}));
  ASSERT_TRUE(top.start_process("sup"));
  std::string log;
  EXPECT_TRUE(shows(daemon_->dir() + "/run/output/0/sup.log", "cannot start a: " + text, &log))
      << log;
  // A batch job: answered malfunction with the errno and the step; its log says so.
  ASSERT_TRUE(
      top.create_process("batch", Program{kBatch, {kBatch}, {}, ""}, Claims{8, 2, 0, 0, 0}));
  ASSERT_TRUE(top.start_process("batch"));
  ASSERT_LT(plain_.size(), os::kJobTextBytes);
  Message job{};
  job.word[0] = os::kJob;
  job.word[1] = 2;
  std::memcpy(&job.word[2], plain_.data(), plain_.size());
  auto b = top.send_message("batch", job);
  ASSERT_TRUE(b);
  auto a = top.wait_answer(b.value(), kDeadline);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result, NUCLEUS_RESULT_MALFUNCTION);
  EXPECT_EQ(a->message.word[0], static_cast<uint64_t>(EACCES));
  EXPECT_EQ(a->message.word[1], static_cast<uint64_t>(NUCLEUS_START_STEP_EXEC));
  EXPECT_TRUE(shows(daemon_->dir() + "/run/output/0/batch.log", text, &log)) << log;
  // The console's answer to "start".
  std::string script = daemon_->dir() + "/script.txt";
  std::ofstream(script) << "create bad buffers=2 " << plain_ << "\nstart bad\n";
  Ran r = run_program(kConsole, {"--script", script});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("error: start bad: " + text), std::string::npos) << r.out << r.err;
}

}  // namespace
}  // namespace nucleus::test
