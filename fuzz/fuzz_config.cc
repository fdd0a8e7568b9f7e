// Fuzzes the configuration parser: any text gives a Config or a message.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  nucleus::daemon::Config config;
  std::string error;
  bool ok = nucleus::daemon::parse_config(std::string(reinterpret_cast<const char *>(data), size),
                                          &config, &error);
  if (ok == !error.empty()) std::abort();  // exactly one of value and message
  if (ok && config.default_claim_buffers > config.pool_buffers) std::abort();
  return 0;
}
