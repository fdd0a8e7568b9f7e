// Server's side of process control: the Linux side the decoder asks for
// goes to Programs, Swaps and Devices (server.h forwards it), and what they
// tell each other (Reactions) to the objects it concerns.
#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "log.h"
#include "server.h"

namespace nucleus::daemon {

void Server::answer(const Waiter &waiter, int result) {
  connections_.answer(waiter, result);
}

void Server::detached(uint32_t id, uint32_t generation, bool old_os, uint32_t taken_over) {
  // What devices were doing for it ends; its data area stays mapped until
  // each operation's completion has come back.
  devices_.cancel_ops_of(id, generation);
  if (old_os) swap_event(id, SwapEvent::kOldExited);
  if (taken_over != kNone) swap_event(taken_over, SwapEvent::kNewExited);
}

void Server::program_ended(uint32_t id) {
  connections_.end(id, "program exited");
}

void Server::removed(uint32_t id) {
  if (connections_.live(id)) connections_.detach(id, "removed", false);
}

void Server::tell_swap(uint32_t os, SwapEvent event, uint64_t detail) {
  swap_event(os, event, detail);
}

int64_t Server::swap_deadline() const {
  int64_t due = 0;
  for (const auto &s : swaps_) {
    if (due == 0 || s->deadline_ns < due) due = s->deadline_ns;
  }
  return due;
}

void Server::bound(uint32_t id, sys::UniqueFd socket, pid_t pid, int program_pidfd) {
  const Process &p = core_.processes().at(id);
  wire::AttachRequest request{};
  ssize_t n = recv(socket.get(), &request, sizeof(request), MSG_DONTWAIT | MSG_TRUNC);
  if (n <= 0) return;  // closed without attaching
  wire::AttachReply reply{};
  int len = wire::name_length(request.name, sizeof(request.name));
  if (static_cast<size_t>(n) != sizeof(request) || request.magic != wire::kMagic ||
      request.abi_version != wire::kAbiVersion) {
    reply.status = -EPROTO;
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
    swap_attached(id, std::move(socket));  // its reply waits for the old OS's state
    return;
  }
  bool sent = send_attach_reply(socket.get(), &reply, id);
  if (reply.status != 0) {
    log::info("process {} (pid {}): attach refused: {}", p.name, pid, std::strerror(-reply.status));
    return;
  }
  if (!connections_.serve(id, std::move(socket), sent)) return;
  connections_.flush(id);  // messages that waited for it
  log::info("process {} attached (pid {}, claim {} buffers)", p.name, pid, p.slots.size());
}

}  // namespace nucleus::daemon
