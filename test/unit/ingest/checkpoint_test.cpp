// Checkpoint: single file, sharded index (and its malformed cases), real checkpoints, open speed.
#include "ingest/checkpoint.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ingest/hf_config.h"
#include "ingest/safetensors_writer.h"
#include "model_test_util.h"

namespace ds {
namespace {

using testing::TempDir;
using testing::writeBytes;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::vector<float> iota(size_t n, float start) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = start + static_cast<float>(i);
  return v;
}

const char* kShard1 = "model-00001-of-00002.safetensors";
const char* kShard2 = "model-00002-of-00002.safetensors";

// Two shards: a.w and a.b in shard 1, c in shard 2; `weight_map_json` replaces the consistent map.
void writeShardedFixture(const TempDir& dir, const std::string& weight_map_json = "") {
  SafetensorsWriter s1, s2;
  const auto w = iota(6, 0), b = iota(2, 100), c = iota(4, 200);
  ASSERT_TRUE(s1.add("a.w", DType::kF32, {2, 3}, w.data(), 24).isOk());
  ASSERT_TRUE(s1.add("a.b", DType::kF32, {2}, b.data(), 8).isOk());
  ASSERT_TRUE(s2.add("c", DType::kF32, {4}, c.data(), 16).isOk());
  ASSERT_TRUE(s1.write(dir.file(kShard1)).isOk());
  ASSERT_TRUE(s2.write(dir.file(kShard2)).isOk());
  const std::string map =
      weight_map_json.empty()
          ? nlohmann::json{{"a.w", kShard1}, {"a.b", kShard1}, {"c", kShard2}}.dump()
          : weight_map_json;
  writeBytes(dir.file("model.safetensors.index.json"), R"({"metadata": {"total_size": 48}, "weight_map": )" + map + "}");
}

TEST(CheckpointTest, ShardedIndex) {
  TempDir dir;
  writeShardedFixture(dir);
  auto ckpt = Checkpoint::open(dir.path());
  ASSERT_TRUE(ckpt.isOk()) << ckpt.status().toString();
  const Checkpoint& c = ckpt.value();
  EXPECT_TRUE(c.sharded());
  EXPECT_EQ(c.files().size(), 2u);
  EXPECT_EQ(c.size(), 3u);
  EXPECT_EQ(c.totalBytes(), 48u);
  std::vector<std::string> names;
  for (const TensorView& t : c) names.emplace_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"a.b", "a.w", "c"}));
  const TensorView* cv = c.find("c");
  ASSERT_NE(cv, nullptr);
  EXPECT_TRUE(contains(cv->file->path(), kShard2));
  float first;
  std::memcpy(&first, cv->data, 4);
  EXPECT_EQ(first, 200.0f);
  const TensorView* wv = c.find("a.w");
  ASSERT_NE(wv, nullptr);
  EXPECT_EQ(wv->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(wv->numel(), 6u);
  std::vector<float> w(6);
  std::memcpy(w.data(), wv->data, 24);
  EXPECT_EQ(w, iota(6, 0));
  auto missing = c.get("zzz");
  ASSERT_FALSE(missing.isOk());
  EXPECT_EQ(missing.status().code(), DS_NOT_FOUND);
  EXPECT_TRUE(contains(missing.status().message(), "'zzz'"));
  // The index file itself may be named.
  auto direct = Checkpoint::open(dir.file("model.safetensors.index.json"));
  ASSERT_TRUE(direct.isOk()) << direct.status().toString();
  EXPECT_EQ(direct.value().size(), 3u);
}

TEST(CheckpointTest, TensorListedInIndexMissingFromShard) {
  TempDir dir;
  writeShardedFixture(dir, nlohmann::json{{"a.w", kShard1}, {"ghost", kShard2}}.dump());
  auto ckpt = Checkpoint::open(dir.path());
  ASSERT_FALSE(ckpt.isOk());
  EXPECT_EQ(ckpt.status().code(), DS_NOT_FOUND);
  EXPECT_TRUE(contains(ckpt.status().message(), "tensor 'ghost'"));
  EXPECT_TRUE(contains(ckpt.status().message(), std::string("missing from shard '") + kShard2 + "'"));
  EXPECT_TRUE(contains(ckpt.status().message(), "model.safetensors.index.json"));
}

