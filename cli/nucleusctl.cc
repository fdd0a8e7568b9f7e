// nucleusctl: inspect and drive a running nucleus (docs/nucleusctl.md).
//
// What it reads (status, tree, ps, stats, devices, monitor) comes over a
// JSON inspection connection; what it changes (spawn, start, stop, remove,
// swap, send) goes through an attached channel like any process's, acting
// for the root (operators) or for a process the caller owns.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <span>

#include "inspect_client.h"
#include "render.h"
#include "send_data.h"
#include "spawn.h"
#include "words.h"

namespace {

using nlohmann::json;
using nucleus::ctl::InspectClient;

struct Options {
  std::string socket;
  bool json = false;
  int64_t timeout_ms = 30000;
};

int fail(const std::string &message) {
  std::cerr << "nucleusctl: " << message << "\n";
  return 1;
}

// Why the call that just failed with `rc` failed: the cause part of the
// library's per-call text (nucleus_last_error: "the processes claim of the
// parent is 0 (claims.processes)"), which nucleusctl prints after its own
// "verb name: ". The errno's general text if the library said nothing.
std::string why(int rc) {
  std::string_view last = nucleus_last_error();
  // "call \"name\": why" or "call: why"; a name has no ':' in it.
  size_t colon = last.find(": ");
  if (last.empty() || colon == std::string_view::npos) return nucleus_strerror(rc);
  return std::string(last.substr(colon + 2));
}

// Why a start failed: the step that failed, what it failed on (the
// program's path for exec, its working directory for chdir) and that step's
// errno ("cannot execute /srv/bin/x: Permission denied"), never an authority
// refusal for exec's EACCES; why() for a start that was refused.
std::string start_why(int step, int rc, const std::string &path, const std::string &cwd = "") {
  if (step == NUCLEUS_START_STEP_NONE) return why(rc);
  return nucleus::start_failure(step, rc, nucleus::Program{path, {}, {}, cwd});
}

const char *result_name(int result) {
  switch (result) {
    case NUCLEUS_RESULT_NORMAL: return "normal";
    case NUCLEUS_RESULT_REJECTED: return "rejected";
    case NUCLEUS_RESULT_UNINTELLIGIBLE: return "unintelligible";
    case NUCLEUS_RESULT_MALFUNCTION: return "malfunction";
    case NUCLEUS_RESULT_DUMMY: return "dummy (receiver does not exist)";
    default: return "unknown";
  }
}

const char *swap_outcome(uint64_t w) {
  switch (w) {
    case NUCLEUS_SWAP_DONE: return "swapped";
    case NUCLEUS_SWAP_NO_HANDOVER: return "the OS did not hand over its state in time";
    case NUCLEUS_SWAP_REFUSED: return "the OS refused to hand over";
    case NUCLEUS_SWAP_START_FAILED: return "the new program could not be started";
    case NUCLEUS_SWAP_NEW_EXITED: return "the new program ended before it was ready";
    case NUCLEUS_SWAP_NOT_READY: return "the new program was not ready in time";
    case NUCLEUS_SWAP_OLD_EXITED: return "the OS ended during the swap";
    case NUCLEUS_SWAP_CANCELLED: return "the OS was removed during the swap";
    default: return "unknown outcome";
  }
}

void print_json(const json &j) {
  std::cout << j.dump(2) << "\n";
}

bool connect(const Options &o, InspectClient *c, std::string *error) {
  return c->connect(nucleus::ctl::socket_path(o.socket), error);
}

// One inspection request on a connection of its own.
bool ask(const Options &o, const json &request, json *reply, std::string *error) {
  InspectClient c;
  return connect(o, &c, error) && c.request(request, reply, error);
}

// Every process the caller may see.
bool list_processes(const Options &o, json *list, std::string *error) {
  InspectClient c;
  return connect(o, &c, error) && c.processes(list, error);
}

// A process of its own, named nucleusctl-<pid>, to change things with.
std::optional<nucleus::Nucleus> attach(const Options &o, std::string *error) {
  setenv("NUCLEUS_SOCKET", nucleus::ctl::socket_path(o.socket).c_str(), 1);
  auto n = nucleus::Nucleus::attach("nucleusctl-" + std::to_string(getpid()));
  if (!n) {
    *error = "cannot attach to the nucleus at " + nucleus::ctl::socket_path(o.socket) + ": " +
             std::string(n.message());
    return std::nullopt;
  }
  return std::move(n.value());
}

// The process `name` as the caller sees it (its parent: "" the root).
bool process_of(const Options &o, const std::string &name, json *process, std::string *error) {
  json list;
  if (!list_processes(o, &list, error)) return false;
  for (json &p : list) {
    if (p["name"] == name && p.value("kind", "") != "device") {
      *process = std::move(p);
      return true;
    }
  }
  *error = "no process " + name + " (or it is not yours to see)";
  return false;
}

// Attached, acting for NAME's parent; *process: NAME as the caller sees it.
std::optional<nucleus::Nucleus> control_of(const Options &o, const std::string &name,
                                           std::string *error, json *process = nullptr) {
  json found;
  if (!process_of(o, name, &found, error)) return std::nullopt;
  std::string parent = found.value("parent", "");
  if (process != nullptr) *process = std::move(found);
  auto n = attach(o, error);
  if (!n) return std::nullopt;
  auto r = n->act_for(parent);
  if (!r) {
    *error = "may not act for " + (parent.empty() ? std::string("the root") : parent) + ": " +
             why(r.error());
    return std::nullopt;
  }
  return n;
}

int cmd_status(const Options &o) {
  json reply;
  std::string error;
  if (!ask(o, {{"op", "status"}}, &reply, &error)) return fail(error);
  reply.erase("ok");
  if (o.json) {
    print_json(reply);
  } else {
    nucleus::ctl::print_status(std::cout, reply);
  }
  return 0;
}

int cmd_tree(const Options &o, bool dot) {
  json list;
  std::string error;
  if (!list_processes(o, &list, &error)) return fail(error);
  if (dot) {
    nucleus::ctl::print_dot(std::cout, list);
  } else if (o.json) {
    print_json(nucleus::ctl::build_tree(list));
  } else {
    nucleus::ctl::print_tree(std::cout, nucleus::ctl::build_tree(list));
  }
  return 0;
}

int cmd_ps(const Options &o, const std::vector<std::string> &names, bool only) {
  json list;
  std::string error;
  if (!list_processes(o, &list, &error)) return fail(error);
  json internal = json::array();
  if (!names.empty()) {
    if (!nucleus::ctl::select_processes(list, names, only, &internal, &error)) {
      return fail("ps: " + error);
    }
  } else {
    for (json &p : list) {
      if (p.value("kind", "") != "device") internal.push_back(std::move(p));
    }
  }
  if (o.json) {
    print_json(json{{"processes", internal}});
  } else {
    nucleus::ctl::print_ps(std::cout, internal);
  }
  return 0;
}

int cmd_stats(const Options &o) {
  InspectClient c;
  json status, list;
  std::string error;
  if (!connect(o, &c, &error) || !c.request({{"op", "status"}}, &status, &error) ||
      !c.processes(&list, &error)) {
    return fail(error);
  }
  json out{{"pool", status["pool"]}, {"processes", json::array()}};
  for (const json &p : list) {
    json s{{"name", p["name"]},
           {"kind", p["kind"]},
           {"buffers", p["buffers"]},
           {"queued", p["queued"]},
           {"received", p["received"]}};
    if (p.contains("claims")) s["claims"] = p["claims"];
    out["processes"].push_back(std::move(s));
  }
  if (o.json) {
    print_json(out);
  } else {
    nucleus::ctl::print_stats(std::cout, out);
  }
  return 0;
}

int cmd_devices(const Options &o) {
  InspectClient c;
  json list;
  std::string error;
  if (!connect(o, &c, &error) || !c.devices(&list, &error)) return fail(error);
  if (o.json) {
    print_json(json{{"devices", list}});
  } else {
    nucleus::ctl::print_devices(std::cout, list);
  }
  return 0;
}

int cmd_monitor(const Options &o, int64_t count) {
  InspectClient c;
  json reply;
  std::string error;
  if (!connect(o, &c, &error) || !c.request({{"op", "monitor"}}, &reply, &error)) {
    return fail("monitor: " + error);
  }
  std::cerr << "monitoring messages (Ctrl-C to stop)" << std::endl;
  int64_t seen = 0;
  while (count < 0 || seen < count) {
    json packet;
    if (!c.next_packet(-1, &packet, &error)) return fail("monitor: " + error);
    if (packet.contains("dropped")) {
      std::cerr << "nucleusctl: monitor: nucleusd could not keep " << packet["dropped"].dump()
                << " events (too many between its turns)\n";
    }
    if (packet.contains("dropped_packets")) {
      std::cerr << "nucleusctl: monitor: " << packet["dropped_packets"].dump()
                << " packets of events were dropped (this monitor did not keep up)\n";
    }
    auto events = packet.find("events");
    if (events == packet.end() || !events->is_array()) continue;
    for (const json &e : *events) {
      if (o.json) {
        // nucleusd's event, with the words' hex and text added (words.h).
        json out = e;
        if (std::vector<uint64_t> w = nucleus::ctl::event_words(e); !w.empty()) {
          nucleus::ctl::add_words_json(out, "words", w);
        }
        std::cout << out.dump() << "\n";
      } else {
        nucleus::ctl::print_event(std::cout, e);
      }
      if (count >= 0 && ++seen >= count) break;
    }
    std::cout.flush();
  }
  return 0;
}

// The received bytes to --out ("-": stdout).
bool write_received(const std::string &out, std::span<const std::byte> bytes, std::string *error) {
  FILE *f = out == "-" ? stdout : std::fopen(out.c_str(), "wb");
  bool ok = f != nullptr && std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (f != nullptr) ok = (f == stdout ? std::fflush(f) : std::fclose(f)) == 0 && ok;
  if (!ok) *error = "cannot write the received bytes to " + out + ": " + std::strerror(errno);
  return ok;
}

int cmd_send(const Options &o, const std::string &name, const std::vector<std::string> &words,
             const nucleus::ctl::SendDataOptions &data) {
  if (words.size() > 8) return fail("send: at most 8 words, got " + std::to_string(words.size()));
  nucleus::Message m{};
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string &w = words[i];
    char *end = nullptr;
    errno = 0;
    uint64_t v = 0;
    if (!w.empty() && w[0] == '-') {
      v = static_cast<uint64_t>(std::strtoll(w.c_str(), &end, 0));
    } else {
      v = std::strtoull(w.c_str(), &end, 0);
    }
    if (w.empty() || errno != 0 || *end != '\0') {
      return fail("send: word " + std::to_string(i) +
                  ": expected an integer (decimal, or 0x hex), got \"" + w + "\"");
    }
    m.word[i] = v;
  }
  std::string error;
  nucleus::ctl::DataLend lend;
  if (!nucleus::ctl::plan_lend(data, &lend, &error)) return fail("send: " + error);
  auto n = attach(o, &error);
  if (!n) return fail(error);
  // What is lent is the start of nucleusctl's own data area: the data, then
  // zeros to the end of the range (what a receiver did not write reads 0).
  std::span<std::byte> area = n->data();
  if (lend.range > area.size()) {
    return fail("send: the range to lend (" + std::to_string(lend.range) +
                " bytes) is larger than nucleusctl's data area (" + std::to_string(area.size()) +
                " bytes: the nucleus's channel.data_bytes)");
  }
  std::copy(lend.bytes.begin(), lend.bytes.end(), area.begin());
  std::fill(area.begin() + static_cast<ptrdiff_t>(lend.bytes.size()),
            area.begin() + static_cast<ptrdiff_t>(lend.range), std::byte{0});
  auto b = lend.range == 0 ? n->send_message(name, m)
                           : n->send_message(name, m, nucleus::Lend{0, lend.range, lend.rights, 0});
  if (!b) return fail("send to " + name + ": " + why(b.error()));
  auto a = n->wait_answer(b.value(), std::chrono::milliseconds(o.timeout_ms));
  if (!a && a.error() == -ETIMEDOUT) {
    // Withdraw it, so that it is not acted on after we said it failed.
    auto g = n->regret(b.value());
    std::string what = g                     ? "; withdrawn: " + name + " never took it"
                       : g.error() == -EBUSY ? "; " + name + " has taken it and may still act on it"
                                             : "";
    if (g || g.error() == -EBUSY) {
      return fail("send to " + name + ": no answer in " + std::to_string(o.timeout_ms) + " ms" +
                  what);
    }
    a = n->wait_answer(b.value(), nucleus::kPoll);  // answered just now (-EALREADY)
  }
  if (!a) return fail("send to " + name + ": no answer: " + std::string(a.message()));
  std::span<const uint64_t> answer(a->message.word);
  // What the receiver wrote counts only with a normal answer: the words of
  // any other say why not, not how much.
  bool received_any = data.receive > 0 && a->result == NUCLEUS_RESULT_NORMAL;
  uint64_t kept = 0;
  if (received_any &&
      !nucleus::ctl::received_length(a->message, data.length_word, data.receive, &kept, &error)) {
    return fail("send to " + name + ": " + error);
  }
  std::span<const std::byte> received = area.first(kept);
  // With the received bytes on stdout, the answer's lines go to stderr.
  bool bytes_to_stdout = data.receive > 0 && data.out == "-";
  if (received_any && !(o.json && bytes_to_stdout) && !write_received(data.out, received, &error)) {
    return fail("send to " + name + ": " + error);
  }
  if (o.json) {
    json words_out = json::array();
    for (uint64_t w : answer) words_out.push_back(w);
    static const char *const kFrom[] = {"none", "process", "device", "nucleus"};
    const nucleus::Principal &p = a->principal;
    json out{{"to", name},
             {"result", a->result},
             {"result_name", result_name(a->result)},
             {"answer", words_out},
             {"from",
              {{"name", a->from_name()},
               {"kind", p.kind < std::size(kFrom) ? kFrom[p.kind] : "unknown"},
               {"uid", p.uid},
               {"gid", p.gid},
               {"pid", p.pid}}}};
    nucleus::ctl::add_words_json(out, "answer", answer);
    if (lend.range > 0) {
      out["data"] = {{"lent_bytes", lend.range},
                     {"rights", nucleus::ctl::rights_name(lend.rights)}};
      if (received_any) {
        out["data"]["received_bytes"] = kept;
        if (bytes_to_stdout) {
          out["data"]["received_hex"] = nucleus::ctl::hex(received.data(), received.size());
        } else {
          out["data"]["received_file"] = data.out;
        }
      }
    }
    print_json(out);
  } else {
    std::ostream &lines = bytes_to_stdout ? std::cerr : std::cout;
    lines << "answer from " << name << ": result " << a->result << " (" << result_name(a->result)
          << ")\n";
    nucleus::ctl::print_words(lines, answer);
    if (received_any && !bytes_to_stdout) {
      lines << "received " << kept << " bytes into " << data.out << "\n";
    }
  }
  return a->result == NUCLEUS_RESULT_NORMAL ? 0 : 1;
}

