// Pre-tokenizer split behaviours, normalizers, the lossy UTF-8 stream, and a Llama-2 style
// (Metaspace-by-normalizer + byte_fallback) tokenizer.json.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace ds {
namespace {

using nlohmann::json;

std::vector<std::string> preTokenize(const json& j, const std::string& text, bool first = true) {
  tok::PreTokenizerInfo info;
  auto pre = tok::parsePreTokenizer(j, "pre", &info);
  EXPECT_TRUE(pre.isOk()) << pre.status().toString();
  std::vector<std::string_view> pieces{text};
  tok::PieceArena arena;
  if (pre.isOk()) {
    EXPECT_TRUE((*pre)->apply(&pieces, first, &arena).isOk());
  }
  return std::vector<std::string>(pieces.begin(), pieces.end());
}

json split(const char* behavior, bool invert = false) {
  return {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}};
}

using V = std::vector<std::string>;

// The examples of HF tokenizers' SplitDelimiterBehavior documentation.
TEST(PreTokenizer, SplitBehaviours) {
  const std::string s = "the-final--countdown";
  EXPECT_EQ(preTokenize(split("Removed"), s), (V{"the", "final", "countdown"}));
  EXPECT_EQ(preTokenize(split("Isolated"), s), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(preTokenize(split("MergedWithPrevious"), s), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(preTokenize(split("MergedWithNext"), s), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(preTokenize(split("Contiguous"), s), (V{"the", "-", "final", "--", "countdown"}));
  // invert: the pattern describes the pieces to keep.
  json words = {{"type", "Split"}, {"pattern", {{"Regex", "\\p{L}+"}}}, {"behavior", "Removed"}, {"invert", true}};
  EXPECT_EQ(preTokenize(words, "héllo, wörld!"), (V{"héllo", "wörld"}));
}

TEST(PreTokenizer, UnicodeRegexAndLookahead) {
  // The GPT-2 / Llama-3 style pattern: \p{L}, \p{N}, and \s+(?!\S) leaving one space for the word.
  json j = {{"type", "Split"},
            {"pattern", {{"Regex", R"( ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)"}}},
            {"behavior", "Isolated"}};
  EXPECT_EQ(preTokenize(j, "Hi  there 42!\u4F60\u597D"), (V{"Hi", " ", " there", " 42", "!", "\u4F60\u597D"}));
}

TEST(PreTokenizer, DigitsByteLevelMetaspaceSequence) {
  EXPECT_EQ(preTokenize({{"type", "Digits"}, {"individual_digits", true}}, "a123b"), (V{"a", "1", "2", "3", "b"}));
  EXPECT_EQ(preTokenize({{"type", "Digits"}, {"individual_digits", false}}, "a123b"), (V{"a", "123", "b"}));
  EXPECT_EQ(preTokenize({{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}}, "Hello world's"),
            (V{" Hello", " world", "'s"}));
  EXPECT_EQ(preTokenize({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}, "a b"), (V{"a b"}));
  EXPECT_EQ(preTokenize({{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "first"}}, "a b"),
            (V{"\u2581a", "\u2581b"}));
  EXPECT_EQ(preTokenize({{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "first"}}, "a", false),
            (V{"a"}));
  json seq = {{"type", "Sequence"},
              {"pretokenizers", {{{"type", "WhitespaceSplit"}}, {{"type", "Digits"}, {"individual_digits", true}}}}};
  EXPECT_EQ(preTokenize(seq, " ab12  c "), (V{"ab", "1", "2", "c"}));
}

std::string normalize(const json& j, std::string s) {
  auto n = tok::parseNormalizer(j, "normalizer");
  EXPECT_TRUE(n.isOk()) << n.status().toString();
  if (n.isOk() && *n) {
    EXPECT_TRUE((*n)->apply(&s).isOk());
  }
  return s;
}

TEST(Normalizer, UnicodeFormsAndSequence) {
  // "e" + combining acute composes under NFC; the "ﬁ" ligature and full-width "Ａ" fold under NFKC.
  EXPECT_EQ(normalize({{"type", "NFC"}}, "e\u0301"), "\u00E9");
  EXPECT_EQ(normalize({{"type", "NFD"}}, "\u00E9"), "e\u0301");
  EXPECT_EQ(normalize({{"type", "NFKC"}}, "\uFB01\uFF21"), "fiA");
  EXPECT_EQ(normalize({{"type", "NFC"}}, "\uFB01"), "\uFB01");
  json seq = {{"type", "Sequence"},
              {"normalizers",
               {{{"type", "Prepend"}, {"prepend", "\u2581"}},
                {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}}}}};
  EXPECT_EQ(normalize(seq, "a b"), "\u2581a\u2581b");
  EXPECT_EQ(normalize(seq, ""), "");
  EXPECT_EQ(normalize({{"type", "Lowercase"}}, "AbC\u00C9"), "abc\u00E9");
}

TEST(Utf8, SanitizerIsChunkInvariant) {
  // Valid 2/3/4-byte sequences, a truncated 3-byte one, a stray continuation, an overlong lead.
  const std::string bytes = "a\xC3\xA9\xE4\xBD\xA0\xF0\x9F\x98\x80\xE4\xBD" "b\x80\xC0\xAF\xF0\x9F\x98";
  std::string whole;
  tok::Utf8Sanitizer one;
  one.feed(bytes, &whole);
  one.finish(&whole);
  EXPECT_EQ(tok::findInvalidUtf8(whole), std::string::npos);
  EXPECT_EQ(whole, "a\xC3\xA9\xE4\xBD\xA0\xF0\x9F\x98\x80\uFFFD" "b\uFFFD\uFFFD\uFFFD\uFFFD");
  std::string bytewise;
  tok::Utf8Sanitizer s;
  for (char c : bytes) s.feed(std::string(1, c), &bytewise);
  s.finish(&bytewise);
  EXPECT_EQ(bytewise, whole);
}

// Llama-2's tokenizer.json shape: no pre-tokenizer, "▁" via normalizers, byte_fallback, and the
// Replace / ByteFallback / Fuse / Strip decoder chain.
json llama2Style() {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  vocab["\u2581"] = 259;
  vocab["a"] = 260;
  vocab["b"] = 261;
  vocab["\u2581a"] = 262;
  vocab["\u2581ab"] = 263;
  vocab["\u2581b"] = 264;
  json j = {
      {"added_tokens",
       {{{"id", 1}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
        {{"id", 2}, {"content", "</s>"}, {"special", true}, {"normalized", false}}}},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         {{{"type", "Prepend"}, {"prepend", "\u2581"}},
          {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}}}}}},
      {"pre_tokenizer", nullptr},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         {{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
          {{"type", "ByteFallback"}},
          {{"type", "Fuse"}},
          {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
      {"model",
       {{"type", "BPE"}, {"unk_token", "<unk>"}, {"byte_fallback", true}, {"fuse_unk", true},
        {"vocab", vocab}, {"merges", {"\u2581 a", "\u2581a b", "\u2581 b"}}}}};
  return j;
}

TEST(Llama2Style, EncodeDecode) {
  auto t = Tokenizer::fromJson(llama2Style().dump());
  ASSERT_TRUE(t.isOk()) << t.status().toString();
  // "é" is not in the vocabulary: its two UTF-8 bytes come out as <0xC3> <0xA9>.
  auto ids = (*t)->encode("ab b\u00E9");
  ASSERT_TRUE(ids.isOk()) << ids.status().toString();
  EXPECT_EQ(*ids, (std::vector<TokenId>{1, 263, 264, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ((*t)->decode(*ids, true).value(), "ab b\u00E9");
  // Without skipping, "<s>" is the first text so the leading-space strip finds nothing to drop.
  EXPECT_EQ((*t)->decode(*ids, false).value(), "<s> ab b\u00E9");
  // A lone continuation byte decodes to U+FFFD instead of breaking the UTF-8 of the output.
  EXPECT_EQ((*t)->decode({262, 3 + 0xA9}).value(), "a\uFFFD");
  // Special tokens typed in the text are matched before the normalizer runs.
  EXPECT_EQ((*t)->encode("a</s>", false).value(), (std::vector<TokenId>{262, 2}));
}

}  // namespace
}  // namespace ds
