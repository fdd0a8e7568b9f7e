// nucleusctl's inspection connections (docs/nucleusctl.md): read-only
// inspection (status, processes, devices) and the monitor stream, as JSON
// over nucleusd's socket. What changes the system goes through an attached
// channel (kActFor), never through here.
//
// An inspection connection's first packet is a JSON object (an attach
// request is a binary record starting with kMagic): the attach side reads
// it and hands the connection over with begin(). Every packet is untrusted:
// it is parsed from a copy, bounded, and answered with an error object when
// it makes no sense; a client that does not read its replies is closed.
//
// Owns: the inspection connections (slots, sockets, who they are, which
// monitor), the route of Kind::kInspect, and the rate-limited log of
// refused connections. Asks of others: the Loop for its polls; the Policy
// who is an operator and who may attach; the Config; the Core's state to
// read, and of the Core's state it changes only the tracing (on while a
// monitor watches; publish_trace takes its events each turn); the rest of
// nucleusd that the replies read, through the View.
//
// Threading: nucleusd's loop thread only.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include <nucleus_internal/sys.h>

#include "config.h"
#include "connections.h"
#include "core.h"
#include "devices.h"
#include "log.h"
#include "loop.h"
#include "policy.h"
#include "programs.h"

namespace nucleus::daemon {

class Inspector {
 public:
  // What the replies read of the rest of nucleusd, read-only: references to
  // what lives as long as the Inspector.
  struct View {
    const std::string &socket_path;
    const bool &socket_activated;    // the listening socket came from LISTEN_FDS
    const int64_t &started_ns;       // when nucleusd started (monotonic)
    const Connections &connections;  // doorbells, polling, who is attached
    const Programs &programs;        // cgroup or signal mode
    const Devices &devices;          // their geometry
  };

  // Routes Kind::kInspect to this.
  Inspector(Loop &loop, Core &core, const Config &config, const Policy &policy, View view);
  Inspector(const Inspector &) = delete;
  Inspector &operator=(const Inspector &) = delete;

  // A connection whose first packet, `first`, is not an attach request:
  // served from now on, or answered with an error object and closed.
  void begin(sys::UniqueFd socket, std::string_view first, const ucred &cred);
  // Sends the message events of this loop turn to the monitors.
  void publish_trace();
  // Who is an operator may have changed (a reload): each connection's
  // operator flag is read again and a monitor that no longer may watch is
  // closed.
  void operators_changed();
  // At exit: every connection's socket is closed.
  void close_all();

 private:
  struct Inspection {
    bool live = false;
    uint32_t generation = 0;
    sys::UniqueFd socket;
    uint32_t uid = 0;
    uint32_t gid = 0;
    pid_t pid = 0;
    bool op = false;       // an operator
    bool monitor = false;  // gets the message events
    uint64_t dropped = 0;  // monitor packets it did not take
  };

  void arm(uint32_t index);
  void on_readable(uint32_t index, int result);
  void close_connection(uint32_t index);
  void serve(uint32_t index, std::string_view text);  // never throws
  void answer(uint32_t index, std::string_view text);
  void send_reply(uint32_t index, const std::string &text);
  nlohmann::json status_json(const Inspection &c) const;
  nlohmann::json processes_json(const Inspection &c, const nlohmann::json &request) const;
  nlohmann::json process_json(uint32_t id) const;
  nlohmann::json devices_json() const;
  bool visible_to(const Inspection &c, uint32_t id) const;

  Loop &loop_;
  Core &core_;
  const Config &config_;
  const Policy &policy_;
  const View view_;
  std::vector<Inspection> inspections_;
  std::vector<uint32_t> free_inspections_;
  log::RateLimited refused_log_;
};

}  // namespace nucleus::daemon
