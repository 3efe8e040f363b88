// llama.cpp's tokenizer cases for DeepSeek LLM / Coder, and streaming decode == full decode.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace ds {
namespace {

struct Case {
  std::string text;
  std::vector<int> ids;
};

std::vector<Case> loadCases(const std::string& dir) {
  auto inputs = test::splitAll(test::readFile(dir + "/cases.inp"), "\n__ggml_vocab_test__\n");
  auto lines = test::splitAll(test::readFile(dir + "/cases.out"), "\n");
  EXPECT_EQ(inputs.size(), lines.size()) << dir;
  std::vector<Case> cases;
  for (size_t i = 0; i < std::min(inputs.size(), lines.size()); ++i)
    cases.push_back({inputs[i], test::parseIdLine(lines[i])});
  return cases;
}

std::string streamDecode(const Tokenizer& t, const std::vector<TokenId>& ids, bool skip) {
  IncrementalDetokenizer d = t.newDetokenizer(skip);
  std::string out;
  for (TokenId id : ids) {
    auto piece = d.push(id);
    EXPECT_TRUE(piece.isOk()) << piece.status().toString();
    if (!piece.isOk()) return out;
    out += *piece;
  }
  return out + d.finish();
}

class CasesTest : public ::testing::TestWithParam<std::pair<const char*, size_t>> {
 protected:
  std::string dir() const { return test::dataDir() + "/tokenizers/" + GetParam().first; }
};

TEST_P(CasesTest, AllCasesMatch) {
  auto tok = Tokenizer::fromPath(dir() + "/tokenizer.json");
  ASSERT_TRUE(tok.isOk()) << tok.status().toString();
  std::vector<Case> cases = loadCases(dir());
  ASSERT_EQ(cases.size(), GetParam().second);
  size_t passed = 0;
  for (const Case& c : cases) {
    auto ids = (*tok)->encode(c.text, /*add_special_tokens=*/false);
    ASSERT_TRUE(ids.isOk()) << ids.status().toString();
    std::vector<int> got(ids->begin(), ids->end());
    EXPECT_EQ(got, c.ids) << "input: '" << c.text << "'";
    if (got == c.ids) ++passed;
    auto text = (*tok)->decode(*ids);
    ASSERT_TRUE(text.isOk());
    EXPECT_EQ(streamDecode(**tok, *ids, false), *text);
    // Byte-level BPE round-trips the text.
    EXPECT_EQ(*text, c.text);
  }
  EXPECT_EQ(passed, cases.size());
  std::printf("%s: %zu/%zu cases pass\n", GetParam().first, passed, cases.size());
}

TEST_P(CasesTest, BosAndRandomIdStreams) {
  auto tok = Tokenizer::fromPath(dir() + "/tokenizer.json");
  ASSERT_TRUE(tok.isOk()) << tok.status().toString();
  const Tokenizer& t = **tok;
  // The post-processor template puts BOS in front; add_special_tokens=false leaves it out.
  ASSERT_TRUE(t.bosId().has_value());
  auto with = t.encode("Hello", true), without = t.encode("Hello", false);
  ASSERT_TRUE(with.isOk() && without.isOk());
  ASSERT_EQ(with->size(), without->size() + 1);
  EXPECT_EQ(with->front(), *t.bosId());
  EXPECT_EQ(t.idToToken(*t.bosId()),
            std::optional<std::string>("<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"));
  EXPECT_EQ(t.decode(*with, /*skip_special_tokens=*/true).value(), "Hello");
  EXPECT_EQ(t.decode(*with, false).value(), *t.idToToken(*t.bosId()) + "Hello");

  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> pick(0, t.vocabSize() - 1);
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<TokenId> ids(1 + rng() % 40);
    for (TokenId& id : ids) id = pick(rng);
    for (bool skip : {false, true}) {
      auto full = t.decode(ids, skip);
      ASSERT_TRUE(full.isOk());
      EXPECT_EQ(streamDecode(t, ids, skip), *full);
    }
  }
}

TEST_P(CasesTest, StreamingNeverSplitsACharacter) {
  auto tok = Tokenizer::fromPath(dir() + "/tokenizer.json");
  ASSERT_TRUE(tok.isOk());
  // Chinese and emoji come out of byte-level BPE as partial-UTF-8 tokens.
  std::string text = "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x98\x80\xF0\x9F\xA6\x99 ok";
  auto ids = (*tok)->encode(text, false);
  ASSERT_TRUE(ids.isOk());
  IncrementalDetokenizer d = (*tok)->newDetokenizer();
  std::string all;
  int empty_pushes = 0;
  for (TokenId id : *ids) {
    auto piece = d.push(id);
    ASSERT_TRUE(piece.isOk());
    std::string p = *piece;
    empty_pushes += p.empty();
    for (size_t i = 0; i < p.size();) {
      auto c = static_cast<unsigned char>(p[i]);
      size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      ASSERT_LE(i + len, p.size()) << "partial character emitted";
      i += len;
    }
    all += p;
  }
  all += d.finish();
  EXPECT_EQ(all, text);
  EXPECT_GT(empty_pushes, 0) << "expected some tokens to end mid-character";
}

TEST_P(CasesTest, ConcurrentEncodeMatchesSerial) {
  auto tok = Tokenizer::fromPath(dir() + "/tokenizer.json");
  ASSERT_TRUE(tok.isOk());
  std::vector<Case> cases = loadCases(dir());
  std::vector<std::vector<TokenId>> serial;
  for (const Case& c : cases) serial.push_back((*tok)->encode(c.text, false).value());
  // One thread holds the word cache, the others run uncached: all must agree.
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round)
        for (size_t i = 0; i < cases.size(); ++i) {
          auto ids = (*tok)->encode(cases[i].text, false);
          if (!ids.isOk() || *ids != serial[i]) ++mismatches[static_cast<size_t>(t)];
        }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

INSTANTIATE_TEST_SUITE_P(DeepSeek, CasesTest,
                         ::testing::Values(std::make_pair("deepseek-llm", size_t{47}),
                                           std::make_pair("deepseek-coder", size_t{47})),
                         [](const auto& info) {
                           std::string n = info.param.first;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace ds
