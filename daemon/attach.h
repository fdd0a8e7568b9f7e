// How processes come to nucleusd: the listening socket (its own in the
// runtime directory, or the service manager's by socket activation),
// accepting connections, reading their first packet with a deadline, and
// the attach handshake: credentials, name and claim checked, the channel
// sent. A connection whose first packet is JSON goes to the Inspector; a
// program nucleusd started attaches on its bound NUCLEUS_FD connection.
//
// Owns: the listening socket and its path, the connections accepted and not
// yet attached (bounded per uid and in all), the accept back-off, their
// rate-limited log lines, and the Loop's kAccept and kHandshake routes.
// Asks of others: the Policy who may attach; the Core for the entry;
// Connections for the channel; the Inspector for JSON connections;
// Reactions for a swap's new program that attached.
//
// Threading: nucleusd's loop thread only.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <nucleus/wire.h>
#include <nucleus_internal/sys.h>

#include "config.h"
#include "connections.h"
#include "core.h"
#include "inspector.h"
#include "log.h"
#include "loop.h"
#include "policy.h"
#include "reactions.h"

namespace nucleus::daemon {

class Attach {
 public:
  // Registers the kAccept and kHandshake routes on `loop`.
  Attach(const Config &config, Core &core, Loop &loop, Policy &policy, Connections &connections,
         Inspector &inspector, Reactions &reactions);
  Attach(const Attach &) = delete;
  Attach &operator=(const Attach &) = delete;

  // The listening socket: the one socket activation passed ($LISTEN_FDS),
  // else <runtime_dir>/nucleus.sock. False with a message on failure.
  bool listen(const std::string &runtime_dir, std::string *error);
  const std::string &socket_path() const { return socket_path_; }
  const bool &socket_activated() const { return socket_activated_; }
  // Starts accepting.
  void serve();
  // Accepts no more (nucleusd is stopping).
  void stop();
  // A program nucleusd started (`pid`, `pidfd`) sent its attach request on
  // its bound connection: it attaches under the name its parent gave.
  void attach_bound(uint32_t id, sys::UniqueFd socket, pid_t pid, int pidfd);
  // The reply to an attach request, with the channel and doorbell of `id`
  // when it says yes. False: it could not be sent.
  bool send_reply(int socket_fd, wire::AttachReply *reply, uint32_t id);
  // At exit: no more connections; the socket file goes (unless it is the
  // service manager's).
  void shutdown();

 private:
  struct Pending {
    bool live = false;
    uint32_t generation = 0;
    sys::UniqueFd socket;
    ucred cred{};     // SO_PEERCRED, read at accept
    bool op = false;  // an operator's: not counted in pending_by_uid_
  };
  // A failed accept is tried again after a back-off, not at once: a kAccept
  // timeout with this index.
  static constexpr uint32_t kAcceptRetry = 1;

  bool listen_socket(const std::string &runtime_dir, std::string *error);
  bool take_listen_fd(std::string *error);
  void arm_accept();
  void arm_accept_retry();
  void on_accept(int result);
  void on_handshake(uint32_t index);
  // Frees a pending slot and its place in its uid's count.
  void release_pending(uint32_t index);
  // *why: the cause of a refusal (refusal.h), for the reply.
  int attach(int socket_fd, const wire::AttachRequest &request, const ucred &cred,
             std::string *name, uint32_t *id_out, Refusal *why);

  const Config &config_;
  Core &core_;
  Loop &loop_;
  Policy &policy_;
  Connections &connections_;
  Inspector &inspector_;
  Reactions &reactions_;
  std::string socket_path_;
  bool socket_activated_ = false;  // the listening socket came from LISTEN_FDS
  bool closed_ = false;            // shutdown() ran
  sys::UniqueFd listen_fd_;
  __kernel_timespec attach_timeout_{};  // linked to every handshake poll
  std::vector<Pending> pending_;
  std::vector<uint32_t> free_pending_;
  // Bounds (config_.limits): pending attaches per uid (operators are not
  // counted), the accept back-off, and one rate-limited log line per kind.
  std::unordered_map<uint32_t, uint32_t> pending_by_uid_;
  uint64_t accept_backoff_ms_ = 0;  // 0: the last accept worked
  __kernel_timespec accept_retry_{};
  log::RateLimited accept_log_;
  log::RateLimited refused_log_;
  log::RateLimited pending_log_;
};

}  // namespace nucleus::daemon
