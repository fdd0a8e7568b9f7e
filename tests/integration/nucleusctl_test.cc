// nucleusctl against a real nucleusd: every command in text and --json,
// spawn all or nothing, and who may do what (operators and owners).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "harness.h"
#include "run_program.h"

namespace nucleus::test {
namespace {

using nlohmann::json;

const char *kCtl = NUCLEUSCTL_PATH;
const char *kWorker = NUCLEUS_WORKER_PATH;
const char *kSupervisor = NUCLEUS_SUPERVISOR_PATH;

class Ctl : public ::testing::Test {
 protected:
  void start(const std::string &config = "") {
    daemon_ = std::make_unique<Daemon>(config);
    ASSERT_TRUE(daemon_->ready()) << daemon_->log();
  }
  void SetUp() override { start(); }

  Ran ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {"--socket", daemon_->socket_path()});
    return run_program(kCtl, args);
  }
  // Runs a --json command that must succeed, and parses its output.
  json ctl_json(std::vector<std::string> args) {
    args.insert(args.begin(), "--json");
    Ran r = ctl(args);
    EXPECT_EQ(r.code, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }
  std::string file(const std::string &name, const std::string &text) {
    std::string path = daemon_->dir() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  // The processes nucleusctl shows, by name, but nucleusctl's own (a
  // nucleusctl that changed something attached as nucleusctl-<pid>, and
  // nucleusd may not have seen it go yet).
  std::map<std::string, json> processes() {
    std::map<std::string, json> out;
    json ps = ctl_json({"ps"});
    for (const json &p : ps["processes"]) {
      if (p["name"].get<std::string>().rfind("nucleusctl-", 0) != 0) out[p["name"]] = p;
    }
    return out;
  }
  // The status once every nucleusctl that attached has been detached.
  json settled_status() {
    json s;
    EXPECT_TRUE(eventually([&] {
      json ps = ctl_json({"ps"});
      for (const json &p : ps["processes"]) {
        if (p["name"].get<std::string>().rfind("nucleusctl-", 0) == 0) return false;
      }
      s = ctl_json({"status"});
      return true;
    }));
    return s;
  }
  // Runs `nucleusctl [options] monitor --count 2` while `from` sends one
  // message to `to` and waits for its answer; what the monitor printed.
  Ran monitor_one_exchange(std::vector<std::string> options, const std::string &from,
                           const std::string &to) {
    options.insert(options.begin(), {"--socket", daemon_->socket_path()});
    options.insert(options.end(), {"monitor", "--count", "2"});
    Running monitor(kCtl, options);
    if (!monitor.wait_for("monitoring messages")) return monitor.finish();
    auto n = attach(from);
    auto b = n.send_message(to, words(42));
    EXPECT_TRUE(b);
    if (b) {
      EXPECT_TRUE(n.wait_answer(b.value(), kDeadline));
    }
    return monitor.finish();
  }
  std::string worker_tree() {
    return file("tree.json", std::string(R"({"processes": [
      {"name": "os", "program": ")") +
                                 kWorker + R"(",
       "claims": {"buffers": 32, "processes": 4},
       "children": [
         {"name": "w1", "program": ")" +
                                 kWorker + R"("},
         {"name": "w2", "program": ")" +
                                 kWorker + R"(", "args": ["--ready-when-told"]}]},
      {"name": "solo", "program": ")" +
                                 kWorker + R"(", "start": false}]})");
  }

  std::unique_ptr<Daemon> daemon_;
};

