// The seam for the library's unit tests; only nucleus_client_internal
// builds this file, so the installed libraries do not have it.
#include "testing.h"

namespace nucleus::client {

int ChannelForTesting::open(int channel_fd, uint64_t bytes, sys::UniqueFd doorbell,
                            std::unique_ptr<Channel> *out) {
  return Channel::map_channel(channel_fd, bytes, std::move(doorbell), out);
}

void ChannelForTesting::give_poll_descriptor(Channel &ch, sys::UniqueFd read_end) {
  ch.poll_fd_ = std::move(read_end);
  ch.poll_armed_ = false;
  ch.poll_signalled_ = false;
  ch.arm_descriptor();
}

}  // namespace nucleus::client
