#include "controller/common/json_escape.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace rollgate::json {
namespace {

TEST(JsonEscapeTest, PlainTextIsQuotedUnchanged) {
  EXPECT_EQ(Quoted(""), R"("")");
  EXPECT_EQ(Quoted("rollout app/r: step 2/5 {ok} 100%"), R"("rollout app/r: step 2/5 {ok} 100%")");
}

TEST(JsonEscapeTest, QuotesAndBackslashesAreBackslashed) {
  EXPECT_EQ(Quoted(R"(say "hi")"), R"("say \"hi\"")");
  EXPECT_EQ(Quoted(R"(C:\dir\)"), R"("C:\\dir\\")");
  EXPECT_EQ(Quoted(R"(\")"), R"("\\\"")");
  // '/' may be escaped in JSON but need not be: it is left alone.
  EXPECT_EQ(Quoted("a/b"), R"("a/b")");
}

TEST(JsonEscapeTest, NewlineReturnAndTabHaveShortEscapes) {
  EXPECT_EQ(Quoted("a\nb\rc\td"), R"("a\nb\rc\td")");
}

TEST(JsonEscapeTest, OtherControlCharactersAreUnicodeEscapes) {
  EXPECT_EQ(Quoted("\x01"), R"("\u0001")");
  EXPECT_EQ(Quoted("\b\f"), R"("\u0008\u000c")");
  EXPECT_EQ(Quoted("\x1b[0m"), R"("\u001b[0m")");
  EXPECT_EQ(Quoted("\x1f"), R"("\u001f")");
  EXPECT_EQ(Quoted(std::string("a\0b", 3)), R"("a\u0000b")");
  // DEL (0x7f) is not a control character for JSON.
  EXPECT_EQ(Quoted("\x7f"), "\"\x7f\"");
}

TEST(JsonEscapeTest, EveryByteBelowSpaceIsEscapedAndNothingElseIs) {
  for (int b = 0; b < 256; ++b) {
    const std::string in(1, static_cast<char>(b));
    std::string out;
    AppendEscaped(out, in);
    if (b < 0x20 || b == '"' || b == '\\') {
      EXPECT_EQ(out.front(), '\\') << b;
      EXPECT_GT(out.size(), 1U) << b;
    } else {
      EXPECT_EQ(out, in) << b;
    }
  }
}

TEST(JsonEscapeTest, Utf8PassesThroughUnchanged) {
  const std::string text = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x9A\x80";  // café € 🚀
  EXPECT_EQ(Quoted(text), "\"" + text + "\"");
}

TEST(JsonEscapeTest, EscapingLeavesInvalidUtf8Alone) {
  // The escaper is byte-transparent from 0x20 up; repairing is SanitizeUtf8's job.
  const std::string text = "a\xFF\xC3";
  EXPECT_EQ(Quoted(text), "\"" + text + "\"");
}

TEST(JsonEscapeTest, AppendQuotedAppends) {
  std::string out = "{\"k\":";
  AppendQuoted(out, "v\"");
  out += '}';
  EXPECT_EQ(out, R"({"k":"v\""})");
}

TEST(Utf8Test, SequenceLengths) {
  EXPECT_EQ(Utf8SequenceLength("a", 0), 1U);
  EXPECT_EQ(Utf8SequenceLength("\xC3\xA9", 0), 2U);
  EXPECT_EQ(Utf8SequenceLength("\xE2\x82\xAC", 0), 3U);
  EXPECT_EQ(Utf8SequenceLength("\xF0\x9F\x9A\x80", 0), 4U);
  EXPECT_EQ(Utf8SequenceLength("x\xC3\xA9", 1), 2U);
}

TEST(Utf8Test, InvalidSequencesHaveNoLength) {
  EXPECT_EQ(Utf8SequenceLength("\x80", 0), 0U);              // lone continuation byte
  EXPECT_EQ(Utf8SequenceLength("\xC0\xAF", 0), 0U);          // overlong '/'
  EXPECT_EQ(Utf8SequenceLength("\xE0\x80\xAF", 0), 0U);      // overlong, three bytes
  EXPECT_EQ(Utf8SequenceLength("\xED\xA0\x80", 0), 0U);      // UTF-16 surrogate U+D800
  EXPECT_EQ(Utf8SequenceLength("\xF4\x90\x80\x80", 0), 0U);  // above U+10FFFF
  EXPECT_EQ(Utf8SequenceLength("\xFF", 0), 0U);
  EXPECT_EQ(Utf8SequenceLength("\xE2\x82", 0), 0U);  // cut short by the end of the text
  EXPECT_EQ(Utf8SequenceLength("\xC3x", 0), 0U);     // not followed by a continuation byte
}

TEST(Utf8Test, SanitizeKeepsValidText) {
  bool cut = false;
  const std::string text = "caf\xC3\xA9 \xF0\x9F\x9A\x80";
  EXPECT_EQ(SanitizeUtf8(text, SIZE_MAX, &cut), text);
  EXPECT_FALSE(cut);
  EXPECT_EQ(SanitizeUtf8(""), "");
}

TEST(Utf8Test, SanitizeReplacesEachInvalidByte) {
  bool cut = false;
  EXPECT_EQ(SanitizeUtf8("a\xFF"
                         "b\xC3",
                         SIZE_MAX, &cut),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD");
  EXPECT_FALSE(cut);
  // A cut three-byte sequence: each of its two bytes is replaced.
  EXPECT_EQ(SanitizeUtf8("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Utf8Test, SanitizeCutsOnACharacterBoundaryAndMarksIt) {
  bool cut = false;
  EXPECT_EQ(SanitizeUtf8("abcdefghij", 8, &cut), "abcde...");
  EXPECT_TRUE(cut);
  // "é" (2 bytes) would straddle the 5-byte budget left for text: the cut goes before it.
  cut = false;
  EXPECT_EQ(SanitizeUtf8("abcd\xC3\xA9xyz", 8, &cut), "abcd...");
  EXPECT_TRUE(cut);
  // Exactly at the budget: not cut.
  cut = false;
  EXPECT_EQ(SanitizeUtf8("abcdefgh", 8, &cut), "abcdefgh");
  EXPECT_FALSE(cut);
}

TEST(Utf8Test, SanitizeWithBudgetsSmallerThanTheEllipsis) {
  bool cut = false;
  EXPECT_EQ(SanitizeUtf8("abcdef", 2, &cut), "..");
  EXPECT_TRUE(cut);
  EXPECT_EQ(SanitizeUtf8("abcdef", 0), "");
}

TEST(Utf8Test, SanitizedThenQuotedIsValidJsonOfTheBudget) {
  bool cut = false;
  const std::string json = Quoted(SanitizeUtf8("line1\n\"q\"\xFFtail", 12, &cut));
  EXPECT_TRUE(cut);
  EXPECT_EQ(json, R"("line1\n\"q\"...")");
}

}  // namespace
}  // namespace rollgate::json