int report(const Options &o, const std::string &action, const std::string &name, const char *done) {
  if (o.json) {
    print_json(json{{"ok", true}, {"action", action}, {"name", name}});
  } else {
    std::cout << done << " " << name << "\n";
  }
  return 0;
}

int cmd_control(const Options &o, const std::string &action, const std::string &name) {
  std::string error;
  json process;
  auto n = control_of(o, name, &error, &process);
  if (!n) return fail(action + " " + name + ": " + error);
  if (action == "start") {
    auto r = n->start_process(name);
    if (!r) {
      json program = process.value("program", json::object());
      return fail("start of " + name + " failed: " +
                  start_why(n->last_start_step(), r.error(), program.value("path", ""),
                            program.value("cwd", "")));
    }
    return report(o, action, name, "started");
  }
  if (action == "remove") {
    auto r = n->remove_process(name);
    if (!r) return fail("remove " + name + ": " + why(r.error()));
    return report(o, action, name, "removed");
  }
  auto b = n->stop_process(name);
  if (!b) return fail("stop " + name + ": " + why(b.error()));
  auto a = n->wait_answer(b.value(), std::chrono::milliseconds(o.timeout_ms));
  if (!a) return fail("stop " + name + ": " + std::string(a.message()));
  if (a->result != NUCLEUS_RESULT_NORMAL) {
    return fail("stop " + name + ": not stopped (result " + std::to_string(a->result) + ", " +
                result_name(a->result) + ")");
  }
  return report(o, action, name, "stopped");
}

