// nucleus-batch: an OS that runs jobs from a queue (docs/personalities.md).
//
//   nucleus-batch [--slots N] [--version N]
//
// A job is a message (nucleus/personalities.h, kJob): batch runs up to N
// jobs at a time as its children "job-<number>" and answers each job's
// message when that job ends, with its exit status. Its state (the queue,
// the jobs running and the buffers it owes answers on) is one JSON document,
// handed over when it is swapped: no job queued or running is lost.
#include <unistd.h>

#include <nucleus/personalities.h>

#include "args.h"

#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <nucleus/nucleus.hpp>
#include <string>

namespace {

using json = nlohmann::json;
using nucleus::Message;

struct Job {
  uint64_t number = 0;
  nucleus::Buffer buffer = 0;  // the job's message: answered when it ends
  nucleus::Program program;
  nucleus::Claims claims{};
};

json job_json(const Job &j) {
  return {{"number", j.number},          {"buffer", j.buffer},
          {"program", j.program.path},   {"argv", j.program.argv},
          {"env", j.program.env},        {"cwd", j.program.cwd},
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
  job.claims.buffers = j.value("buffers", uint64_t{4});
  job.claims.processes = j.value("processes", uint64_t{0});
  return job;
}

// The job a message describes, or an errno-style reason it is malformed.
int parse_job(const Message &m, Job *out) {
  out->claims.buffers = m.word[1] & UINT32_MAX;
  out->claims.processes = m.word[1] >> 32;
  if (out->claims.buffers == 0) out->claims.buffers = 4;
  char text[nucleus::os::kJobTextBytes + 1] = {};
  std::memcpy(text, &m.word[2], nucleus::os::kJobTextBytes);
  if (text[0] == '@') {
    std::ifstream in(text + 1);
    if (!in) return -ENOENT;
    json j = json::parse(in, nullptr, false);
    if (!j.is_object() || !j.contains("program") || !j["program"].is_string()) return -EINVAL;
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
      return -EINVAL;
    }
    return out->program.path.empty() ? -EINVAL : 0;
  }
  // NUL-separated: program, then its arguments (argv[0] is the program).
  size_t at = 0;
  while (at < nucleus::os::kJobTextBytes && text[at] != '\0') {
    std::string part(text + at);
    at += part.size() + 1;
    if (out->program.path.empty()) out->program.path = part;
    out->program.argv.push_back(part);
  }
  return out->program.path.empty() ? -EINVAL : 0;
}

class Batch {
 public:
  Batch(nucleus::Nucleus &n, uint64_t slots, uint64_t version)
      : n_(n), slots_(slots), version_(version) {}

  json state() const {
    json j;
    j["format"] = 1;
    j["slots"] = slots_;
    j["next"] = next_;
    j["done"] = done_;
    j["queued"] = json::array();
    for (const Job &job : queued_) j["queued"].push_back(job_json(job));
    j["running"] = json::array();
    for (const auto &[name, job] : running_) j["running"].push_back(job_json(job));
    return j;
  }

  bool restore(const json &j) {
    if (j.value("format", 0) != 1) return false;
    next_ = j.at("next").get<uint64_t>();
    done_ = j.at("done").get<uint64_t>();
    for (const json &q : j.at("queued")) queued_.push_back(job_from(q));
    for (const json &r : j.at("running")) {
      Job job = job_from(r);
      running_[name_of(job)] = job;
    }
    return true;
  }

  int run(std::deque<nucleus::Received> backlog) {
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
    if (auto notice = nucleus::Nucleus::exit_notice(r)) {
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
    if (m.word[0] == nucleus::os::kJob) {
      Job job;
      if (int rc = parse_job(m, &job); rc < 0) {
        Message a{};
        a.word[0] = static_cast<uint64_t>(-rc);
        (void)n_.send_answer(r.buffer, NUCLEUS_RESULT_UNINTELLIGIBLE, a);
        return;
      }
      job.number = ++next_;
      job.buffer = r.buffer;
      queued_.push_back(std::move(job));
      return;  // answered when it ends
    }
    if (m.word[0] == nucleus::os::kBatchStatus) {
      Message a{};
      a.word[0] = queued_.size();
      a.word[1] = running_.size();
      a.word[2] = done_;
      a.word[3] = slots_;
      a.word[4] = version_;
      (void)n_.send_answer(r.buffer, NUCLEUS_RESULT_NORMAL, a);
      return;
    }
    (void)n_.send_answer(r.buffer, NUCLEUS_RESULT_UNINTELLIGIBLE, Message{});
  }

  void start_jobs() {
    while (running_.size() < slots_ && !queued_.empty()) {
      Job job = std::move(queued_.front());
      queued_.pop_front();
      std::string name = name_of(job);
      auto created = n_.create_process(name, job.program, job.claims);
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
  uint64_t next_ = 0;
  uint64_t done_ = 0;
  std::deque<Job> queued_;
  std::map<std::string, Job> running_;
};

int run_batch(int argc, char **argv) {
  CLI::App app{"runs jobs from a queue as its children (docs/personalities.md)", "nucleus-batch"};
  uint64_t slots = 2;
  uint64_t version = 1;
  app.add_option("--slots", slots, "jobs run at a time (0: 1)")
      ->check(nucleus::os::count())
      ->capture_default_str();
  app.add_option("--version", version, "the version it reports in a status answer")
      ->check(nucleus::os::count())
      ->capture_default_str();
  if (auto status = nucleus::os::parse_args(app, argc, argv)) return *status;
  if (slots == 0) slots = 1;
  auto n = nucleus::Nucleus::attach("");
  if (!n) return 3;
  Batch batch(n.value(), slots, version);
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
