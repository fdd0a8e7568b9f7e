// InspectionReply: an inspection reply built in slices, each state of a page
// in progress, and the JSON string escaping it writes programs with.
#include "inspection_reply.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace nucleus::daemon {
namespace {

using nlohmann::json;

// The escaping of `s`, whole, between quotes.
std::string escaped(std::string_view s, size_t budget = SIZE_MAX) {
  std::string out = "\"";
  size_t at = 0;
  while (at < s.size()) append_json_string(s, &at, budget, &out);
  return out + "\"";
}

TEST(JsonString, EveryAsciiByteIsWrittenAsNlohmannDoes) {
  for (int c = 0; c < 0x80; ++c) {
    std::string s(1, static_cast<char>(c));
    EXPECT_EQ(escaped(s), json(s).dump()) << "byte " << c;
  }
  std::string text = "a \"quoted\" \\path\\ \b\f\n\r\t\x01\x1f\x7f end";
  EXPECT_EQ(escaped(text), json(text).dump());
}

TEST(JsonString, Utf8IsKeptAndWhatIsNotUtf8BecomesReplacement) {
  for (std::string s : {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xed\x9f\xbf",
                        "\xf4\x8f\xbf\xbf", "caf\xc3\xa9 \xe2\x82\xac"}) {
    EXPECT_EQ(escaped(s), json(s).dump()) << s;
  }
  struct Case {
    std::string in;
    std::string parsed;
  };
  // U+FFFD, `n` times.
  auto r = [](int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += "\xef\xbf\xbd";
    return out;
  };
  for (const Case &c :
       std::vector<Case>{{"\xff", r(1)},                             // starts nothing
                         {"\x80", r(1)},                             // a continuation alone
                         {"\xc0\x80", r(2)},                         // overlong
                         {"\xed\xa0\x80", r(3)},                     // a surrogate
                         {"\xf4\x90\x80\x80", r(4)},                 // past U+10FFFF
                         {"\xe2\x82", r(2)},                         // cut short
                         {"a\xe2\x82!", "a" + r(2).append("!")}}) {  // cut short, then more
    std::string text = escaped(c.in);
    json parsed = json::parse(text, nullptr, false);
    ASSERT_FALSE(parsed.is_discarded()) << text;
    EXPECT_EQ(parsed.get<std::string>(), c.parsed);
  }
}

TEST(JsonString, ABudgetStopsOnlyBetweenCodePointsAndAlwaysMoves) {
  std::string s = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x01x\"";
  std::string out;
  size_t at = 0;
  std::vector<size_t> stops;
  while (at < s.size()) {
    size_t before = at;
    size_t wrote = append_json_string(s, &at, 0, &out);  // 0: one code point
    EXPECT_GT(wrote, 0U);
    EXPECT_GT(at, before);
    stops.push_back(at);
  }
  EXPECT_EQ(stops, (std::vector<size_t>{2, 5, 9, 10, 11, 12}));
  EXPECT_EQ("\"" + out + "\"", json(s).dump());
  // A budget is met, passed by at most one code point's text.
  std::string controls(1000, '\x01');
  std::string text;
  at = 0;
  size_t wrote = append_json_string(controls, &at, 100, &text);
  EXPECT_GE(wrote, 100U);
  EXPECT_LT(wrote, 106U);
  EXPECT_EQ(at, (wrote + 5) / 6);
}

// A table of entries: an index shows its entry, holds one the asker may not
// see (occupied, shown as nothing), or holds nothing.
struct FakeEntry {
  json head;
  std::optional<std::vector<std::string>> program;  // path, then argv
  bool shown = true;
};

// Every fake entry's working directory.
constexpr const char *kCwd = "/srv/wd\x01";

class FakeSource : public InspectionSource {
 public:
  std::vector<std::optional<FakeEntry>> entries;
  uint64_t entry_cost = 100;
  std::vector<uint64_t> copied;  // the indices entry() copied, in order

