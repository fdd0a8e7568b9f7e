// nucleus-console: an operator's command interpreter in the manner of the
// RC 4000's basic operating system S (docs/personalities.md). It reads one
// command per line from a console device (by default "console", which
// nucleusd serves on its own terminal) or from a script file, and acts on
// its own children:
//
//   create NAME [buffers=N] [processes=N] [memory=N] [devices=N] [data=N] PROGRAM [ARG...]
//   load NAME PROGRAM [ARG...]     a new program for a created, stopped or exited child
//   start NAME | stop NAME | remove NAME
//   list                           its children: state, pid, claims
//   send NAME WORD...              up to 8 words; prints the answer
//   swap NAME PROGRAM [ARG...]     hot swap of an OS that is its child
//   claims [NAME [buffers=N] ...]  its own claims, or a child's (changed when given)
//   wait NAME                      until NAME's program ends
//   echo TEXT | help | quit
//
//   nucleus-console [--script FILE] [--device NAME]
//
// Errors are one line ("error: stop os: no such process"); a script ends
// with status 1 when any command failed.
//
// It acts with its owner's rights on whatever it reads, so it reads
// commands only from a device named by its owner or by root
// (authority.h, console_device; docs/personalities.md, "Who may ask an OS
// what"): before it prints or reads anything it probes the device with a
// message that has no effect, and it checks the principal of every answer
// the device gives. A device named by another uid, or a process answering
// under the device's name, is refused: the console says why on stderr (and
// stdout), reads nothing more from it, writes nothing to it, and exits with
// status 77. A script given with --script is its owner's own file.
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "authority.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <nucleus/nucleus.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

using nucleus::Message;

const char *state_name(int state) {
  switch (state) {
    case NUCLEUS_PROCESS_CREATED: return "created";
    case NUCLEUS_PROCESS_RUNNING: return "running";
    case NUCLEUS_PROCESS_STOPPING: return "stopping";
    case NUCLEUS_PROCESS_STOPPED: return "stopped";
    case NUCLEUS_PROCESS_EXITED: return "exited";
    default: return "?";
  }
}

const char *swap_outcome(uint64_t w) {
  switch (w) {
    case NUCLEUS_SWAP_DONE: return "swapped";
    case NUCLEUS_SWAP_NO_HANDOVER: return "not swapped: the OS did not hand over in time";
    case NUCLEUS_SWAP_REFUSED: return "not swapped: the OS refused";
    case NUCLEUS_SWAP_START_FAILED: return "not swapped: the new program could not be started";
    case NUCLEUS_SWAP_NEW_EXITED: return "not swapped: the new program ended before it was ready";
    case NUCLEUS_SWAP_NOT_READY: return "not swapped: the new program was not ready in time";
    case NUCLEUS_SWAP_OLD_EXITED: return "not swapped: the OS ended";
    case NUCLEUS_SWAP_CANCELLED: return "not swapped: the OS was removed";
    default: return "not swapped";
  }
}

class Console {
 public:
  Console(nucleus::Nucleus &n, std::string device, bool script)
      : n_(n), device_(std::move(device)), script_(script), owner_uid_(getuid()) {}

  // Probes the device before anything is written to it or read from it:
  // a message no device acts on (operation 0: a console answers it
  // unintelligible) whose answer says who serves the name. False, after
  // saying why, when the console must not use it.
  bool device_trusted() {
    auto b = n_.send_message(device_, Message{});
    if (!b) return refuse(ENXIO, "cannot send to \"" + device_ + "\": " + std::string(b.message()));
    auto a = n_.wait_answer(b.value());
    if (!a) return refuse(ENXIO, "no answer from \"" + device_ + "\": " + std::string(a.message()));
    return trusted(a.value());
  }

  // Why the console stopped using its device (0: it did not): EACCES a
  // device it may not trust, ESRCH none of that name, ENXIO unreachable.
  int refused() const { return refused_; }