TEST(CheckpointTest, ShardFileMissing) {
  TempDir dir;
  writeShardedFixture(dir, nlohmann::json{{"a.w", kShard1}, {"c", "model-00003-of-00003.safetensors"}}.dump());
  auto ckpt = Checkpoint::open(dir.path());
  ASSERT_FALSE(ckpt.isOk());
  EXPECT_EQ(ckpt.status().code(), DS_NOT_FOUND);
  EXPECT_TRUE(contains(ckpt.status().message(), "shard 'model-00003-of-00003.safetensors'"));
  EXPECT_TRUE(contains(ckpt.status().message(), "tensor 'c'"));
}

TEST(CheckpointTest, IndexJsonMalformed) {
  const struct { std::string text; const char* expect; } cases[] = {
      {R"({"weight_map": {"a.w": "model-00001-of-00002.safetensors",)", "malformed JSON"},
      {R"([1, 2])", "not a JSON object"},
      {R"({"metadata": {}})", "missing 'weight_map'"},
      {R"({"weight_map": ["a"]})", "missing 'weight_map'"},
      {R"({"weight_map": {"a.w": 3}})", "weight_map['a.w'] is not a shard file name"},
      {R"({"weight_map": {"a.w": "../model-00001-of-00002.safetensors"}})", "outside the checkpoint directory"},
      {R"({"weight_map": {"a.w": "/etc/passwd"}})", "outside the checkpoint directory"},
      {R"({"weight_map": {"a.w": "model-00001-of-00002.safetensors", "a.w": "model-00001-of-00002.safetensors"}})",
       "duplicate JSON key 'a.w'"},
  };
  for (const auto& c : cases) {
    TempDir dir;
    writeShardedFixture(dir);
    writeBytes(dir.file("model.safetensors.index.json"), c.text);
    auto ckpt = Checkpoint::open(dir.path());
    ASSERT_FALSE(ckpt.isOk()) << c.text;
    EXPECT_EQ(ckpt.status().code(), DS_DATA_LOSS) << c.text;
    EXPECT_TRUE(contains(ckpt.status().message(), c.expect)) << ckpt.status().message();
    EXPECT_TRUE(contains(ckpt.status().message(), "model.safetensors.index.json")) << ckpt.status().message();
  }
}

TEST(CheckpointTest, CorruptShardIsReportedWithItsName) {
  TempDir dir;
  writeShardedFixture(dir);
  writeBytes(dir.file(kShard2), "tiny");
  auto ckpt = Checkpoint::open(dir.path());
  ASSERT_FALSE(ckpt.isOk());
  EXPECT_EQ(ckpt.status().code(), DS_DATA_LOSS);
  EXPECT_TRUE(contains(ckpt.status().message(), kShard2));
}

TEST(CheckpointTest, DirectoryChoice) {
  TempDir empty;
  auto none = Checkpoint::open(empty.path());
  ASSERT_FALSE(none.isOk());
  EXPECT_EQ(none.status().code(), DS_NOT_FOUND);
  EXPECT_TRUE(contains(none.status().message(), "no model.safetensors"));
  // model.safetensors wins over an index, as in Hugging Face.
  TempDir both;
  writeShardedFixture(both);
  SafetensorsWriter single;
  const float one = 1.0f;
  ASSERT_TRUE(single.add("only", DType::kF32, {1}, &one, 4).isOk());
  ASSERT_TRUE(single.write(both.file("model.safetensors")).isOk());
  auto ckpt = Checkpoint::open(both.path());
  ASSERT_TRUE(ckpt.isOk());
  EXPECT_FALSE(ckpt.value().sharded());
  EXPECT_EQ(ckpt.value().size(), 1u);
}

const std::string kStories = std::string(DS_SHARED_DATA_DIR) + "/models/stories260K";