TEST_F(Ctl, StatusInTextAndJson) {
  Ran r = ctl({"status"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("nucleusd "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("16384 buffers"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("operator"), std::string::npos) << r.out;
  json j = ctl_json({"status"});
  EXPECT_EQ(j["pid"], daemon_->pid());
  EXPECT_EQ(j["pool"]["buffers"], 16384);
  EXPECT_EQ(j["pool"]["unowned"], 16384 - 256);
  EXPECT_TRUE(j["transport"]["doorbell"] == "futex" || j["transport"]["doorbell"] == "eventfd");
  EXPECT_GE(j["uptime_s"].get<double>(), 0.0);
  EXPECT_EQ(j["you"]["operator"], true);
  EXPECT_EQ(j["devices"], 3);
  EXPECT_FALSE(j.contains("ok"));
}

TEST_F(Ctl, SpawnCreatesAndStartsATreeShownByPsAndTree) {
  Ran r = ctl({"spawn", "-f", worker_tree()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "spawned 4 processes under the root (3 started)\n");
  auto ps = processes();
  ASSERT_EQ(ps.size(), 4U);
  EXPECT_EQ(ps["os"]["state"], "running");
  EXPECT_EQ(ps["os"]["parent"], "");
  EXPECT_EQ(ps["w1"]["parent"], "os");
  EXPECT_EQ(ps["w2"]["state"], "running");
  EXPECT_GT(ps["w2"]["pid"].get<int>(), 0);
  EXPECT_EQ(ps["solo"]["state"], "created");
  EXPECT_EQ(ps["os"]["claims"]["given"]["processes"], 4);
  EXPECT_EQ(ps["os"]["claims"]["lent"]["processes"], 2);
  EXPECT_EQ(ps["w2"]["program"]["argv"], json({"nucleus-worker", "--ready-when-told"}));

  Ran text = ctl({"ps"});
  ASSERT_EQ(text.code, 0);
  EXPECT_EQ(text.out.rfind("NAME", 0), 0U) << text.out;
  EXPECT_NE(text.out.find("w1    os"), std::string::npos) << text.out;

  Ran tree = ctl({"tree"});
  ASSERT_EQ(tree.code, 0);
  EXPECT_EQ(tree.out.rfind("nucleus\n", 0), 0U) << tree.out;
  EXPECT_NE(tree.out.find("├─ os  running"), std::string::npos) << tree.out;
  EXPECT_NE(tree.out.find("│  ├─ w1  running"), std::string::npos) << tree.out;
  EXPECT_NE(tree.out.find("│  └─ w2  running"), std::string::npos) << tree.out;
  EXPECT_NE(tree.out.find("└─ solo  created"), std::string::npos) << tree.out;

  json t = ctl_json({"tree"});
  EXPECT_EQ(t["name"], "nucleus");
  bool found = false;
  for (const json &c : t["children"]) {
    if (c["name"] != "os") continue;
    found = true;
    ASSERT_EQ(c["children"].size(), 2U);
    EXPECT_EQ(c["children"][0]["name"], "w1");
    EXPECT_EQ(c["children"][1]["name"], "w2");
  }
  EXPECT_TRUE(found) << t.dump();

  Ran dot = ctl({"tree", "--dot"});
  ASSERT_EQ(dot.code, 0);
  EXPECT_EQ(dot.out.rfind("digraph nucleus {", 0), 0U);
  EXPECT_NE(dot.out.find("\"os\" -> \"w1\";"), std::string::npos) << dot.out;
  EXPECT_NE(dot.out.find("\"nucleus\" -> \"os\";"), std::string::npos) << dot.out;
}

TEST_F(Ctl, SpawnIsAllOrNothingAndNamesTheEntryThatFailed) {
  json before = settled_status();
  // The third entry's name is taken (a device): its create fails after the
  // first two and the first's child were created and started.
  std::string path = file("bad.json", std::string(R"({"processes": [
      {"name": "a", "program": ")") + kWorker +
                                          R"(", "claims": {"buffers": 16, "processes": 1},
       "children": [{"name": "a1", "program": ")" +
                                          kWorker + R"("}]},
      {"name": "b", "program": ")" + kWorker +
                                          R"(", "claims": {"processes": 2},
       "children": [{"name": "b1", "program": ")" +
                                          kWorker + R"("},
                    {"name": "clock", "program": ")" +
                                          kWorker + R"("}]}]})");
  Ran r = ctl({"spawn", "-f", path});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("processes[1].children[1] (clock): create failed"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("nothing was left created"), std::string::npos) << r.err;
  EXPECT_TRUE(processes().empty());
  json after = settled_status();
  EXPECT_EQ(after["pool"]["unowned"], before["pool"]["unowned"]);
  EXPECT_EQ(after["processes"]["count"], before["processes"]["count"]);

  // A claim the root cannot give fails at create too, and so does a start
  // of a program that is not there.
  path = file("big.json", std::string(R"([{"name": "x", "program": ")") + kWorker +
                              R"("}, {"name": "y", "program": "/nonexistent/prog"}])");
  r = ctl({"spawn", "-f", path});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("[1] (y): start failed"), std::string::npos) << r.err;
  EXPECT_TRUE(processes().empty());
}