  // Runs one line; false when it failed.
  bool execute(const std::string &line) {
    std::istringstream in(line);
    std::vector<std::string> w;
    for (std::string s; in >> s;) w.push_back(s);
    if (w.empty() || w[0][0] == '#') return true;
    const std::string &cmd = w[0];
    if (cmd == "help") {
      say("commands: create load start stop remove list send swap claims wait echo help quit");
      return true;
    }
    if (cmd == "echo") {
      say(line.substr(line.find("echo") + 4 + (line.size() > line.find("echo") + 4 ? 1 : 0)));
      return true;
    }
    if (cmd == "quit") {
      quit_ = true;
      return true;
    }
    if (cmd == "list") return list();
    static const char *const kNamed[] = {"create", "load", "start", "stop",  "remove",
                                         "send",   "swap", "wait",  "claims"};
    if (std::find(std::begin(kNamed), std::end(kNamed), cmd) == std::end(kNamed)) {
      return error(cmd, "unknown command (help lists the commands)");
    }
    if (w.size() < 2) {
      if (cmd == "claims") return claims(w);
      return error(cmd, "needs a name (help lists the commands)");
    }
    const std::string &name = w[1];
    if (cmd == "create") return create(w);
    if (cmd == "load") {
      if (w.size() < 3) return error(line, "load NAME PROGRAM [ARG...]");
      auto r = n_.modify_process(name, program_from(w, 2), std::nullopt);
      if (r) programs_[name] = w[2];
      return check(line, r);
    }
    if (cmd == "start") {
      auto r = n_.start_process(name);
      if (r) return check(line, r);
      // The step that failed and its errno, with the program's path.
      auto known = programs_.find(name);
      return error(line, nucleus::start_failure(n_.last_start_step(), r.error(),
                                                known == programs_.end() ? "" : known->second));
    }
    if (cmd == "remove") return check(line, n_.remove_process(name));
    if (cmd == "stop") {
      auto b = n_.stop_process(name);
      if (!b) return error(line, std::string(b.message()));
      auto a = wait_answer(b.value());
      if (!a) return false;
      if (a->result != NUCLEUS_RESULT_NORMAL) return error(line, "a start came first");
      say(name + " stopped");
      return true;
    }
    if (cmd == "send") return send(w, line);
    if (cmd == "swap") {
      if (w.size() < 3) return error(line, "swap NAME PROGRAM [ARG...]");
      auto b = n_.swap_process(name, program_from(w, 2));
      if (!b) return error(line, std::string(b.message()));
      auto a = wait_answer(b.value());
      if (!a) return false;
      const uint64_t *aw = a->message.word;
      if (aw[0] == NUCLEUS_SWAP_START_FAILED && aw[NUCLEUS_SWAP_WORD_START_STEP] != 0) {
        return error(line,
                     swap_outcome(aw[0]) + std::string(": ") +
                         nucleus::start_failure(static_cast<int>(aw[NUCLEUS_SWAP_WORD_START_STEP]),
                                                -static_cast<int>(aw[1]), w[2]));
      }
      if (a->result != NUCLEUS_RESULT_NORMAL && aw[0] == NUCLEUS_SWAP_NEW_EXITED) {
        return error(line, swap_outcome(aw[0]) + std::string(": ") + nucleus::swap_new_exited(aw));
      }
      if (a->result != NUCLEUS_RESULT_NORMAL) {
        return error(line, swap_outcome(a->message.word[0]) + std::string(" (detail ") +
                               std::to_string(a->message.word[1]) + ")");
      }
      say(name + " swapped: pid " + std::to_string(a->message.word[3]) + " -> " +
          std::to_string(a->message.word[2]) + ", " + std::to_string(a->message.word[4]) +
          " bytes of state, paused " + std::to_string(a->message.word[5] / 1000) + " us");
      return true;
    }
    if (cmd == "claims") return claims(w);
    if (cmd == "wait") return wait_exit(name, line);
    return error(cmd, "unknown command (help lists the commands)");
  }

  bool quit() const { return quit_; }

