// One reply of an inspection connection (docs/nucleusctl.md, "Control
// requests") while it is built: its JSON text, made in slices of bounded
// cost, so that a reply over many large entries never holds the loop
// (DESIGN.md: the work of one request is bounded by its cost, not its
// packet). The Inspector gives each reply in progress a slice of work per
// loop turn (SliceQueue) and sends the text, one packet, once it is
// complete.
//
// A reply is either whole from the start (status, monitor, an error) or a
// page of a list (processes, devices): `{"ok":true,"<key>":[` then each
// entry the Source shows from index `from`, then `],"next":N}` (the index
// to ask for next) or `"next":null` (nothing after). An entry is copied
// from the Source when the page reaches it, so what the page shows of it is
// one moment of that entry, whatever happens to it between slices; its
// small fields are written at once, its program's path and arguments (up to
// wire::kMaxProgramBytes, six times that when escaped) a slice at a time.
// A page ends after `limit` entries, or before the first entry that would
// start at or past `page_bytes` of text: it holds at least one entry, and
// is at most page_bytes plus one entry long.
//
// Cost: one unit per byte of text written, plus kVisitCost per index
// looked at, plus what the Source says copying an entry took.
//
// States (advance() is the table):
//   kScan      at index next_: the page is full (look for the next index
//              that holds something, then write the tail: kComplete), or
//              copy the entry there (it shows: its head, then kProgram; it
//              does not: the next index)
//   kProgram   writing the copied entry's strings from (string_, offset_);
//              after the last, the entry's end: kScan
//   kComplete  text() is the whole reply
//
// Owns: the text and the entry being written. Asks of the Source: entries.
// Threading: nucleusd's loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nucleus::daemon {

// An entry as a page shows it, copied out of nucleusd's tables.
struct InspectionEntry {
  std::string head;          // its JSON object without "program": "{...}"
  bool has_program = false;  // a program follows: "program": {"path", "cwd", "argv"}
  std::string strings;       // the path, the working directory, then each argument, back to back
  std::vector<size_t> ends;  // where each string ends in `strings`: the path's, the cwd's, ...
  void clear() {
    head.clear();
    has_program = false;
    strings.clear();
    ends.clear();
  }
};

// What a page lists, read index by index.
class InspectionSource {
 public:
  virtual ~InspectionSource() = default;
  // Indices run from 0 to size() - 1.
  virtual uint64_t size() const = 0;
  // Index i holds something (a page's "next" passes over those that do not).
  virtual bool occupied(uint64_t i) const = 0;
  // Copies what the page shows at index i into *out (cleared first);
  // false when it shows nothing there (none, hidden, not the asker's).
  // Adds to *cost the work it took beyond the text (entries walked).
  virtual bool entry(uint64_t i, InspectionEntry *out, uint64_t *cost) = 0;
};

// Appends `in` from byte `*at` to `out` as the inside of a JSON string
// (RFC 8259: `"` `\` and control characters escaped; bytes that are not
// UTF-8 become U+FFFD) until `*at` reaches the end or `out` has grown by
// at least `budget` bytes; it stops only between code points, and writes at
// least one when any is left. Returns the bytes it appended.
size_t append_json_string(std::string_view in, size_t *at, size_t budget, std::string *out);

class InspectionReply {
 public:
  enum class State : uint8_t { kScan, kProgram, kComplete };
  static constexpr uint64_t kVisitCost = 16;

  // A reply whole from the start.
  static InspectionReply whole(std::string text);
  // A page of `key` from index `from`: at most `limit` entries (at least
  // 1), ending before an entry that would start at or past `page_bytes`.
  // Its text is written into `storage` (emptied first), so that a caller
  // may hand back the memory of a reply it sent.
  static InspectionReply page(std::string_view key, uint64_t from, uint64_t limit,
                              size_t page_bytes, std::string storage = {});

  // Builds on, for about `budget` units: it stops once it has spent them
  // (one step may pass them by an entry's head or a code point) and takes
  // at least one step. Returns the units spent.
  uint64_t advance(InspectionSource &source, uint64_t budget);

  State state() const { return state_; }
  bool complete() const { return state_ == State::kComplete; }
  const std::string &text() const { return text_; }
  std::string take_text() { return std::move(text_); }  // once complete: the reply is spent
  uint64_t shown() const { return shown_; }             // entries written so far
  uint64_t next() const { return next_; }               // the index a scan looks at next

 private:
  InspectionReply() = default;
  uint64_t scan(InspectionSource &source);
  uint64_t write_program(uint64_t budget);
  uint64_t finish(bool more);

  State state_ = State::kComplete;
  std::string text_;
  uint64_t next_ = 0;
  uint64_t limit_ = 0;
  uint64_t shown_ = 0;
  size_t page_bytes_ = 0;
  InspectionEntry entry_;  // the entry being written (kProgram)
  size_t string_ = 0;      // which of entry_'s strings
  size_t offset_ = 0;      // how far into entry_.strings
};

}  // namespace nucleus::daemon
