// nucleus-kv-server: a key-value service whose values travel as data lent
// with a message (docs/data-and-regret.md; the messages are in
// kv_protocol.h). A put lends the server the value read-only and the server
// copies it from the sender's data area into its own (copy_from); a get
// lends a range for writing and the server copies the value into it
// (copy_to). Values are up to 64 KiB (no more than the server's data area).
//
//   nucleus-kv-server [NAME]   (default name: kv; started by a parent through
//                               the nucleus, with no NAME: the name it was given)
//
// Under a supervisor ($NUCLEUS_SUPERVISOR) it says it is ready once it
// serves. Who may do what is decided by the sender's principal: everyone may
// get, a key belongs to the uid that first put it, and only that uid may put
// it again or delete it; each uid may hold at most kKeysPerUid keys and
// kBytesPerUid bytes, so that one uid cannot fill the server for the others.
// It refuses a hot swap (its store is not handed over). Ends when the
// nucleus shuts down.
#include <sys/types.h>

#include <nucleus/personalities.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nucleus/nucleus.hpp>
#include <string>
#include <vector>

#include "kv_protocol.h"

namespace {

using nucleus::Message;
using nucleus::Received;

constexpr uint64_t kKeysPerUid = 1024;
constexpr uint64_t kBytesPerUid = 16ULL << 20;

struct Value {
  uid_t owner = 0;
  std::vector<std::byte> bytes;
};

// What one uid holds, against kKeysPerUid and kBytesPerUid.
struct Usage {
  uint64_t keys = 0;
  uint64_t bytes = 0;
};

// The store and its rules. Owns the values and what each uid holds; the
// data area is the nucleus handle's. Single-threaded, as the handle.
class Server {
 public:
  explicit Server(nucleus::Nucleus &n)
      : n_(n), max_value_(std::min<uint64_t>(nucleus::kv::kMaxValueBytes, n.data().size())) {}

  uint64_t max_value() const { return max_value_; }

  // Answers one message; false when the nucleus is gone.
  bool serve(const Received &r) {
    if (nucleus::Nucleus::is_handover(r)) {
      // Its store is in process memory and is not handed over: refuse, and
      // the old program runs on with it.
      return answer(r, NUCLEUS_RESULT_REJECTED, {});
    }
    std::string key = nucleus::kv::key_of(r.message);
    if (r.principal.kind != NUCLEUS_FROM_PROCESS || key.empty()) {
      return answer(r, NUCLEUS_RESULT_UNINTELLIGIBLE, Message{{EINVAL}});
    }
    switch (r.message.word[0]) {
      case nucleus::kv::kPut: return put(r, key);
      case nucleus::kv::kGet: return get(r, key);
      case nucleus::kv::kDelete: return erase(r, key);
      default: return answer(r, NUCLEUS_RESULT_UNINTELLIGIBLE, Message{{EINVAL}});
    }
  }

 private:
  bool put(const Received &r, const std::string &key) {
    const uid_t uid = r.principal.uid;
    // An empty value comes with nothing lent.
    const uint64_t size = r.lend.bytes;
    if (size > 0 && (r.lend.rights & NUCLEUS_LEND_READ) == 0) return refuse(r, "put", key, EPROTO);
    if (size > max_value_) return refuse(r, "put", key, EMSGSIZE);
    auto it = store_.find(key);
    if (it != store_.end() && it->second.owner != uid) return refuse(r, "put", key, EACCES);
    Usage &u = usage_[uid];
    uint64_t old = it == store_.end() ? 0 : it->second.bytes.size();
    uint64_t keys = u.keys + (it == store_.end() ? 1 : 0);
    if (keys > kKeysPerUid || u.bytes - old + size > kBytesPerUid) {
      return refuse(r, "put", key, EDQUOT);
    }
    // One copy, by nucleusd, from the sender's range into our data area;
    // then into the store (process memory).
    std::span<std::byte> area = n_.data().first(size);
    if (auto c = size == 0 ? nucleus::Result<void>() : n_.copy_from(r.buffer, 0, area); !c) {
      return copy_failed(r, "put", key, c);
    }
    Value &v = store_[key];
    v.owner = uid;
    v.bytes.assign(area.begin(), area.end());
    u.keys = keys;
    u.bytes = u.bytes - old + size;
    return answer(r, NUCLEUS_RESULT_NORMAL, Message{{size, uid}});
  }

