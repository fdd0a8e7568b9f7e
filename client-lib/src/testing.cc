// The seam for the library's unit tests; only nucleus_client_internal
// builds this file, so the installed libraries do not have it.
#include "client.h"

namespace nucleus::client {

int Channel::for_testing(int channel_fd, uint64_t bytes, sys::UniqueFd doorbell,
                         std::unique_ptr<Channel> *out) {
  return map_channel(channel_fd, bytes, std::move(doorbell), out);
}

}  // namespace nucleus::client