  // The next line from the console device; nullopt at its end.
  std::optional<std::string> read_line() {
    if (refused_ != 0) return std::nullopt;
    std::span<uint8_t> area = n_.data_area();
    if (area.size() < 2) return std::nullopt;
    std::string line;
    for (;;) {
      uint64_t room = std::min<uint64_t>(area.size() - 1, 4096);
      auto b = n_.send_message(device_, nucleus::device::console_read(0, room));
      if (!b) return std::nullopt;
      auto a = n_.wait_answer(b.value());
      if (!a || !trusted(a.value()) || a->result != NUCLEUS_RESULT_NORMAL) return std::nullopt;
      line.append(reinterpret_cast<const char *>(area.data()), a->message.word[0]);
      bool end = a->message.word[1] != 0;
      if (!line.empty() && line.back() == '\n') {
        line.pop_back();
        return line;
      }
      if (end) return line.empty() ? std::nullopt : std::optional<std::string>(line);
    }
  }

  void prompt() {
    if (!script_) write_out("nucleus> ", false);
  }

 private:
  bool create(const std::vector<std::string> &w) {
    nucleus::Claims c{4, 0, 0, 0, 0};
    size_t i = 2;
    for (; i < w.size(); ++i) {
      size_t eq = w[i].find('=');
      if (eq == std::string::npos) break;
      if (!set_claim(&c, w[i].substr(0, eq), w[i].substr(eq + 1))) {
        return error(w[i], "a claim is buffers=, processes=, memory=, devices= or data= a number");
      }
    }
    if (i >= w.size()) return error("create", "create NAME [CLAIM=N...] PROGRAM [ARG...]");
    auto r = n_.create_process(w[1], program_from(w, i), c);
    if (r) programs_[w[1]] = w[i];
    return check("create " + w[1], r);
  }

  static bool set_claim(nucleus::Claims *c, const std::string &key, const std::string &value) {
    char *end = nullptr;
    unsigned long long v = std::strtoull(value.c_str(), &end, 0);
    if (value.empty() || *end != '\0') return false;
    if (key == "buffers") {
      c->buffers = v;
    } else if (key == "processes") {
      c->processes = v;
    } else if (key == "memory") {
      c->memory_bytes = v;
    } else if (key == "devices") {
      c->devices = v;
    } else if (key == "data") {
      c->data_bytes = v;
    } else {
      return false;
    }
    return true;
  }

  static nucleus::Program program_from(const std::vector<std::string> &w, size_t at) {
    nucleus::Program p;
    p.path = w[at];
    for (size_t i = at; i < w.size(); ++i) p.argv.push_back(w[i]);
    return p;
  }

  bool list() {
    auto kids = n_.list_children();
    if (!kids) return error("list", std::string(kids.message()));
    if (kids->empty()) say("no children");
    for (const nucleus::ProcessInfo &p : kids.value()) {
      std::string s = std::string(p.name) + "  " + state_name(p.state);
      if (p.pid != 0) s += "  pid " + std::to_string(p.pid);
      if (p.state == NUCLEUS_PROCESS_EXITED) {
        s += p.exit_kind == NUCLEUS_EXIT_SIGNAL ? "  signal " : "  status ";
        s += std::to_string(p.exit_value);
      }
      s += "  buffers " + std::to_string(p.used.buffers) + "/" + std::to_string(p.given.buffers);
      s += "  processes " + std::to_string(p.used.processes) + "/" +
           std::to_string(p.given.processes);
      say(s);
    }
    return true;
  }

  bool send(const std::vector<std::string> &w, const std::string &line) {
    Message m{};
    for (size_t i = 2; i < w.size(); ++i) {
      if (i - 2 >= 8) return error(line, "at most 8 words");
      char *end = nullptr;
      m.word[i - 2] = std::strtoull(w[i].c_str(), &end, 0);
      if (*end != '\0') return error(w[i], "a word is a number");
    }
    auto b = n_.send_message(w[1], m);
    if (!b) return error(line, std::string(b.message()));
    auto a = wait_answer(b.value());
    if (!a) return false;
    std::string s = std::string(nucleus_strerror(a->result)) + ":";
    for (uint64_t x : a->message.word) s += " " + std::to_string(x);
    say(s);
    return a->result != NUCLEUS_RESULT_DUMMY || error(line, "no such process");
  }