// The new program of a swap: its path, arguments, environment and working
// directory (as a spawn file's entry gives them).
struct SwapProgram {
  std::string program;
  std::vector<std::string> args;
  std::vector<std::string> env;  // NAME=value
  std::string cwd;               // "": nucleusd's default, as for a start
};

int cmd_swap(const Options &o, const std::string &name, const SwapProgram &sp) {
  const std::string &program = sp.program;
  std::string path = program;
  if (path.empty() || path[0] != '/') {
    char resolved[PATH_MAX];
    if (realpath(program.c_str(), resolved) == nullptr) {
      return fail("swap " + name + ": " + program + ": " + std::strerror(errno));
    }
    path = resolved;
  }
  // Like a started program it gets only the environment it is given
  // (and nucleusd's NUCLEUS_* variables), not nucleusctl's.
  nucleus::Program p{path, {path.substr(path.rfind('/') + 1)}, sp.env, sp.cwd};
  p.argv.insert(p.argv.end(), sp.args.begin(), sp.args.end());
  std::string error;
  auto n = control_of(o, name, &error);
  if (!n) return fail("swap " + name + ": " + error);
  auto b = n->swap_process(name, p);
  if (!b) return fail("swap " + name + ": " + why(b.error()));
  auto a = n->wait_answer(b.value(), std::chrono::milliseconds(o.timeout_ms));
  if (!a) return fail("swap " + name + ": no answer: " + std::string(a.message()));
  const auto &w = a->message.word;
  bool done = a->result == NUCLEUS_RESULT_NORMAL && w[0] == NUCLEUS_SWAP_DONE;
  bool new_exited = !done && w[0] == NUCLEUS_SWAP_NEW_EXITED;
  if (o.json) {
    json j{{"ok", done},           {"name", name},        {"outcome", swap_outcome(w[0])},
           {"outcome_code", w[0]}, {"detail", w[1]},      {"new_pid", w[2]},
           {"old_pid", w[3]},      {"state_bytes", w[4]}, {"pause_ns", w[5]}};
    if (new_exited) {  // how the new program ended: "code", "signal" or "none" (hung up)
      uint64_t kind = w[NUCLEUS_SWAP_WORD_EXIT_KIND];
      j["exit_kind"] = kind == NUCLEUS_EXIT_CODE     ? "code"
                       : kind == NUCLEUS_EXIT_SIGNAL ? "signal"
                                                     : "none";
      j["exit_value"] = kind == NUCLEUS_EXIT_SIGNAL ? w[1] & 0xff : w[1];
    }
    print_json(j);
  } else if (done) {
    std::cout << "swapped " << name << ": pid " << w[3] << " -> " << w[2] << ", state " << w[4]
              << " bytes, pause " << static_cast<double>(w[5]) / 1e6 << " ms\n";
  }
  if (!done && w[0] == NUCLEUS_SWAP_START_FAILED && w[NUCLEUS_SWAP_WORD_START_STEP] != 0) {
    // The step of the new program's start and its errno, as for a start.
    int step = static_cast<int>(w[NUCLEUS_SWAP_WORD_START_STEP]);
    return fail("swap " + name + " not done: " + swap_outcome(w[0]) + ": " +
                start_why(step, -static_cast<int>(w[1]), path, sp.cwd) +
                "; the old program runs on");
  }
  if (new_exited) {
    return fail("swap " + name + " not done: " + swap_outcome(w[0]) + ": " +
                nucleus::swap_new_exited(w) + "; the old program runs on");
  }
  if (!done) {
    return fail("swap " + name + " not done: " + swap_outcome(w[0]) + " (detail " +
                std::to_string(w[1]) + "); the old program runs on");
  }
  return 0;
}

