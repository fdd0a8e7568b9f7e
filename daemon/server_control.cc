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
  if (old_os) swaps_.event(id, SwapEvent::kOldExited);
  if (taken_over != kNone) swaps_.event(taken_over, SwapEvent::kNewExited);
}

void Server::program_ended(uint32_t id) {
  connections_.end(id, "program exited");
}

void Server::removed(uint32_t id) {
  if (connections_.live(id)) connections_.detach(id, "removed", false);
}

}  // namespace nucleus::daemon
