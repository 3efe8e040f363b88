// Malformed tokenizer files give clear errors naming the field, never a crash.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "tokenizer/json_util.h"
#include "tokenizer/tokenizer.h"

namespace { constexpr int kMaxTokenizerNestingForTest = ds::tok::kMaxTokenizerNesting; }

namespace ds {
namespace {

using nlohmann::json;

// A tiny valid byte-level BPE tokenizer.json the cases below break one field at a time.
json tinyTokenizer() {
  return json::parse(R"({
    "version": "1.0",
    "added_tokens": [{"id": 5, "content": "<eos>", "special": true, "lstrip": false, "rstrip": false,
                      "normalized": false, "single_word": false}],
    "normalizer": null,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
    "post_processor": null,
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4}, "merges": ["a b", "Ġ ab"]}
  })");
}

Status loadError(const json& j) {
  auto t = Tokenizer::fromJson(j.dump());
  return t.isOk() ? Status::ok() : t.status();
}

void expectError(const Status& s, const std::string& needle) {
  ASSERT_FALSE(s.isOk()) << "expected an error mentioning " << needle;
  EXPECT_NE(s.message().find(needle), std::string::npos) << s.toString();
}

TEST(TokenizerErrors, TinyTokenizerWorks) {
  auto t = Tokenizer::fromJson(tinyTokenizer().dump());
  ASSERT_TRUE(t.isOk()) << t.status().toString();
  EXPECT_EQ((*t)->encode("ab ab<eos>", false).value(), (std::vector<TokenId>{2, 4, 5}));
  EXPECT_EQ((*t)->decode({2, 4, 5}).value(), "ab ab<eos>");
  EXPECT_EQ((*t)->decode({2, 4, 5}, true).value(), "ab ab");
  EXPECT_EQ((*t)->vocabSize(), 6);
  EXPECT_TRUE((*t)->isSpecial(5));
  EXPECT_FALSE((*t)->isSpecial(2));
}

TEST(TokenizerErrors, UntypedBpeModelFromOldFiles) {
  json j = tinyTokenizer();
  j["model"].erase("type");
  auto t = Tokenizer::fromJson(j.dump());
  ASSERT_TRUE(t.isOk()) << t.status().toString();
  EXPECT_EQ((*t)->encode("ab", false).value(), (std::vector<TokenId>{2}));
  j["model"].erase("merges");
  expectError(loadError(j), "tokenizer.json.model.type");
}

TEST(TokenizerErrors, BadJson) {
  expectError(Tokenizer::fromJson("{\"model\": ").status(), "not valid JSON");
  expectError(Tokenizer::fromJson("[1, 2]").status(), "expected a JSON object");
  expectError(Tokenizer::fromJson("").status(), "not valid JSON");
}

TEST(TokenizerErrors, MissingModel) {
  json j = tinyTokenizer();
  j.erase("model");
  expectError(loadError(j), "tokenizer.json.model: missing");
}

TEST(TokenizerErrors, UnknownTypes) {
  json j = tinyTokenizer();
  j["model"]["type"] = "Unigram";
  Status s = loadError(j);
  expectError(s, "tokenizer.json.model.type");
  EXPECT_EQ(s.code(), DS_UNSUPPORTED);
  j = tinyTokenizer();
  j["normalizer"] = {{"type", "BertNormalizer"}};
  expectError(loadError(j), "tokenizer.json.normalizer.type: unsupported normalizer type 'BertNormalizer'");
  j = tinyTokenizer();
  j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Frobnicate"}}}}};
  expectError(loadError(j), "tokenizer.json.pre_tokenizer.pretokenizers[0].type");
  j = tinyTokenizer();
  j["decoder"] = {{"type", "WordPiece"}};
  expectError(loadError(j), "tokenizer.json.decoder.type");
  j = tinyTokenizer();
  j["post_processor"] = {{"type", "Mystery"}};
  expectError(loadError(j), "tokenizer.json.post_processor.type");
}

TEST(TokenizerErrors, BadMerges) {
  json j = tinyTokenizer();
  j["model"]["merges"] = {"a"};
  expectError(loadError(j), "tokenizer.json.model.merges[0]");
  j["model"]["merges"] = {"a zz"};
  expectError(loadError(j), "'zz' is not in the vocabulary");
  j["model"]["merges"] = {"b a"};
  expectError(loadError(j), "merged token 'ba'");
  j["model"]["merges"] = {42};
  expectError(loadError(j), "tokenizer.json.model.merges[0]");
  j["model"]["merges"] = "a b";
  expectError(loadError(j), "tokenizer.json.model.merges: expected an array");
  j = tinyTokenizer();
  j["model"]["vocab"]["a"] = "zero";
  expectError(loadError(j), "tokenizer.json.model.vocab[\"a\"]");
}

