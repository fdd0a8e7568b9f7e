// Readiness and state notification to a service manager (systemd's
// sd_notify protocol): a datagram to $NOTIFY_SOCKET, when it is set; and the
// numbers it passes in the environment ($LISTEN_FDS, $WATCHDOG_USEC...).
#pragma once

#include <cstdint>

namespace nucleus::daemon {

// A decimal environment variable, or false.
bool env_number(const char *name, uint64_t *out);

// Sends `state` (e.g. "READY=1") to $NOTIFY_SOCKET; does nothing without it.
void sd_notify(const char *state);

}  // namespace nucleus::daemon
