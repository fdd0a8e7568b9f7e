// The program/claims shape of the JSON files that describe processes:
// nucleusd's boot entries (docs/configuration.md), nucleusctl's spawn file
// (docs/nucleusctl.md) and the supervisor's spec (docs/personalities.md).
// One schema and one parser for the three; every message names the JSON
// path of what is wrong, e.g.
//   processes[0].children[1].program: expected an absolute path, got "w"
//
// Dependencies: nlohmann_json, and (in the .cc only) the limits of
// nucleus/wire.h, so that nucleusd, nucleusctl and the supervisor all link
// it. Parsing throws spec::Error; each user turns it into its own report
// (no exception leaves parse_config, parse_spawn or the supervisor's main).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace nucleus::spec {

// What is wrong and where: what() is "<path>: <message>" ("(top level)"
// for the document itself).
class Error : public std::runtime_error {
 public:
  Error(std::string path, std::string message);
  const std::string &path() const { return path_; }
  const std::string &message() const { return message_; }
  // The same error as seen from the value at `outer` that holds this one.
  Error within(const std::string &outer) const;

 private:
  std::string path_;
  std::string message_;
};

// A JSON value, or its absence, with its path in the document. The value
// is borrowed: the document outlives every Value read from it.
class Value {
 public:
  Value(const nlohmann::json &j, std::string path) : json_(&j), path_(std::move(path)) {}

  bool present() const { return json_ != nullptr; }
  const nlohmann::json &json() const { return *json_; }  // only when present()
  const std::string &path() const { return path_; }

  // A field of an object (absent when the object has no such key), an
  // element of an array.
  Value operator[](std::string_view key) const;
  Value operator[](size_t index) const;

  // Throws "<path>: expected <expected>, got <the value, or null>".
  [[noreturn]] void fail(std::string_view expected) const;

  // Checked reads: each fails naming the path and what it expected.
  std::string text() const;                            // a string
  bool boolean() const;                                // true or false
  uint64_t count(uint64_t max) const;                  // an integer in [0, max]
  std::vector<std::string> strings() const;            // an array of strings
  size_t array_size(std::string_view expected) const;  // an array
  // An object whose keys are all in `keys`; else "<path>.<key>: unknown
  // field" and the hint.
  void only(std::initializer_list<std::string_view> keys, std::string_view hint = {}) const;
  void only(const std::vector<std::string> &keys, std::string_view hint = {}) const;

  // Through nlohmann's serializers (from_json): errors they throw as
  // spec::Error get this path in front; nlohmann's own type errors become
  // "<path>: expected <expected>".
  template <typename T>
  T get(std::string_view expected) const {
    if (!present()) fail(expected);
    try {
      return json_->get<T>();
    } catch (const Error &e) {
      throw e.within(path_);
    } catch (const nlohmann::json::exception &) {
      fail(expected);
    }
  }

  // An enum mapped with NLOHMANN_JSON_SERIALIZE_ENUM. That mapping turns
  // any unknown value into its first entry; here only a value that maps
  // back to itself is taken, else "expected one of <the names>".
  template <typename E>
  E choice() const {
    if (present()) {
      E e = json_->get<E>();
      if (nlohmann::json(e) == *json_) return e;
    }
    fail("one of " + names<E>());
  }

  // The mapped names of E (a scoped enum), as "\"a\", \"b\"": the values
  // 0..63 that map back to themselves (enough for the small enums of these
  // files).
  template <typename E>
  static std::string names() {
    std::string out;
    for (int i = 0; i < 64; ++i) {
      nlohmann::json name = static_cast<E>(i);
      if (name.get<E>() != static_cast<E>(i)) continue;
      out += (out.empty() ? "" : ", ") + name.dump();
    }
    return out;
  }

 private:
  Value(std::nullptr_t, std::string path) : json_(nullptr), path_(std::move(path)) {}
  std::string child(std::string_view key) const;

  const nlohmann::json *json_;
  std::string path_;
};

// What a process is given out of its parent's claims (create_process).
struct Claims {
  uint64_t buffers = 0;
  uint64_t processes = 0;
  uint64_t memory_bytes = 0;  // 0: no limit of its own
  uint64_t devices = 0;
  uint64_t data_bytes = 0;  // 0: the configured default
  bool operator==(const Claims &) const = default;
};
// {"buffers", "processes", "memory_bytes", "devices", "data_bytes"}, each
// optional, each bounded by the wire's limits.
void from_json(const nlohmann::json &j, Claims &c);
void to_json(nlohmann::json &j, const Claims &c);

// The program a process runs.
struct Program {
  std::string path;               // absolute
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> env;   // NAME=value
  std::string cwd;                // "": the starter's
  std::string user;               // a name or uid; "": the default of the context
  std::string group;              // a name or gid; "": the user's primary group
  bool operator==(const Program &) const = default;
};
// The program's keys of an entry: "program", "args" (argv after argv[0],
// which is the program's file name), "env", "cwd", "user", "group", and the
// deprecated "argv" (the whole argv, argv[0] included; not with "args").
void from_json(const nlohmann::json &j, Program &p);
// The lossless form: the whole argv under "argv" (argv[0] need not be the
// file name); cwd, user and group only when set.
void to_json(nlohmann::json &j, const Program &p);

// One process of a file: a boot entry, a spawn entry, a supervisor's child.
struct Entry {
  std::string where;  // its JSON path, e.g. processes[1].children[0]
  std::string name;
  Program program;
  Claims claims;
  bool start = true;
  std::vector<Entry> children;
};

// What an entry may say where it is read.
struct Rules {
  uint64_t default_buffers = 0;       // claims.buffers when the entry gives none
  bool zero_buffers_default = false;  // ... or gives 0
  bool user_required = false;         // "user" must be given
  bool start = false;                 // "start" is allowed
  bool children = false;              // "children" is allowed (read with these rules)
  std::vector<std::string> own_keys;  // further keys the caller reads itself
  std::string repeated_name = "a name not used before";  // told to a name used twice
};

// The names taken in one file, each with what an entry that repeats it is
// told ("a name no device has"). parse_entry adds each entry's name.
using Names = std::map<std::string, std::string>;

// An object: name, the program's keys, claims, and what the rules allow.
Entry parse_entry(const Value &v, const Rules &rules, Names *names);
// An array of such objects.
std::vector<Entry> parse_entries(const Value &v, const Rules &rules, Names *names);

// A process name: 1 to 31 characters of [A-Za-z0-9._-] (wire::name_length).
bool valid_name(std::string_view name);

}  // namespace nucleus::spec
