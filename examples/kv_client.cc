// nucleus-kv-client: the client of nucleus-kv-server (kv_protocol.h,
// docs/data-and-regret.md). Values go as data lent with the message: a put
// lends the value (in this process's data area) read-only, a get lends the
// data area for writing and finds the value there once answered.
//
//   nucleus-kv-client [--server NAME] [--name NAME] [--timeout-ms MS] [COMMAND]
//     run [--sizes 1024,65536] [--rounds N] [--keep]   (the default command)
//         puts a value of each size under NAME/SIZE, gets it back, checks
//         every byte, and prints the round trips (p50, p99); deletes its
//         keys at the end unless --keep. Round r of size s puts the bytes of
//         kv::fill_pattern with seed s << 16 | r.
//     put KEY (--size N [--seed S] | --text TEXT | --file FILE)
//     get KEY [--out FILE]   (the value to FILE, else to stdout)
//     delete KEY
//
// A put that has no answer within --timeout-ms is regretted: withdrawn, it is
// never applied, however late the server comes to it (the put is reported
// and the client goes on). When the server has already taken it, the client
// waits for its answer: the value lent stays the server's to read until then.
//
// Exit status: 0 done; 1 an error or a refusal (named on stderr); 2 a value
// came back different from what was put; 3 a put was withdrawn (run: at
// least one). Under a supervisor ($NUCLEUS_FD), it attaches under the name
// it was given.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nucleus/nucleus.hpp>
#include <optional>
#include <string>
#include <vector>

#include "kv_protocol.h"

namespace {

using nucleus::Answer;
using nucleus::Message;
using Clock = std::chrono::steady_clock;

constexpr int kDone = 0;
constexpr int kFailed = 1;
constexpr int kDiffered = 2;
constexpr int kWithdrawn = 3;

struct Options {
  std::string server = nucleus::kv::kDefaultServer;
  std::string name;
  int64_t timeout_ms = 5000;
};

std::string text(const nucleus::Result<void> &r) {
  return std::string(r.message());
}

// One exchange with the server. Owns nothing: the data area is the
// handle's, and the caller has put what it lends at its start.
class Client {
 public:
  Client(nucleus::Nucleus &n, const Options &o) : n_(n), o_(o) {}

  std::span<std::byte> area() { return n_.data(); }

  // Sends `m` lending the first `bytes` of the data area with `rights`, and
  // waits for its answer. A put (read-only lend) not answered in time is
  // regretted: nullopt and *withdrawn. Any other failure: nullopt, said on
  // stderr.
  std::optional<Answer> exchange(const Message &m, uint64_t bytes, uint32_t rights,
                                 bool *withdrawn = nullptr) {
    nucleus::Lend lend{};
    lend.offset = 0;
    lend.bytes = bytes;
    lend.rights = rights;
    // Nothing to lend (a delete, an empty value): a plain message.
    auto b = bytes == 0 ? n_.send_message(o_.server, m) : n_.send_message(o_.server, m, lend);
    if (!b) {
      std::fprintf(stderr, "nucleus-kv-client: send to %s: %s\n", o_.server.c_str(),
                   std::string(b.message()).c_str());
      return std::nullopt;
    }
    auto a = n_.wait_answer(b.value(), std::chrono::milliseconds(o_.timeout_ms));
    if (!a && a.error() == -ETIMEDOUT && withdrawn != nullptr) {
      auto g = n_.regret(b.value());
      if (g) {
        *withdrawn = true;
        return std::nullopt;
      }
      // -EBUSY: the server has taken it and will answer; -EALREADY: it has.
      // Either way the range stays lent until the answer: wait for it.
      std::fprintf(stderr, "nucleus-kv-client: no answer from %s in %lld ms, not withdrawn (%s)\n",
                   o_.server.c_str(), static_cast<long long>(o_.timeout_ms), text(g).c_str());
      a = n_.wait_answer(b.value());
    } else if (!a && a.error() == -ETIMEDOUT) {
      // Not a put: nothing would be applied late, but the range is lent
      // until the answer; wait for it.
      a = n_.wait_answer(b.value());
    }
    if (!a) {
      std::fprintf(stderr, "nucleus-kv-client: no answer from %s: %s\n", o_.server.c_str(),
                   std::string(a.message()).c_str());
      return std::nullopt;
    }
    if (a->result == NUCLEUS_RESULT_DUMMY) {
      std::fprintf(stderr, "nucleus-kv-client: %s does not exist (dummy answer)\n",
                   o_.server.c_str());
      return std::nullopt;
    }
    return a.value();
  }

