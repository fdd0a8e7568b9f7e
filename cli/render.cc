#include "render.h"

#include "words.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <functional>
#include <iomanip>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace nucleus::ctl {

namespace {

using nlohmann::json;

std::string bytes(uint64_t b) {
  if (b == 0) return "-";
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  auto v = static_cast<double>(b);
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char text[32];
  std::snprintf(text, sizeof(text), u == 0 ? "%.0f%s" : "%.1f%s", v, units[u]);
  return text;
}

std::string duration(double seconds) {
  auto s = static_cast<uint64_t>(seconds);
  char text[64];
  if (s >= 86400) {
    std::snprintf(text, sizeof(text), "%llud %lluh", static_cast<unsigned long long>(s / 86400),
                  static_cast<unsigned long long>(s % 86400 / 3600));
  } else if (s >= 3600) {
    std::snprintf(text, sizeof(text), "%lluh %llum", static_cast<unsigned long long>(s / 3600),
                  static_cast<unsigned long long>(s % 3600 / 60));
  } else {
    std::snprintf(text, sizeof(text), "%llum %llus", static_cast<unsigned long long>(s / 60),
                  static_cast<unsigned long long>(s % 60));
  }
  return text;
}

std::string state_of(const json &p) {
  if (p.value("kind", "") == "device") return "device " + p.value("device", "");
  std::string s = p.value("state", "");
  if (p.contains("exit")) {
    s += p["exit"]["kind"] == "code" ? " (exit " : " (signal ";
    s += std::to_string(p["exit"]["value"].get<int64_t>()) + ")";
  }
  if (p.value("swapping", false)) s += " (swapping)";
  return s;
}

std::string claims_text(const json &p) {
  if (!p.contains("claims")) return "";
  const json &g = p["claims"]["given"];
  const json &l = p["claims"]["lent"];
  std::string s = "buffers " + std::to_string(p["buffers"]["out"].get<uint64_t>()) + "/" +
                  std::to_string(g["buffers"].get<uint64_t>());
  if (g["processes"].get<uint64_t>() != 0) {
    s += ", processes " + std::to_string(l["processes"].get<uint64_t>()) + "/" +
         std::to_string(g["processes"].get<uint64_t>());
  }
  if (g["devices"].get<uint64_t>() != 0) {
    s += ", devices " + std::to_string(l["devices"].get<uint64_t>()) + "/" +
         std::to_string(g["devices"].get<uint64_t>());
  }
  if (g["memory_bytes"].get<uint64_t>() != 0) {
    s += ", memory " + bytes(g["memory_bytes"].get<uint64_t>());
  }
  return s;
}

void print_node(std::ostream &out, const json &node, const std::string &prefix, bool last) {
  out << prefix << (last ? "└─ " : "├─ ") << node.value("name", "") << "  " << state_of(node);
  if (node.value("pid", 0) != 0) out << "  pid " << node["pid"].get<int64_t>();
  if (node.value("kind", "") != "device" && node.contains("user")) {
    out << "  as " << node["user"].get<std::string>();
  }
  std::string claims = claims_text(node);
  if (!claims.empty()) out << "  [" << claims << "]";
  if (node.value("queued", 0) != 0) out << "  queued " << node["queued"].get<uint64_t>();
  out << "\n";
  const json &kids = node["children"];
  for (size_t i = 0; i < kids.size(); ++i) {
    print_node(out, kids[i], prefix + (last ? "   " : "│  "), i + 1 == kids.size());
  }
}

// Left-aligned columns.
void table(std::ostream &out, const std::vector<std::vector<std::string>> &rows) {
  std::vector<size_t> width;
  for (const auto &row : rows) {
    if (width.size() < row.size()) width.resize(row.size());
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto &row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

// "adaptive, window 64 µs (from 1200 turnarounds), 12.5 ms last second (cap 50%)"
std::string polling(const json &loop) {
  std::string mode = loop.value("poll", "");
  if (mode.empty() || mode == "off") return mode.empty() ? "?" : "off";
  std::string s =
      mode + ", window " + std::to_string(loop.value("poll_window_ns", int64_t{0}) / 1000) + " µs";
  if (mode == "adaptive") {
    s += " (from " + std::to_string(loop.value("turnarounds", uint64_t{0})) + " turnarounds)";
  }
  char used[64];
  std::snprintf(used, sizeof(used), ", %.1f ms polled in the last second (cap %u%%)",
                static_cast<double>(loop.value("polled_ns_last_second", int64_t{0})) / 1e6,
                loop.value("poll_cpu_percent", 0U));
  return s + used;
}

// Whose rights device I/O has (an older nucleusd does not say).
std::string device_io(const json &s) {
  auto it = s.find("device_io");
  if (it == s.end() || !it->is_object()) return "";
  if (!it->value("as_namer", false)) {
    return ", I/O with nucleusd's rights (only its own uid names disks and consoles)";
  }
  uint64_t n = it->value("credentials", uint64_t{0});
  return ", I/O with each namer's rights (" + std::to_string(n) +
         (n == 1 ? " namer's credentials held)" : " namers' credentials held)");
}

}  // namespace

void print_status(std::ostream &out, const json &s) {
  const json &pool = s["pool"];
  out << "nucleusd " << s.value("version", "?") << " (pid " << s["pid"].get<int64_t>() << "), up "
      << duration(s["uptime_s"].get<double>()) << "\n";
  table(out,
        {{"socket", s.value("socket", "") +
                        (s.value("socket_activated", false) ? " (socket activation)" : "")},
         {"transport", s["transport"].value("doorbell", "") + " doorbells, " +
                           s["transport"].value("control", "") + " subtree control"},
         {"polling", polling(s.value("event_loop", json::object()))},
         {"pool", std::to_string(pool["buffers"].get<uint64_t>()) +
                      " buffers: " + std::to_string(pool["in_use"].get<uint64_t>()) + " in use, " +
                      std::to_string(pool["held"].get<uint64_t>()) + " held by claims, " +
                      std::to_string(pool["unowned"].get<uint64_t>()) + " unowned, " +
                      std::to_string(pool["notice_buffers"].get<uint64_t>()) + " for notices (" +
                      std::to_string(pool["notice_free"].get<uint64_t>()) + " free)"},
         {"processes", std::to_string(s["processes"]["count"].get<uint64_t>()) + " (" +
                           std::to_string(s["processes"]["attached"].get<uint64_t>()) +
                           " attached), at most " +
                           std::to_string(s["processes"]["max"].get<uint64_t>())},
         {"devices", std::to_string(s["devices"].get<uint64_t>()) + device_io(s)},
         {"you", "uid " + std::to_string(s["you"]["uid"].get<uint64_t>()) +
                     (s["you"]["operator"].get<bool>() ? ", operator" : ", not an operator")}});
}

json build_tree(const json &processes) {
  // Children by parent, in table order; a process whose parent the caller
  // cannot see hangs under the root.
  std::set<std::string> names;
  for (const json &p : processes) names.insert(p["name"].get<std::string>());
  std::map<std::string, std::vector<size_t>> kids;
  for (size_t i = 0; i < processes.size(); ++i) {
    std::string parent = processes[i].value("parent", "");
    kids[names.count(parent) != 0 ? parent : ""].push_back(i);
  }
  std::function<json(size_t)> node = [&](size_t i) {
    json n = processes[i];
    n["children"] = json::array();
    for (size_t k : kids[processes[i]["name"].get<std::string>()]) n["children"].push_back(node(k));
    return n;
  };
  json root{{"name", "nucleus"}, {"children", json::array()}};
  for (size_t k : kids[""]) root["children"].push_back(node(k));
  return root;
}

void print_tree(std::ostream &out, const json &tree) {
  out << "nucleus\n";
  const json &kids = tree["children"];
  for (size_t i = 0; i < kids.size(); ++i) print_node(out, kids[i], "", i + 1 == kids.size());
}

void print_dot(std::ostream &out, const json &processes) {
  out << "digraph nucleus {\n  node [shape=box];\n  \"nucleus\" [shape=doubleoctagon];\n";
  for (const json &p : processes) {
    std::string name = p["name"].get<std::string>();
    std::string parent = p.value("parent", "");
    out << "  \"" << name << "\" [label=\"" << name << "\\n"
        << state_of(p) << "\"" << (p.value("kind", "") == "device" ? ", shape=ellipse" : "")
        << "];\n";
    out << "  \"" << (parent.empty() ? "nucleus" : parent) << "\" -> \"" << name << "\";\n";
  }
  out << "}\n";
}

void print_ps(std::ostream &out, const json &processes) {
  std::vector<std::vector<std::string>> rows{
      {"NAME", "PARENT", "STATE", "PID", "OWNER", "BUFFERS", "QUEUED", "PROGRAM"}};
  for (const json &p : processes) {
    if (p.value("kind", "") == "device") continue;
    std::string program = p["program"].value("path", "");
    rows.push_back(
        {p["name"].get<std::string>(),
         p.value("parent", "").empty() ? "-" : p["parent"].get<std::string>(), state_of(p),
         p["pid"].get<int64_t>() == 0 ? "-" : std::to_string(p["pid"].get<int64_t>()),
         p.value("user", std::to_string(p["uid"].get<uint64_t>())) + ":" +
             std::to_string(p.value("gid", uint64_t{0})),
         std::to_string(p["buffers"]["out"].get<uint64_t>()) + "/" +
             std::to_string(p["buffers"]["held"].get<uint64_t>()),
         std::to_string(p["queued"].get<uint64_t>()), program.empty() ? "(attached)" : program});
  }
  table(out, rows);
}

bool select_processes(const json &processes, const std::vector<std::string> &names, bool only,
                      json *out, std::string *error) {
  // Children by parent, in table order (devices are no one's children here).
  std::map<std::string, std::vector<size_t>> kids;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < processes.size(); ++i) {
    const json &p = processes[i];
    if (p.value("kind", "") == "device") continue;
    index[p["name"].get<std::string>()] = i;
    kids[p.value("parent", "")].push_back(i);
  }
  *out = json::array();
  std::set<size_t> shown;
  std::function<void(size_t)> add = [&](size_t i) {
    if (!shown.insert(i).second) return;
    out->push_back(processes[i]);
    if (only) return;
    for (size_t k : kids[processes[i]["name"].get<std::string>()]) add(k);
  };
  for (const std::string &name : names) {
    auto it = index.find(name);
    if (it != index.end()) {
      add(it->second);
      continue;
    }
    bool device = std::any_of(processes.begin(), processes.end(), [&](const json &p) {
      return p.value("name", "") == name && p.value("kind", "") == "device";
    });
    *error = device ? name + " is a device, not a process (nucleusctl devices lists them)"
                    : "no process " + name + " (or it is not yours to see)";
    return false;
  }
  return true;
}

void print_stats(std::ostream &out, const json &stats) {
  const json &pool = stats["pool"];
  out << "pool: " << pool["buffers"].get<uint64_t>() << " buffers, "
      << pool["in_use"].get<uint64_t>() << " in use, " << pool["held"].get<uint64_t>()
      << " held by claims, " << pool["unowned"].get<uint64_t>() << " unowned, "
      << pool["notice_buffers"].get<uint64_t>() << " for notices ("
      << pool["notice_free"].get<uint64_t>() << " free)\n\n";
  std::vector<std::vector<std::string>> rows{
      {"NAME", "HELD", "OUT", "QUEUED", "RECEIVED", "PROCESSES", "DEVICES", "MEMORY"}};
  for (const json &p : stats["processes"]) {
    bool device = p.value("kind", "") == "device";
    auto pair = [&](const char *field) {
      if (device) return std::string("-");
      return std::to_string(p["claims"]["lent"][field].get<uint64_t>()) + "/" +
             std::to_string(p["claims"]["given"][field].get<uint64_t>());
    };
    rows.push_back(
        {p["name"].get<std::string>(), std::to_string(p["buffers"]["held"].get<uint64_t>()),
         std::to_string(p["buffers"]["out"].get<uint64_t>()),
         std::to_string(p["queued"].get<uint64_t>()), std::to_string(p["received"].get<uint64_t>()),
         pair("processes"), pair("devices"),
         device ? "-" : bytes(p["claims"]["given"]["memory_bytes"].get<uint64_t>())});
  }
  table(out, rows);
}

void print_devices(std::ostream &out, const json &devices) {
  std::vector<std::vector<std::string>> rows{{"NAME", "KIND", "OWNER", "RESERVED BY", "QUEUED"}};
  for (const json &d : devices) {
    std::string reserver = d.value("reserved_by", "");
    rows.push_back({d["name"].get<std::string>(), d.value("device", ""), d.value("owner", ""),
                    reserver.empty() ? "-" : reserver,
                    std::to_string(d["queued"].get<uint64_t>())});
  }
  table(out, rows);
}

namespace {

// A string from nucleusd shown on a terminal: printable ASCII as it is,
// anything else as \xNN (a name is only ever printable; this holds even
// against a nucleusd that sent otherwise).
std::string shown(const std::string &s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c <= 0x7e) {
      out += static_cast<char>(c);
    } else {
      char esc[8];
      std::snprintf(esc, sizeof(esc), "\\x%02x", c);
      out += esc;
    }
  }
  return out;
}

}  // namespace

