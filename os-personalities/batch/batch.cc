// nucleus-batch: an OS that runs jobs from a queue (docs/personalities.md).
//
//   nucleus-batch [--slots N] [--version N] [--allow USER]...
//
// A job is a message (nucleus/personalities.h, kJob): batch runs up to N
// jobs at a time as its children "job-<number>" and answers each job's
// message when that job ends, with its exit status. Its state (the queue,
// the jobs running and the buffers it owes answers on) is one JSON document,
// handed over when it is swapped: no job queued or running is lost.
//
// A job runs as its sender, never with more rights (docs/personalities.md,
// "Who may ask an OS what"; the decisions are in authority.h): a root-owned
// batch names the sender's uid and gid as the job's user and group; a batch
// of another uid takes jobs only from its owner, root, and the uids --allow
// names, and runs them as its owner. A job file is read with the sender's
// rights (read_as.h) or not at all. Refusals are answered rejected, word 0
// = errno, and logged with the sender's name and uid.
#include <unistd.h>

#include <nucleus/personalities.h>

#include "args.h"
#include "authority.h"
#include "read_as.h"
#include "refusal_log.h"
#include "users.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <nucleus/nucleus.hpp>
#include <optional>
#include <string>

namespace {

using json = nlohmann::json;
using nucleus::Message;

// A job file's bytes at most (its strings are bounded by the nucleus at
// 32 KiB), and how long its reading as the sender may take: the reader runs
// as the sender, who may stop it, and batch serves nobody meanwhile.
constexpr size_t kJobFileBytes = size_t{64} * 1024;
constexpr std::chrono::milliseconds kJobFileDeadline{1000};
// Names job-<n> another process holds are skipped, this many at most.
constexpr int kNameTries = 8;

void log_line(const std::string &self, const std::string &text) {
  std::fprintf(stderr, "nucleus-batch %s: %s\n", self.c_str(), text.c_str());
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Job {
  uint64_t number = 0;
  nucleus::Buffer buffer = 0;  // the job's message: answered when it ends
  nucleus::Program program;    // user and group: whom it runs as (authority.h)
  nucleus::Claims claims{};
  std::string sender;  // for the log
  uint32_t sender_uid = 0;
};

// Format 2 of the state: the job's user, group and sender came with the
// rule that a job runs as its sender.
json job_json(const Job &j) {
  return {{"number", j.number},          {"buffer", j.buffer},
          {"program", j.program.path},   {"argv", j.program.argv},
          {"env", j.program.env},        {"cwd", j.program.cwd},
          {"user", j.program.user},      {"group", j.program.group},
          {"sender", j.sender},          {"sender_uid", j.sender_uid},
          {"buffers", j.claims.buffers}, {"processes", j.claims.processes}};
}

Job job_from(const json &j) {
  Job job;
  job.number = j.at("number").get<uint64_t>();
  job.buffer = j.at("buffer").get<uint64_t>();
  job.program.path = j.at("program").get<std::string>();
  job.program.argv = j.at("argv").get<std::vector<std::string>>();
  job.program.env = j.at("env").get<std::vector<std::string>>();
  job.program.cwd = j.value("cwd", std::string());
  job.program.user = j.value("user", std::string());
  job.program.group = j.value("group", std::string());
  job.sender = j.value("sender", std::string());
  job.sender_uid = j.value("sender_uid", uint32_t{0});
  job.claims.buffers = j.value("buffers", uint64_t{4});
  job.claims.processes = j.value("processes", uint64_t{0});
  return job;
}

// Why a job is not taken: the answer's result (rejected: batch will not;
// unintelligible: malformed), its errno (word 0), and a line for the log.
struct Refusal {
  int result = NUCLEUS_RESULT_REJECTED;
  int error = 0;
  std::string why;
};

// The job in a job file's bytes (read with the sender's rights).
std::optional<Refusal> parse_job_file(const std::string &bytes, Job *out) {
  json j = json::parse(bytes, nullptr, false);
  Refusal malformed{NUCLEUS_RESULT_UNINTELLIGIBLE, EINVAL,
                    "the job file is not a JSON object with a \"program\""};
  if (!j.is_object() || !j.contains("program") || !j["program"].is_string()) return malformed;
  try {
    out->program.path = j["program"].get<std::string>();
    out->program.argv = j.value("argv", std::vector<std::string>{});
    out->program.env = j.value("env", std::vector<std::string>{});
    out->program.cwd = j.value("cwd", std::string());
    if (j.contains("claims")) {
      out->claims.buffers = j["claims"].value("buffers", out->claims.buffers);
      out->claims.processes = j["claims"].value("processes", out->claims.processes);
    }
  } catch (const json::exception &) {
    return malformed;
  }
  if (out->program.path.empty()) return malformed;
  return std::nullopt;
}

// The job a message describes (its user and group already set), or why
// not. `file`: how a job file may be read for this sender.
std::optional<Refusal> parse_job(const Message &m, const nucleus_principal_t &sender,
                                 nucleus::os::JobFile file, Job *out) {
  out->claims.buffers = m.word[1] & UINT32_MAX;
  out->claims.processes = m.word[1] >> 32;
  if (out->claims.buffers == 0) out->claims.buffers = 4;
  char text[nucleus::os::kJobTextBytes + 1] = {};
  std::memcpy(text, &m.word[2], nucleus::os::kJobTextBytes);
  if (text[0] == '@') {
    std::string path(text + 1);
    std::string as = "uid " + std::to_string(sender.uid);
    if (file == nucleus::os::JobFile::kRefused) {
      return Refusal{NUCLEUS_RESULT_REJECTED, EACCES,
                     "a job file is read with its sender's rights, and this batch (not root) "
                     "cannot take those of " +
                         as};
    }
    std::optional<nucleus::os::Identity> who;
    if (file == nucleus::os::JobFile::kAsSender)
      who = nucleus::os::Identity{sender.uid, sender.gid};
    nucleus::os::ReadAs got = nucleus::os::read_file_as(path, who, kJobFileBytes, kJobFileDeadline);
    if (got.error != 0) {
      return Refusal{
          NUCLEUS_RESULT_REJECTED, got.error,
          "cannot read the job file " + path + " as " + as + ": " + std::strerror(got.error)};
    }
    return parse_job_file(got.bytes, out);
  }
  // NUL-separated: program, then its arguments (argv[0] is the program).
  size_t at = 0;
  while (at < nucleus::os::kJobTextBytes && text[at] != '\0') {
    std::string part(text + at);
    at += part.size() + 1;
    if (out->program.path.empty()) out->program.path = part;
    out->program.argv.push_back(part);
  }
  if (out->program.path.empty()) {
    return Refusal{NUCLEUS_RESULT_UNINTELLIGIBLE, EINVAL, "the job names no program"};
  }
  return std::nullopt;
}

class Batch {
 public:
  Batch(nucleus::Nucleus &n, uint64_t slots, uint64_t version, nucleus::os::BatchPolicy policy)
      : n_(n), slots_(slots), version_(version), policy_(std::move(policy)), self_(n.name()) {}

  json state() const {
    json j;
    j["format"] = 2;
    j["slots"] = slots_;
    j["next"] = next_;
    j["done"] = done_;
    j["queued"] = json::array();
    for (const Job &job : queued_) j["queued"].push_back(job_json(job));
    j["running"] = json::array();
    for (const auto &[name, job] : running_) j["running"].push_back(job_json(job));
    return j;
  }

  // Format 1 (an older batch) has no senders: its queued jobs cannot be
  // run as their senders, so they are answered rejected (EACCES) and
  // logged; its running jobs run on. Format 2 carries everything.
  bool restore(const json &j) {
    int format = j.value("format", 0);
    if (format != 1 && format != 2) return false;
    next_ = j.at("next").get<uint64_t>();
    done_ = j.at("done").get<uint64_t>();
    for (const json &q : j.at("queued")) {
      Job job = job_from(q);
      if (format == 1) {
        unknown_sender_.push_back(job);
        continue;
      }
      queued_.push_back(std::move(job));
    }
    for (const json &r : j.at("running")) {
      Job job = job_from(r);
      running_[name_of(job)] = job;
    }
    return true;
  }

  int run(std::deque<nucleus::Received> backlog) {
    for (const Job &job : unknown_sender_) {
      Message a{};
      a.word[0] = EACCES;
      a.word[3] = job.number;
      (void)n_.send_answer(job.buffer, NUCLEUS_RESULT_REJECTED, a);
      ++done_;
      log_line(self_, "refused job " + std::to_string(job.number) +
                          ": it was queued by an older batch that did not keep its sender, so it "
                          "cannot run as its sender");
    }
    unknown_sender_.clear();
    for (;;) {
      start_jobs();
      nucleus::Received r;
      if (!backlog.empty()) {
        r = backlog.front();
        backlog.pop_front();
      } else {
        auto got = n_.wait_message();
        if (!got) return 2;
        r = std::move(got.value());
      }
      handle(r);
    }
  }

  // An inherited message this batch's state does not list (it arrived as
  // the old program handed over): served as new.
  bool owes(nucleus::Buffer b) const {
    for (const Job &j : queued_) {
      if (j.buffer == b) return true;
    }
    for (const auto &[name, j] : running_) {
      if (j.buffer == b) return true;
    }
    return false;
  }

 private:
  static std::string name_of(const Job &job) { return "job-" + std::to_string(job.number); }

  void handle(const nucleus::Received &r) {
    if (nucleus::Nucleus::is_handover(r)) {
      std::string bytes = state().dump();
      std::span<const uint8_t> s(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size());
      if (!n_.hand_over(r.buffer, s)) {
        (void)n_.send_answer(r.buffer, NUCLEUS_RESULT_REJECTED, Message{});
      }
      return;
    }
    if (auto notice = nucleus::Nucleus::exit_notice(r);
        notice && r.principal.kind == NUCLEUS_FROM_NUCLEUS) {
      (void)n_.send_answer(r.buffer, NUCLEUS_RESULT_NORMAL, Message{});
      auto it = running_.find(notice->name);
      if (it == running_.end()) return;
      Message a{};
      a.word[0] = static_cast<uint64_t>(notice->exit_kind);
      a.word[1] = static_cast<uint64_t>(notice->exit_value);
      a.word[2] = static_cast<uint64_t>(notice->pid);
      a.word[3] = it->second.number;
      (void)n_.send_answer(it->second.buffer, NUCLEUS_RESULT_NORMAL, a);
      (void)n_.remove_process(it->first);
      running_.erase(it);
      ++done_;
      return;
    }
    const Message &m = r.message;
    if (m.word[0] != nucleus::os::kJob && m.word[0] != nucleus::os::kBatchStatus) {
      (void)n_.send_answer(r.buffer, NUCLEUS_RESULT_UNINTELLIGIBLE, Message{});
      return;
    }
    nucleus::os::JobAuthority auth = nucleus::os::job_authority(r.principal, policy_);
    if (!auth.take) {
      refuse(r, Refusal{NUCLEUS_RESULT_REJECTED, auth.take.error, auth.take.why});
      return;
    }
    if (m.word[0] == nucleus::os::kJob) {
      Job job;
      job.program.user = auth.user;
      job.program.group = auth.group;
      job.sender = r.sender;
      job.sender_uid = r.principal.uid;
      if (auto why = parse_job(m, r.principal, auth.file, &job)) {
        refuse(r, *why);
        return;
      }
      job.number = ++next_;
      job.buffer = r.buffer;
      queued_.push_back(std::move(job));
      return;  // answered when it ends
    }
    Message a{};  // kBatchStatus
    a.word[0] = queued_.size();
    a.word[1] = running_.size();
    a.word[2] = done_;
    a.word[3] = slots_;
    a.word[4] = version_;
    (void)n_.send_answer(r.buffer, NUCLEUS_RESULT_NORMAL, a);
  }

  // Answers a job or status request batch does not take, word 0 = errno,
  // and logs it with the sender (at a bounded rate).
  void refuse(const nucleus::Received &r, const Refusal &why) {
    Message a{};
    a.word[0] = static_cast<uint64_t>(why.error);
    (void)n_.send_answer(r.buffer, why.result, a);
    std::string line =
        refusals_.line(now_ns(), "refused a message from " + r.sender + " (" +
                                     nucleus::os::describe(r.principal) + "): " + why.why);
    if (!line.empty()) log_line(self_, line);
  }

  void start_jobs() {
    while (running_.size() < slots_ && !queued_.empty()) {
      Job job = std::move(queued_.front());
      queued_.pop_front();
      std::string name = name_of(job);
      auto created = n_.create_process(name, job.program, job.claims);
      // Another process holds job-<n>: the job takes the next number (a
      // name a stranger holds must not fail another's job).
      for (int tries = 1; !created && created.error() == -EEXIST && tries < kNameTries; ++tries) {
        log_line(self_, "another process holds " + name + "; job " + std::to_string(job.number) +
                            " takes the next number");
        job.number = ++next_;
        name = name_of(job);
        created = n_.create_process(name, job.program, job.claims);
      }
      auto started = created ? n_.start_process(name) : created;
      if (!started) {
        int step = created ? n_.last_start_step() : NUCLEUS_START_STEP_NONE;
        std::fprintf(stderr, "nucleus-batch: job %llu (%s): cannot %s: %s\n",
                     static_cast<unsigned long long>(job.number), name.c_str(),
                     created ? "start" : "create",
                     nucleus::start_failure(step, started.error(), job.program).c_str());
        Message a{};
        a.word[0] = static_cast<uint64_t>(-started.error());
        a.word[1] = static_cast<uint64_t>(step);
        a.word[3] = job.number;
        (void)n_.send_answer(job.buffer, NUCLEUS_RESULT_MALFUNCTION, a);
        if (created) (void)n_.remove_process(name);
        ++done_;
        continue;
      }
      running_[name] = std::move(job);
    }
  }

  nucleus::Nucleus &n_;
  uint64_t slots_;
  uint64_t version_;
  nucleus::os::BatchPolicy policy_;
  std::string self_;
  nucleus::os::RefusalLog refusals_;
  std::vector<Job> unknown_sender_;  // queued in a format-1 state: refused at run()
  uint64_t next_ = 0;
  uint64_t done_ = 0;
  std::deque<Job> queued_;
  std::map<std::string, Job> running_;
};

int run_batch(int argc, char **argv) {
  CLI::App app{"runs jobs from a queue as its children (docs/personalities.md)", "nucleus-batch"};
  uint64_t slots = 2;
  uint64_t version = 1;
  std::vector<std::string> allow;
  app.add_option("--slots", slots, "jobs run at a time (0: 1)")
      ->check(nucleus::os::count())
      ->capture_default_str();
  app.add_option("--version", version, "the version it reports in a status answer")
      ->check(nucleus::os::count())
      ->capture_default_str();
  app.add_option("--allow", allow,
                 "a uid or user name it takes jobs from (repeatable): for a batch root owns, "
                 "the only senders besides root (none given: everyone, each job run as its "
                 "sender); for any other, senders besides its owner and root");
  if (auto status = nucleus::os::parse_args(app, argc, argv)) return *status;
  if (slots == 0) slots = 1;
  nucleus::os::BatchPolicy policy{getuid(), getgid(), {}};
  for (const std::string &who : allow) {
    uint32_t uid = 0;
    if (!nucleus::os::resolve_uid(who, &uid)) {
      std::fprintf(stderr, "nucleus-batch: --allow: \"%s\" is no uid and no user name\n%s",
                   who.c_str(), app.help().c_str());
      return 64;
    }
    policy.allowed.push_back(uid);
  }
  auto n = nucleus::Nucleus::attach("");
  if (!n) return 3;
  Batch batch(n.value(), slots, version, std::move(policy));
  std::deque<nucleus::Received> backlog;
  if (auto state = n->handover_state()) {
    json j = json::parse(state->begin(), state->end(), nullptr, false);
    if (j.is_discarded()) return 4;
    try {
      if (!batch.restore(j)) return 4;
    } catch (const json::exception &) {
      return 4;
    }
    if (!n->swap_ready()) return 5;
    for (auto &r : n->inherited()) {
      if (!batch.owes(r.buffer)) backlog.push_back(r);
    }
  }
  return batch.run(std::move(backlog));
}

}  // namespace

int main(int argc, char **argv) {
  try {
    return run_batch(argc, argv);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "nucleus-batch: %s\n", e.what());
    return 70;
  }
}
