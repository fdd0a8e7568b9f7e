// Readiness and state notification to a service manager (systemd's
// sd_notify protocol): a datagram to $NOTIFY_SOCKET, when it is set.
#pragma once

namespace nucleus::daemon {

// Sends `state` (e.g. "READY=1") to $NOTIFY_SOCKET; does nothing without it.
void sd_notify(const char *state);

}  // namespace nucleus::daemon