TEST_F(Ctl, SpawnRefusesABadFileBeforeCreatingAnything) {
  struct Case {
    std::string text;
    std::string message;
  } cases[] = {
      {R"({"processes": [{"name": "a", "program": "/bin/true", "claims": {"bufers": 1}}]})",
       "processes[0].claims.bufers: unknown field"},
      {R"({"processes": [{"name": "a", "program": "bin/true"}]})",
       "processes[0].program: expected an absolute path, got \"bin/true\""},
      {R"({"processes": [{"name": "a b", "program": "/bin/true"}]})",
       "processes[0].name: expected 1 to 31 characters"},
      {R"({"processes": [{"name": "a", "program": "/bin/true",
           "children": [{"name": "a", "program": "/bin/true"}]}]})",
       "processes[0].children[0].name: expected a name not used before in the file"},
      {R"({"processes": [{"name": "a", "program": "/bin/true", "env": ["X"]}]})",
       "processes[0].env[0]: expected NAME=value"},
      {R"({"procs": []})", "procs: unknown field"},
      {R"([])", "(top level): expected a non-empty array of processes"},
      {R"({"processes": [)", "not valid JSON"},
  };
  for (const Case &c : cases) {
    Ran r = ctl({"spawn", "-f", file("case.json", c.text)});
    EXPECT_EQ(r.code, 1) << c.text;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.text << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;  // one line
  }
  EXPECT_TRUE(processes().empty());
  Ran missing = ctl({"spawn", "-f", "/nonexistent.json"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("cannot read /nonexistent.json"), std::string::npos);
}