  bool claims(const std::vector<std::string> &w) {
    if (w.size() < 2) {
      nucleus_stats_t s{};
      if (int rc = nucleus_get_stats(n_.c_handle(), &s); rc < 0) {
        return error("claims", nucleus_strerror(rc));
      }
      say("buffers " + std::to_string(s.claim_used) + "/" + std::to_string(s.claim_buffers) +
          " in use; pool " + std::to_string(s.pool_free) + "/" + std::to_string(s.pool_buffers) +
          " free");
      return true;
    }
    auto p = n_.get_process(w[1]);
    if (!p) return error("claims " + w[1], std::string(p.message()));
    if (w.size() > 2) {
      nucleus::Claims c = p->given;
      for (size_t i = 2; i < w.size(); ++i) {
        size_t eq = w[i].find('=');
        if (eq == std::string::npos || !set_claim(&c, w[i].substr(0, eq), w[i].substr(eq + 1))) {
          return error(w[i], "a claim is buffers=, processes=, memory=, devices= or data=");
        }
      }
      if (!check("claims " + w[1], n_.modify_process(w[1], std::nullopt, c))) return false;
      p = n_.get_process(w[1]);
      if (!p) return error("claims " + w[1], std::string(p.message()));
    }
    say(w[1] + ": buffers " + std::to_string(p->used.buffers) + "/" +
        std::to_string(p->given.buffers) + ", processes " + std::to_string(p->used.processes) +
        "/" + std::to_string(p->given.processes) + ", memory " +
        std::to_string(p->given.memory_bytes) + ", devices " + std::to_string(p->used.devices) +
        "/" + std::to_string(p->given.devices) + ", data area " +
        std::to_string(p->given.data_bytes));
    return true;
  }

  bool wait_exit(const std::string &name, const std::string &line) {
    auto p = n_.get_process(name);
    if (!p) return error(line, std::string(p.message()));
    for (const auto &[who, notice] : notices_) {
      if (who == name) {
        std::string text = name;
        text += " ended: ";
        text += notice;
        say(text);
        notices_.erase(who);
        return true;
      }
    }
    if (p->state == NUCLEUS_PROCESS_EXITED) {
      say(name +
          " ended: " + std::string(p->exit_kind == NUCLEUS_EXIT_SIGNAL ? "signal " : "status ") +
          std::to_string(p->exit_value));
      return true;
    }
    for (;;) {
      auto r = n_.wait_message();
      if (!r) return error(line, std::string(r.message()));
      if (auto notice = note(r.value()); notice && notice->first == name) {
        notices_.erase(name);
        say(name + " ended: " + notice->second);
        return true;
      }
    }
  }

  // Answers what arrives meanwhile: exit notices are kept for `wait`,
  // a handover is refused (the console has no state worth a swap), and
  // anything else is unintelligible to it.
  std::optional<std::pair<std::string, std::string>> note(const nucleus::Received &r) {
    if (auto x = nucleus::Nucleus::exit_notice(r)) {
      (void)n_.send_answer(r.buffer, NUCLEUS_RESULT_NORMAL, Message{});
      std::string how = std::string(x->exit_kind == NUCLEUS_EXIT_SIGNAL ? "signal " : "status ") +
                        std::to_string(x->exit_value);
      notices_[x->name] = how;
      return std::make_pair(std::string(x->name), how);
    }
    if (nucleus::Nucleus::is_handover(r)) {
      (void)n_.hand_over(r.buffer, {});
      return std::nullopt;
    }
    (void)n_.send_answer(r.buffer, NUCLEUS_RESULT_UNINTELLIGIBLE, Message{});
    return std::nullopt;
  }

  // Waits for the answer on `b` (the console has one buffer out at a time),
  // answering messages that arrive meanwhile.
  nucleus::Result<nucleus::Answer> wait_answer(nucleus::Buffer b) {
    for (;;) {
      auto e = n_.wait_event(0);
      if (!e) return nucleus::Result<nucleus::Answer>::failure(e.error());
      if (e->kind != NUCLEUS_EVENT_MESSAGE) return n_.wait_answer(b);
      auto r = n_.wait_message(nucleus::kPoll);
      if (r) note(r.value());
    }
  }

