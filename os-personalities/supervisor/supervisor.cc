// nucleus-supervisor: an OS that starts its children from a JSON spec and
// restarts them in the manner of Erlang/OTP (docs/personalities.md).
//
//   nucleus-supervisor SPEC.json [--version N]
//
// It uses only libnucleus. Children are its children in the nucleus; their
// exit notices drive the restarts. Its whole state is one JSON document: the
// spec and what it knows of each child. That document is what it hands over
// when it is swapped, and what a new supervisor program takes over; a
// supervisor that crashed and is started again instead finds its running
// children with list_children and adopts them.
//
// Who may ask it what (docs/personalities.md, "Who may ask an OS what"): its
// control messages (status, restart) only a process of its owner's uid,
// root's, or a uid its spec's "controllers" names; a ready message only the
// child's own program. A child whose name another process holds is that
// child's failure, retried with back-off: it never ends the other children
// nor counts against the intensity, and no message makes it retry sooner.
#include <unistd.h>

#include <nucleus/personalities.h>

#include "args.h"
#include "authority.h"
#include "refusal_log.h"
#include "spec.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <nlohmann/json.hpp>
#include <nucleus/nucleus.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

using json = nlohmann::json;
using nucleus::Message;
using nucleus::supervisor::ChildSpec;
using nucleus::supervisor::diff_specs;
using nucleus::supervisor::fnv1a;
using nucleus::supervisor::parse_spec;
using nucleus::supervisor::Restart;
using nucleus::supervisor::Spec;
using nucleus::supervisor::spec_json;
using nucleus::supervisor::SpecChange;
using nucleus::supervisor::Strategy;

// What the supervisor knows of a child besides its spec.
struct ChildRun {
  bool started = false;  // its program runs (or ran) since the last (re)start
  bool ready = false;
  bool done = false;  // ended for good (temporary, or transient that exited normally)
  uint64_t restarts = 0;
  int64_t pid = 0;
  uint64_t held = 0;  // tries in a row that found its name held by another process
  // Its last create or start that failed, since it last started (not
  // handed over: the new program finds out again): the errno, the
  // NUCLEUS_START_STEP_* (NONE: refused), and the failures in a row.
  int last_error = 0;
  int last_step = NUCLEUS_START_STEP_NONE;
  uint64_t failures = 0;
};

// A start that failed (not for a held name) with no backoff is tried again
// after this long.
constexpr int64_t kFailedRetryNs = 1000000;  // 1 ms

