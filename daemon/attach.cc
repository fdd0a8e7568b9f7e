#include "attach.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "sd_notify.h"

namespace nucleus::daemon {

namespace {

constexpr int kSoPeerPidfd = 77;    // SO_PEERPIDFD, Linux 6.5
constexpr int kListenFdsStart = 3;  // SD_LISTEN_FDS_START
// Connections of non-operators accepted and not yet attached, all uids
// together (each uid also has limits.per_uid.pending_attaches).
constexpr size_t kMaxPending = 256;
// After a failed accept (no descriptor left, no memory): the first wait,
// doubled each time it fails again, up to the last.
constexpr uint64_t kAcceptBackoffFirstMs = 10;
constexpr uint64_t kAcceptBackoffLastMs = 1000;
// What a refused connection may have sent that is read and dropped.
constexpr int kMaxRefusedPackets = 64;

// Ends a connection at accept, before nucleusd holds anything for it. It
// gets one AttachReply saying why: an attaching client reads it as its
// result (nucleusctl says so too). Shutting the connection down first makes
// a later send of the peer fail (EPIPE) rather than queue; what it sent
// before is read and dropped, since closing a socket with unread data
// resets the peer's (ECONNRESET) before it can read the reply.
void refuse(int fd, int status, wire::Cause cause, uint64_t value = 0) {
  wire::AttachReply reply{};
  reply.magic = wire::kMagic;
  reply.abi_version = wire::kAbiVersion;
  reply.status = status;
  reply.reserved = cause;  // a refusal's cause and value (wire::Cause)
  reply.channel_bytes = value;
  send(fd, &reply, sizeof(reply), MSG_DONTWAIT | MSG_NOSIGNAL);
  ::shutdown(fd, SHUT_RDWR);
  char byte = 0;
  for (int i = 0; i < kMaxRefusedPackets; ++i) {
    if (recv(fd, &byte, 1, MSG_DONTWAIT | MSG_TRUNC) <= 0) break;
  }
}

// Reads a started program's attach request from its bound connection with
// the credentials of the process that sent it (SCM_CREDENTIALS: the
// connection has SO_PASSCRED from before the program ran, Programs::spawn).
// SO_PEERCRED cannot say: on a socketpair it names its creator, nucleusd.
// *has_cred is false when no credentials came. Descriptors the sender
// passed along are closed. Returns what recvmsg returned (MSG_TRUNC: the
// packet's whole length).
ssize_t receive_bound(int fd, wire::AttachRequest *request, ucred *cred, bool *has_cred) {
  iovec iov{request, sizeof(*request)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(4 * sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
  *has_cred = false;
  if (n < 0) return n;
  for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET) continue;
    if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(ucred))) {
      std::memcpy(cred, CMSG_DATA(c), sizeof(*cred));
      *has_cred = true;
    } else if (c->cmsg_type == SCM_RIGHTS) {
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int passed = -1;
        std::memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        close(passed);
      }
    }
  }
  // From here it is the program's connection: nothing more is stamped.
  int off = 0;
  setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &off, sizeof(off));
  return n;
}

}  // namespace

Attach::Attach(const Config &config, Core &core, Loop &loop, Policy &policy,
               Connections &connections, Inspector &inspector, Reactions &reactions)
    : config_(config),
      core_(core),
      loop_(loop),
      policy_(policy),
      connections_(connections),
      inspector_(inspector),
      reactions_(reactions) {
  loop_.route(Kind::kAccept, [this](const Completion &c) {
    if (c.index == kAcceptRetry) {
      if (!closed_) arm_accept();
    } else {
      on_accept(c.result);
    }
  });
  loop_.route(Kind::kHandshake, [this](const Completion &c) {
    if (c.index >= pending_.size() || !pending_[c.index].live ||
        pending_[c.index].generation != c.generation) {
      return;
    }
    if (c.result == -ECANCELED) {
      log::info("a connection (pid {} uid {}) sent no attach request in {} ms; closed",
                pending_[c.index].cred.pid, pending_[c.index].cred.uid, config_.attach_timeout_ms);
      release_pending(c.index);
    } else {
      on_handshake(c.index);
    }
  });
}

