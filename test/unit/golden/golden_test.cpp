// Consistency of the committed Hugging Face goldens (test/golden): they load, match the model config, and
// every greedy id is the argmax of the logits row before it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/dtype.h"
#include "ingest/safetensors.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kNewTokens = 32;
constexpr int kLongPrompt = 40;
// Ties are allowed: the id must be within this of the row's maximum.
constexpr float kTieTolerance = 1e-6f;

const std::vector<std::string>& expectedModels() {
  static const std::vector<std::string> kModels = {"stories260K",          "tiny-llama",
                                                   "tiny-qwen2",           "tiny-deepseek-v2",
                                                   "tiny-deepseek-v3",     "tiny-deepseek-v3-fp8"};
  return kModels;
}

fs::path goldenRoot() { return fs::path(DS_SOURCE_DIR) / "test" / "golden"; }

// Parses a JSON file without exceptions; a parse error fails the calling test with the file name.
json readJson(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot open " << path;
    return json();
  }
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) ADD_FAILURE() << path << ": malformed JSON";
  return j;
}

std::vector<int64_t> idList(const json& j, const char* key) {
  std::vector<int64_t> ids;
  if (!j.contains(key) || !j[key].is_array()) {
    ADD_FAILURE() << "field '" << key << "' missing or not a list";
    return ids;
  }
  for (const json& v : j[key]) {
    if (!v.is_number_integer()) {
      ADD_FAILURE() << "field '" << key << "' holds a non-integer";
      return {};
    }
    ids.push_back(v.get<int64_t>());
  }
  return ids;
}

struct Logits {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> values;
  float at(int64_t r, int64_t c) const { return values[static_cast<size_t>(r * cols + c)]; }
};

class GoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = goldenRoot() / GetParam();
    golden_ = readJson(dir_ / "golden.json");
    ASSERT_TRUE(golden_.is_object()) << dir_ / "golden.json";
    ASSERT_TRUE(golden_.contains("model_dir") && golden_["model_dir"].is_string());
    ASSERT_TRUE(golden_.contains("model_dir_base") && golden_["model_dir_base"].is_string());
    const std::string base = golden_["model_dir_base"].get<std::string>();
    ASSERT_TRUE(base == "repo" || base == "shared_data") << "model_dir_base=" << base;
    model_dir_ = fs::path(base == "repo" ? DS_SOURCE_DIR : DS_SHARED_DATA_DIR) /
                 golden_["model_dir"].get<std::string>();
    config_ = readJson(model_dir_ / "config.json");
    ASSERT_TRUE(config_.is_object()) << model_dir_ / "config.json";
    ASSERT_TRUE(config_.contains("vocab_size") && config_["vocab_size"].is_number_integer());
    vocab_ = config_["vocab_size"].get<int64_t>();
    ASSERT_TRUE(golden_.contains("prompts") && golden_["prompts"].is_array());
  }

  // Loads logits.<index> and checks dtype and shape against the prompt record.
  void loadLogits(const json& prompt, size_t index, Logits* out) {
    const fs::path path = dir_ / "logits.safetensors";
    auto file = ds::SafetensorsFile::open(path.string());
    ASSERT_TRUE(file.isOk()) << file.status().message();
    const std::string name = "logits." + std::to_string(index);
    ASSERT_EQ(prompt.value("logits_tensor", ""), name);
    const ds::TensorInfo* info = (*file)->find(name);
    ASSERT_NE(info, nullptr) << path << " has no tensor " << name;
    ASSERT_EQ(info->dtype, ds::DType::kF32) << name;
    const int64_t expect_rows =
        static_cast<int64_t>(idList(prompt, "prompt_ids").size() + idList(prompt, "generated_ids").size());
    ASSERT_EQ(info->shape, (std::vector<int64_t>{expect_rows, vocab_})) << name;
    out->rows = info->shape[0];
    out->cols = info->shape[1];
    out->values.resize(static_cast<size_t>(info->numel));
    ds::Status st = ds::convertToFloat(info->dtype, (*file)->data(*info), out->values.data(), out->values.size());
    ASSERT_TRUE(st.isOk()) << st.message();
  }

  fs::path dir_;
  fs::path model_dir_;
  json golden_;
  json config_;
  int64_t vocab_ = 0;
};

TEST(GoldenSet, EveryExpectedModelHasAGolden) {
  for (const std::string& name : expectedModels()) {
    EXPECT_TRUE(fs::is_regular_file(goldenRoot() / name / "golden.json")) << name;
    EXPECT_TRUE(fs::is_regular_file(goldenRoot() / name / "logits.safetensors")) << name;
  }
  // A golden folder nobody lists here would never be checked.
  for (const auto& entry : fs::directory_iterator(goldenRoot())) {
    if (!entry.is_directory()) continue;
    const std::string name = entry.path().filename().string();
    EXPECT_NE(std::find(expectedModels().begin(), expectedModels().end(), name), expectedModels().end())
        << "unlisted golden folder " << name;
  }
}

