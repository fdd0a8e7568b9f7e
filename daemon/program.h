// A staged program (wire::ProgramHeader and strings), checked once.
#pragma once

#include <string>

#include "error.h"
#include "process_table.h"

namespace nucleus::daemon {

// The program in `bytes`, or kInvalid: a short header, counts over the
// limits, a string not terminated inside the bytes, an empty path, or bytes
// left over.
Result<Program> parse_program(const std::string &bytes);

}  // namespace nucleus::daemon