TEST_F(Ctl, SendPrintsTheAnswer) {
  ASSERT_EQ(ctl({"spawn", "-f", worker_tree()}).code, 0);
  Ran r = ctl({"send", "w1", "7", "0x10", "-1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "answer from w1: result 1 (normal)\n"
            "  word 0  0x7                 7\n"
            "  word 1  0x10                16\n"
            "  word 2  0xffffffffffffffff  18446744073709551615 (-1)\n"
            "  word 3  0x0                 0\n"
            "  word 4  0x0                 0\n"
            "  word 5  0x0                 0\n"
            "  word 6  0x0                 0\n"
            "  word 7  0x0                 0\n");
  json j = ctl_json({"send", "w1", "1"});  // kPing: its pid and the count served
  EXPECT_EQ(j["result"], 1);
  EXPECT_EQ(j["result_name"], "normal");
  EXPECT_EQ(j["answer"][0], processes()["w1"]["pid"]);
  EXPECT_EQ(j["answer"][1], 2);
  // Who answered, as nucleusd stamped it: w1's program, run as root.
  EXPECT_EQ(j["from"]["name"], "w1");
  EXPECT_EQ(j["from"]["kind"], "process");
  EXPECT_EQ(j["from"]["uid"], 0);
  EXPECT_EQ(j["from"]["pid"], processes()["w1"]["pid"]);

  Ran dummy = ctl({"send", "nobody", "1"});
  EXPECT_EQ(dummy.code, 1);
  EXPECT_NE(dummy.out.find("result 5 (dummy"), std::string::npos) << dummy.out;
  Ran bad = ctl({"send", "w1", "seven"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("word 0: expected an integer"), std::string::npos) << bad.err;
  Ran many = ctl({"send", "w1", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
  EXPECT_EQ(many.code, 1);
  EXPECT_NE(many.err.find("at most 8 words"), std::string::npos) << many.err;
}

// The words of `text` as a program copies it into a message (memcpy), each
// as nucleusctl send takes it (0x hex).
std::vector<std::string> text_words(const std::string &text) {
  std::vector<std::string> out;
  for (size_t at = 0; at < text.size(); at += 8) {
    uint64_t w = 0;
    std::memcpy(&w, text.data() + at, std::min<size_t>(8, text.size() - at));
    char hex[24];
    std::snprintf(hex, sizeof(hex), "0x%llx", static_cast<unsigned long long>(w));
    out.emplace_back(hex);
  }
  return out;
}

// Issue 21: an answer's words came in decimal only (a name as
// 31073742178316140). Hex for every word, text where words hold it, and
// never a control character on the terminal.
TEST_F(Ctl, SendShowsWordsInHexAndTextNeverRawControlCharacters) {
  ASSERT_EQ(ctl({"spawn", "-f", worker_tree()}).code, 0);
  // Word 0 (7) is echoed; 1: control characters and letters; 4-5: a name.
  std::vector<std::string> args{"send", "w1", "7", text_words(std::string("\x1b[2J\aab", 7))[0],
                                "0",    "0"};
  for (const std::string &w : text_words("m-root-os-12345")) args.push_back(w);
  Ran r = ctl(args);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("  word 0  0x7 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  word 1  0x6261074a325b1b"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"m-root-os-12345\"  (words 4-5)\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << "raw ESC on the terminal";
  EXPECT_EQ(r.out.find('\a'), std::string::npos) << "raw BEL on the terminal";
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '"'), 2) << "one text, no other";

  args.insert(args.begin(), "--json");
  json j = ctl_json({args.begin(), args.end()});
  ASSERT_EQ(j["answer"].size(), 8U);  // the numbers, as before
  EXPECT_EQ(j["answer"][0], 7);
  EXPECT_EQ(j["answer_hex"][0], "0x7");
  EXPECT_EQ(j["answer_hex"][1], "0x6261074a325b1b");
  EXPECT_EQ(j["answer_hex"][7], "0x0");
  EXPECT_EQ(j["answer_text"],
            json::parse(R"([{"first": 4, "words": 2, "text": "m-root-os-12345"}])"));
  // An answer with no text: an empty list, still there.
  EXPECT_EQ(ctl_json({"send", "w1", "7"})["answer_text"], json::array());
}

TEST_F(Ctl, PsOfNamesShowsThemWithTheirSubtreesOrOnlyThem) {
  ASSERT_EQ(ctl({"spawn", "-f", worker_tree()}).code, 0);
  auto names = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "ps");
    std::vector<std::string> out;
    json ps = ctl_json(args);
    for (const json &p : ps["processes"]) out.push_back(p["name"]);
    return out;
  };
  EXPECT_EQ(names({"os"}), (std::vector<std::string>{"os", "w1", "w2"}));
  EXPECT_EQ(names({"--only", "os"}), (std::vector<std::string>{"os"}));
  EXPECT_EQ(names({"w2", "solo"}), (std::vector<std::string>{"w2", "solo"}));
  EXPECT_EQ(names({"os", "w1"}), (std::vector<std::string>{"os", "w1", "w2"})) << "each once";
  // nucleusctl's own options may follow the command, before or after names.
  for (std::vector<std::string> args :
       {std::vector<std::string>{"ps", "--json", "os"}, {"ps", "os", "--json", "--only"}}) {
    Ran after = ctl(args);
    ASSERT_EQ(after.code, 0) << after.err;
    json j = json::parse(after.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << after.out;
    EXPECT_EQ(j["processes"][0]["name"], "os");
  }
  Ran text = ctl({"ps", "os"});
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_EQ(text.out.rfind("NAME", 0), 0U) << text.out;
  EXPECT_NE(text.out.find("\nw1 "), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("solo"), std::string::npos) << text.out;
  // Bad names: a clear error, exit 1, nothing printed on stdout.
  Ran unknown = ctl({"ps", "os", "nosuch"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_EQ(unknown.out, "");
  EXPECT_EQ(unknown.err, "nucleusctl: ps: no process nosuch (or it is not yours to see)\n");
  Ran device = ctl({"ps", "clock"});
  EXPECT_EQ(device.code, 1);
  EXPECT_NE(device.err.find("clock is a device, not a process"), std::string::npos) << device.err;
}

TEST_F(Ctl, StartStopRemove) {
  ASSERT_EQ(ctl({"spawn", "-f", worker_tree()}).code, 0);
  Ran r = ctl({"stop", "os"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "stopped os\n");
  auto ps = processes();
  EXPECT_EQ(ps["os"]["state"], "stopped");
  int pid = ps["w1"]["pid"];
  r = ctl({"start", "os"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "started os\n");
  EXPECT_EQ(processes()["os"]["state"], "running");
  EXPECT_EQ(processes()["w1"]["pid"], pid);  // resumed, not restarted

  // A child of a child: nucleusctl acts for its parent.
  json j = ctl_json({"stop", "w2"});
  EXPECT_EQ(j, json({{"ok", true}, {"action", "stop"}, {"name", "w2"}}));
  EXPECT_EQ(processes()["w2"]["state"], "stopped");
  j = ctl_json({"start", "solo"});
  EXPECT_EQ(j["action"], "start");
  EXPECT_EQ(processes()["solo"]["state"], "running");

  json before = settled_status();
  r = ctl({"remove", "os"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "removed os\n");
  ps = processes();
  EXPECT_EQ(ps.count("os"), 0U);
  EXPECT_EQ(ps.count("w1"), 0U);
  EXPECT_EQ(ps.count("solo"), 1U);
  EXPECT_GT(settled_status()["pool"]["unowned"], before["pool"]["unowned"]);

  Ran none = ctl({"stop", "os"});
  EXPECT_EQ(none.code, 1);
  EXPECT_NE(none.err.find("stop os: no process os"), std::string::npos) << none.err;
}

TEST_F(Ctl, StatsAndDevices) {
  ASSERT_EQ(ctl({"spawn", "-f", worker_tree()}).code, 0);
  json s = ctl_json({"stats"});
  EXPECT_EQ(s["pool"]["buffers"], 16384);
  std::map<std::string, json> by_name;
  for (const json &p : s["processes"]) by_name[p["name"]] = p;
  ASSERT_EQ(by_name.count("os"), 1U);
  // os gave 8 of its 32 buffers to each child.
  EXPECT_EQ(by_name["os"]["buffers"]["held"], 16);
  EXPECT_EQ(by_name["os"]["claims"]["lent"]["buffers"], 16);
  EXPECT_EQ(by_name["clock"]["kind"], "device");
  Ran text = ctl({"stats"});
  ASSERT_EQ(text.code, 0);
  EXPECT_NE(text.out.find("pool: 16384 buffers"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("NAME"), std::string::npos);

  json d = ctl_json({"devices"});
  ASSERT_EQ(d["devices"].size(), 3U);
  EXPECT_EQ(d["devices"][0]["name"], "clock");
  EXPECT_EQ(d["devices"][0]["device"], "clock");
  EXPECT_EQ(d["devices"][0]["owner"], "nucleus");
  Ran dt = ctl({"devices"});
  EXPECT_NE(dt.out.find("console  console  nucleus"), std::string::npos) << dt.out;
}

TEST_F(Ctl, ListsInManyPagesPrintAsOneListWithEveryByteOfTheirPrograms) {
  // Pages of at most 4096 bytes: the processes and devices below take
  // many, and nucleusctl's output is what one reply would have given.
  start(R"({"default_claims": {"processes": 40, "devices": 40},
            "limits": {"per_connection": {"control_reply_bytes": 4096}}})");
  auto n = attach("pager");
  std::vector<std::string> args;
  for (int i = 0; i < 30; ++i) {
    // Quotes, backslashes, control characters and UTF-8, 1500 bytes or so.
    std::string arg =
        "arg " + std::to_string(i) + " \"q\" \\ \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 ";
    for (int c = 1; c < 0x20; ++c) arg += static_cast<char>(c);
    arg += std::string(1300, static_cast<char>('a' + i % 26));
    args.push_back(arg);
    nucleus::Program program{kWorker, {"worker", arg}, {}, "", "", ""};
    ASSERT_TRUE(n.create_process("w" + std::to_string(i), program, nucleus::Claims{}).ok()) << i;
  }
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(
        n.create_external_process("null" + std::to_string(i), nucleus::DeviceKind::kNull).ok());
  }
  json ps = ctl_json({"ps"});
  std::map<std::string, json> by_name;
  for (const json &p : ps["processes"]) by_name[p["name"]] = p;
  for (int i = 0; i < 30; ++i) {
    const json &p = by_name["w" + std::to_string(i)];
    ASSERT_TRUE(p.is_object()) << "w" << i;
    EXPECT_EQ(p["program"]["path"], kWorker);
    EXPECT_EQ(p["program"]["argv"], json({"worker", args[i]})) << i;
    EXPECT_EQ(p["parent"], "pager");
  }
  EXPECT_EQ(ps["processes"].size(), 31U);
  json devices = ctl_json({"devices"});
  ASSERT_EQ(devices["devices"].size(), 33U);
  EXPECT_EQ(devices["devices"][0]["name"], "clock");
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(devices["devices"][3 + i]["name"], "null" + std::to_string(i));
    EXPECT_EQ(devices["devices"][3 + i]["owner"], "pager");
  }
  // The tree and the stats read the same pages.
  json tree = ctl_json({"tree"});
  ASSERT_EQ(tree["children"].size(), 4U);  // clock, null, console, pager
  EXPECT_EQ(tree["children"][3]["name"], "pager");
  EXPECT_EQ(tree["children"][3]["children"].size(), 60U);
  EXPECT_EQ(ctl_json({"stats"})["processes"].size(), 64U);
}

TEST_F(Ctl, MonitorStreamsMessageEvents) {
  Ran r = monitor_one_exchange({"--json"}, "sender", "null");
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<json> events;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) events.push_back(json::parse(line));
  ASSERT_EQ(events.size(), 2U) << r.out;
  EXPECT_EQ(events[0]["event"], "message");
  EXPECT_EQ(events[0]["from"], "sender");
  EXPECT_EQ(events[0]["to"], "null");
  EXPECT_EQ(events[1]["event"], "answer");
  EXPECT_EQ(events[1]["from"], "null");
  EXPECT_EQ(events[1]["to"], "sender");
  EXPECT_EQ(events[1]["result"], 1);
  EXPECT_EQ(events[0]["buffer"], events[1]["buffer"]);
  EXPECT_GT(events[0]["time_ns"].get<int64_t>(), 0);
  // The words (issue 21): numbers, with their hex and text beside them.
  EXPECT_EQ(events[0]["words"], json({42, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(events[0]["words_hex"][0], "0x2a");
  EXPECT_EQ(events[0]["words_text"], json::array());
  EXPECT_EQ(events[1]["words"], json({0, 0, 0, 0, 0, 0, 0, 0}));  // null's answer
}

// A monitor shows words as send does, text only where it is printable; a
// flood of messages gives as many lines as asked for, each of bounded length.
TEST_F(Ctl, MonitorShowsWordsAndItsOutputIsBoundedUnderAFlood) {
  std::vector<std::string> options{"--socket", daemon_->socket_path(), "monitor", "--count", "200"};
  Running monitor(kCtl, options);
  ASSERT_TRUE(monitor.wait_for("monitoring messages"));
  auto n = attach("flooder");
  Message m{};
  std::memcpy(&m.word[0], "\x1b]0;pwned\a", 11);  // a terminal title, if printed raw
  std::memcpy(&m.word[4], "hello-world", 11);
  // Many more than the monitor takes, as fast as they go (each answered).
  for (int i = 0; i < 2000; ++i) {
    auto b = n.send_message("null", m);
    ASSERT_TRUE(b) << b.message();
    ASSERT_TRUE(n.wait_answer(b.value(), kDeadline));
  }
  Ran r = monitor.finish();
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  int count = 0;
  bool shown = false;
  for (std::string line; std::getline(lines, line); ++count) {
    EXPECT_LE(line.size(), 400U) << line;
    for (char c : line) ASSERT_TRUE(c >= 0x20 && c <= 0x7e) << "a raw byte " << int(c);
    if (line.find("  message flooder -> null") != std::string::npos) {
      // Word 0's bytes are not all printable: hex only. Words 4-5: text.
      EXPECT_NE(line.find("  words 0x656e77703b305d1b 0x764 0x0 0x0 0x6f772d6f6c6c6568 "
                          "0x646c72 0x0 0x0  4:\"hello-world\""),
                std::string::npos)
          << line;
      shown = true;
    }
  }
  EXPECT_EQ(count, 200) << r.out;
  EXPECT_TRUE(shown) << r.out;
}

TEST_F(Ctl, SpawnRemoveAndMonitorInTheirOtherFormat) {
  json j = ctl_json({"spawn", "-f", worker_tree()});
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["created"], json({"os", "w1", "w2", "solo"}));
  EXPECT_EQ(j["started"], json({"os", "w1", "w2"}));
  j = ctl_json({"remove", "solo"});
  EXPECT_EQ(j, json({{"ok", true}, {"action", "remove"}, {"name", "solo"}}));

  Ran r = monitor_one_exchange({}, "pinger", "w1");
  ASSERT_EQ(r.code, 0) << r.err;
  // hh:mm:ss.uuuuuu  message pinger -> w1  buffer 0x...
  std::istringstream lines(r.out);
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  EXPECT_NE(first.find("  message pinger -> w1  buffer 0x"), std::string::npos) << r.out;
  EXPECT_NE(second.find("  answer  w1 -> pinger  buffer 0x"), std::string::npos) << r.out;
  EXPECT_NE(second.find("  result 1"), std::string::npos) << r.out;
  EXPECT_NE(first.find("  words 0x2a 0x0 0x0 0x0 0x0 0x0 0x0 0x0"), std::string::npos) << r.out;
  EXPECT_EQ(first[2], ':');
}

TEST_F(Ctl, SwapReplacesAnOsAndSaysWhenItCannot) {
  std::string spec = file("spec.json", std::string(R"({"strategy": "one_for_one",
      "children": [{"name": "kid", "program": ")") +
                                           kWorker + R"("}]})");
  std::string tree = file("sup.json", std::string(R"([{"name": "sup", "program": ")") +
                                          kSupervisor + R"(", "args": [")" + spec +
                                          R"("], "claims": {"buffers": 32, "processes": 2}}])");
  ASSERT_EQ(ctl({"spawn", "-f", tree}).code, 0);
  // The supervisor's child runs once the supervisor has started it.
  ASSERT_TRUE(eventually([&] {
    auto ps = processes();
    return ps.count("kid") == 1 && ps["kid"]["state"] == "running";
  }));
  int kid_pid = processes()["kid"]["pid"];
  int old_pid = processes()["sup"]["pid"];
  json j = ctl_json({"swap", "sup", kSupervisor, spec, "--version", "2"});
  EXPECT_EQ(j["ok"], true) << j.dump();
  EXPECT_EQ(j["outcome"], "swapped");
  EXPECT_EQ(j["old_pid"], old_pid);
  EXPECT_EQ(j["new_pid"], processes()["sup"]["pid"]);
  EXPECT_EQ(processes()["kid"]["pid"], kid_pid);

  Ran text = ctl({"swap", "sup", kSupervisor, spec});
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_EQ(text.out.rfind("swapped sup: pid ", 0), 0U) << text.out;

  // A worker is no OS: it refuses, and runs on.
  int kid_before = processes()["kid"]["pid"];
  Ran refused = ctl({"swap", "kid", kWorker});
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("swap kid not done: the OS refused to hand over"), std::string::npos)
      << refused.err;
  EXPECT_EQ(processes()["kid"]["pid"], kid_before);
}

// Issue 21: a swap could not give the new program an environment (a Python
// OS needed an `env` wrapper). --env and --cwd give it, as a spawn file's
// entry does. A new program
// that ends before it is ready is answered with how it ended.
TEST_F(Ctl, SwapGivesTheNewProgramItsEnvironmentAndDirectory) {
  std::string spec =
      file("spec.json",
           std::string(R"({"children": [{"name": "kid", "program": ")") + kWorker + R"("}]})");
  std::string tree = file("sup.json", std::string(R"([{"name": "sup", "program": ")") +
                                          kSupervisor + R"(", "args": [")" + spec +
                                          R"("], "claims": {"buffers": 32, "processes": 2}}])");
  ASSERT_EQ(ctl({"spawn", "-f", tree}).code, 0);
  ASSERT_TRUE(eventually([&] {
    auto ps = processes();
    return ps.count("kid") == 1 && ps["kid"]["state"] == "running";
  }));
  std::string dir = daemon_->dir();
  json j = ctl_json({"swap", "--env", "GREETING=hello world", "--env", "EQ=a=b", "--cwd", dir,
                     "sup", kSupervisor, spec, "--version", "2"});
  ASSERT_EQ(j["ok"], true) << j.dump();
  int pid = j["new_pid"];
  // What the new program really runs with, from the kernel.
  std::ifstream environ("/proc/" + std::to_string(pid) + "/environ");
  std::string env((std::istreambuf_iterator<char>(environ)), std::istreambuf_iterator<char>());
  std::vector<std::string> vars;
  std::istringstream in(env);
  for (std::string v; std::getline(in, v, '\0');) vars.push_back(v);
  auto has = [&](const std::string &v) {
    return std::find(vars.begin(), vars.end(), v) != vars.end();
  };
  EXPECT_TRUE(has("GREETING=hello world")) << env;
  EXPECT_TRUE(has("EQ=a=b")) << env;
  char cwd[4096] = {};
  ASSERT_GT(readlink(("/proc/" + std::to_string(pid) + "/cwd").c_str(), cwd, sizeof(cwd) - 1), 0);
  EXPECT_EQ(std::string(cwd), dir);
  EXPECT_EQ(processes()["sup"]["pid"], pid);

  // A value that is not NAME=VALUE is nucleusctl's usage error; nothing is swapped.
  Ran bad = ctl({"swap", "--env", "NOVALUE", "sup", kSupervisor, spec});
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("NOVALUE"), std::string::npos) << bad.err;
  EXPECT_EQ(processes()["sup"]["pid"], pid);

  // A spec the new supervisor cannot read: it exits 65 before it attaches,
  // and the answer says so.
  std::string broken = file("broken.json", "{\"children\": [");
  Ran refused = ctl({"swap", "sup", kSupervisor, broken});
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("swap sup not done: the new program ended before it was ready: it "
                             "exited with status 65; the old program runs on"),
            std::string::npos)
      << refused.err;
  json r = json::parse(ctl({"--json", "swap", "sup", kSupervisor, broken}).out, nullptr, false);
  EXPECT_EQ(r["exit_kind"], "code") << r.dump();
  EXPECT_EQ(r["exit_value"], 65) << r.dump();
  EXPECT_EQ(processes()["sup"]["pid"], pid) << "the old program runs on";
}

