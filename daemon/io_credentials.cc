// Registering namers' credentials with the ring for device I/O
// (io_credentials.h).
#include "io_credentials.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <tuple>
#include <vector>

#include "log.h"

namespace nucleus::daemon {

namespace {

bool same(const Principal &a, const Principal &b) {
  return std::tie(a.uid, a.gid, a.groups) == std::tie(b.uid, b.gid, b.groups);
}

}  // namespace

Principal IoCredentials::key(const Principal &who) {
  Principal k = who;
  std::sort(k.groups.begin(), k.groups.end());
  k.groups.erase(std::unique(k.groups.begin(), k.groups.end()), k.groups.end());
  return k;
}

void IoCredentials::setup() {
  std::vector<gid_t> groups(static_cast<size_t>(std::max(getgroups(0, nullptr), 0)));
  if (!groups.empty() && getgroups(static_cast<int>(groups.size()), groups.data()) < 0) {
    groups.clear();
  }
  own_principal_ = key(Principal{geteuid(), getegid(), std::move(groups)});
  int id = loop_.register_credentials();
  if (id <= 0) {
    log::warn(
        "io_uring cannot run I/O with registered credentials ({}): device I/O runs with "
        "nucleusd's, so only its own uid may name a disk or console",
        std::strerror(id < 0 ? -id : EINVAL));
    return;
  }
  own_ = static_cast<uint16_t>(id);
  log::info(
      "device I/O runs with the credentials of each device's namer (io_uring "
      "personalities)");
}

int IoCredentials::acquire(const Principal &who) {
  Principal k = key(who);
  bool own = geteuid() == 0 ? same(k, own_principal_) : who.uid == geteuid();
  if (own) return own_;
  if (!available()) return -EOPNOTSUPP;
  auto it = entries_.find(k);
  if (it == entries_.end()) {
    int id = run_as(k, [this] { return loop_.register_credentials(); });
    if (id < 0) return id;
    if (id == 0) return -EINVAL;  // never given: 0 is "the submitter's own"
    it = entries_.emplace(std::move(k), Entry{static_cast<uint16_t>(id), 0}).first;
    log::debug("io_uring credentials {} registered for uid {} gid {}", id, who.uid, who.gid);
  }
  ++it->second.devices;
  return it->second.id;
}

void IoCredentials::release(uint16_t id) {
  if (id == 0 || id == own_) return;
  auto it = std::find_if(entries_.begin(), entries_.end(),
                         [id](const auto &e) { return e.second.id == id; });
  if (it == entries_.end() || --it->second.devices != 0) return;
  loop_.unregister_credentials(id);
  log::debug("io_uring credentials {} of uid {} given back", id, it->first.uid);
  entries_.erase(it);
}

}  // namespace nucleus::daemon