bool Attach::listen(const std::string &runtime_dir, std::string *error) {
  if (!take_listen_fd(error)) return false;
  return socket_activated_ || listen_socket(runtime_dir, error);
}

void Attach::serve() {
  attach_timeout_.tv_sec = static_cast<int64_t>(config_.attach_timeout_ms / 1000);
  attach_timeout_.tv_nsec = static_cast<int64_t>(config_.attach_timeout_ms % 1000) * 1000000;
  arm_accept();
}

void Attach::stop() {
  closed_ = true;
}

void Attach::shutdown() {
  closed_ = true;
  // A socket from socket activation belongs to the service manager.
  if (!socket_activated_) unlink(socket_path_.c_str());
  listen_fd_.reset();
  for (Pending &p : pending_) p.socket.reset();
}

// Without socket activation: its own socket in the runtime directory.
bool Attach::listen_socket(const std::string &runtime_dir, std::string *error) {
  socket_path_ = runtime_dir + "/nucleus.sock";
  sockaddr_un addr{};
  if (socket_path_.size() >= sizeof(addr.sun_path)) {
    *error = "socket path too long: " + socket_path_;
    return false;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path_.c_str(), socket_path_.size() + 1);

  // A socket left by a nucleusd that died is removed; a live one is not.
  {
    sys::UniqueFd probe(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (connect(probe.get(), reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) == 0) {
      *error = "another nucleusd is listening on " + socket_path_;
      return false;
    }
    unlink(socket_path_.c_str());
  }
  listen_fd_.reset(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listen_fd_ ||
      bind(listen_fd_.get(), reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) < 0 ||
      chmod(socket_path_.c_str(), 0666) < 0 || ::listen(listen_fd_.get(), SOMAXCONN) < 0) {
    *error = "cannot listen on " + socket_path_ + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

bool Attach::take_listen_fd(std::string *error) {
  uint64_t pid = 0, count = 0;
  // Only for us: $LISTEN_PID names the process the fds were passed to.
  if (!env_number("LISTEN_PID", &pid) || pid != static_cast<uint64_t>(getpid()) ||
      !env_number("LISTEN_FDS", &count) || count == 0) {
    return true;
  }
  // Programs nucleusd starts must not think the fds are theirs.
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  if (count != 1) {
    *error = "socket activation: expected 1 socket in LISTEN_FDS, got " + std::to_string(count);
    return false;
  }
  int fd = kListenFdsStart;
  int type = 0, listening = 0;
  socklen_t len = sizeof(type);
  sockaddr_un addr{};
  socklen_t alen = sizeof(addr);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET ||
      getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &(len = sizeof(listening))) < 0 ||
      listening == 0 || getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &alen) < 0 ||
      addr.sun_family != AF_UNIX) {
    *error =
        "socket activation: fd 3 is not a listening AF_UNIX SOCK_SEQPACKET socket "
        "(ListenSequentialPacket= in nucleusd.socket)";
    return false;
  }
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  listen_fd_.reset(fd);
  socket_path_ = std::string(addr.sun_path, strnlen(addr.sun_path, sizeof(addr.sun_path)));
  socket_activated_ = true;
  return true;
}

