#include "program.h"

#include <nucleus/wire.h>

#include <cstring>

namespace nucleus::daemon {

bool valid_utf8(std::string_view s) {
  static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};  // below: an overlong form
  size_t i = 0;
  while (i < s.size()) {
    auto lead = static_cast<unsigned char>(s[i]);
    size_t more = lead < 0x80             ? 0
                  : (lead & 0xe0) == 0xc0 ? 1
                  : (lead & 0xf0) == 0xe0 ? 2
                  : (lead & 0xf8) == 0xf0 ? 3
                                          : 4;
    if (more == 4 || s.size() - i <= more) return false;
    uint32_t cp = more == 0 ? lead : lead & (0x3fU >> more);
    for (size_t k = 1; k <= more; ++k) {
      auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3fU);
    }
    if (cp < kMin[more] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += 1 + more;
  }
  return true;
}

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
  // Client text is UTF-8 where it enters: it is shown (nucleusctl, JSON)
  // and logged later.
  bool utf8 = valid_utf8(p.path) && valid_utf8(p.cwd);
  for (const std::string &a : p.argv) utf8 = utf8 && valid_utf8(a);
  for (const std::string &e : p.env) utf8 = utf8 && valid_utf8(e);
  if (!utf8) return Error::kInvalid;
  p.uid = header.uid == wire::kOwnerDefault ? kNone : header.uid;
  p.gid = header.gid == wire::kOwnerDefault ? kNone : header.gid;
  return p;
}

}  // namespace nucleus::daemon
