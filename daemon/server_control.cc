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

}  // namespace nucleus::daemon