TEST(CheckpointTest, Stories260KMatchesItsConfig) {
  auto cfg = loadHFConfig(kStories);
  ASSERT_TRUE(cfg.isOk()) << cfg.status().toString();
  const ModelConfig& c = cfg.value();
  auto opened = Checkpoint::open(kStories);
  ASSERT_TRUE(opened.isOk()) << opened.status().toString();
  const Checkpoint& ckpt = opened.value();
  EXPECT_FALSE(ckpt.sharded());
  // 9 tensors per layer, embedding, final norm; no lm_head because embeddings are tied.
  EXPECT_EQ(ckpt.size(), static_cast<size_t>(9 * c.num_hidden_layers + 2));
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(ckpt.find("lm_head.weight"), nullptr);

  auto expectShape = [&](const std::string& name, std::vector<int64_t> shape) {
    const TensorView* t = ckpt.find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->dtype, DType::kF32) << name;
    EXPECT_EQ(t->shape, shape) << name;
    EXPECT_EQ(t->nbytes, t->numel() * 4) << name;
  };
  const int64_t h = c.hidden_size, q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim;
  expectShape("model.embed_tokens.weight", {c.vocab_size, h});
  expectShape("model.norm.weight", {h});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    expectShape(p + "input_layernorm.weight", {h});
    expectShape(p + "post_attention_layernorm.weight", {h});
    expectShape(p + "self_attn.q_proj.weight", {q, h});
    expectShape(p + "self_attn.k_proj.weight", {kv, h});
    expectShape(p + "self_attn.v_proj.weight", {kv, h});
    expectShape(p + "self_attn.o_proj.weight", {h, q});
    expectShape(p + "mlp.gate_proj.weight", {c.intermediate_size, h});
    expectShape(p + "mlp.up_proj.weight", {c.intermediate_size, h});
    expectShape(p + "mlp.down_proj.weight", {h, c.intermediate_size});
  }
  uint64_t params = 0;
  for (const TensorView& t : ckpt) params += t.numel();
  EXPECT_EQ(ckpt.totalBytes(), params * 4);
  EXPECT_EQ(ckpt.totalBytes(), ckpt.files()[0]->fileSize() - 8 - ckpt.files()[0]->headerSize());
  // A trained model: weights are finite and the final norm is not all zeros.
  const TensorView* norm = ckpt.find("model.norm.weight");
  std::vector<float> w(static_cast<size_t>(h));
  std::memcpy(w.data(), norm->data, norm->nbytes);
  double sum = 0;
  for (float x : w) {
    EXPECT_TRUE(std::isfinite(x));
    sum += std::fabs(x);
  }
  EXPECT_GT(sum, 0.0);
}

// The repository's tiny models were written by Python safetensors/transformers: an interop check.
TEST(CheckpointTest, RepositoryTinyModelsOpenAndMatchTheirConfigs) {
  const std::string root = std::string(DS_SOURCE_DIR) + "/test/models";
  if (!std::filesystem::exists(root)) GTEST_SKIP() << root << " not present";
  int models = 0;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    if (!entry.is_directory()) continue;
    const std::string dir = entry.path().string();
    SCOPED_TRACE(dir);
    auto cfg = loadHFConfig(dir);
    ASSERT_TRUE(cfg.isOk()) << cfg.status().toString();
    auto ckpt = Checkpoint::open(dir);
    ASSERT_TRUE(ckpt.isOk()) << ckpt.status().toString();
    ++models;
    const TensorView* embed = ckpt.value().find("model.embed_tokens.weight");
    ASSERT_NE(embed, nullptr);
    EXPECT_EQ(embed->shape, (std::vector<int64_t>{cfg.value().vocab_size, cfg.value().hidden_size}));
    if (ckpt.value().sharded()) {
      std::ifstream in(dir + "/model.safetensors.index.json");
      std::stringstream text;
      text << in.rdbuf();
      const auto index = nlohmann::json::parse(text.str());
      EXPECT_EQ(ckpt.value().size(), index["weight_map"].size());
      EXPECT_EQ(ckpt.value().totalBytes(), index["metadata"]["total_size"].get<uint64_t>());
    }
    // FP8 block weights come with F32 inverse scales of ceil(rows/128) x ceil(cols/128).
    int fp8 = 0;
    for (const TensorView& t : ckpt.value()) {
      if (t.dtype != DType::kF8_E4M3) continue;
      ++fp8;
      EXPECT_TRUE(cfg.value().quantization.fp8_block);
      const TensorView* scale = ckpt.value().find(std::string(t.name) + "_scale_inv");
      ASSERT_NE(scale, nullptr) << t.name;
      EXPECT_EQ(scale->dtype, DType::kF32);
      ASSERT_EQ(t.shape.size(), 2u);
      EXPECT_EQ(scale->shape, (std::vector<int64_t>{(t.shape[0] + 127) / 128, (t.shape[1] + 127) / 128}));
    }
    EXPECT_EQ(fp8 > 0, cfg.value().quantization.fp8_block);
  }
  EXPECT_GE(models, 1);
}