  // Puts the first `size` bytes of the data area under `key`.
  int put(const std::string &key, uint64_t size) {
    bool withdrawn = false;
    auto a =
        exchange(nucleus::kv::request(nucleus::kv::kPut, key), size, NUCLEUS_LEND_READ, &withdrawn);
    if (withdrawn) {
      std::fprintf(stderr,
                   "nucleus-kv-client: put \"%s\": no answer from %s in %lld ms; withdrawn "
                   "(regret): it will never be applied\n",
                   key.c_str(), o_.server.c_str(), static_cast<long long>(o_.timeout_ms));
      return kWithdrawn;
    }
    return refused("put", key, a);
  }

  // Gets `key` into the start of the data area; its length in *size.
  int get(const std::string &key, uint64_t *size) {
    auto a =
        exchange(nucleus::kv::request(nucleus::kv::kGet, key), area().size(), NUCLEUS_LEND_WRITE);
    if (int rc = refused("get", key, a); rc != kDone) return rc;
    *size = a->message.word[0];
    if (*size > area().size()) {
      std::fprintf(stderr,
                   "nucleus-kv-client: get \"%s\": the server says %llu bytes, more "
                   "than it was lent\n",
                   key.c_str(), static_cast<unsigned long long>(*size));
      return kFailed;
    }
    return kDone;
  }

  int erase(const std::string &key) {
    return refused("delete", key, exchange(nucleus::kv::request(nucleus::kv::kDelete, key), 0, 0));
  }

 private:
  // kDone for a normal answer; else says why on stderr.
  int refused(const char *op, const std::string &key, const std::optional<Answer> &a) {
    if (!a) return kFailed;
    if (a->result == NUCLEUS_RESULT_NORMAL) return kDone;
    auto code = static_cast<int>(a->message.word[0]);
    std::string why = std::strerror(code);
    if (code == EACCES) why = "the key belongs to another uid";
    if (code == ENOENT) why = "no such key";
    if (code == EDQUOT) why = "this uid holds all the keys or bytes the server allows it";
    if (code == E2BIG) why = "the value is larger than this client's data area";
    std::fprintf(stderr, "nucleus-kv-client: %s \"%s\": refused by %s (result %d): %s\n", op,
                 key.c_str(), o_.server.c_str(), a->result, why.c_str());
    return kFailed;
  }

  nucleus::Nucleus &n_;
  const Options &o_;
};

double percentile(std::vector<int64_t> v, size_t pct) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return static_cast<double>(v[std::min(v.size() - 1, v.size() * pct / 100)]);
}

