#include "words.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace nucleus::ctl {

namespace {

// Byte i of a word in memory order (a name copied into words with memcpy
// reads back this way on the little-endian machines nucleus runs on).
char byte_of(uint64_t word, size_t i) {
  unsigned char b[sizeof(word)];
  std::memcpy(b, &word, sizeof(word));
  return static_cast<char>(b[i]);
}

bool printable(char c) {
  return c >= 0x20 && c <= 0x7e;
}

bool letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

std::string decimal(uint64_t word) {
  std::string s = std::to_string(word);
  if (static_cast<int64_t>(word) < 0) s += " (" + std::to_string(static_cast<int64_t>(word)) + ")";
  return s;
}

}  // namespace

std::string word_hex(uint64_t word) {
  char text[24];
  std::snprintf(text, sizeof(text), "0x%llx", static_cast<unsigned long long>(word));
  return text;
}

std::vector<TextRun> text_runs(std::span<const uint64_t> words) {
  std::vector<TextRun> runs;
  size_t i = 0;
  while (i < words.size()) {
    // Whole printable words, then one that ends in NUL padding (or the
    // last word of the message, whole).
    TextRun run{i, 0, {}};
    bool ended = false;
    for (size_t w = i; w < words.size() && !ended; ++w) {
      size_t n = 0;
      while (n < 8 && printable(byte_of(words[w], n))) ++n;
      bool padding = n > 0;
      for (size_t k = n; k < 8 && padding; ++k) padding = byte_of(words[w], k) == '\0';
      if (n < 8 && !padding) break;  // not text: the run ended at the word before
      for (size_t k = 0; k < n; ++k) run.text += byte_of(words[w], k);
      ++run.count;
      ended = n < 8;
    }
    if (run.count == 0) {
      ++i;
      continue;
    }
    if (run.text.size() >= 2 && std::any_of(run.text.begin(), run.text.end(), letter)) {
      runs.push_back(run);
    }
    i += run.count;
  }
  return runs;
}

std::string quoted(const std::string &text) {
  std::string s = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') s += '\\';
    s += c;
  }
  return s + "\"";
}

std::string words_line(std::span<const uint64_t> words) {
  std::string s;
  for (size_t i = 0; i < words.size(); ++i) s += (i == 0 ? "" : " ") + word_hex(words[i]);
  std::string sep = "  ";
  for (const TextRun &r : text_runs(words)) {
    s += sep + std::to_string(r.first) + ":" + quoted(r.text);
    sep = " ";
  }
  return s;
}

void print_words(std::ostream &out, std::span<const uint64_t> words, const std::string &indent) {
  std::vector<TextRun> runs = text_runs(words);
  size_t hex_width = 0, dec_width = 0;
  for (uint64_t w : words) {
    hex_width = std::max(hex_width, word_hex(w).size());
    dec_width = std::max(dec_width, decimal(w).size());
  }
  for (size_t i = 0; i < words.size(); ++i) {
    std::string hex = word_hex(words[i]), dec = decimal(words[i]);
    std::string line = indent + "word " + std::to_string(i) + "  " + hex +
                       std::string(hex_width - hex.size() + 2, ' ') + dec;
    for (const TextRun &r : runs) {
      if (r.first != i) continue;
      line += std::string(dec_width - dec.size() + 2, ' ') + quoted(r.text);
      if (r.count > 1) {
        line += "  (words " + std::to_string(r.first) + "-" +
                std::to_string(r.first + r.count - 1) + ")";
      }
    }
    out << line << "\n";
  }
}

void add_words_json(nlohmann::json &out, const std::string &key, std::span<const uint64_t> words) {
  nlohmann::json hex = nlohmann::json::array();
  for (uint64_t w : words) hex.push_back(word_hex(w));
  nlohmann::json text = nlohmann::json::array();
  for (const TextRun &r : text_runs(words)) {
    text.push_back({{"first", r.first}, {"words", r.count}, {"text", r.text}});
  }
  out[key + "_hex"] = std::move(hex);
  out[key + "_text"] = std::move(text);
}

}  // namespace nucleus::ctl
