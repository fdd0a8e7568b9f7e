// `nucleusctl send --data/--data-file/--receive`: the range of nucleusctl's
// data area a message lends its receiver (docs/nucleusctl.md, "Data with a
// message"). What is lent comes from the command line, a file or stdin; what
// the receiver wrote into the range goes to a file or stdout after the
// answer. Pure functions over bytes and words, so the unit tests drive them
// without a nucleus.
#pragma once

#include <nucleus/nucleus.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nucleus::ctl {

struct SendDataOptions {
  std::optional<std::string> text;  // --data: these bytes, lent read
  std::optional<std::string> file;  // --data-file: this file's bytes ("-": stdin), lent read
  uint64_t receive = 0;             // --receive: this many bytes lent write
  std::string out = "-";            // --out: where the received bytes go ("-": stdout)
  int length_word = -1;             // --length-word: the answer's word that counts them
  bool any() const { return text || file || receive > 0; }
};

// What the message lends: `bytes` at the start of a range of `range` bytes
// (the rest of it zero), with NUCLEUS_LEND_* `rights`.
struct DataLend {
  std::vector<std::byte> bytes;
  uint64_t range = 0;
  uint32_t rights = 0;
};

// Reads what --data or --data-file gives and sizes the range: the data lent
// read, `receive` bytes lent write, both in one range of the larger size
// lent read and write. False with a message on stderr's terms in *error.
bool plan_lend(const SendDataOptions &o, DataLend *out, std::string *error);

// How many of the received bytes to keep: all `receive`, or what the
// answer's word `length_word` says. False when that word says more than was
// lent (the receiver's word is not trusted).
bool received_length(const Message &answer, int length_word, uint64_t receive, uint64_t *out,
                     std::string *error);

// "read", "write" or "read,write".
std::string rights_name(uint32_t rights);

// The bytes as lower-case hex (send --json).
std::string hex(const std::byte *bytes, size_t count);

}  // namespace nucleus::ctl
