// A uid given as a number or as a user name: the batch's --allow and the
// supervisor's "controllers" both take either.
#pragma once

#include <cstdint>
#include <string>

namespace nucleus::os {

// The uid `text` names: a decimal number (below 2^32 - 1, which is no uid)
// or a user name in the user database. False when it is neither.
bool resolve_uid(const std::string &text, uint32_t *uid);

}  // namespace nucleus::os