// Puts, gets back and checks a value of each size, `rounds` times.
int run(nucleus::Nucleus &n, Client &c, const std::vector<uint64_t> &sizes, int rounds, bool keep) {
  std::string self(n.name());
  int status = kDone;
  std::vector<std::byte> expected;
  for (uint64_t size : sizes) {
    if (size > c.area().size()) {
      std::fprintf(stderr, "nucleus-kv-client: %llu bytes: more than the data area (%zu)\n",
                   static_cast<unsigned long long>(size), c.area().size());
      return kFailed;
    }
    std::string key = self.substr(0, nucleus::kv::kMaxKeyBytes - 8) + "/" + std::to_string(size);
    std::vector<int64_t> puts;
    std::vector<int64_t> gets;
    int differed = 0;
    int withdrawn = 0;
    for (int r = 1; r <= rounds; ++r) {
      expected.resize(size);
      nucleus::kv::fill_pattern(expected, size << 16 | static_cast<uint64_t>(r));
      std::copy(expected.begin(), expected.end(), c.area().begin());
      auto t0 = Clock::now();
      int rc = c.put(key, size);
      auto t1 = Clock::now();
      if (rc == kWithdrawn) {
        ++withdrawn;
        status = kWithdrawn;
        continue;
      }
      if (rc != kDone) return rc;
      // The area is ours again: clear it, so that a get that copied nothing
      // cannot pass for one that copied the value.
      std::fill(c.area().begin(), c.area().end(), std::byte{0});
      uint64_t got = 0;
      auto t2 = Clock::now();
      rc = c.get(key, &got);
      auto t3 = Clock::now();
      if (rc != kDone) return rc;
      puts.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
      gets.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t3 - t2).count());
      if (got != size || !std::equal(expected.begin(), expected.end(), c.area().begin())) {
        ++differed;
        std::fprintf(stderr,
                     "nucleus-kv-client: %s round %d: %llu bytes came back, not the %llu "
                     "put\n",
                     key.c_str(), r, static_cast<unsigned long long>(got),
                     static_cast<unsigned long long>(size));
      }
    }
    std::printf(
        "%s: %llu bytes x %d: put p50 %.1f us p99 %.1f us, get p50 %.1f us p99 %.1f us; "
        "%zu checked, %d differed, %d withdrawn\n",
        key.c_str(), static_cast<unsigned long long>(size), rounds, percentile(puts, 50) / 1e3,
        percentile(puts, 99) / 1e3, percentile(gets, 50) / 1e3, percentile(gets, 99) / 1e3,
        gets.size(), differed, withdrawn);
    std::fflush(stdout);
    if (differed > 0) status = kDiffered;
    if (!keep && withdrawn < rounds) {
      if (int rc = c.erase(key); rc != kDone) return rc;
    }
  }
  return status;
}

bool read_file(const std::string &path, std::vector<std::byte> *out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  out->resize(bytes.size());
  std::memcpy(out->data(), bytes.data(), bytes.size());
  return !in.bad();
}