int cmd_spawn(const Options &o, const std::string &file, const std::string &under) {
  std::ifstream in(file);
  if (!in) return fail("spawn: cannot read " + file + ": " + std::strerror(errno));
  json doc = json::parse(in, nullptr, false, /*ignore_comments=*/true);
  if (doc.is_discarded()) return fail("spawn: " + file + ": not valid JSON");
  std::vector<nucleus::ctl::SpawnEntry> entries;
  std::string error;
  if (!nucleus::ctl::parse_spawn(doc, &entries, &error)) {
    return fail("spawn: " + file + ": " + error);
  }
  auto n = attach(o, &error);
  if (!n) return fail(error);
  nucleus::ctl::SpawnReport r;
  if (!nucleus::ctl::spawn_tree(*n, under, entries, &r)) {
    std::string cause = r.start_step == NUCLEUS_START_STEP_NONE
                            ? why(r.error)
                            : nucleus::start_failure(r.start_step, r.error, r.program);
    return fail("spawn: " + file + ": " + r.failed_where + " (" + r.failed_name +
                "): " + r.failed_step + " failed: " + cause + "; " +
                (r.rolled_back ? "nothing was left created" : "could not remove what was created"));
  }
  if (o.json) {
    print_json(json{{"ok", true}, {"created", r.created}, {"started", r.started}});
  } else {
    std::cout << "spawned " << r.created.size() << " processes under "
              << (under.empty() ? "the root" : under) << " (" << r.started.size() << " started)\n";
  }
  return 0;
}

