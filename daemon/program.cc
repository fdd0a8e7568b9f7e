#include "program.h"

#include <nucleus/wire.h>

#include <cstring>

namespace nucleus::daemon {

Result<Program> parse_program(const std::string &bytes) {
  wire::ProgramHeader header{};
  if (bytes.size() < sizeof(header) || bytes.size() > wire::kMaxProgramBytes) {
    return Error::kInvalid;
  }
  std::memcpy(&header, bytes.data(), sizeof(header));
  if (header.argc > wire::kMaxProgramStrings || header.envc > wire::kMaxProgramStrings ||
      header.argc + header.envc > wire::kMaxProgramStrings) {
    return Error::kInvalid;
  }
  size_t pos = sizeof(header);
  bool ok = true;
  auto next = [&]() -> std::string {
    size_t end = bytes.find('\0', pos);
    if (end == std::string::npos) {
      ok = false;
      return {};
    }
    std::string s = bytes.substr(pos, end - pos);
    pos = end + 1;
    return s;
  };
  Program p;
  p.path = next();
  p.cwd = next();
  for (uint32_t i = 0; i < header.argc && ok; ++i) p.argv.push_back(next());
  for (uint32_t i = 0; i < header.envc && ok; ++i) {
    p.env.push_back(next());
    if (ok && p.env.back().find('=') == std::string::npos) ok = false;  // NAME=value
  }
  if (!ok || p.path.empty() || pos != bytes.size()) return Error::kInvalid;
  return p;
}

}  // namespace nucleus::daemon