std::vector<uint64_t> event_words(const json &e) {
  std::vector<uint64_t> words;
  auto it = e.find("words");
  if (it == e.end() || !it->is_array()) return words;
  for (const json &w : *it) {
    if (words.size() == 8) break;
    words.push_back(w.is_number_unsigned() ? w.get<uint64_t>() : 0);
  }
  return words;
}

void print_event(std::ostream &out, const json &e) {
  int64_t ns = e.value("time_ns", int64_t{0});
  time_t secs = ns / 1000000000;
  tm local{};
  localtime_r(&secs, &local);
  char when[32];
  std::strftime(when, sizeof(when), "%H:%M:%S", &local);
  char ms[24];
  std::snprintf(ms, sizeof(ms), ".%06lld", static_cast<long long>(ns % 1000000000 / 1000));
  out << when << ms << "  " << std::left << std::setw(7) << shown(e.value("event", "")) << " "
      << shown(e.value("from", "")) << " -> " << shown(e.value("to", "")) << "  buffer "
      << shown(e.value("buffer", ""));
  if (e.contains("result")) out << "  result " << e["result"].get<int64_t>();
  // A nucleusd from before issue 21 sends no words.
  if (std::vector<uint64_t> words = event_words(e); !words.empty()) {
    out << "  words " << words_line(words);
  }
  out << "\n";
}

}  // namespace nucleus::ctl
