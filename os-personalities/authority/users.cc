#include "users.h"

#include <pwd.h>

#include <charconv>
#include <vector>

namespace nucleus::os {

bool resolve_uid(const std::string &text, uint32_t *uid) {
  if (text.empty()) return false;
  uint32_t number = 0;
  const char *end = text.data() + text.size();
  auto [at, ec] = std::from_chars(text.data(), end, number);
  if (ec == std::errc() && at == end) {
    if (number == UINT32_MAX) return false;  // (uid_t)-1 means "no change" to the kernel
    *uid = number;
    return true;
  }
  passwd pw{};
  passwd *found = nullptr;
  std::vector<char> buf(16384);
  if (getpwnam_r(text.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return false;
  }
  *uid = pw.pw_uid;
  return true;
}

}  // namespace nucleus::os