void Attach::arm_accept() {
  io_uring_sqe *sqe = loop_.sqe();
  io_uring_prep_accept(sqe, listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  Loop::set_tag(sqe, Kind::kAccept, 0, 0);
}

void Attach::on_accept(int result) {
  if (closed_) return;
  int64_t now = sys::monotonic_ns();
  auto interval = static_cast<int64_t>(config_.limits.log_interval_ms) * 1000000;
  if (result < 0) {
    if (result == -EAGAIN || result == -EINTR || result == -ECONNABORTED) {
      arm_accept();  // that one connection, not the socket
      return;
    }
    // Out of descriptors (EMFILE, ENFILE) or memory: accepting again at once
    // fails again at once, a busy loop. Wait, longer each time, until
    // something closes.
    accept_backoff_ms_ = accept_backoff_ms_ == 0
                             ? kAcceptBackoffFirstMs
                             : std::min(accept_backoff_ms_ * 2, kAcceptBackoffLastMs);
    accept_log_.warn(now, interval, "accept: {}; trying again in {} ms", std::strerror(-result),
                     accept_backoff_ms_);
    arm_accept_retry();
    return;
  }
  accept_backoff_ms_ = 0;
  arm_accept();
  sys::UniqueFd fd(result);
  // Credentials first, before a pending slot is held: a uid that may not
  // attach, or one that holds its share of slots, takes none.
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return;
  bool op = policy_.is_operator(cred.uid, cred.gid);
  if (!op && !policy_.may_attach(cred.uid, cred.gid)) {
    refused_log_.warn(now, interval,
                      "attach refused (pid {} uid {}): not allowed to attach (attach.uids, "
                      "attach.gids)",
                      cred.pid, cred.uid);
    refuse(fd.get(), -EACCES, wire::kCauseAttachNotAllowed);
    return;
  }
  if (!op) {
    uint32_t held = pending_by_uid_.count(cred.uid) != 0 ? pending_by_uid_[cred.uid] : 0;
    if (held >= config_.limits.uid_pending_attaches) {
      pending_log_.warn(now, interval,
                        "attach refused (pid {} uid {}): it has {} connections waiting to attach "
                        "(limits.per_uid.pending_attaches)",
                        cred.pid, cred.uid, held);
      refuse(fd.get(), -EAGAIN, wire::kCauseAttachesPending, config_.limits.uid_pending_attaches);
      return;
    }
    size_t all = 0;
    for (const auto &[uid, n] : pending_by_uid_) all += n;
    if (all >= kMaxPending) {
      pending_log_.warn(now, interval,
                        "attach refused (pid {} uid {}): {} connections wait to attach", cred.pid,
                        cred.uid, all);
      refuse(fd.get(), -EAGAIN, wire::kCauseAttachesPending, kMaxPending);
      return;
    }
    ++pending_by_uid_[cred.uid];
  }
  uint32_t index = 0;
  if (!free_pending_.empty()) {
    index = free_pending_.back();
    free_pending_.pop_back();
  } else {
    index = static_cast<uint32_t>(pending_.size());
    pending_.emplace_back();
  }
  Pending &p = pending_[index];
  p.live = true;
  ++p.generation;
  p.socket = std::move(fd);
  p.cred = cred;
  p.op = op;
  // A connection that does not send its attach request in time is closed:
  // the poll is linked to a timeout that cancels it.
  loop_.reserve(2);
  io_uring_sqe *sqe =
      loop_.poll(p.socket.get(), POLLIN | POLLRDHUP, Kind::kHandshake, index, p.generation);
  sqe->flags |= IOSQE_IO_LINK;
  io_uring_sqe *timeout = loop_.sqe();
  io_uring_prep_link_timeout(timeout, &attach_timeout_, 0);
  Loop::set_tag(timeout, Kind::kIgnore, 0, 0);
}

void Attach::arm_accept_retry() {
  accept_retry_.tv_sec = static_cast<int64_t>(accept_backoff_ms_ / 1000);
  accept_retry_.tv_nsec = static_cast<int64_t>(accept_backoff_ms_ % 1000) * 1000000;
  io_uring_sqe *sqe = loop_.sqe();
  io_uring_prep_timeout(sqe, &accept_retry_, 0, 0);
  Loop::set_tag(sqe, Kind::kAccept, kAcceptRetry, 0);
}

void Attach::release_pending(uint32_t index) {
  Pending &p = pending_[index];
  p.socket.reset();
  p.live = false;
  free_pending_.push_back(index);
  if (p.op) return;
  auto it = pending_by_uid_.find(p.cred.uid);
  if (it != pending_by_uid_.end() && --it->second == 0) pending_by_uid_.erase(it);
}

void Attach::on_handshake(uint32_t index) {
  Pending &p = pending_[index];
  sys::UniqueFd socket = std::move(p.socket);
  ucred cred = p.cred;
  release_pending(index);

  // An attach request (a binary record), or an inspection connection's first
  // request (a JSON object: nucleusctl).
  char first[4096];
  ssize_t n = recv(socket.get(), first, sizeof(first), MSG_DONTWAIT | MSG_TRUNC);
  if (n <= 0) return;  // hung up before attaching
  if (first[0] == '{' && static_cast<size_t>(n) <= sizeof(first)) {
    inspector_.begin(std::move(socket), std::string_view(first, static_cast<size_t>(n)), cred);
    return;
  }

  wire::AttachRequest request{};
  wire::AttachReply reply{};
  uint32_t id = kNone;
  std::string name;
  if (static_cast<size_t>(n) != sizeof(request)) {
    reply.status = -EPROTO;
  } else {
    std::memcpy(&request, first, sizeof(request));
    Refusal why;
    reply.status = attach(socket.get(), request, cred, &name, &id, &why);
    // A refusal's cause and value (wire::AttachReply): the client's text.
    reply.reserved = why.cause;
    if (reply.status != 0) reply.channel_bytes = why.value;
  }
  if (reply.status != 0) {
    // Logged before the reply, so that whoever is refused finds it logged
    // (a bound or a name refusal is logged rate-limited by attach()).
    if (reply.status != -EDQUOT && reply.status != -EPERM) {
      log::info("attach refused (pid {} uid {}): {}", cred.pid, cred.uid,
                std::strerror(-reply.status));
    }
    send_reply(socket.get(), &reply, id);
    return;
  }
  bool sent = send_reply(socket.get(), &reply, id);
  if (!connections_.serve(id, std::move(socket), sent)) return;
  log::info("process {} attached (pid {} uid {}, claim {} buffers)", name, cred.pid, cred.uid,
            core_.processes().at(id).slots.size());
}

bool Attach::send_reply(int socket_fd, wire::AttachReply *reply, uint32_t id) {
  reply->magic = wire::kMagic;
  reply->abi_version = wire::kAbiVersion;
  int fds[2] = {-1, -1};
  unsigned fd_count = 0;
  if (reply->status == 0) {
    const Channel &channel = *connections_.channel(id);
    const std::string &name = core_.processes().at(id).name;
    reply->channel_bytes = channel.bytes();
    std::memcpy(reply->name, name.c_str(), name.size() + 1);
    fds[fd_count++] = channel.fd();
    if (int doorbell = connections_.doorbell_fd(id); doorbell >= 0) fds[fd_count++] = doorbell;
  }
  reply->fd_count = fd_count;
  return sys::send_record(socket_fd, reply, sizeof(*reply), fds, fd_count) ==
         static_cast<ssize_t>(sizeof(*reply));
}

int Attach::attach(int socket_fd, const wire::AttachRequest &request, const ucred &cred,
                   std::string *name, uint32_t *id_out, Refusal *why) {
  if (request.magic != wire::kMagic || request.abi_version != wire::kAbiVersion) {
    *why = Refusal{wire::kCauseAbi, wire::kAbiVersion};
    return -EPROTO;
  }
  if (!policy_.may_attach(cred.uid, cred.gid)) {
    *why = Refusal{wire::kCauseAttachNotAllowed};
    return -EACCES;
  }
  // An empty name is for connections nucleusd bound when it started a
  // program (NUCLEUS_FD); this one came through the socket.
  int len = wire::name_length(request.name, sizeof(request.name));
  if (len < 0) {
    *why = Refusal{wire::kCauseBadName};
    return -EINVAL;
  }
  *name = std::string(request.name, static_cast<size_t>(len));
  // A well-known name is only for the uids and groups the names section
  // gives it (logged there).
  if (!policy_.may_own(*name, Owner{cred.uid, cred.gid}, "attach as")) {
    *why = Refusal{wire::kCauseNameReserved};
    return -EPERM;
  }

  Claims claims{config_.default_claim_buffers, config_.default_claim_processes,
                config_.default_claim_memory, config_.default_claim_devices, 0};
  Result<uint32_t> id = core_.attach(*name, claims, cred.uid, cred.gid, cred.pid,
                                     policy_.uid_budget(cred.uid, cred.gid));
  if (!id.ok()) {
    policy_.log_uid_refusal(id.error(), cred.uid, "attach as", *name);
    *why = core_.take_refusal(id.error());
    return -to_errno(id.error());
  }
  // SO_PEERPIDFD names the peer without a pid-reuse race; older kernels get
  // pidfd_open of the pid SO_PEERCRED gave.
  int pidfd = -1;
  socklen_t plen = sizeof(pidfd);
  if (getsockopt(socket_fd, SOL_SOCKET, kSoPeerPidfd, &pidfd, &plen) < 0) {
    pidfd = static_cast<int>(syscall(SYS_pidfd_open, cred.pid, 0));
  }
  int rc = pidfd < 0 ? -ESRCH : connections_.open(id.value(), pidfd, cred.pid);
  if (rc < 0) {
    core_.detach(id.value());
    return rc;
  }
  *id_out = id.value();
  return 0;
}

void Attach::attach_bound(uint32_t id, sys::UniqueFd socket, pid_t pid, int program_pidfd) {
  const Process &p = core_.processes().at(id);
  wire::AttachRequest request{};
  ucred cred{};
  bool has_cred = false;
  ssize_t n = receive_bound(socket.get(), &request, &cred, &has_cred);
  if (n <= 0) return;  // closed without attaching
  wire::AttachReply reply{};
  int len = wire::name_length(request.name, sizeof(request.name));
  // Whoever holds the connection is not the entry: only a sender with the
  // owner's uid and gid attaches it (a program that dropped to another
  // uid, or passed the descriptor on, does not).
  bool owners = has_cred && cred.uid == p.uid && cred.gid == p.gid;
  if (static_cast<size_t>(n) != sizeof(request) || request.magic != wire::kMagic ||
      request.abi_version != wire::kAbiVersion) {
    reply.status = -EPROTO;
  } else if (!owners) {
    reply.status = -EACCES;
    if (has_cred) {
      log::warn(
          "process {} (pid {}): attach refused: the sender on its bound connection (pid {} "
          "uid {} gid {}) is not its owner (uid {} gid {})",
          p.name, pid, cred.pid, cred.uid, cred.gid, p.uid, p.gid);
    } else {
      log::warn(
          "process {} (pid {}): attach refused: no credentials came with the request on its "
          "bound connection",
          p.name, pid);
    }
  } else if (request.name[0] != '\0' &&
             (len < 0 || p.name != std::string_view(request.name, static_cast<size_t>(len)))) {
    reply.status = -EINVAL;  // only the name its parent gave
  } else if (p.attached) {
    reply.status = -EEXIST;
  } else {
    int pidfd = fcntl(program_pidfd, F_DUPFD_CLOEXEC, 0);
    core_.attach_run(id);
    reply.status = pidfd < 0 ? -errno : connections_.open(id, pidfd, pid);
    if (reply.status < 0) core_.detach(id);
  }
  if (reply.status == 0 && p.swap_of != kNone) {
    reactions_.candidate_attached(id, std::move(socket));  // its reply waits for the old OS's state
    return;
  }
  bool sent = send_reply(socket.get(), &reply, id);
  if (reply.status != 0) {
    if (reply.status != -EACCES && reply.status != -EPERM) {  // those said why above
      log::info("process {} (pid {}): attach refused: {}", p.name, pid,
                std::strerror(-reply.status));
    }
    return;
  }
  if (!connections_.serve(id, std::move(socket), sent)) return;
  connections_.flush(id);  // messages that waited for it
  log::info("process {} attached (pid {}, claim {} buffers)", p.name, pid, p.slots.size());
}

}  // namespace nucleus::daemon
