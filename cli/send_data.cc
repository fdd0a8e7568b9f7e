#include "send_data.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace nucleus::ctl {

namespace {

bool read_all(int fd, std::vector<std::byte> *out) {
  char chunk[65536];
  for (;;) {
    ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    const auto *b = reinterpret_cast<const std::byte *>(chunk);
    out->insert(out->end(), b, b + n);
  }
}

}  // namespace

bool plan_lend(const SendDataOptions &o, DataLend *out, std::string *error) {
  *out = DataLend{};
  if (o.text && o.file) {
    *error = "--data and --data-file: give one of them";
    return false;
  }
  if (o.text) {
    const auto *b = reinterpret_cast<const std::byte *>(o.text->data());
    out->bytes.assign(b, b + o.text->size());
  } else if (o.file && *o.file == "-") {
    if (!read_all(STDIN_FILENO, &out->bytes)) {
      *error = std::string("--data-file -: cannot read stdin: ") + std::strerror(errno);
      return false;
    }
  } else if (o.file) {
    std::ifstream in(*o.file, std::ios::binary);
    if (!in) {
      *error = "--data-file: cannot read " + *o.file + ": " + std::strerror(errno);
      return false;
    }
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) {
      *error = "--data-file: cannot read " + *o.file + ": " + std::strerror(errno);
      return false;
    }
    const auto *b = reinterpret_cast<const std::byte *>(bytes.data());
    out->bytes.assign(b, b + bytes.size());
  }
  if (o.text || o.file) out->rights |= NUCLEUS_LEND_READ;
  if (o.receive > 0) out->rights |= NUCLEUS_LEND_WRITE;
  out->range = std::max<uint64_t>(out->bytes.size(), o.receive);
  if (out->range == 0) out->rights = 0;  // empty data: nothing to lend
  if (o.length_word > 7) {
    *error = "--length-word: a word is 0..7, got " + std::to_string(o.length_word);
    return false;
  }
  if (o.length_word >= 0 && o.receive == 0) {
    *error = "--length-word counts the bytes of --receive: give --receive too";
    return false;
  }
  return true;
}

bool received_length(const Message &answer, int length_word, uint64_t receive, uint64_t *out,
                     std::string *error) {
  if (length_word < 0) {
    *out = receive;
    return true;
  }
  uint64_t said = answer.word[length_word];
  if (said > receive) {
    *error = "the answer's word " + std::to_string(length_word) + " says " + std::to_string(said) +
             " bytes, more than the " + std::to_string(receive) + " lent (--receive)";
    return false;
  }
  *out = said;
  return true;
}

std::string rights_name(uint32_t rights) {
  if (rights == (NUCLEUS_LEND_READ | NUCLEUS_LEND_WRITE)) return "read,write";
  if (rights == NUCLEUS_LEND_READ) return "read";
  if (rights == NUCLEUS_LEND_WRITE) return "write";
  return "none";
}

std::string hex(const std::byte *bytes, size_t count) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s(count * 2, '0');
  for (size_t i = 0; i < count; ++i) {
    auto v = static_cast<unsigned>(bytes[i]);
    s[2 * i] = kDigits[v >> 4];
    s[2 * i + 1] = kDigits[v & 15];
  }
  return s;
}

}  // namespace nucleus::ctl