// An 8B-sized (16 GB BF16) sharded checkpoint as sparse files: opening it must only read headers.
TEST(CheckpointTest, OpensLargeCheckpointWithoutReadingData) {
  auto cfg = loadHFConfig(std::string(DS_SHARED_DATA_DIR) + "/configs/deepseek-r1-distill-llama-8b.json");
  ASSERT_TRUE(cfg.isOk()) << cfg.status().toString();
  const ModelConfig& c = cfg.value();
  const int64_t h = c.hidden_size, ff = c.intermediate_size, q = c.num_attention_heads * c.head_dim,
                kv = c.num_key_value_heads * c.head_dim;
  using Entry = std::pair<std::string, std::vector<int64_t>>;
  std::vector<Entry> tensors = {
      {"model.embed_tokens.weight", {c.vocab_size, h}}, {"lm_head.weight", {c.vocab_size, h}}, {"model.norm.weight", {h}}};
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const std::vector<Entry> layer = {
        {"self_attn.q_proj.weight", {q, h}}, {"self_attn.k_proj.weight", {kv, h}}, {"self_attn.v_proj.weight", {kv, h}},
        {"self_attn.o_proj.weight", {h, q}}, {"mlp.gate_proj.weight", {ff, h}},    {"mlp.up_proj.weight", {ff, h}},
        {"mlp.down_proj.weight", {h, ff}},   {"input_layernorm.weight", {h}},      {"post_attention_layernorm.weight", {h}}};
    for (const Entry& e : layer) tensors.emplace_back(p + e.first, e.second);
  }
  TempDir dir;
  const int kShards = 4;
  std::vector<nlohmann::ordered_json> headers(kShards, nlohmann::ordered_json::object());
  std::vector<uint64_t> offsets(kShards, 0);
  nlohmann::json weight_map = nlohmann::json::object();
  uint64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const size_t s = i * kShards / tensors.size();
    uint64_t bytes = 2;
    for (int64_t d : tensors[i].second) bytes *= static_cast<uint64_t>(d);
    headers[s][tensors[i].first] = {{"dtype", "BF16"}, {"shape", tensors[i].second},
                                    {"data_offsets", {offsets[s], offsets[s] + bytes}}};
    offsets[s] += bytes;
    total += bytes;
    weight_map[tensors[i].first] = "model-" + std::to_string(s) + ".safetensors";
  }
  for (int s = 0; s < kShards; ++s) {
    const std::string header = headers[s].dump();
    const std::string path = dir.file("model-" + std::to_string(s) + ".safetensors");
    writeBytes(path, testing::safetensorsBytes(header, 0));
    ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(8 + header.size() + offsets[s])), 0);  // sparse
  }
  writeBytes(dir.file("model.safetensors.index.json"), nlohmann::json{{"weight_map", weight_map}}.dump());

  const auto start = std::chrono::steady_clock::now();
  auto ckpt = Checkpoint::open(dir.path());
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(ckpt.isOk()) << ckpt.status().toString();
  EXPECT_EQ(ckpt.value().size(), tensors.size());
  EXPECT_EQ(ckpt.value().totalBytes(), total);
  EXPECT_GT(total, 15000000000ull);  // ~16 GB, an 8B model in BF16
  std::printf("opened %zu tensors, %.2f GB in %.2f ms\n", tensors.size(), static_cast<double>(total) / 1e9, ms);
  // Reading 16 GB takes seconds; header parsing takes milliseconds (bound generous for sanitizers).
  EXPECT_LT(ms, 500.0);
}

}  // namespace
}  // namespace ds