  bool check(const std::string &what, const nucleus::Result<void> &r) {
    if (r) {
      say("ok");
      return true;
    }
    return error(what, std::string(r.message()));
  }

  bool error(const std::string &what, const std::string &why) {
    write_out("error: " + what + ": " + why, true);
    return false;
  }
  void say(const std::string &text) { write_out(text, true); }

  void write_out(const std::string &text, bool newline) {
    std::string s = text + (newline ? "\n" : "");
    if (script_) {
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fflush(stdout);
      return;
    }
    if (refused_ != 0) return;  // nothing more to a device it refused
    std::span<uint8_t> area = n_.data_area();
    size_t len = std::min(s.size(), area.size());
    std::memcpy(area.data(), s.data(), len);
    auto b = n_.send_message(device_, nucleus::device::console_write(0, len));
    if (!b) return;
    if (auto a = n_.wait_answer(b.value())) (void)trusted(a.value());
  }

  // Is this answer from a device the console may use? If not, it says why
  // and uses the device no more.
  bool trusted(const nucleus::Answer &a) {
    if (refused_ != 0) return false;
    nucleus::os::Decision d = nucleus::os::console_device(a.principal, owner_uid_, device_);
    if (d) return true;
    return refuse(d.error, d.why);
  }

  bool refuse(int error, const std::string &why) {
    refused_ = error;
    std::string text = "nucleus-console: not using \"" + device_ + "\": " + why +
                       ". It reads no command from it and writes nothing to it.\n";
    std::fputs(text.c_str(), stderr);
    std::fflush(stderr);
    // Its output too, when stdout is not where stderr goes already (a
    // console started by hand prints there).
    struct stat out {};
    struct stat err {};
    if (fstat(1, &out) == 0 &&
        (fstat(2, &err) != 0 || out.st_dev != err.st_dev || out.st_ino != err.st_ino)) {
      std::fputs(text.c_str(), stdout);
      std::fflush(stdout);
    }
    return false;
  }

  nucleus::Nucleus &n_;
  std::string device_;
  bool script_;
  uint32_t owner_uid_;                           // its own uid: who it runs as
  int refused_ = 0;                              // see refused()
  std::map<std::string, std::string> programs_;  // the path each child was given here
  bool quit_ = false;
  std::map<std::string, std::string> notices_;  // exit notices not yet waited for
};

}  // namespace

int main(int argc, char **argv) {
  CLI::App app{"an operator's command interpreter (docs/personalities.md)", "nucleus-console"};
  std::string script;
  std::string device = "console";
  app.add_option("--script", script, "read commands from FILE and print to stdout");
  app.add_option("--device", device, "the console device it reads and prints on")
      ->capture_default_str();
  if (auto status = nucleus::os::parse_args(app, argc, argv)) return *status;
  // Started by an OS (NUCLEUS_FD), or by hand through the socket as "operator".
  auto n = std::getenv("NUCLEUS_FD") != nullptr ? nucleus::Nucleus::attach("")
                                                : nucleus::Nucleus::attach("operator");
  if (!n) {
    std::fprintf(stderr, "nucleus-console: cannot attach: %s\n", n.message().data());
    return 3;
  }
  Console console(n.value(), device, !script.empty());
  bool failed = false;
  if (!script.empty()) {
    std::ifstream in(script);
    if (!in) {
      std::fprintf(stderr, "nucleus-console: cannot read %s\n", script.c_str());
      return 66;
    }
    for (std::string line; !console.quit() && std::getline(in, line);) {
      std::printf("> %s\n", line.c_str());
      if (!console.execute(line)) failed = true;
    }
    return failed ? 1 : 0;
  }
  if (!console.device_trusted()) return console.refused() == EACCES ? 77 : 69;
  while (!console.quit()) {
    console.prompt();
    auto line = console.read_line();
    if (!line) break;
    console.execute(*line);
  }
  // EX_NOPERM: it stopped at a device it may not use (it said why).
  return console.refused() == EACCES ? 77 : 0;
}
