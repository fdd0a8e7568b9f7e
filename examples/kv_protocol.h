// The messages of the key-value example (nucleus-kv-server and
// nucleus-kv-client; docs/data-and-regret.md, "The example: a key-value
// service"). A message carries the operation and the key in its eight words;
// the value travels in a range of the sender's data area that the message
// lends the server until it is answered (a put lends it read-only, a get
// lends it for writing), so nothing of the value is ever in the words.
//
//   word 0      the operation (Op)
//   word 1      the key's length in bytes, 1..kMaxKeyBytes
//   words 2..7  the key (any bytes but NUL, not NUL-terminated)
//
// Answers (result, then words):
//   put     normal: word 0 = the value's length (the bytes lent), word 1 =
//           the key's owner (uid). rejected: word 0 = EACCES (the key is
//           another uid's), EMSGSIZE (the value is larger than the server
//           takes), EDQUOT (the sender's uid has all the keys or bytes it may
//           have), EPROTO (the range lent is not readable). An empty value
//           is a put that lends nothing.
//   get     normal: word 0 = the value's length, copied to the start of the
//           range lent, word 1 = the key's owner. rejected: ENOENT, E2BIG (the
//           range is smaller than the value: word 1 = the value's length),
//           EPROTO (the message lends nothing writable).
//   delete  normal. rejected: ENOENT, EACCES (the key is another uid's).
//   any     unintelligible, word 0 = EINVAL: no such operation, or a key of
//           0 or more than kMaxKeyBytes bytes, or with a NUL in it.
//
// Who may do what, by the sender's principal (stamped by nucleusd, never
// taken from the message): every process may get every key; the first put of
// a key makes the sender's uid its owner, and only that uid may put it again
// or delete it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <nucleus/nucleus.hpp>
#include <span>
#include <string>
#include <string_view>

namespace nucleus::kv {

enum Op : uint64_t {
  kPut = 1,
  kGet = 2,
  kDelete = 3,
};

inline constexpr size_t kMaxKeyBytes = 6 * sizeof(uint64_t);  // words 2..7
inline constexpr uint64_t kMaxValueBytes = 64 * 1024;
inline constexpr const char *kDefaultServer = "kv";

// A key fits: 1..kMaxKeyBytes bytes and no NUL.
inline bool valid_key(std::string_view key) {
  return !key.empty() && key.size() <= kMaxKeyBytes && key.find('\0') == std::string_view::npos;
}

// The message for `op` on `key` (valid_key(key)).
inline Message request(Op op, std::string_view key) {
  Message m{};
  m.word[0] = op;
  m.word[1] = key.size();
  std::memcpy(&m.word[2], key.data(), key.size());
  return m;
}

// The key a message names, or an empty string when it names none that fits.
inline std::string key_of(const Message &m) {
  if (m.word[1] == 0 || m.word[1] > kMaxKeyBytes) return {};
  std::string key(m.word[1], '\0');
  std::memcpy(key.data(), &m.word[2], key.size());
  return valid_key(key) ? key : std::string();
}

// The bytes the example's client puts: a function of `seed` only, so that
// whoever knows the seed (the client when it gets the value back, a test)
// can check every byte. xorshift64*, one byte of each step.
inline void fill_pattern(std::span<std::byte> into, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (std::byte &b : into) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    b = static_cast<std::byte>((x * 0x2545F4914F6CDD1DULL) >> 56);
  }
}

}  // namespace nucleus::kv