// A wait of the spec's (up to 2^64-1 ms) in ns, at most about 292 years'
// worth halved, so that now + the wait does not overflow.
int64_t ms_to_ns(uint64_t ms) {
  constexpr uint64_t kMaxMs = static_cast<uint64_t>(INT64_MAX / 2) / 1000000;
  return static_cast<int64_t>(std::min(ms, kMaxMs)) * 1000000;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void log_line(const std::string &self, const std::string &text) {
  std::fprintf(stderr, "%s: %s\n", self.c_str(), text.c_str());
}

// ---- the supervisor ---------------------------------------------------------

class Supervisor {
 public:
  // Built before it attaches (the canonical spec text takes a while for a
  // big spec); bind() gives it the nucleus.
  Supervisor(Spec spec, uint64_t version) : version_(version), owner_uid_(getuid()) {
    set_spec(std::move(spec));
  }
  void bind(nucleus::Nucleus &n) {
    n_ = &n;
    self_ = std::string(n.name());
  }

  // Touches the part of the data area a handover will write, now: the
  // first touch of each page costs a fault (shared memory), which would
  // otherwise fall into the pause of a swap. Never before a handed-over
  // state is read: it is in the data area.
  void prefault() {
    std::span<uint8_t> area = n_->data_area();
    size_t want = std::min(area.size(), 2 * (spec_text_.size() + 48 * runs_.size()) + 4096);
    std::memset(area.data(), 0, want);
  }

  // The state handed over in a swap (format 3): one line of JSON with what
  // it knows of each child, then the spec as canonical JSON. The first line
  // carries the spec's hash, so a new program that read the same spec while
  // it waited for the handover parses only that line (docs/personalities.md).
  std::string state() const {
    int64_t now = now_ns();
    std::string out = R"({"format":3,"spec_hash":)" + std::to_string(spec_hash_) +
                      R"(,"next_start":)" + std::to_string(next_start_) + R"(,"hold_ms":)" +
                      std::to_string(std::max<int64_t>(0, (hold_until_ns_ - now) / 1000000)) +
                      R"(,"restart_times_ms_ago":[)";
    for (size_t i = 0; i < restart_times_.size(); ++i) {
      out += (i ? "," : "") + std::to_string((now - restart_times_[i]) / 1000000);
    }
    out += R"(],"children":[)";
    out.reserve(out.size() + runs_.size() * 32 + spec_text_.size() + 2);
    char row[128];
    for (size_t i = 0; i < runs_.size(); ++i) {
      const ChildRun &r = runs_[i];
      // The sixth number (tries that found the name held) is new in this
      // version; readers of format 3 take the first five and ignore it.
      int len = std::snprintf(
          row, sizeof(row), "%s[%d,%d,%d,%llu,%lld,%llu]", i ? "," : "", r.started ? 1 : 0,
          r.ready ? 1 : 0, r.done ? 1 : 0, static_cast<unsigned long long>(r.restarts),
          static_cast<long long>(r.pid), static_cast<unsigned long long>(r.held));
      out.append(row, static_cast<size_t>(len));
    }
    out += "]}\n";
    out += spec_text_;
    return out;
  }

  // Takes over a state; false when it is not one this program reads.
  // `have_spec`: this program read a spec itself (the one it holds now).
  // When that spec differs from the state's, it is the one that runs from
  // here: the children are matched by name (change_to). Nothing is ended
  // or started here (the swap may still roll back): apply_change() does it
  // once this program has taken over.
  bool restore(std::string_view state, bool have_spec) {
    size_t line = state.find('\n');
    if (line == std::string_view::npos) return false;
    json head = json::parse(state.substr(0, line));
    if (head.value("format", 0) != 3) return false;
    std::string_view spec_text = state.substr(line + 1);
    uint64_t hash = head.at("spec_hash").get<uint64_t>();
    std::optional<Spec> before;  // the state's spec, when it is not the one this program read
    if (!have_spec) {
      set_spec(parse_spec(json::parse(spec_text)));
    } else if (hash != spec_hash_) {  // else the same spec: the long part is not parsed
      before = parse_spec(json::parse(spec_text));
    }
    const json &kids = head.at("children");
    size_t count = before ? before->children.size() : spec_.children.size();
    if (!kids.is_array() || kids.size() != count) return false;
    std::vector<ChildRun> runs(count);
    for (size_t i = 0; i < kids.size(); ++i) {
      const json &k = kids[i];
      runs[i].started = k.at(0).get<int>() != 0;
      runs[i].ready = k.at(1).get<int>() != 0;
      runs[i].done = k.at(2).get<int>() != 0;
      runs[i].restarts = k.at(3).get<uint64_t>();
      runs[i].pid = k.at(4).get<int64_t>();
      runs[i].held = k.size() > 5 ? k.at(5).get<uint64_t>() : 0;  // an older version's: none
    }
    next_start_ = head.value("next_start", size_t{0});
    if (before) {
      change_to(*before, std::move(runs));
    } else {
      runs_ = std::move(runs);
    }
    int64_t now = now_ns();
    hold_until_ns_ = head.value("hold_ms", int64_t{0}) > 0
                         ? now + head.value("hold_ms", int64_t{0}) * 1000000
                         : 0;
    for (const json &t : head.value("restart_times_ms_ago", json::array())) {
      restart_times_.push_back(now - t.get<int64_t>() * 1000000);
    }
    return true;
  }

  // Ends what a changed spec no longer runs, once this program has taken
  // over (restore() only noted it): the children the spec removed, and the
  // old runs of the children it replaced. progress() then starts the added
  // and replaced ones in start order.
  void apply_change() {
    if (change_.empty()) return;
    log_line(self_, change_);
    for (const std::string &name : to_end_) (void)n_->remove_process(name);  // only its own
    to_end_.clear();
    change_.clear();
  }

  // The spec and its canonical text (what the state carries).
  void set_spec(Spec spec) {
    spec_ = std::move(spec);
    runs_.resize(spec_.children.size());
    spec_text_ = spec_json(spec_).dump();
    spec_hash_ = fnv1a(spec_text_);
  }

  // A supervisor started (again) by its parent: children that are already
  // there are adopted, not started twice.
  void adopt() {
    auto kids = n_->list_children();
    if (!kids) return;
    for (const nucleus::ProcessInfo &p : kids.value()) {
      int i = index_of(p.name);
      if (i < 0) continue;
      ChildRun &r = runs_[static_cast<size_t>(i)];
      if (p.state == NUCLEUS_PROCESS_RUNNING || p.state == NUCLEUS_PROCESS_STOPPED ||
          p.state == NUCLEUS_PROCESS_STOPPING) {
        r.started = true;
        r.ready = true;  // it was started before; it said so then
        r.pid = p.pid;
        log_line(self_, "adopted " + std::string(p.name) + " (pid " + std::to_string(p.pid) + ")");
      } else if (p.state == NUCLEUS_PROCESS_EXITED) {
        // It ended while nobody supervised it: as if its notice came now.
        r.started = true;
        r.pid = p.pid;
        child_exited(static_cast<size_t>(i), p.exit_kind, p.exit_value, p.pid);
      }
    }
  }

  int run(std::deque<nucleus::Received> backlog) {
    for (;;) {
      progress();
      // Checked after progress(): a start that failed past the intensity
      // gives up there, and a supervisor that gave up must exit now, not
      // wait for a message it would never get (issue 21: it removed its
      // children and then waited forever, neither giving up nor retrying).
      if (gave_up_) return 1;
      nucleus::Received r;
      if (!backlog.empty()) {
        r = backlog.front();
        backlog.pop_front();
      } else {
        nucleus::Timeout timeout = nucleus::kForever;
        if (hold_until_ns_ > 0 && next_start_ < runs_.size()) {
          timeout = std::chrono::nanoseconds(std::max<int64_t>(0, hold_until_ns_ - now_ns()));
        }
        auto got = n_->wait_message(timeout);
        if (!got) {
          if (got.error() == -ETIMEDOUT) continue;
          log_line(self_, "nucleus gone: " + std::string(got.message()));
          return 2;
        }
        r = std::move(got.value());
      }
      handle(r);
    }
  }

 private:
  // The state's spec was `before` (its runs `runs`, in its order); the spec
  // this program read is spec_, which runs from here (docs/personalities.md,
  // "A changed spec"; decision 72). A child in both whose program and
  // claims are the same carries on as it is (no restart: same pid); a
  // replaced child (program or claims changed) is ended and started from
  // its new spec, counted in its restarts but not against the intensity
  // (nothing crashed); an added one is started in its turn; a removed one
  // is ended. The starts run from the first child again, which skips the
  // ones running.
  void change_to(const Spec &before, std::vector<ChildRun> runs) {
    SpecChange d = diff_specs(before, spec_);
    runs_.assign(spec_.children.size(), ChildRun{});
    std::string added, replaced, removed;
    auto list = [](std::string &to, const std::string &name) {
      to += (to.empty() ? "" : ", ") + name;
    };
    for (size_t i = 0; i < spec_.children.size(); ++i) {
      const ChildSpec &c = spec_.children[i];
      if (!d.from[i]) {
        list(added, c.name);
        continue;
      }
      ChildRun &r = runs_[i];
      r = runs[*d.from[i]];
      if (d.replaced[i]) {
        list(replaced, c.name);
        to_end_.push_back(c.name);
        ChildRun fresh;
        fresh.restarts = r.restarts + (r.started ? 1 : 0);
        r = fresh;
        continue;
      }
      // It was started before: it said ready then, or was not asked to.
      if (c.wait_ready && r.started) r.ready = true;
      // A restart type changed to one that restarts it: it is not done.
      if (r.done && c.restart == Restart::kPermanent) r.done = false;
    }
    for (size_t j : d.removed) {
      list(removed, before.children[j].name);
      to_end_.push_back(before.children[j].name);
    }
    next_start_ = 0;
    change_ = "the spec changed: " + (added.empty() ? "" : "added " + added + "; ") +
              (replaced.empty() ? "" : "replaced (program or claims changed) " + replaced + "; ") +
              (removed.empty() ? "" : "removed " + removed + "; ") + "the other children run on";
  }

  int index_of(std::string_view name) const {
    for (size_t i = 0; i < spec_.children.size(); ++i) {
      if (spec_.children[i].name == name) return static_cast<int>(i);
    }
    return -1;
  }

  void handle(const nucleus::Received &r) {
    if (nucleus::Nucleus::is_handover(r)) {
      std::string bytes = state();
      std::span<const uint8_t> s(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size());
      if (auto rc = n_->hand_over(r.buffer, s); !rc) {
        log_line(self_, "cannot hand over " + std::to_string(bytes.size()) +
                            " bytes of state: " + std::string(rc.message()));
        (void)n_->send_answer(r.buffer, NUCLEUS_RESULT_REJECTED, Message{});
      }
      // From here the nucleus serves us no more until the swap is over: we
      // are ended, or (it failed) we go on as before.
      return;
    }
    if (auto notice = nucleus::Nucleus::exit_notice(r);
        notice && r.principal.kind == NUCLEUS_FROM_NUCLEUS) {
      (void)n_->send_answer(r.buffer, NUCLEUS_RESULT_NORMAL, Message{});
      int i = index_of(notice->name);
      if (i >= 0)
        child_exited(static_cast<size_t>(i), notice->exit_kind, notice->exit_value, notice->pid);
      return;
    }
    const Message &m = r.message;
    if (m.word[0] == nucleus::os::kReady) {
      ready(r);
      return;
    }
    if (m.word[0] == nucleus::os::kStatus || m.word[0] == nucleus::os::kRestart) {
      nucleus::os::Decision d =
          nucleus::os::supervisor_control(r.principal, owner_uid_, spec_.controllers);
      if (!d) {
        refused(r, d);
        return;
      }
      if (m.word[0] == nucleus::os::kStatus) {
        status(r);
      } else {
        restart(r);
      }
      return;
    }
    (void)n_->send_answer(r.buffer, NUCLEUS_RESULT_UNINTELLIGIBLE, Message{});
  }

  // Answers a refused message REJECTED with the errno in word 0, and logs
  // who sent it (at a bounded rate: a refused sender may send many).
  void refused(const nucleus::Received &r, const nucleus::os::Decision &d) {
    Message a{};
    a.word[0] = static_cast<uint64_t>(d.error);
    (void)n_->send_answer(r.buffer, NUCLEUS_RESULT_REJECTED, a);
    std::string line =
        refusals_.line(now_ns(), "refused a message (word 0 " + std::to_string(r.message.word[0]) +
                                     ") from " + r.sender + ": " + d.why);
    if (!line.empty()) log_line(self_, line);
  }

  // A child says it is ready: only its own program may (a process that
  // merely bears its name may not). Its pid is asked again when it differs
  // from the one we know: the child may be an OS that was swapped.
  void ready(const nucleus::Received &r) {
    int i = index_of(r.sender);
    if (i < 0 || !runs_[static_cast<size_t>(i)].started) {
      (void)n_->send_answer(r.buffer, NUCLEUS_RESULT_REJECTED, Message{});
      return;
    }
    ChildRun &run = runs_[static_cast<size_t>(i)];
    nucleus::os::Decision d = nucleus::os::child_ready(r.principal, run.pid);
    if (!d) {
      if (auto info = n_->get_process(r.sender); info && info->pid != run.pid) {
        run.pid = info->pid;
        d = nucleus::os::child_ready(r.principal, run.pid);
      }
    }
    if (!d) {
      refused(r, d);
      return;
    }
    run.ready = true;
    (void)n_->send_answer(r.buffer, NUCLEUS_RESULT_NORMAL, Message{});
  }

  void status(const nucleus::Received &r) {
    const Message &m = r.message;
    Message a{};
    a.word[0] = runs_.size();
    if (m.word[1] == nucleus::os::kSummary) {
      uint64_t restarts = 0, running = 0, held = 0, failing = 0;
      for (const ChildRun &c : runs_) {
        restarts += c.restarts;
        running += c.started && !c.done ? 1 : 0;
        held += c.held > 0 ? 1 : 0;
        failing += !c.started && c.failures > 0 ? 1 : 0;
      }
      a.word[1] = restarts;
      a.word[2] = version_;
      a.word[3] = static_cast<uint64_t>(getpid());
      a.word[4] = running;
      a.word[5] = held;
      a.word[6] = failing;
      (void)n_->send_answer(r.buffer, NUCLEUS_RESULT_NORMAL, a);
      return;
    }
    if (m.word[1] >= runs_.size()) {
      (void)n_->send_answer(r.buffer, NUCLEUS_RESULT_REJECTED, a);
      return;
    }
    const ChildSpec &c = spec_.children[m.word[1]];
    const ChildRun &run = runs_[m.word[1]];
    if (m.word[2] == nucleus::os::kWhy) {
      // Why it does not run: its last create or start that failed.
      a.word[1] = static_cast<uint64_t>(-run.last_error);
      a.word[2] = static_cast<uint64_t>(run.last_step);
      a.word[3] = run.failures;
      std::memcpy(&a.word[4], c.name.c_str(), std::min<size_t>(c.name.size(), 23));
      (void)n_->send_answer(r.buffer, NUCLEUS_RESULT_NORMAL, a);
      return;
    }
    // Only its own child: a name another process holds is "not created".
    auto info = n_->get_process(c.name);
    a.word[1] = info ? static_cast<uint64_t>(info->state) : 0;
    a.word[2] = run.restarts;
    a.word[3] = info ? static_cast<uint64_t>(info->pid) : 0;
    // Words 4..6: its name (up to 23 bytes here); word 7: it said ready.
    std::memcpy(&a.word[4], c.name.c_str(), std::min<size_t>(c.name.size(), 23));
    a.word[7] = run.ready ? 1 : 0;
    (void)n_->send_answer(r.buffer, NUCLEUS_RESULT_NORMAL, a);
  }

  // A controller asks for a restart of one child: it is ended with its
  // subtree and started again from its spec, now if its turn in the start
  // order has come (a wait for it, its back-off or a held name's, is cut
  // short), else when it comes. Not counted against the intensity: nothing
  // crashed.
  void restart(const nucleus::Received &r) {
    Message a{};
    uint64_t index = r.message.word[1];
    if (index >= runs_.size()) {
      a.word[0] = EINVAL;
      (void)n_->send_answer(r.buffer, NUCLEUS_RESULT_REJECTED, a);
      return;
    }
    auto i = static_cast<size_t>(index);
    const ChildSpec &c = spec_.children[i];
    ChildRun &run = runs_[i];
    log_line(self_, "restart of " + c.name + " asked by " + r.sender + " (" +
                        nucleus::os::describe(r.principal) + ")");
    (void)n_->remove_process(c.name);  // only ever its own child
    run.started = false;
    run.ready = false;
    run.done = false;
    run.held = 0;
    run.last_error = 0;
    ++run.restarts;
    if (next_start_ >= i) {
      next_start_ = i;
      hold_until_ns_ = 0;
    }
    progress();
    if (run.started || next_start_ < i) {
      a.word[0] = run.started ? static_cast<uint64_t>(run.pid) : 0;
      (void)n_->send_answer(r.buffer, NUCLEUS_RESULT_NORMAL, a);
      return;
    }
    a.word[0] = static_cast<uint64_t>(run.last_error != 0 ? -run.last_error : EAGAIN);
    (void)n_->send_answer(r.buffer, NUCLEUS_RESULT_REJECTED, a);
  }

  // Starts children in order: each waits for the one before it to be
  // ready when that one's spec asks for it. A start that failed is tried
  // again on the supervisor's own time, after a hold (its back-off, a held
  // name's wait, or kFailedRetryNs), never because a message came (any
  // process may send one): every failure sets a hold or gives up, so this
  // loop ends.
  void progress() {
    for (;;) {
      if (gave_up_ || hold_until_ns_ > now_ns()) return;
      hold_until_ns_ = 0;
      if (next_start_ >= runs_.size()) return;
      size_t i = next_start_;
      ChildRun &r = runs_[i];
      const ChildSpec &c = spec_.children[i];
      if (!r.started && !r.done && !start(i)) continue;  // it set a hold, or gave up
      if (!r.done && c.wait_ready && !r.ready) return;   // its ready message moves us on
      ++next_start_;
    }
  }

  bool start(size_t i) {
    const ChildSpec &c = spec_.children[i];
    ChildRun &r = runs_[i];
    const nucleus::spec::Program &p = c.program;
    nucleus::Program program{p.path, p.argv, p.env, p.cwd, p.user, p.group};
    program.env.push_back("NUCLEUS_SUPERVISOR=" + self_);
    const nucleus::spec::Claims &k = c.claims;
    nucleus::Claims claims{k.buffers, k.processes, k.memory_bytes, k.devices, k.data_bytes};
    auto info = n_->get_process(c.name);  // only its own child is found
    if (!info) {
      if (auto rc = n_->create_process(c.name, program, claims); !rc) {
        r.last_error = rc.error();
        r.last_step = NUCLEUS_START_STEP_NONE;
        if (nucleus::os::name_held(rc.error())) return held(i);
        return failed(i, "cannot create " + c.name + ": " + std::string(rc.message()));
      }
    }
    r.held = 0;
    if (auto rc = n_->start_process(c.name); !rc && rc.error() != -EALREADY) {
      r.last_error = rc.error();
      r.last_step = n_->last_start_step();
      // The step that failed and its errno ("cannot execute PATH: ...").
      return failed(i, "cannot start " + c.name + ": " +
                           nucleus::start_failure(r.last_step, rc.error(), program));
    }
    r.last_error = 0;
    r.last_step = NUCLEUS_START_STEP_NONE;
    r.failures = 0;
    r.started = true;
    r.ready = false;
    auto now = n_->get_process(c.name);
    r.pid = now ? now->pid : 0;
    return true;
  }

  // Another process (not its child: another owner's, or a device) holds
  // the child's name, so it cannot be created. That is this child's
  // failure, not a crash of the supervisor: it is logged and tried again
  // after held_retry_ms (doubling per try); the children after it in start
  // order wait for it (they may talk to it by name, and would reach the
  // holder), the others run on, and the intensity does not count it.
  bool held(size_t i) {
    ChildRun &r = runs_[i];
    r.started = false;
    ++r.held;
    uint64_t ms = nucleus::os::held_retry_ms(spec_.backoff_ms, spec_.backoff_max_ms, r.held);
    hold_until_ns_ = now_ns() + ms_to_ns(ms);
    log_line(self_, "cannot create " + spec_.children[i].name +
                        ": another process, not a child of this supervisor, holds the name; "
                        "trying again in " +
                        std::to_string(ms) + " ms (try " + std::to_string(r.held) +
                        "); the children before it run on");
    return false;
  }

  // A child that cannot be created or started counts as a restart of it,
  // with its strategy, backoff and intensity like a crash (so a program
  // that is missing makes the supervisor give up, not spin). With no
  // backoff it is tried again after kFailedRetryNs, not in a loop: with a
  // short period_ms the intensity may never be passed, and the supervisor
  // must go on answering messages meanwhile. `why` names the step, the
  // path and the errno; the log says it and what follows.
  bool failed(size_t i, const std::string &why) {
    ChildRun &r = runs_[i];
    r.started = false;
    ++r.failures;
    last_failure_ = why;
    restart_after_failure(i);
    if (gave_up_) return false;  // give_up() said why
    if (hold_until_ns_ == 0) hold_until_ns_ = now_ns() + kFailedRetryNs;
    int64_t wait_ms = std::max<int64_t>(0, (hold_until_ns_ - now_ns()) / 1000000);
    log_line(self_, why + "; trying again in " + std::to_string(wait_ms) + " ms (failure " +
                        std::to_string(r.failures) + " in a row; restart " +
                        std::to_string(restart_times_.size()) + " of at most " +
                        std::to_string(spec_.intensity) + " in " + std::to_string(spec_.period_ms) +
                        " ms)");
    return false;
  }

  void child_exited(size_t i, int kind, int value, int64_t pid) {
    ChildRun &r = runs_[i];
    if (!r.started || (pid != 0 && r.pid != 0 && pid != r.pid)) return;  // a stale notice
    const ChildSpec &c = spec_.children[i];
    bool normal = kind == NUCLEUS_EXIT_CODE && value == 0;
    log_line(self_, c.name + " (pid " + std::to_string(pid) + ") " +
                        (kind == NUCLEUS_EXIT_SIGNAL ? "killed by signal " : "exited with ") +
                        std::to_string(value));
    r.started = false;
    r.ready = false;
    last_failure_.clear();  // a crash, not a failed start, is the latest restart's cause
    if (c.restart == Restart::kTemporary || (c.restart == Restart::kTransient && normal)) {
      r.done = true;
      if (c.restart == Restart::kTemporary) (void)n_->remove_process(c.name);
      return;
    }
    restart_after_failure(i);
  }

  void restart_after_failure(size_t i) {
    int64_t now = now_ns();
    int64_t period = static_cast<int64_t>(spec_.period_ms) * 1000000;
    restart_times_.push_back(now);
    while (!restart_times_.empty() && now - restart_times_.front() > period) {
      restart_times_.pop_front();
    }
    if (restart_times_.size() > spec_.intensity) {
      give_up();
      return;
    }
    // Which children restart, and which of them must be ended first.
    size_t first = i;
    size_t last = i;
    if (spec_.strategy == Strategy::kOneForAll) {
      first = 0;
      last = runs_.size() - 1;
    } else if (spec_.strategy == Strategy::kRestForOne) {
      last = runs_.size() - 1;
    }
    for (size_t k = first; k <= last; ++k) {
      ChildRun &r = runs_[k];
      if (r.done && k != i) continue;
      if (k != i && r.started) {
        // Ended with its subtree; it comes back with its spec's claims.
        (void)n_->remove_process(spec_.children[k].name);
      }
      r.started = false;
      r.ready = false;
      ++r.restarts;
    }
    next_start_ = std::min(next_start_, first);
    // Backoff: backoff_ms, doubled for each earlier restart in the period.
    if (spec_.backoff_ms > 0) {
      uint64_t shift = std::min<uint64_t>(restart_times_.size() - 1, 16);
      uint64_t ms = std::min(spec_.backoff_ms << shift, spec_.backoff_max_ms);
      hold_until_ns_ = now + ms_to_ns(ms);
    }
  }

  // Too many restarts: end every child (last started first) and exit, so
  // that our own parent decides.
  void give_up() {
    log_line(self_, "more than " + std::to_string(spec_.intensity) + " restarts in " +
                        std::to_string(spec_.period_ms) + " ms: giving up" +
                        (last_failure_.empty() ? "" : " (the last: " + last_failure_ + ")"));
    for (size_t k = runs_.size(); k > 0; --k) (void)n_->remove_process(spec_.children[k - 1].name);
    gave_up_ = true;
  }

  nucleus::Nucleus *n_ = nullptr;
  Spec spec_;
  std::vector<ChildRun> runs_;
  uint64_t version_;
  uint32_t owner_uid_;  // its own uid: who it runs as, its owner's
  nucleus::os::RefusalLog refusals_;
  std::string spec_text_;  // canonical JSON of spec_
  uint64_t spec_hash_ = 0;
  std::string self_;
  std::vector<std::string> to_end_;  // a changed spec's: ended once this program took over
  std::string change_;               // what changed (logged once it took over)
  std::string last_failure_;         // why the last create or start failed ("": none)
  size_t next_start_ = 0;
  int64_t hold_until_ns_ = 0;
  std::deque<int64_t> restart_times_;
  bool gave_up_ = false;
};

}  // namespace