TEST(TokenizerErrors, BadRegex) {
  json j = tinyTokenizer();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(\\p{L}+"}}}, {"behavior", "Isolated"}};
  expectError(loadError(j), "tokenizer.json.pre_tokenizer.pattern: bad regex");
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Sideways"}};
  expectError(loadError(j), "tokenizer.json.pre_tokenizer.behavior");
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", 3}, {"behavior", "Isolated"}};
  expectError(loadError(j), "tokenizer.json.pre_tokenizer.pattern");
}

TEST(TokenizerErrors, BadAddedTokens) {
  json j = tinyTokenizer();
  j["added_tokens"][0]["id"] = -1;
  expectError(loadError(j), "tokenizer.json.added_tokens[0].id");
  j = tinyTokenizer();
  j["added_tokens"][0].erase("content");
  expectError(loadError(j), "tokenizer.json.added_tokens[0].content");
  j = tinyTokenizer();
  j["added_tokens"][0]["special"] = "yes";
  expectError(loadError(j), "tokenizer.json.added_tokens[0].special");
}

TEST(TokenizerErrors, WrongTypesDoNotThrow) {
  for (const char* field : {"normalizer", "pre_tokenizer", "decoder", "post_processor", "added_tokens", "model"}) {
    json j = tinyTokenizer();
    j[field] = 17;
    EXPECT_FALSE(loadError(j).isOk()) << field;
  }
}

TEST(TokenizerErrors, BadInputsAtRuntime) {
  auto t = Tokenizer::fromJson(tinyTokenizer().dump());
  ASSERT_TRUE(t.isOk());
  expectError((*t)->encode(std::string("a\xFF" "b"), false).status(), "not valid UTF-8 (byte offset 1)");
  expectError((*t)->decode({0, 99}).status(), "token id 99");
  expectError((*t)->decode({-3}).status(), "token id -3");
  auto d = (*t)->newDetokenizer();
  EXPECT_FALSE(d.push(1000).isOk());
}

TEST(TokenizerErrors, MissingFiles) {
  expectError(Tokenizer::fromDirectory("/nonexistent/dir").status(), "/nonexistent/dir");
  expectError(Tokenizer::fromPath("/nonexistent/tokenizer.json").status(), "no such file");
  expectError(Tokenizer::fromFiles({{"config.json", "{}"}}).status(), "neither tokenizer.json nor tokenizer.model");
  expectError(Tokenizer::fromDirectory(test::dataDir() + "/chat_templates").status(), "neither");
}

// Issue #10: a tokenizer.json whose Sequence components nest 20,000 deep overflowed the stack.
// Built as text (nlohmann's own recursion is not what is under test).
std::string nested(const char* key, const char* leaf, int depth) {
  std::string open, close;
  for (int i = 0; i < depth; ++i) {
    open += std::string(R"({"type": "Sequence", ")") + key + "\": [";
    close += "]}";
  }
  return open + leaf + close;
}

TEST(TokenizerErrors, DeepSequenceNestingIsRefusedNotACrash) {
  struct Case { const char* field; const char* key; const char* leaf; };
  const Case cases[] = {{"normalizer", "normalizers", R"({"type": "Lowercase"})"},
                        {"pre_tokenizer", "pretokenizers", R"({"type": "ByteLevel", "add_prefix_space": false})"},
                        {"decoder", "decoders", R"({"type": "ByteLevel"})"}};
  for (const Case& c : cases) {
    for (int depth : {20000, kMaxTokenizerNestingForTest + 1}) {
      json j = tinyTokenizer();
      j[c.field] = json::parse(nested(c.key, c.leaf, depth));
      expectError(loadError(j), "nest more than");
    }
    // Within the limit it still loads.
    json ok = tinyTokenizer();
    ok[c.field] = json::parse(nested(c.key, c.leaf, 3));
    EXPECT_TRUE(loadError(ok).isOk()) << c.field << ": " << loadError(ok).toString();
  }
}

}  // namespace
}  // namespace ds
