#include "inspect_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <nucleus/wire.h>

namespace nucleus::ctl {

namespace {

// Far more than nucleusd sends in one packet (a page's bytes and one
// entry); a packet past it is not nucleusd's.
constexpr size_t kMaxReply = size_t{16} << 20;

}  // namespace

std::string socket_path(const std::string &given) {
  if (!given.empty()) return given;
  if (const char *p = std::getenv("NUCLEUS_SOCKET"); p != nullptr && *p != '\0') return p;
  if (geteuid() != 0) {
    if (const char *x = std::getenv("XDG_RUNTIME_DIR"); x != nullptr && *x != '\0') {
      return std::string(x) + "/nucleus/nucleus.sock";
    }
  }
  return "/run/nucleus/nucleus.sock";
}

InspectClient::~InspectClient() {
  if (fd_ >= 0) close(fd_);
}

bool InspectClient::connect(const std::string &path, std::string *error) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) {
    *error = "socket path too long: " + path;
    return false;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) < 0) {
    *error = "cannot reach nucleusd at " + path + ": " + std::strerror(errno) +
             " (is it running? --socket or $NUCLEUS_SOCKET name another)";
    return false;
  }
  return true;
}

bool InspectClient::next_packet(int timeout_ms, nlohmann::json *out, std::string *error) {
  error->clear();
  pollfd p{fd_, POLLIN, 0};
  int rc = poll(&p, 1, timeout_ms);
  if (rc == 0) return false;
  if (rc < 0) {
    *error = std::string("poll: ") + std::strerror(errno);
    return false;
  }
  // The packet's length first (MSG_TRUNC gives it whole), so that a reply
  // of any size is read whole, never cut.
  ssize_t size = recv(fd_, nullptr, 0, MSG_PEEK | MSG_TRUNC);
  if (size > static_cast<ssize_t>(kMaxReply)) {
    *error = "nucleusd sent a packet of " + std::to_string(size) + " bytes";
    return false;
  }
  std::vector<char> buffer(size > 0 ? static_cast<size_t>(size) : 1);
  ssize_t n = recv(fd_, buffer.data(), buffer.size(), 0);
  if (n <= 0) {
    *error = n == 0 ? "nucleusd closed the connection" : std::string(std::strerror(errno));
    return false;
  }
  // nucleusd refuses some connections at accept, before it knows whether
  // they are nucleusctl's: with an attach reply that says why.
  nucleus::wire::AttachReply refused{};
  if (static_cast<size_t>(n) == sizeof(refused)) {
    std::memcpy(&refused, buffer.data(), sizeof(refused));
    if (refused.magic == nucleus::wire::kMagic && refused.status < 0) {
      *error = std::string("nucleusd refused the connection: ") + std::strerror(-refused.status);
      return false;
    }
  }
  *out = nlohmann::json::parse(buffer.data(), buffer.data() + n, nullptr, false);
  if (out->is_discarded()) {
    *error = "nucleusd sent something that is not JSON";
    return false;
  }
  return true;
}

bool InspectClient::request(const nlohmann::json &req, nlohmann::json *reply, std::string *error) {
  std::string text = req.dump();
  bool sent =
      send(fd_, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
  if (!sent) {
    // EPIPE: nucleusd refused the connection at accept; its reply says why.
    int err = errno;
    if (err != EPIPE || !next_packet(0, reply, error)) {
      if (error->empty()) *error = std::string("cannot send to nucleusd: ") + std::strerror(err);
      return false;
    }
  } else if (!next_packet(30000, reply, error)) {
    if (error->empty()) *error = "nucleusd did not answer in 30 s";
    return false;
  }
  if (!reply->value("ok", false)) {
    *error = reply->value("error", std::string("nucleusd refused the request"));
    return false;
  }
  return true;
}

bool InspectClient::pages(nlohmann::json ask, const std::string &key, nlohmann::json *out,
                          std::string *error) {
  *out = nlohmann::json::array();
  ask["from"] = 0;
  for (;;) {
    nlohmann::json reply;
    if (!request(ask, &reply, error)) return false;
    for (auto &p : reply[key]) out->push_back(std::move(p));
    // A nucleusd from before pages had no "next" for devices: one reply.
    auto next = reply.find("next");
    if (next == reply.end() || next->is_null()) return true;
    if (!next->is_number_unsigned() || next->get<uint64_t>() <= ask["from"].get<uint64_t>()) {
      *error = "nucleusd's " + key + " page did not move on (next " + next->dump() + ")";
      return false;
    }
    ask["from"] = *next;
  }
}

bool InspectClient::processes(nlohmann::json *out, std::string *error) {
  return pages({{"op", "processes"}, {"limit", 200}}, "processes", out, error);
}

bool InspectClient::devices(nlohmann::json *out, std::string *error) {
  return pages({{"op", "devices"}}, "devices", out, error);
}

}  // namespace nucleus::ctl
