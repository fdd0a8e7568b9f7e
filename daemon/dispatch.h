// The thin layer between a channel and the core: decodes one request that
// was copied out of a channel, checks its fields, and calls the primitive.
#pragma once

#include <nucleus/wire.h>

#include "core.h"
#include "error.h"

namespace nucleus::daemon {

struct DispatchResult {
  Error error = Error::kNone;
  bool has_reply = false;  // *reply holds an event for the caller
};

DispatchResult dispatch_request(Core &core, uint32_t id, const wire::Request &request,
                                wire::Event *reply);

}  // namespace nucleus::daemon