TEST_P(GoldenTest, RecordMatchesModelConfig) {
  EXPECT_EQ(golden_.value("model", ""), GetParam());
  EXPECT_EQ(golden_.value("vocab_size", int64_t{-1}), vocab_);
  EXPECT_EQ(golden_.value("dtype", ""), "float32");
  ASSERT_TRUE(golden_.contains("versions") && golden_["versions"].is_object());
  for (const char* key : {"torch", "transformers", "python"}) {
    EXPECT_TRUE(golden_["versions"].contains(key)) << "versions." << key;
  }
  ASSERT_TRUE(config_.contains("bos_token_id") && config_["bos_token_id"].is_number_integer());
  const int64_t bos = config_["bos_token_id"].get<int64_t>();

  const json& prompts = golden_["prompts"];
  ASSERT_EQ(prompts.size(), 3u);
  // The three prompt shapes the runtime tests rely on: BOS alone, a short text, and one that spans
  // several 16-token KV blocks.
  EXPECT_EQ(idList(prompts[0], "prompt_ids"), std::vector<int64_t>{bos});
  EXPECT_GT(idList(prompts[1], "prompt_ids").size(), 1u);
  EXPECT_EQ(idList(prompts[2], "prompt_ids").size(), static_cast<size_t>(kLongPrompt));
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::vector<int64_t> prompt = idList(prompts[i], "prompt_ids");
    const std::vector<int64_t> gen = idList(prompts[i], "generated_ids");
    ASSERT_FALSE(prompt.empty()) << "prompt " << i;
    EXPECT_EQ(prompt.front(), bos) << "prompt " << i << " must start with BOS";
    EXPECT_EQ(gen.size(), static_cast<size_t>(kNewTokens)) << "prompt " << i;
    for (int64_t id : prompt) EXPECT_TRUE(id >= 0 && id < vocab_) << "prompt " << i << " id " << id;
    for (int64_t id : gen) EXPECT_TRUE(id >= 0 && id < vocab_) << "prompt " << i << " generated id " << id;
  }
}

TEST_P(GoldenTest, LogitsHaveTheRightShapeAndAreFinite) {
  const json& prompts = golden_["prompts"];
  for (size_t i = 0; i < prompts.size(); ++i) {
    Logits logits;
    ASSERT_NO_FATAL_FAILURE(loadLogits(prompts[i], i, &logits));
    size_t bad = 0;
    for (float v : logits.values) bad += std::isfinite(v) ? 0 : 1;
    EXPECT_EQ(bad, 0u) << "prompt " << i << ": non-finite logits";
  }
  auto file = ds::SafetensorsFile::open((dir_ / "logits.safetensors").string());
  ASSERT_TRUE(file.isOk()) << file.status().message();
  EXPECT_EQ((*file)->tensors().size(), prompts.size()) << "logits.safetensors holds extra tensors";
}

TEST_P(GoldenTest, GeneratedIdsAreGreedyArgmaxOfTheLogits) {
  const json& prompts = golden_["prompts"];
  for (size_t i = 0; i < prompts.size(); ++i) {
    Logits logits;
    ASSERT_NO_FATAL_FAILURE(loadLogits(prompts[i], i, &logits));
    const std::vector<int64_t> prompt = idList(prompts[i], "prompt_ids");
    const std::vector<int64_t> gen = idList(prompts[i], "generated_ids");
    for (size_t t = 0; t < gen.size(); ++t) {
      // Row r of a teacher-forced pass predicts token r + 1.
      const int64_t row = static_cast<int64_t>(prompt.size() + t) - 1;
      float best = -INFINITY;
      int64_t best_id = -1;
      for (int64_t c = 0; c < logits.cols; ++c) {
        if (logits.at(row, c) > best) {
          best = logits.at(row, c);
          best_id = c;
        }
      }
      EXPECT_GE(logits.at(row, gen[t]), best - kTieTolerance)
          << GetParam() << " prompt " << i << " step " << t << ": generated " << gen[t] << " but argmax is "
          << best_id;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, GoldenTest, ::testing::ValuesIn(expectedModels()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// stories260K comes with its authors' own greedy continuation: transformers must reproduce it.
TEST(GoldenStories, HuggingFaceMatchesTheAuthorsGreedyContinuation) {
  const json golden = readJson(goldenRoot() / "stories260K" / "golden.json");
  ASSERT_TRUE(golden.contains("greedy_from_bos"));
  const std::vector<int64_t> hf = idList(golden["greedy_from_bos"], "generated_ids");
  std::ifstream in(fs::path(DS_SHARED_DATA_DIR) / "models/stories260K/expected/greedy_from_bos.ids");
  ASSERT_TRUE(in) << "missing shared data models/stories260K/expected/greedy_from_bos.ids";
  std::vector<int64_t> authors;
  for (int64_t id; in >> id;) authors.push_back(id);
  ASSERT_EQ(authors.size(), 255u);
  EXPECT_EQ(hf, authors);
  // The 32-token golden from BOS is the same greedy run, so it must be a prefix.
  const std::vector<int64_t> short_run = idList(golden["prompts"][0], "generated_ids");
  ASSERT_LE(short_run.size(), hf.size());
  EXPECT_TRUE(std::equal(short_run.begin(), short_run.end(), hf.begin()));
}

}  // namespace