int run_command_line(int argc, char **argv) {
  CLI::App app{"nucleus-kv-client: puts, gets and checks values in nucleus-kv-server"};
  Options o;
  app.add_option("--server", o.server, "the server's name")->capture_default_str();
  app.add_option("--name", o.name, "attach under this name (default: kv-client-<pid>)");
  app.add_option("--timeout-ms", o.timeout_ms, "a put not answered by then is withdrawn")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);

  std::string sizes_text = "1024,65536";
  int rounds = 100;
  bool keep = false;
  auto *run_cmd = app.add_subcommand("run", "put, get and check values; round trips");
  run_cmd->add_option("--sizes", sizes_text, "value sizes, comma-separated")->capture_default_str();
  run_cmd->add_option("--rounds", rounds, "puts and gets per size")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  run_cmd->add_flag("--keep", keep, "leave the last value of each size in the server");

  std::string key, value_text, value_file, out_file;
  uint64_t size = 0;
  uint64_t seed = 0;
  auto *put_cmd = app.add_subcommand("put", "put a value");
  put_cmd->add_option("key", key, "the key (1..48 bytes)")->required();
  auto *size_opt = put_cmd->add_option("--size", size, "a pattern of this many bytes");
  put_cmd->add_option("--seed", seed, "the pattern's seed")->needs(size_opt);
  auto *text_opt = put_cmd->add_option("--text", value_text, "the value")->excludes(size_opt);
  put_cmd->add_option("--file", value_file, "the value, from this file")
      ->excludes(size_opt)
      ->excludes(text_opt);
  auto *get_cmd = app.add_subcommand("get", "get a value");
  get_cmd->add_option("key", key, "the key")->required();
  get_cmd->add_option("--out", out_file, "write the value here (default: stdout)");
  auto *delete_cmd = app.add_subcommand("delete", "delete a key you own");
  delete_cmd->add_option("key", key, "the key")->required();
  app.require_subcommand(0, 1);
  CLI11_PARSE(app, argc, argv);

  std::vector<uint64_t> sizes;
  for (size_t at = 0; at <= sizes_text.size();) {
    size_t comma = std::min(sizes_text.find(',', at), sizes_text.size());
    char *end = nullptr;
    std::string one = sizes_text.substr(at, comma - at);
    uint64_t s = std::strtoull(one.c_str(), &end, 10);
    if (one.empty() || *end != '\0') {
      std::fprintf(stderr, "nucleus-kv-client: --sizes: \"%s\" is not a size\n", one.c_str());
      return 64;
    }
    sizes.push_back(s);
    at = comma + 1;
  }
  if (!key.empty() && !nucleus::kv::valid_key(key)) {
    std::fprintf(stderr, "nucleus-kv-client: a key is 1 to %zu bytes with no NUL\n",
                 nucleus::kv::kMaxKeyBytes);
    return 64;
  }

  bool started = o.name.empty() && std::getenv("NUCLEUS_FD") != nullptr;
  std::string name = started          ? ""
                     : o.name.empty() ? "kv-client-" + std::to_string(getpid())
                                      : o.name;
  auto n = nucleus::Nucleus::attach(name);
  if (!n) {
    std::fprintf(stderr, "nucleus-kv-client: attach as %s: %s\n", name.c_str(),
                 std::string(n.message()).c_str());
    return kFailed;
  }
  Client c(n.value(), o);
  if (put_cmd->parsed()) {
    std::vector<std::byte> value;
    if (!value_file.empty()) {
      if (!read_file(value_file, &value)) {
        std::fprintf(stderr, "nucleus-kv-client: cannot read %s: %s\n", value_file.c_str(),
                     std::strerror(errno));
        return kFailed;
      }
    } else if (*size_opt) {
      value.resize(size);
      nucleus::kv::fill_pattern(value, seed);
    } else {
      value.resize(value_text.size());
      std::memcpy(value.data(), value_text.data(), value_text.size());
    }
    if (value.size() > c.area().size()) {
      std::fprintf(stderr,
                   "nucleus-kv-client: the value (%zu bytes) is larger than the data "
                   "area (%zu bytes)\n",
                   value.size(), c.area().size());
      return kFailed;
    }
    std::copy(value.begin(), value.end(), c.area().begin());
    return c.put(key, value.size());
  }
  if (get_cmd->parsed()) {
    uint64_t got = 0;
    if (int rc = c.get(key, &got); rc != kDone) return rc;
    std::span<const std::byte> value = c.area().first(got);
    FILE *out = out_file.empty() ? stdout : std::fopen(out_file.c_str(), "wb");
    if (out == nullptr || std::fwrite(value.data(), 1, value.size(), out) != value.size() ||
        (out != stdout && std::fclose(out) != 0) || std::fflush(stdout) != 0) {
      std::fprintf(stderr, "nucleus-kv-client: cannot write the value: %s\n", std::strerror(errno));
      return kFailed;
    }
    return kDone;
  }
  if (delete_cmd->parsed()) return c.erase(key);
  return run(n.value(), c, sizes, rounds, keep);
}

}  // namespace

int main(int argc, char **argv) {
  try {
    return run_command_line(argc, argv);
  } catch (const std::exception &e) {  // memory; CLI11's own errors are caught by CLI11_PARSE
    std::fprintf(stderr, "nucleus-kv-client: %s\n", e.what());
    return kFailed;
  }
}