  bool get(const Received &r, const std::string &key) {
    if ((r.lend.rights & NUCLEUS_LEND_WRITE) == 0) return refuse(r, "get", key, EPROTO);
    auto it = store_.find(key);
    if (it == store_.end()) return answer(r, NUCLEUS_RESULT_REJECTED, Message{{ENOENT}});
    const std::vector<std::byte> &bytes = it->second.bytes;
    if (bytes.size() > r.lend.bytes) {
      return answer(r, NUCLEUS_RESULT_REJECTED, Message{{E2BIG, bytes.size()}});
    }
    std::span<std::byte> area = n_.data().first(bytes.size());
    std::copy(bytes.begin(), bytes.end(), area.begin());
    if (auto c = area.empty() ? nucleus::Result<void>() : n_.copy_to(r.buffer, 0, area); !c) {
      return copy_failed(r, "get", key, c);
    }
    return answer(r, NUCLEUS_RESULT_NORMAL, Message{{bytes.size(), it->second.owner}});
  }

  bool erase(const Received &r, const std::string &key) {
    auto it = store_.find(key);
    if (it == store_.end()) return answer(r, NUCLEUS_RESULT_REJECTED, Message{{ENOENT}});
    if (it->second.owner != r.principal.uid) return refuse(r, "delete", key, EACCES);
    Usage &u = usage_[it->second.owner];
    u.keys -= 1;
    u.bytes -= it->second.bytes.size();
    store_.erase(it);
    return answer(r, NUCLEUS_RESULT_NORMAL, {});
  }

  // A copy refused: -EBADF when its sender regretted the message just as
  // we took it (it is not ours any more: nothing to answer), else the
  // errno goes back in the answer (-ESTALE: the sender is gone).
  bool copy_failed(const Received &r, const char *op, const std::string &key,
                   const nucleus::Result<void> &c) {
    if (c.error() == -EBADF) return true;
    std::fprintf(stderr, "nucleus-kv-server: %s \"%s\" from %s: the copy failed: %s\n", op,
                 key.c_str(), r.sender.c_str(), std::string(c.message()).c_str());
    return answer(r, NUCLEUS_RESULT_REJECTED, Message{{static_cast<uint64_t>(-c.error())}});
  }

  // A refusal the sender's principal earned: logged with who asked.
  bool refuse(const Received &r, const char *op, const std::string &key, int code) {
    const char *why = code == EACCES     ? "the key belongs to another uid"
                      : code == EDQUOT   ? "the sender's uid holds all the keys or bytes it may"
                      : code == EMSGSIZE ? "the value is larger than the server takes"
                                         : "the message lends no range with the rights needed";
    std::fprintf(stderr, "nucleus-kv-server: %s \"%s\" from %s (uid %u): refused: %s\n", op,
                 key.c_str(), r.sender.c_str(), r.principal.uid, why);
    return answer(r, NUCLEUS_RESULT_REJECTED, Message{{static_cast<uint64_t>(code)}});
  }

  // False only when the nucleus is gone. A message its sender regretted
  // just as we took it is no longer ours (-EBADF on the copy or the
  // answer): nothing to answer, and no reason to stop serving the others.
  bool answer(const Received &r, int result, const Message &m) {
    auto a = n_.send_answer(r.buffer, result, m);
    if (!a && a.error() != -EBADF) {
      std::fprintf(stderr, "nucleus-kv-server: send_answer: %s\n",
                   std::string(a.message()).c_str());
      return false;
    }
    return true;
  }

  nucleus::Nucleus &n_;
  const uint64_t max_value_;
  std::map<std::string, Value> store_;
  std::map<uid_t, Usage> usage_;
};

void say_ready(nucleus::Nucleus &n) {
  const char *sup = std::getenv("NUCLEUS_SUPERVISOR");
  if (sup == nullptr || *sup == '\0') return;
  auto b = n.send_message(sup, Message{{nucleus::os::kReady}});
  if (b) (void)n.wait_answer(b.value());
}

}  // namespace

int main(int argc, char **argv) {
  bool started = argc <= 1 && std::getenv("NUCLEUS_FD") != nullptr;
  std::string name = argc > 1 ? argv[1] : (started ? "" : nucleus::kv::kDefaultServer);
  auto n = nucleus::Nucleus::attach(name);
  if (!n) {
    std::fprintf(stderr, "nucleus-kv-server: attach as %s: %s\n", name.c_str(),
                 std::string(n.message()).c_str());
    return 1;
  }
  Server server(n.value());
  std::fprintf(stderr, "nucleus-kv-server: serving as %s, values up to %llu bytes\n",
               std::string(n->name()).c_str(), static_cast<unsigned long long>(server.max_value()));
  say_ready(n.value());
  for (;;) {
    auto r = n->wait_message();
    if (!r) {
      if (r.error() == -ESHUTDOWN) return 0;
      std::fprintf(stderr, "nucleus-kv-server: wait_message: %s\n",
                   std::string(r.message()).c_str());
      return 1;
    }
    if (!server.serve(r.value())) return 1;
  }
}
