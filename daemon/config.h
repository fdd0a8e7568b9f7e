// nucleusd's configuration (JSON; schema in docs/configuration.md).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nucleus/wire.h>

#include "poll_window.h"
#include "process_table.h"

namespace nucleus::daemon {

enum class DoorbellMode { kAuto, kFutex, kEventfd };
// How stop, start and remove reach a whole subtree of Linux processes
// (processes.control): a cgroup per entry, signals to process groups, or
// cgroup when usable.
enum class SubtreeMode { kAuto, kCgroup, kSignals };
// Where started programs' stdout and stderr go.
enum class OutputMode { kInherit, kFile, kDiscard };

// A device the nucleus names at start, as a child of the root.
struct DeviceConfig {
  std::string name;
  wire::DeviceKind kind = wire::DeviceKind::kNull;
  std::string path;   // disk: backing file; console: output ("stderr", "stdout" or a file)
  std::string input;  // console: "stdin", a file or a terminal ("": no input)
  uint32_t block_size = wire::kMinBlockSize;
  bool direct = false;  // disk: O_DIRECT

  // The same device: naming one again with what named it is no change
  // (Requests::create_external, decision 73).
  bool operator==(const DeviceConfig &) const = default;
};

// A process the nucleus creates (and starts) at start as a child of the
// root: typically one OS (DESIGN.md, "The root, boot and the operator").
struct BootEntry {
  std::string name;
  Program program;
  Claims claims;
  bool start = true;
  // Whose it is (DESIGN.md, "Principals"): the uid and gid its program runs
  // as; the configuration names the user (and optionally the group).
  std::string user;
  std::string group;  // "": the user's primary group
};

// What one principal or one connection may make nucleusd hold or do
// (DESIGN.md, "Principals, privilege and bounds"; docs/security.md).
// Operators (and so the root's own uid) are not bounded per uid: they can
// always still attach and act.
struct Limits {
  // Per uid, over every entry it owns.
  uint32_t uid_processes = 64;              // process entries (attached or created)
  uint32_t uid_names = 128;                 // names: processes and devices
  uint32_t uid_buffers = 2048;              // buffers held by its processes' claims
  uint32_t uid_inspection_connections = 8;  // nucleusctl's JSON connections (Inspector)
  uint32_t uid_pending_attaches = 4;        // accepted connections not yet attached
  // Per connection.
  uint32_t connection_replies = 256;           // replies queued for a full event ring
  uint32_t connection_requests_per_turn = 64;  // requests (or inspection packets) per loop turn
  uint32_t connection_staged_bytes = wire::kMaxProgramBytes;
  // JSON bytes of one inspection reply page: a processes or devices page
  // ends before an entry that would start past them (Inspector).
  uint32_t connection_control_reply_bytes = 65536;
  // Inspection work per loop turn, all control connections together, in
  // bytes of JSON built (or their equivalent in entries visited).
  uint32_t turn_control_bytes = 131072;
  // Per parent: exit notices out and unanswered; later ones wait in the
  // table and are sent when the parent takes one.
  uint32_t parent_exit_notices = 16;
  // A stop the subtree does not complete in this time is answered failed.
  uint64_t stop_timeout_ms = 10000;
  // A program that has not exec'd this long after its launch began is
  // killed and its start fails (-ETIMEDOUT): no owner holds a launcher
  // thread longer, whatever it does to its programs (decision 62).
  uint64_t launch_timeout_ms = 10000;
  // A bound that is hit is logged at most once per interval (per kind).
  uint64_t log_interval_ms = 1000;

  bool operator==(const Limits &) const = default;
};

// A rule of the names section, in the manner of D-Bus's <policy own=...>
// and own_prefix (docs/configuration.md, "Well-known names"): which uids
// and primary gids may take a name, or every name that begins with a
// prefix. A name that no rule covers is anyone's to take.
struct NameRule {
  std::string name;     // "own": the name; "own_prefix": the prefix
  bool prefix = false;  // an own_prefix rule
  std::vector<uint32_t> uids;
  std::vector<uint32_t> gids;  // primary gids
  bool operator==(const NameRule &) const = default;
};

// The rule that decides who may take `name`: the "own" rule of that name,
// else the "own_prefix" rule of the longest prefix it begins with; nullptr
// when no rule covers it.
const NameRule *name_rule(const std::vector<NameRule> &rules, std::string_view name);
// One line per rule saying what it reserves for whom (nucleusd
// --check-config prints them).
std::vector<std::string> explain_names(const std::vector<NameRule> &rules);

// clock, null, and console on nucleusd's stderr and stdin.
std::vector<DeviceConfig> default_devices();

struct Config {
  uint32_t pool_buffers = 0;
  uint32_t default_claim_buffers = 0;
  uint64_t default_claim_processes = 0;
  uint64_t default_claim_memory = 0;
  uint64_t default_claim_devices = 0;
  std::vector<DeviceConfig> devices;
  std::vector<BootEntry> boot;
  // Descendants the root may have (processes attached or created in all).
  uint64_t max_processes = 0;
  // Buffers of the pool the nucleus keeps for exit notices.
  uint32_t notice_buffers = 0;
  SubtreeMode subtree_mode = SubtreeMode::kAuto;  // processes.control
  std::string cgroup_root;                        // empty: under nucleusd's own cgroup
  OutputMode output = OutputMode::kFile;
  // Where "file" output goes: <output_dir>/<uid>/<name>.log ("": the runtime
  // directory's output/). The runtime directory is usually a tmpfs.
  std::string output_dir;
  Limits limits;
  uint32_t request_entries = 0;
  uint32_t event_entries = 0;
  uint64_t data_bytes = 0;
  bool allow_own_uid = true;
  std::vector<uint32_t> uids;
  std::vector<uint32_t> gids;
  // Operators act for the root (nucleusctl): nucleusd's own uid when
  // operators_own_uid, and these uids and primary gids.
  bool operators_own_uid = true;
  std::vector<uint32_t> operator_uids;
  std::vector<uint32_t> operator_gids;
  // Who may take which well-known names (the "names" section); empty: any
  // name is anyone's.
  std::vector<NameRule> names;
  std::string log_level = "info";
  // How long a new connection may take to send its attach request.
  uint64_t attach_timeout_ms = 0;
  uint32_t max_protocol_errors = 0;
  DoorbellMode doorbell = DoorbellMode::kAuto;
  // Hot swap: how long an OS may take to answer the handover, and how long
  // the new program may take to attach, and again to say ready once it has
  // the state.
  uint64_t swap_handover_timeout_ms = 0;
  uint64_t swap_ready_timeout_ms = 0;
  // How long nucleusd keeps polling its channels after work before it arms
  // their doorbells and sleeps (poll_window.h).
  PollSettings poll;
  // The ring with IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN where the
  // kernel has them: completions are run when the loop asks, not on every
  // return to user space.
  bool defer_taskrun = true;
};

// What differs between two configurations, as field paths: what a reload
// (SIGHUP) applies, and what needs a restart of nucleusd.
struct ConfigChanges {
  std::vector<std::string> applied;
  std::vector<std::string> restart;
};
ConfigChanges diff_config(const Config &a, const Config &b);  // a: before, b: after
// Copies the fields a reload changes at run time (ConfigChanges::applied).
void apply_reloadable(const Config &from, Config *to);

// Parses and checks a configuration. On failure returns false and sets
// *error to a message naming the field path and what was expected.
bool parse_config(const std::string &text, Config *out, std::string *error);
// The built-in default (config/nucleus.json, compiled in).
const char *default_config_text();

}  // namespace nucleus::daemon