  uint64_t size() const override { return entries.size(); }
  bool occupied(uint64_t i) const override { return entries.at(i).has_value(); }
  bool entry(uint64_t i, InspectionEntry *out, uint64_t *cost) override {
    out->clear();
    if (!entries.at(i) || !entries[i]->shown) return false;
    copied.push_back(i);
    *cost += entry_cost;
    out->head = entries[i]->head.dump();
    if (entries[i]->program) {
      out->has_program = true;
      const std::vector<std::string> &p = *entries[i]->program;
      for (size_t s = 0; s < p.size(); ++s) {
        out->strings += p[s];
        out->ends.push_back(out->strings.size());
        if (s == 0) {  // the working directory, after the path
          out->strings += kCwd;
          out->ends.push_back(out->strings.size());
        }
      }
    }
    return true;
  }
  // What a page of it should parse to.
  json expected(std::initializer_list<uint64_t> shown, const json &next) const {
    json list = json::array();
    for (uint64_t i : shown) {
      json e = entries[i]->head;
      if (entries[i]->program) {
        const auto &p = *entries[i]->program;
        e["program"] = {{"path", p[0]},
                        {"cwd", kCwd},
                        {"argv", std::vector<std::string>(p.begin() + 1, p.end())}};
      }
      list.push_back(e);
    }
    return json{{"ok", true}, {"processes", list}, {"next", next}};
  }
};

FakeEntry process(const std::string &name, std::vector<std::string> program) {
  return FakeEntry{json{{"name", name}, {"uid", 1000}}, std::move(program)};
}

// Builds `reply` to completion in advances of `budget`; their count.
size_t build(InspectionReply &reply, FakeSource &source, uint64_t budget,
             uint64_t *most = nullptr) {
  size_t advances = 0;
  while (!reply.complete()) {
    uint64_t spent = reply.advance(source, budget);
    EXPECT_GT(spent, 0U);
    if (most != nullptr) *most = std::max(*most, spent);
    ++advances;
  }
  return advances;
}

TEST(InspectionReply, AWholeReplyIsCompleteAtOnce) {
  InspectionReply r = InspectionReply::whole(R"({"ok":true})");
  EXPECT_TRUE(r.complete());
  EXPECT_EQ(r.state(), InspectionReply::State::kComplete);
  FakeSource none;
  EXPECT_EQ(r.advance(none, 100), 0U);
  EXPECT_EQ(r.text(), R"({"ok":true})");
}

TEST(InspectionReply, APageGoesThroughEachStateAndIsWholeJsonAtTheEnd) {
  FakeSource source;
  source.entries = {process("a", {"/bin/a", "a"}),
                    process("big", {"/bin/big", "big", std::string(4000, '\x01')}),
                    process("c", {"/bin/c"})};
  InspectionReply r = InspectionReply::page("processes", 0, 100, 1 << 20);
  EXPECT_EQ(r.state(), InspectionReply::State::kScan);
  EXPECT_EQ(r.text(), R"({"ok":true,"processes":[)");
  // A small budget: a's head, then into its program.
  r.advance(source, 1);
  EXPECT_EQ(r.state(), InspectionReply::State::kProgram);
  EXPECT_EQ(r.shown(), 1U);
  // a's program is short: it is written whole, then back to the scan.
  r.advance(source, 1000);
  EXPECT_EQ(r.shown(), 2U);  // and into big's
  EXPECT_EQ(r.state(), InspectionReply::State::kProgram);
  // big's 24000 bytes of escapes take several slices, in kProgram.
  size_t slices = 0;
  while (r.shown() == 2 && r.state() == InspectionReply::State::kProgram) {
    r.advance(source, 1000);
    ++slices;
  }
  EXPECT_GE(slices, 20U);
  build(r, source, 1000);
  EXPECT_EQ(r.state(), InspectionReply::State::kComplete);
  EXPECT_EQ(json::parse(r.text()), source.expected({0, 1, 2}, nullptr));
}

TEST(InspectionReply, AnyBudgetBuildsTheSameText) {
  FakeSource source;
  source.entries = {process("a", {"/bin/a", "a", "x\"y\\z"}),
                    std::nullopt,
                    FakeEntry{json{{"name", "hidden"}}, std::nullopt, false},
                    process("empty", {""}),
                    process("args", {"/p", "", "", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\n\t"}),
                    FakeEntry{json{{"name", "dev"}, {"kind", "device"}}, std::nullopt},
                    FakeEntry{json::object(), std::vector<std::string>{"/only"}},
                    process("ctl", {"/c", std::string(300, '\x1f')})};
  InspectionReply whole = InspectionReply::page("processes", 0, 100, 1 << 20);
  build(whole, source, UINT64_MAX);
  json expected = source.expected({0, 3, 4, 5, 6, 7}, nullptr);
  EXPECT_EQ(json::parse(whole.text()), expected);
  for (uint64_t budget : {0, 1, 2, 5, 7, 64, 333, 4096}) {
    InspectionReply r = InspectionReply::page("processes", 0, 100, 1 << 20);
    build(r, source, budget);
    EXPECT_EQ(r.text(), whole.text()) << "budget " << budget;
  }
}

TEST(InspectionReply, AnAdvanceSpendsItsBudgetPassingItByOneStepAtMost) {
  FakeSource source;
  source.entry_cost = 50;
  for (int i = 0; i < 8; ++i) {
    source.entries.emplace_back(
        process("e" + std::to_string(i), {"/p", std::string(32000, '\x01')}));
  }
  InspectionReply r = InspectionReply::page("processes", 0, 500, 1 << 30);
  uint64_t most = 0;
  size_t advances = build(r, source, 16384, &most);
  // 8 entries of 192000 bytes of escapes: about 94 slices of 16 KiB.
  EXPECT_GE(advances, 90U);
  // Past the budget by at most a step: an entry's head and cost, a code
  // point's escape, an entry's end.
  EXPECT_LE(most, 16384U + 256U);
  EXPECT_EQ(json::parse(r.text())["processes"].size(), 8U);
}

TEST(InspectionReply, AnEntryIsCopiedWhenThePageReachesIt) {
  FakeSource source;
  source.entries = {process("a", {"/bin/a", std::string(10000, 'a')}), process("b", {"/bin/b"})};
  InspectionReply r = InspectionReply::page("processes", 0, 100, 1 << 20);
  r.advance(source, 100);
  ASSERT_EQ(r.state(), InspectionReply::State::kProgram);
  // a changes, or goes, while its program is being written: the page shows
  // it as it was when reached; b, not reached yet, as it is now.
  source.entries[0] = process("a2", {"/other"});
  source.entries[1] = process("b2", {"/bin/b2"});
  build(r, source, 100);
  json page = json::parse(r.text());
  EXPECT_EQ(page["processes"][0]["name"], "a");
  EXPECT_EQ(page["processes"][0]["program"]["argv"][0], std::string(10000, 'a'));
  EXPECT_EQ(page["processes"][1]["name"], "b2");
  EXPECT_EQ(source.copied, (std::vector<uint64_t>{0, 1}));
}

TEST(InspectionReply, APageEndsAtItsLimitWithNextAtTheNextOccupiedIndex) {
  FakeSource source;
  source.entries = {
      process("a", {"/a"}), FakeEntry{json{{"name", "not-yours"}}, std::nullopt, false},
      process("b", {"/b"}), std::nullopt,
      std::nullopt,         process("c", {"/c"})};
  InspectionReply r = InspectionReply::page("processes", 0, 2, 1 << 20);
  build(r, source, 10);
  EXPECT_EQ(json::parse(r.text()), source.expected({0, 2}, 5));
  // From there: the rest, and nothing after.
  InspectionReply rest = InspectionReply::page("processes", 5, 2, 1 << 20);
  build(rest, source, 10);
  EXPECT_EQ(json::parse(rest.text()), source.expected({5}, nullptr));
  // A full page with only empty indices after it: next is null.
  source.entries.pop_back();
  InspectionReply last = InspectionReply::page("processes", 0, 2, 1 << 20);
  build(last, source, 10);
  EXPECT_EQ(json::parse(last.text()), source.expected({0, 2}, nullptr));
  // Past the end: an empty page.
  InspectionReply past = InspectionReply::page("processes", 40, 2, 1 << 20);
  build(past, source, 10);
  EXPECT_EQ(json::parse(past.text()), source.expected({}, nullptr));
}

TEST(InspectionReply, APageEndsBeforeAnEntryPastItsBytesButHoldsOneAtLeast) {
  FakeSource source;
  source.entries = {process("big", {"/big", std::string(5000, 'x')}), process("b", {"/b"}),
                    process("c", {"/c"})};
  // The first entry alone is past the page's bytes: it is still written.
  InspectionReply first = InspectionReply::page("processes", 0, 100, 1000);
  build(first, source, 64);
  EXPECT_EQ(json::parse(first.text()), source.expected({0}, 1));
  EXPECT_GT(first.text().size(), 5000U);
  // Small entries fill a page up to its bytes: the one that would start at
  // or past them waits for the next page.
  InspectionReply two = InspectionReply::page("processes", 1, 100, 1000);
  build(two, source, 64);
  EXPECT_EQ(json::parse(two.text()), source.expected({1, 2}, nullptr));
  InspectionReply one = InspectionReply::page("processes", 1, 100, 60);
  build(one, source, 64);
  EXPECT_EQ(json::parse(one.text()), source.expected({1}, 2));
}

TEST(InspectionReply, APageKeyNamesItsList) {
  FakeSource source;
  source.entries = {FakeEntry{json{{"name", "clock"}, {"kind", "device"}}, std::nullopt}};
  InspectionReply r = InspectionReply::page("devices", 0, UINT64_MAX, 1 << 16);
  build(r, source, 10);
  EXPECT_EQ(json::parse(r.text()),
            (json{{"ok", true},
                  {"devices", json::array({json{{"name", "clock"}, {"kind", "device"}}})},
                  {"next", nullptr}}));
}

TEST(InspectionReply, ItsStorageIsReused) {
  std::string storage;
  storage.reserve(1 << 16);
  storage = "left over from a reply sent";
  InspectionReply r = InspectionReply::page("processes", 0, 1, 1 << 16, std::move(storage));
  EXPECT_EQ(r.text(), R"({"ok":true,"processes":[)");
  EXPECT_GE(r.text().capacity(), size_t{1} << 16);  // its memory, not a new string's
}

}  // namespace
}  // namespace nucleus::daemon
