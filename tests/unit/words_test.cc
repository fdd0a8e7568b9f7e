// How nucleusctl shows words (cli/words.h) and which processes `ps NAME`
// shows (cli/render.h): pure functions, every rule with its edge.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <sstream>
#include <string>

#include "render.h"
#include "words.h"

namespace nucleus::ctl {
namespace {

using nlohmann::json;

// Eight words holding `text` from word `at` on, as memcpy puts it there.
std::array<uint64_t, 8> with_text(const std::string &text, size_t at = 0) {
  std::array<uint64_t, 8> w{};
  std::memcpy(reinterpret_cast<char *>(w.data()) + at * 8, text.data(), text.size());
  return w;
}

TEST(Words, HexHasNoLeadingZeros) {
  EXPECT_EQ(word_hex(0), "0x0");
  EXPECT_EQ(word_hex(42), "0x2a");
  EXPECT_EQ(word_hex(UINT64_MAX), "0xffffffffffffffff");
}

TEST(Words, TheNameOfTheIssueIsText) {
  // 31073742178316140: "loadgen" in one word.
  std::array<uint64_t, 8> w{31073742178316140ULL};
  auto runs = text_runs(w);
  ASSERT_EQ(runs.size(), 1U);
  EXPECT_EQ(runs[0].first, 0U);
  EXPECT_EQ(runs[0].count, 1U);
  EXPECT_EQ(runs[0].text, "loadgen");
}

TEST(Words, ARunSpansWholeWordsUpToItsPadding) {
  auto runs = text_runs(with_text("m-root-os-12345", 4));
  ASSERT_EQ(runs.size(), 1U);
  EXPECT_EQ(runs[0].first, 4U);
  EXPECT_EQ(runs[0].count, 2U);
  EXPECT_EQ(runs[0].text, "m-root-os-12345");
  // Exactly 16 characters fill two words; the NUL is in the third, which
  // is all padding: the run is two words.
  runs = text_runs(with_text("abcdefghijklmnop"));
  ASSERT_EQ(runs.size(), 1U);
  EXPECT_EQ(runs[0].count, 2U);
  // Text up to the last word with no NUL at all: still text.
  runs = text_runs(with_text("abcdefgh", 7));
  ASSERT_EQ(runs.size(), 1U);
  EXPECT_EQ(runs[0].first, 7U);
  // Two texts in one message.
  std::array<uint64_t, 8> two = with_text("alpha");
  std::memcpy(&two[2], "beta", 4);
  runs = text_runs(two);
  ASSERT_EQ(runs.size(), 2U);
  EXPECT_EQ(runs[1].first, 2U);
  EXPECT_EQ(runs[1].text, "beta");
}

TEST(Words, NumbersAndControlCharactersAreNotText) {
  // Small numbers: one character, or no letter.
  EXPECT_TRUE(text_runs(std::array<uint64_t, 8>{42, 7, 0x3039}).empty());
  // A byte that is neither printable nor padding, anywhere in the word.
  EXPECT_TRUE(text_runs(with_text("\x1b[31mred")).empty());
  EXPECT_TRUE(text_runs(with_text("ab\ncd")).empty());
  EXPECT_TRUE(text_runs(std::array<uint64_t, 8>{0x0064630000006261ULL}).empty())
      << "bytes after the NUL: not padding";
  EXPECT_TRUE(text_runs(with_text("\xc3\xa9t\xc3\xa9")).empty()) << "not ASCII";
  // A whole printable word followed by one that is not text: the run is
  // the first word alone.
  std::array<uint64_t, 8> w = with_text("abcdefgh");
  w[1] = 0x1b1b1b1b1b1b1b1bULL;
  auto runs = text_runs(w);
  ASSERT_EQ(runs.size(), 1U);
  EXPECT_EQ(runs[0].count, 1U);
  EXPECT_EQ(runs[0].text, "abcdefgh");
}

TEST(Words, QuotedEscapesQuotesAndBackslashes) {
  EXPECT_EQ(quoted(R"(a"b\c)"), R"("a\"b\\c")");
}

TEST(Words, TheLineAndTheTableShowEveryWord) {
  std::array<uint64_t, 8> w = with_text("m-root-os", 4);
  w[0] = 7;
  EXPECT_EQ(words_line(w), "0x7 0x0 0x0 0x0 0x6f2d746f6f722d6d 0x73 0x0 0x0  4:\"m-root-os\"");
  std::ostringstream table;
  w[1] = static_cast<uint64_t>(-2);
  print_words(table, w);
  EXPECT_EQ(table.str(),
            "  word 0  0x7                 7\n"
            "  word 1  0xfffffffffffffffe  18446744073709551614 (-2)\n"
            "  word 2  0x0                 0\n"
            "  word 3  0x0                 0\n"
            "  word 4  0x6f2d746f6f722d6d  8011187334121925997        \"m-root-os\"  (words 4-5)\n"
            "  word 5  0x73                115\n"
            "  word 6  0x0                 0\n"
            "  word 7  0x0                 0\n");
}

TEST(Words, JsonAddsHexAndTextBesideTheNumbers) {
  json out{{"answer", {1, 2}}};
  add_words_json(out, "answer", with_text("loadgen", 1));
  EXPECT_EQ(out["answer"], json({1, 2})) << "left as it was";
  EXPECT_EQ(out["answer_hex"][0], "0x0");
  EXPECT_EQ(out["answer_hex"][1], "0x6e656764616f6c");
  EXPECT_EQ(out["answer_text"], json::parse(R"([{"first": 1, "words": 1, "text": "loadgen"}])"));
}

TEST(PsNames, SubtreesInTreeOrderEachOnceOrOnlyTheNamed) {
  json list = json::parse(R"([
    {"name": "os", "parent": "", "kind": "internal"},
    {"name": "w1", "parent": "os", "kind": "internal"},
    {"name": "disk", "owner": "os", "kind": "device"},
    {"name": "other", "parent": "", "kind": "internal"},
    {"name": "w2", "parent": "os", "kind": "internal"},
    {"name": "w1a", "parent": "w1", "kind": "internal"}])");
  auto names = [&](std::vector<std::string> wanted, bool only) {
    json out;
    std::string error;
    EXPECT_TRUE(select_processes(list, wanted, only, &out, &error)) << error;
    std::vector<std::string> got;
    for (const json &p : out) got.push_back(p["name"]);
    return got;
  };
  EXPECT_EQ(names({"os"}, false), (std::vector<std::string>{"os", "w1", "w1a", "w2"}));
  EXPECT_EQ(names({"w1", "os"}, false), (std::vector<std::string>{"w1", "w1a", "os", "w2"}));
  EXPECT_EQ(names({"os", "other"}, true), (std::vector<std::string>{"os", "other"}));
  json out;
  std::string error;
  EXPECT_FALSE(select_processes(list, {"os", "nosuch"}, false, &out, &error));
  EXPECT_EQ(error, "no process nosuch (or it is not yours to see)");
  EXPECT_FALSE(select_processes(list, {"disk"}, false, &out, &error));
  EXPECT_EQ(error, "disk is a device, not a process (nucleusctl devices lists them)");
}

}  // namespace
}  // namespace nucleus::ctl
