// The seam for the library's unit tests (tests/unit/client_channel_test.cc):
// a Channel over a channel memfd with no socket, so that the test drives
// nucleusd's half (daemon::Channel) itself. Only the nucleus_client_internal
// target builds testing.cc; the installed libraries do not have it.
#pragma once

#include <cstdint>
#include <memory>

#include <nucleus_internal/sys.h>

#include "client.h"

namespace nucleus::client {

class ChannelForTesting {
 public:
  // A channel over `channel_fd` of `bytes` bytes, as attach makes one from
  // what nucleusd sends (the memfd and, for an eventfd doorbell, the eventfd).
  static int open(int channel_fd, uint64_t bytes, sys::UniqueFd doorbell,
                  std::unique_ptr<Channel> *out);
  // Gives `ch` the read end of a pipe as its descriptor to poll, as
  // poll_descriptor() does with the one nucleusd sends, and arms it.
  static void give_poll_descriptor(Channel &ch, sys::UniqueFd read_end);
};

}  // namespace nucleus::client