int main(int argc, char **argv) {
  CLI::App app{"starts children from a spec and restarts them (docs/personalities.md)",
               "nucleus-supervisor"};
  std::string spec_path;
  uint64_t version = 1;
  app.add_option("spec", spec_path, "the spec (JSON); a swap's new program may go without");
  app.add_option("--version", version, "the version it reports in a status summary")
      ->check(nucleus::os::count())
      ->capture_default_str();
  if (auto status = nucleus::os::parse_args(app, argc, argv)) return *status;
  // The spec is read before attaching: a swap's new program does this while
  // the old one still serves (nucleusd asks for the handover when we
  // attach), and then needs only the short part of the state.
  std::optional<Spec> spec;
  if (!spec_path.empty()) {
    std::ifstream in(spec_path);
    if (!in) {
      std::fprintf(stderr, "nucleus-supervisor: cannot read %s\n", spec_path.c_str());
      return 66;
    }
    try {
      spec = parse_spec(json::parse(in));
    } catch (const std::exception &e) {
      std::fprintf(stderr, "nucleus-supervisor: %s: %s\n", spec_path.c_str(), e.what());
      return 65;
    }
  }
  Supervisor s(spec.value_or(Spec{}), version);
  auto n = nucleus::Nucleus::attach("");  // the connection nucleusd bound for us
  if (!n) {
    std::fprintf(stderr, "nucleus-supervisor: cannot attach: %s\n", n.message().data());
    return 3;
  }
  std::string self(n->name());
  try {
    std::deque<nucleus::Received> backlog;
    s.bind(n.value());
    size_t size = 0;
    if (const void *state = nucleus_handover_state(n->c_handle(), &size); state != nullptr) {
      if (!s.restore(std::string_view(static_cast<const char *>(state), size), spec.has_value())) {
        log_line(self, "state format not understood");
        return 4;
      }
      if (auto rc = n->swap_ready(); !rc) {
        log_line(self, "swap_ready: " + std::string(rc.message()));
        return 5;
      }
      log_line(self, "took over (version " + std::to_string(version) + ")");
      s.apply_change();
      s.prefault();
      for (auto &r : n->inherited()) backlog.push_back(r);
      return s.run(std::move(backlog));
    }
    if (!spec) {
      std::fprintf(stderr, "nucleus-supervisor: a SPEC is needed (no state was handed over)\n%s",
                   app.help().c_str());
      return 64;
    }
    s.prefault();
    s.adopt();
    return s.run(std::move(backlog));
  } catch (const std::exception &e) {
    log_line(self, std::string("bad spec or state: ") + e.what());
    return 65;
  }
}