TEST_F(Ctl, UnknownCommandsAndUnreachableNucleus) {
  Ran r = run_program(kCtl, {"--socket", "/nonexistent/sock", "status"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot reach nucleusd at /nonexistent/sock"), std::string::npos) << r.err;
  Ran bad = ctl({"frobnicate"});
  EXPECT_NE(bad.code, 0);
  Ran none = ctl({});
  EXPECT_NE(none.code, 0);
}

// Not an operator: the configuration names none (not even nucleusd's own
// uid), so this test's uid is an ordinary user of the nucleus.
class CtlNotOperator : public Ctl {
 protected:
  void SetUp() override {
    start(R"({"operators": {"allow_own_uid": false},
              "default_claims": {"buffers": 64, "processes": 4}})");
  }
};

TEST_F(CtlNotOperator, IsRefusedWhatOnlyAnOperatorMayDo) {
  Ran r = ctl({"spawn", "-f", worker_tree()});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("processes[0] (os): create failed: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("only an operator"), std::string::npos) << r.err;
  Ran m = ctl({"monitor"});
  EXPECT_EQ(m.code, 1);
  EXPECT_NE(m.err.find("only an operator may monitor"), std::string::npos) << m.err;
  EXPECT_EQ(ctl_json({"status"})["you"]["operator"], false);
  EXPECT_NE(ctl({"status"}).out.find("not an operator"), std::string::npos);
}

TEST_F(CtlNotOperator, ActsOnTheChildrenOfWhatItOwns) {
  // A process of this uid (an OS it runs itself) may be given a tree.
  auto os = attach("myos");
  std::string tree =
      file("t.json", std::string(R"([{"name": "mine", "program": ")") + kWorker + R"("}])");
  Ran r = ctl({"spawn", "-f", tree, "--under", "myos"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "spawned 1 processes under myos (1 started)\n");
  auto ps = processes();
  EXPECT_EQ(ps["mine"]["parent"], "myos");
  EXPECT_EQ(ps["mine"]["state"], "running");
  ASSERT_EQ(ctl({"stop", "mine"}).code, 0);
  ASSERT_EQ(ctl({"remove", "mine"}).code, 0);
  // The root's own children that attached through the socket are nobody's
  // to control.
  Ran refused = ctl({"stop", "myos"});
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("may not act for the root"), std::string::npos) << refused.err;
}

// ps NAME of another uid's process says what ps of an unknown one says:
// nothing of it is shown, not even that it exists.
TEST_F(CtlNotOperator, PsOfAnotherUidsProcessIsNoSuchProcess) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  daemon_.reset();
  start(R"({"operators": {"allow_own_uid": false}, "attach": {"uids": [65534]}})");
  daemon_->let_others_in();
  auto mine = attach("mine");
  Signal attached, done;
  pid_t other = spawn([&] {
    if (!become()) return 10;
    auto n = nucleus::Nucleus::attach("theirs");
    if (!n) return 11;
    attached.notify();
    return done.wait() == 'x' ? 0 : 12;
  });
  ASSERT_EQ(attached.wait(), 'x');
  Ran theirs = ctl({"ps", "theirs"});
  EXPECT_EQ(theirs.code, 1);
  EXPECT_EQ(theirs.err, "nucleusctl: ps: no process theirs (or it is not yours to see)\n");
  EXPECT_EQ(ctl({"ps", "mine"}).code, 0);
  done.notify();
  EXPECT_EQ(exit_code(wait_exit(other)), 0);
}

}  // namespace
}  // namespace nucleus::test
