// tokenizer_config.json / generation_config.json handling and loading from in-memory blobs.
#include <gtest/gtest.h>

#include "test_util.h"
#include "tokenizer/config.h"
#include "tokenizer/tokenizer.h"

namespace ds {
namespace {

std::map<std::string, std::string> deepseekFiles() {
  return {{Tokenizer::kTokenizerJson, test::readFile(test::dataDir() + "/tokenizers/deepseek-llm/tokenizer.json")}};
}

TEST(TokenizerConfig, TokensAsStringsOrObjects) {
  auto c = tok::parseTokenizerConfig(R"({
    "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false},
    "eos_token": "</s>", "pad_token": null, "add_bos_token": true, "add_eos_token": false,
    "chat_template": [{"name": "default", "template": "{{ x }}"}, {"name": "tool_use", "template": "T"}],
    "added_tokens_decoder": {"32000": {"content": "<tool>", "special": true}}
  })", "tokenizer_config.json");
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  EXPECT_EQ(c->bos_token, std::optional<std::string>("<s>"));
  EXPECT_EQ(c->eos_token, std::optional<std::string>("</s>"));
  EXPECT_FALSE(c->pad_token.has_value());
  EXPECT_EQ(c->add_bos_token, std::optional<bool>(true));
  EXPECT_EQ(c->chat_templates.at("tool_use"), "T");
  ASSERT_EQ(c->added_tokens.size(), 1u);
  EXPECT_EQ(c->added_tokens[0].id, 32000);
  EXPECT_TRUE(c->added_tokens[0].special);
}

TEST(TokenizerConfig, Errors) {
  auto bad = tok::parseTokenizerConfig("{\"bos_token\": 5}", "tokenizer_config.json");
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("tokenizer_config.json.bos_token"), std::string::npos);
  EXPECT_FALSE(tok::parseTokenizerConfig("{", "tokenizer_config.json").isOk());
  EXPECT_FALSE(tok::parseTokenizerConfig("{\"chat_template\": 3}", "tokenizer_config.json").isOk());
  EXPECT_FALSE(tok::parseTokenizerConfig("{\"add_bos_token\": \"yes\"}", "tokenizer_config.json").isOk());
  auto g = tok::parseGenerationConfig("{\"eos_token_id\": \"x\"}", "generation_config.json");
  ASSERT_FALSE(g.isOk());
  EXPECT_NE(g.status().message().find("generation_config.json.eos_token_id"), std::string::npos);
}

TEST(TokenizerConfig, EosListBecomesStopIds) {
  auto files = deepseekFiles();
  files[Tokenizer::kGenerationConfig] = R"({"bos_token_id": 100000, "eos_token_id": [100001, 100002]})";
  files[Tokenizer::kTokenizerConfig] = R"({"bos_token": {"content": "<｜begin▁of▁sentence｜>"},
      "eos_token": "<｜end▁of▁sentence｜>", "add_bos_token": true, "chat_template": "{{ bos_token }}"})";
  auto t = Tokenizer::fromFiles(files);
  ASSERT_TRUE(t.isOk()) << t.status().toString();
  EXPECT_EQ((*t)->bosId(), std::optional<TokenId>(100000));
  EXPECT_EQ((*t)->eosId(), std::optional<TokenId>(100001));
  EXPECT_EQ((*t)->stopIds(), (std::vector<TokenId>{100001, 100002}));
  EXPECT_EQ((*t)->chatTemplate(), "{{ bos_token }}");
  EXPECT_EQ((*t)->encode("Hi").value().front(), 100000);
}

TEST(TokenizerConfig, AddBosFalseOverridesTemplateAndJinjaFileWins) {
  auto files = deepseekFiles();
  files[Tokenizer::kTokenizerConfig] = R"({"add_bos_token": false, "chat_template": "old"})";
  files[Tokenizer::kChatTemplateJinja] = "new";
  auto t = Tokenizer::fromFiles(files);
  ASSERT_TRUE(t.isOk()) << t.status().toString();
  EXPECT_FALSE((*t)->addsBos());
  EXPECT_EQ((*t)->encode("Hi", true).value(), (*t)->encode("Hi", false).value());
  EXPECT_EQ((*t)->chatTemplate(), "new");
}

TEST(TokenizerConfig, UnknownSpecialTokenIsAnError) {
  auto files = deepseekFiles();
  files[Tokenizer::kTokenizerConfig] = R"({"eos_token": "<nope>"})";
  auto t = Tokenizer::fromFiles(files);
  ASSERT_FALSE(t.isOk());
  EXPECT_NE(t.status().message().find("tokenizer_config.json.eos_token: '<nope>'"), std::string::npos);
  files[Tokenizer::kTokenizerConfig] = "{}";
  files[Tokenizer::kGenerationConfig] = R"({"eos_token_id": 999999})";
  t = Tokenizer::fromFiles(files);
  ASSERT_FALSE(t.isOk());
  EXPECT_NE(t.status().message().find("generation_config.json.eos_token_id"), std::string::npos);
}

TEST(TokenizerConfig, ParseSpecialOff) {
  auto t = Tokenizer::fromFiles(deepseekFiles());
  ASSERT_TRUE(t.isOk());
  std::string eos = "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>";
  auto parsed = (*t)->encode("a" + eos, false).value();
  EXPECT_EQ(parsed.back(), 100001);
  EncodeOptions o;
  o.add_special_tokens = false;
  o.parse_special = false;
  auto plain = (*t)->encode("a" + eos, o).value();
  EXPECT_GT(plain.size(), parsed.size());
  for (TokenId id : plain) EXPECT_FALSE((*t)->isSpecial(id));
  EXPECT_EQ((*t)->decode(plain).value(), "a" + eos);
}

}  // namespace
}  // namespace ds
