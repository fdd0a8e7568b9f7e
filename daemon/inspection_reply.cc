// A reply of an inspection connection, built in slices (inspection_reply.h).
#include "inspection_reply.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace nucleus::daemon {

namespace {

// What a byte below 0x80 becomes inside a JSON string: 0, itself; 'u',
// \u00XX; else the letter after the backslash. The same text as
// nlohmann::json's dump, so a client sees no difference.
constexpr std::array<char, 128> kEscape = [] {
  std::array<char, 128> t{};
  for (size_t c = 0; c < 0x20; ++c) t[c] = 'u';
  t['\b'] = 'b';
  t['\f'] = 'f';
  t['\n'] = 'n';
  t['\r'] = 'r';
  t['\t'] = 't';
  t['"'] = '"';
  t['\\'] = '\\';
  return t;
}();

constexpr char kHex[] = "0123456789abcdef";
// U+FFFD, in UTF-8: what a byte that starts no sequence becomes.
constexpr char kReplacement[3] = {'\xef', '\xbf', '\xbd'};

// The length of the UTF-8 sequence that starts at p (with `left` bytes
// there), 0 when it is none (RFC 3629: no overlong form, no surrogate,
// nothing past U+10FFFF).
size_t utf8_length(const unsigned char *p, size_t left) {
  auto in = [&](size_t i, unsigned char lo, unsigned char hi) {
    return i < left && p[i] >= lo && p[i] <= hi;
  };
  auto cont = [&](size_t i) { return in(i, 0x80, 0xbf); };
  unsigned char c = p[0];
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c == 0xe0) return in(1, 0xa0, 0xbf) && cont(2) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xed) return in(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c == 0xf0) return in(1, 0x90, 0xbf) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xf4) return in(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

}  // namespace

size_t append_json_string(std::string_view in, size_t *at, size_t budget, std::string *out) {
  const auto *p = reinterpret_cast<const unsigned char *>(in.data());
  const size_t n = in.size();
  const size_t limit = std::max<size_t>(budget, 1);
  size_t i = *at;
  size_t written = 0;
  // Written through a small buffer: one append per few hundred bytes, not
  // one per escape (a string of control characters is six bytes a byte).
  char buffer[512];
  size_t k = 0;
  while (i < n && written + k < limit) {
    if (k > sizeof(buffer) - 8) {
      out->append(buffer, k);
      written += k;
      k = 0;
    }
    unsigned char c = p[i];
    if (c < 0x80) {
      char e = kEscape[c];
      if (e == 0) {
        buffer[k++] = static_cast<char>(c);
      } else if (e == 'u') {
        const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
        std::memcpy(buffer + k, u, sizeof(u));
        k += sizeof(u);
      } else {
        buffer[k++] = '\\';
        buffer[k++] = e;
      }
      ++i;
      continue;
    }
    size_t length = utf8_length(p + i, n - i);
    if (length == 0) {
      std::memcpy(buffer + k, kReplacement, sizeof(kReplacement));
      k += sizeof(kReplacement);
      ++i;
    } else {
      std::memcpy(buffer + k, p + i, length);
      k += length;
      i += length;
    }
  }
  out->append(buffer, k);
  *at = i;
  return written + k;
}

InspectionReply InspectionReply::whole(std::string text) {
  InspectionReply r;
  r.text_ = std::move(text);
  r.state_ = State::kComplete;
  return r;
}

InspectionReply InspectionReply::page(std::string_view key, uint64_t from, uint64_t limit,
                                      size_t page_bytes, std::string storage) {
  InspectionReply r;
  r.text_ = std::move(storage);
  r.text_.clear();
  r.text_ += R"({"ok":true,")";
  r.text_ += key;  // one of ours ("processes", "devices"): nothing to escape
  r.text_ += R"(":[)";
  r.next_ = from;
  r.limit_ = std::max<uint64_t>(limit, 1);
  r.page_bytes_ = page_bytes;
  r.state_ = State::kScan;
  return r;
}

uint64_t InspectionReply::advance(InspectionSource &source, uint64_t budget) {
  uint64_t spent = 0;
  do {
    switch (state_) {
      case State::kScan: spent += scan(source); break;
      case State::kProgram: spent += write_program(budget > spent ? budget - spent : 0); break;
      case State::kComplete: return spent;
    }
  } while (spent < budget && state_ != State::kComplete);
  return spent;
}

uint64_t InspectionReply::scan(InspectionSource &source) {
  uint64_t cost = kVisitCost;
  if (next_ >= source.size()) return cost + finish(false);
  bool full = shown_ >= limit_ || (shown_ > 0 && text_.size() >= page_bytes_);
  if (full) {
    // "next" names an index that holds something, or is null.
    if (source.occupied(next_)) return cost + finish(true);
    ++next_;
    return cost;
  }
  uint64_t index = next_++;
  if (!source.entry(index, &entry_, &cost)) return cost;
  size_t before = text_.size();
  if (shown_++ > 0) text_ += ',';
  if (!entry_.has_program || entry_.head.size() < 2 || entry_.head.back() != '}') {
    text_ += entry_.head;
    entry_.clear();
    return cost + (text_.size() - before);
  }
  // The head without its closing brace; the program closes the object.
  text_.append(entry_.head, 0, entry_.head.size() - 1);
  text_ += entry_.head == "{}" ? R"("program":{"path":")" : R"(,"program":{"path":")";
  while (entry_.ends.size() < 2) entry_.ends.push_back(entry_.strings.size());  // path, cwd
  string_ = 0;
  offset_ = 0;
  state_ = State::kProgram;
  return cost + (text_.size() - before);
}

uint64_t InspectionReply::write_program(uint64_t budget) {
  size_t before = text_.size();
  for (;;) {
    size_t written = text_.size() - before;
    if (written > 0 && written >= budget) break;
    // The strings end where the Source says, never past what it copied.
    size_t end = std::min(std::max(entry_.ends[string_], offset_), entry_.strings.size());
    if (offset_ < end) {
      append_json_string(std::string_view(entry_.strings.data(), end), &offset_, budget - written,
                         &text_);
      if (offset_ < end) continue;  // the budget is spent: the loop's check stops
    }
    // String string_ is whole: its closing quote and what comes after it.
    text_ += '"';
    ++string_;
    if (string_ == 1) {  // the path is whole: the working directory next
      text_ += R"(,"cwd":")";
      continue;
    }
    if (string_ == 2) text_ += R"(,"argv":[)";
    if (string_ == entry_.ends.size()) {
      text_ += "]}}";
      entry_.clear();
      state_ = State::kScan;
      break;
    }
    text_ += string_ == 2 ? "\"" : ",\"";
  }
  return text_.size() - before;
}

uint64_t InspectionReply::finish(bool more) {
  size_t before = text_.size();
  text_ += R"(],"next":)";
  text_ += more ? std::to_string(next_) : "null";
  text_ += '}';
  state_ = State::kComplete;
  return text_.size() - before;
}

}  // namespace nucleus::daemon
