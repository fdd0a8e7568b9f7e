// How nucleusctl shows a message's eight words, the one place both `send`
// (an answer) and `monitor` (each message and answer) format them
// (docs/nucleusctl.md, "Words").
//
// Every word is shown in hex (0x and its digits, no leading zeros) and,
// where it says more, in decimal; a run of words whose bytes, in memory
// order (as a program copies a name or a string into words), are printable
// ASCII ended by NUL padding is also shown as text. Text is only ever
// printable ASCII (0x20..0x7e) with `"` and `\` escaped: a word holding
// control characters or other bytes is shown in numbers only, never raw on
// a terminal.
//
// Pure functions of the words; no state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <ostream>
#include <span>
#include <string>
#include <vector>

namespace nucleus::ctl {

// Words first..first+count-1 hold `text` (without its NUL padding).
struct TextRun {
  size_t first = 0;
  size_t count = 0;
  std::string text;
};

// "0x2a"; "0x0" for zero.
std::string word_hex(uint64_t word);
// The runs of words that hold text: at least two characters and a letter
// among them (so that a small number is not taken for text), every byte
// printable up to NUL padding that only the run's last word may have.
std::vector<TextRun> text_runs(std::span<const uint64_t> words);
// `text` between double quotes, `"` and `\` escaped (text_runs gives only
// printable ASCII).
std::string quoted(const std::string &text);

// One line: every word in hex, then each run of text with the index of its
// first word: `0x7 0x0 0x0 0x0 0x6f2d746f6f722d6d 0x736f 0x0 0x0  4:"m-root-os"`.
std::string words_line(std::span<const uint64_t> words);
// A table of the words, one line each: index, hex, decimal (and signed
// decimal when the top bit is set, as a -errno), text on a run's first word.
void print_words(std::ostream &out, std::span<const uint64_t> words,
                 const std::string &indent = "  ");
// The extra JSON fields for words printed as `key` (numbers): `key_hex`
// (the hex strings) and `key_text` ([{"first", "words", "text"}]).
void add_words_json(nlohmann::json &out, const std::string &key, std::span<const uint64_t> words);

}  // namespace nucleus::ctl
