// nucleusctl's side of an inspection connection to nucleusd's Inspector
// (docs/nucleusctl.md calls it a control connection):
// one JSON request, one JSON reply, on a SOCK_SEQPACKET connection to the
// nucleus's socket; and the monitor stream on such a connection. A list
// (processes, devices) comes in pages, bounded in bytes by nucleusd: the
// client asks from where the last one ended ("next") until it is null, and
// gives the caller the whole list, as one reply would have.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace nucleus::ctl {

// The socket: --socket, else $NUCLEUS_SOCKET, else the default directory's
// (the same rule as libnucleus).
std::string socket_path(const std::string &given);

class InspectClient {
 public:
  // false with a one-line message when nucleusd cannot be reached.
  bool connect(const std::string &path, std::string *error);
  // Sends a request and reads its reply; false with a message when the
  // connection fails or nucleusd answers with an error ("errno" in *reply).
  bool request(const nlohmann::json &req, nlohmann::json *reply, std::string *error);
  // Every process visible to the caller, page by page.
  bool processes(nlohmann::json *out, std::string *error);
  // Every device, page by page.
  bool devices(nlohmann::json *out, std::string *error);
  // The next packet of a monitor stream (after request({"op":"monitor"})).
  // timeout_ms < 0: wait forever. false on hang-up, error or timeout
  // (*error empty on timeout).
  bool next_packet(int timeout_ms, nlohmann::json *out, std::string *error);
  int fd() const { return fd_; }
  ~InspectClient();

 private:
  // The `key` list of every page of `ask`, from 0.
  bool pages(nlohmann::json ask, const std::string &key, nlohmann::json *out, std::string *error);
  int fd_ = -1;
};

}  // namespace nucleus::ctl