int run(int argc, char **argv) {
  CLI::App app{"nucleusctl: inspect and drive a running nucleus (docs/nucleusctl.md)"};
  Options o;
  app.add_option("--socket", o.socket,
                 "nucleusd's socket (default: $NUCLEUS_SOCKET or the "
                 "runtime directory's nucleus.sock)");
  app.add_flag("--json", o.json, "output as JSON (stable; docs/nucleusctl.md)");
  app.add_option("--timeout", o.timeout_ms, "how long to wait for an answer, in ms")
      ->capture_default_str();
  app.require_subcommand(1);
  // The options above may come after the command too (`ps --json os`):
  // set before the subcommands are added, which inherit it.
  app.fallthrough();

  auto *status = app.add_subcommand("status", "version, uptime, transport, pool use");
  bool dot = false;
  auto *tree = app.add_subcommand("tree", "the process tree with states and claims");
  tree->add_flag("--dot", dot, "as Graphviz");
  std::vector<std::string> ps_names;
  bool ps_only = false;
  auto *ps = app.add_subcommand("ps", "the processes, one per line");
  ps->add_option("names", ps_names, "only these processes and their subtrees");
  ps->add_flag("--only", ps_only, "the named processes without their subtrees (as ps -p)");
  auto *stats = app.add_subcommand("stats", "pool use overall and per process: who holds what");
  auto *devices = app.add_subcommand("devices", "the devices (external processes)");
  int64_t count = -1;
  auto *monitor = app.add_subcommand("monitor", "a live stream of message events (operators)");
  monitor->add_option("--count", count, "stop after this many events");

  std::string name, file, under;
  std::vector<std::string> words;
  auto *spawn = app.add_subcommand("spawn", "create and start a tree of processes from JSON");
  spawn->add_option("-f,--file", file, "the tree (docs/nucleusctl.md)")->required();
  spawn->add_option("--under", under, "parent of the tree (default: the root; operators)");
  auto *send = app.add_subcommand("send", "send a message and print its answer");
  send->add_option("name", name, "receiver")->required();
  send->add_option("words", words, "up to 8 integers");
  nucleus::ctl::SendDataOptions data;
  send->add_option("--data", data.text, "lend the receiver these bytes to read");
  send->add_option("--data-file", data.file,
                   "lend the receiver this file's bytes to read (-: stdin)");
  send->add_option("--receive", data.receive,
                   "lend the receiver this many bytes to write; printed after the answer");
  send->add_option("--out", data.out, "where the received bytes go (-: stdout)")
      ->capture_default_str();
  send->add_option("--length-word", data.length_word,
                   "the answer's word (0..7) that says how many bytes were received");
  std::vector<CLI::App *> controls;
  for (const char *action : {"start", "stop", "remove"}) {
    auto *sub = app.add_subcommand(action, std::string(action) + " a process (and its subtree)");
    sub->add_option("name", name, "the process")->required();
    controls.push_back(sub);
  }
  auto *swap = app.add_subcommand("swap", "hot-swap the program of an OS process");
  SwapProgram swap_program;
  swap->add_option("name", name, "the OS process")->required();
  swap->add_option("program", swap_program.program, "the new program")->required();
  swap->add_option("--env", swap_program.env,
                   "NAME=VALUE in the new program's environment (repeatable; it gets no other)")
      ->allow_extra_args(false)  // one NAME=VALUE per --env: what follows is not its
      ->check(CLI::Validator(
          [](const std::string &v) {
            size_t eq = v.find('=');
            return eq == std::string::npos || eq == 0
                       ? std::string("expected NAME=VALUE, got \"") + v + "\""
                       : std::string();
          },
          "NAME=VALUE"));
  swap->add_option("--cwd", swap_program.cwd, "the new program's working directory");
  // Everything after PROGRAM is its arguments, options included (nucleusctl's
  // own too: they do not fall through to it here).
  swap->allow_extras();
  swap->fallthrough(false);
  swap->footer(
      "Everything after PROGRAM is passed to it (use -- before arguments that look "
      "like nucleusctl's own options, --env and --cwd included).");

  CLI11_PARSE(app, argc, argv);
  if (o.timeout_ms <= 0) return fail("--timeout: expected a positive number of ms");
  if (status->parsed()) return cmd_status(o);
  if (tree->parsed()) return cmd_tree(o, dot);
  if (ps->parsed()) return cmd_ps(o, ps_names, ps_only);
  if (stats->parsed()) return cmd_stats(o);
  if (devices->parsed()) return cmd_devices(o);
  if (monitor->parsed()) return cmd_monitor(o, count);
  if (spawn->parsed()) return cmd_spawn(o, file, under);
  if (send->parsed()) return cmd_send(o, name, words, data);
  if (swap->parsed()) {
    swap_program.args = swap->remaining();
    return cmd_swap(o, name, swap_program);
  }
  for (auto *sub : controls) {
    if (sub->parsed()) return cmd_control(o, sub->get_name(), name);
  }
  return fail("no command");
}

}  // namespace

int main(int argc, char **argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception &e) {
    // A reply without a field we rely on (a nucleusd of another version),
    // or memory.
    return fail(std::string("unexpected: ") + e.what());
  }
}
