// Greedy generation through the Engine: HF goldens, batch invariance, chunked prefill, stories260K.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "e2e_util.h"
#include "tokenizer/tokenizer.h"

namespace ds::test {
namespace {

class Generation : public ::testing::TestWithParam<std::string> {};

TEST_P(Generation, GreedyTokensMatchTransformers) {
  auto art = openArtifact(GetParam());
  ASSERT_NE(art, nullptr);
  Golden g = loadGolden(GetParam());
  for (size_t p = 0; p < g.prompts.size(); ++p) {
    auto out = generateGreedy(*art, {g.prompts[p].prompt}, 32);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], g.prompts[p].generated) << GetParam() << " prompt " << p;
  }
}

TEST_P(Generation, BatchOfFourEqualsSingleRuns) {
  auto art = openArtifact(GetParam());
  ASSERT_NE(art, nullptr);
  Golden g = loadGolden(GetParam());
  ASSERT_GE(g.prompts.size(), 3u);
  // The third golden prompt (40 tokens) spans several 16-token KV blocks; the fourth is a
  // different mix so that the batch holds four distinct sequences of different lengths.
  std::vector<std::vector<int32_t>> prompts = {g.prompts[0].prompt, g.prompts[1].prompt,
                                               g.prompts[2].prompt};
  std::vector<int32_t> fourth(g.prompts[2].prompt.begin(), g.prompts[2].prompt.begin() + 17);
  prompts.push_back(fourth);
  auto batched = generateGreedy(*art, prompts, 24);
  ASSERT_EQ(batched.size(), 4u);
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto single = generateGreedy(*art, {prompts[i]}, 24);
    EXPECT_EQ(batched[i], single[0]) << GetParam() << " prompt " << i;
  }
  for (size_t i = 0; i < 3; ++i)
    EXPECT_EQ(batched[i], std::vector<int32_t>(g.prompts[i].generated.begin(),
                                               g.prompts[i].generated.begin() + 24));
}

TEST_P(Generation, ChunkedPrefillEqualsWholePrefill) {
  auto art = openArtifact(GetParam());
  ASSERT_NE(art, nullptr);
  Golden g = loadGolden(GetParam());
  // A 5-token step budget splits the 40-token prompt into 8 prefill steps.
  auto chunked = generateGreedy(*art, {g.prompts[2].prompt, g.prompts[1].prompt}, 20, 5);
  ASSERT_EQ(chunked.size(), 2u);
  EXPECT_EQ(chunked[0], std::vector<int32_t>(g.prompts[2].generated.begin(), g.prompts[2].generated.begin() + 20));
  EXPECT_EQ(chunked[1], std::vector<int32_t>(g.prompts[1].generated.begin(), g.prompts[1].generated.begin() + 20));
}

INSTANTIATE_TEST_SUITE_P(Models, Generation, ::testing::ValuesIn(goldenModels()),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The acceptance check of the host target: the authors' greedy continuation of stories260K.
TEST(Stories260K, GreedyFromBosMatchesReferenceIdsAndText) {
  auto art = openArtifact("stories260K");
  ASSERT_NE(art, nullptr);
  std::string dir = std::string(DS_SOURCE_DIR) + "/test/models/stories260K/expected/";
  std::vector<int32_t> expected;
  std::istringstream ids(readFile(dir + "greedy_from_bos.ids"));
  for (int32_t id; ids >> id;) expected.push_back(id);
  ASSERT_EQ(expected.size(), 255u);
  // The text file holds one more token than the id file (the final "."), so generate 256.
  auto out = generateGreedy(*art, {{1}}, 256);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].size(), 256u);
  EXPECT_EQ(std::vector<int32_t>(out[0].begin(), out[0].begin() + 255), expected);

  std::map<std::string, std::string> files;
  for (const auto* blob : *art->meta()->tokenizer_files())
    files[blob->name()->str()] = std::string(blob->data()->begin(), blob->data()->end());
  auto tok = Tokenizer::fromFiles(files);
  ASSERT_TRUE(tok.isOk()) << tok.status().toString();
  auto text = (*tok)->decode(std::vector<TokenId>(out[0].begin(), out[0].end()));
  ASSERT_TRUE(text.isOk());
  EXPECT_EQ(*text + "\n", readFile(dir + "greedy_from_bos.txt"));
}

}  // namespace
}  // namespace ds::test
