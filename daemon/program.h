// A staged program (wire::ProgramHeader and strings), checked once.
#pragma once

#include <string>
#include <string_view>

#include "error.h"
#include "process_table.h"

namespace nucleus::daemon {

// Well-formed UTF-8 (no overlong forms, surrogates or values past U+10FFFF).
bool valid_utf8(std::string_view s);

// The program in `bytes`, or kInvalid: a short header, counts over the
// limits, a string not terminated inside the bytes, an empty path, or bytes
// left over, or a string that is not UTF-8. Its uid/gid are kNone unless
// the header names an owner.
Result<Program> parse_program(const std::string &bytes);

}  // namespace nucleus::daemon
