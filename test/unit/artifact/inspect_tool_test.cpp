// Runs the ds-inspect binary on a test artifact (text and --json) and on a corrupt file.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "artifact/artifact_writer.h"
#include "artifact_test_util.h"

namespace ds::artifact {
namespace {

using testing::TinyModel;
constexpr size_t kTensorPreviewForTest = 10;  // ds-inspect's documented default

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout + stderr
};

RunResult run(const std::string& args) {
  RunResult r;
#ifdef DS_INSPECT_PATH
  const std::string cmd = std::string("'") + DS_INSPECT_PATH + "' " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
#endif
  return r;
}

class InspectTool : public ::testing::Test {
 protected:
  void SetUp() override {
#ifndef DS_INSPECT_PATH
    GTEST_SKIP() << "ds-inspect is not built";
#endif
    dir_ = testing::freshDir("inspect");
    path_ = dir_ + "/tiny.dsa";
    ASSERT_TRUE(testing::writeTiny(path_).isOk());
  }
  static bool has(const std::string& out, const std::string& line) {
    return out.find(line) != std::string::npos;
  }
  std::string dir_, path_;
};

// The tiny model's facts, derived from its spec rather than copied from the tool's output.
uint64_t tinyKvBytesPerToken() {
  return 2ull * TinyModel::kLayers * TinyModel::kKvHeads * TinyModel::kHeadDim * 2;  // BF16
}

TEST_F(InspectTool, TextSummary) {
  const RunResult r = run("'" + path_ + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string& o = r.output;
  EXPECT_TRUE(has(o, "artifact: " + path_)) << o;
  EXPECT_TRUE(has(o, "model: llama\n")) << o;
  EXPECT_TRUE(has(o, "  layers: " + std::to_string(TinyModel::kLayers) + "\n")) << o;
  EXPECT_TRUE(has(o, "  kv heads: " + std::to_string(TinyModel::kKvHeads) + "\n")) << o;
  EXPECT_TRUE(has(o, "  head dim: " + std::to_string(TinyModel::kHeadDim) + "\n")) << o;
  EXPECT_TRUE(has(o, "  vocab size: " + std::to_string(TinyModel::kVocab) + "\n")) << o;
  EXPECT_TRUE(has(o, "  max context: " + std::to_string(TinyModel::kMaxPos) + "\n")) << o;
  EXPECT_TRUE(has(o, "  schema version: " + std::to_string(kSchemaVersion) + "\n")) << o;
  EXPECT_TRUE(has(o, "  compiler: ds-compile 0.1.0 (test)\n")) << o;
  EXPECT_TRUE(has(o, "  target: host [avx2]\n")) << o;
  EXPECT_TRUE(has(o, "tensors: " + std::to_string(TinyModel::tensors().size()) + "\n")) << o;
  EXPECT_TRUE(has(o, "  layers.0.qkv  F8_E4M3  [16, 8]  128 B\n")) << o;
  EXPECT_TRUE(has(o, "plan: 11 buffers, 8 launches\n")) << o;
  EXPECT_TRUE(has(o, "  Linear: 1\n")) << o;
  EXPECT_TRUE(has(o, "  QKVRope: 1\n")) << o;
  EXPECT_TRUE(has(o, "  RmsNorm: 2\n")) << o;
  EXPECT_TRUE(has(o, "kv cache: GQA\n")) << o;
  EXPECT_FALSE(has(o, "activation arena")) << o;  // the tiny plan is not memory-planned
  EXPECT_TRUE(has(o, "  block size: " + std::to_string(TinyModel::kBlockSize) + "\n")) << o;
  EXPECT_TRUE(has(o, "  bytes per token: " + std::to_string(tinyKvBytesPerToken()) + "\n")) << o;
  EXPECT_TRUE(has(o, "tokenizer files: tokenizer.json (")) << o;
  EXPECT_TRUE(has(o, "chat template: yes")) << o;
  EXPECT_TRUE(has(o, "dtypes: BF16 x3")) << o;
}

// Signed or not, native code or not (the tiny model has no code object).
TEST_F(InspectTool, SignatureAndNativeCode) {
  RunResult r = run("'" + path_ + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "native code: no\n")) << r.output;
  EXPECT_TRUE(has(r.output, "signature: none (unsigned)\n")) << r.output;

  StatusOr<KeyPair> keys = generateKeyPair();
  ASSERT_TRUE(keys.isOk());
  const std::string signed_path = dir_ + "/signed.dsa";
  ASSERT_TRUE(testing::writeTiny(signed_path, &keys->secret_key).isOk());
  r = run("'" + signed_path + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "signature: Ed25519, key id " + keyId(keys->public_key) +
                                ", verifies against that key\n"))
      << r.output;
  r = run("--json '" + signed_path + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["native_code"], false);
  EXPECT_EQ(j["signature"]["key_id"], keyId(keys->public_key));
  EXPECT_EQ(j["signature"]["public_key"], toHex(keys->public_key.bytes.data(), 32));
  EXPECT_EQ(j["signature"]["verifies"], true);

  // The last signature byte flipped: still opens (no trusted key), reported as not verifying.
  std::vector<uint8_t> bytes = testing::readFile(signed_path);
  bytes.back() ^= 0x01;
  testing::writeFile(signed_path, bytes);
  r = run("'" + signed_path + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "DOES NOT VERIFY (changed after signing)\n")) << r.output;
}

TEST_F(InspectTool, JsonSummaryMatchesTheArtifact) {
  const RunResult r = run("--json '" + path_ + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  nlohmann::json j;
  ASSERT_NO_THROW(j = nlohmann::json::parse(r.output)) << r.output;
  EXPECT_EQ(j["model"]["type"], "llama");
  EXPECT_EQ(j["model"]["heads"], TinyModel::kHeads);
  EXPECT_EQ(j["max_context"], TinyModel::kMaxPos);
  EXPECT_EQ(j["plan"]["kv_cache"]["bytes_per_token"], tinyKvBytesPerToken());
  EXPECT_EQ(j["plan"]["launches_per_kernel"]["Attention"], 1);
  EXPECT_EQ(j["tensor_count"], TinyModel::tensors().size());
  uint64_t bytes = 0, tensors = 0;
  for (const auto& [dtype, d] : j["dtypes"].items()) {
    bytes += d["bytes"].get<uint64_t>();
    tensors += d["tensors"].get<uint64_t>();
  }
  EXPECT_EQ(tensors, TinyModel::tensors().size());
  EXPECT_EQ(bytes, j["tensor_bytes"].get<uint64_t>());
  // One segment per tensor, each exactly the tensor: weights == tensor bytes here.
  EXPECT_EQ(j["weights_bytes"], j["tensor_bytes"]);
  ASSERT_EQ(j["tokenizer_files"].size(), TinyModel::tokenizerFiles().size());
  EXPECT_EQ(j["tokenizer_files"][1]["name"], TinyModel::tokenizerFiles()[1].first);
  EXPECT_EQ(j["tokenizer_files"][1]["bytes"], TinyModel::tokenizerFiles()[1].second.size());
  EXPECT_EQ(j["chat_template"], true);
  EXPECT_EQ(j["tensors"][2]["scale_tensor"], 3);
}

TEST_F(InspectTool, CorruptFileIsOneErrorLine) {
  std::vector<uint8_t> bytes = testing::readFile(path_);
  bytes.resize(bytes.size() - 10);
  const std::string bad = dir_ + "/cut.dsa";
  testing::writeFile(bad, bytes);
  const RunResult r = run("'" + bad + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output.rfind("ds-inspect: error: " + bad + ": truncated", 0), 0u) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;

  const RunResult missing = run("'" + dir_ + "/none.dsa'");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(has(missing.output, "ds-inspect: error: " + dir_ + "/none.dsa")) << missing.output;
}

TEST_F(InspectTool, WeightVerificationIsOptIn) {
  std::vector<uint8_t> bytes = testing::readFile(path_);
  const FileHeader h = testing::headerOf(bytes);
  bytes[h.data_offset] ^= 1;  // first byte of segment 0
  const std::string bad = dir_ + "/flip.dsa";
  testing::writeFile(bad, bytes);
  EXPECT_EQ(run("'" + bad + "'").exit_code, 0);
  const RunResult r = run("--verify-weights '" + bad + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r.output, "weight segment 0 checksum mismatch")) << r.output;
}

// Many tensors and no model/plan/tokenizer tables: a preview of the tensor list, "(none)" lines.
TEST_F(InspectTool, BareArtifactWithManyTensors) {
  const std::string path = dir_ + "/bare.dsa";
  auto w = ArtifactWriter::create(path);
  ASSERT_TRUE(w.isOk());
  const int kCount = 13;
  for (int i = 0; i < kCount; ++i) {
    const int32_t v = i;
    ASSERT_TRUE((*w)->addSegmentFromMemory(&v, sizeof(v)).isOk());
  }
  flatbuffers::FlatBufferBuilder b;
  std::vector<flatbuffers::Offset<fb::Tensor>> tensors;
  std::vector<flatbuffers::Offset<fb::Segment>> segs;
  const std::vector<int64_t> shape = {1};
  for (int i = 0; i < kCount; ++i) {
    const std::string name = "t" + std::to_string(i);
    tensors.push_back(fb::CreateTensorDirect(b, name.c_str(), nullptr, fb::DType_I32, &shape,
                                             static_cast<uint32_t>(i), 4));
    const auto& s = (*w)->segments()[i];
    segs.push_back(fb::CreateSegment(b, s.offset, s.size, s.xxh64));
  }
  fb::FinishArtifactBuffer(
      b, fb::CreateArtifactDirect(b, kSchemaVersion, "t", "", 0, 0, &tensors, &segs));
  ASSERT_TRUE((*w)->finish(b.GetBufferPointer(), b.GetSize()).isOk());

  const RunResult r = run("'" + path + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "tensors: " + std::to_string(kCount) + "\n")) << r.output;
  EXPECT_TRUE(has(r.output, "  t9  I32  [1]  4 B\n")) << r.output;
  EXPECT_FALSE(has(r.output, "  t10  ")) << r.output;
  EXPECT_TRUE(has(r.output, "  ... 3 more (--tensors lists all)\n")) << r.output;
  EXPECT_TRUE(has(r.output, "model: (none)\n")) << r.output;
  EXPECT_TRUE(has(r.output, "plan: (none)\n")) << r.output;
  EXPECT_TRUE(has(r.output, "tokenizer files: (none)\n")) << r.output;
  EXPECT_TRUE(has(r.output, "chat template: no\n")) << r.output;
  EXPECT_TRUE(has(r.output, "dtypes: I32 x13 (52 B)\n")) << r.output;

  const RunResult all = run("--tensors '" + path + "'");
  ASSERT_EQ(all.exit_code, 0) << all.output;
  EXPECT_TRUE(has(all.output, "  t12  I32  [1]  4 B\n")) << all.output;
  EXPECT_FALSE(has(all.output, "more (--tensors")) << all.output;

  const RunResult js = run("--json '" + path + "'");
  ASSERT_EQ(js.exit_code, 0) << js.output;
  const nlohmann::json j = nlohmann::json::parse(js.output, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << js.output;
  EXPECT_TRUE(j["model"].is_null());
  EXPECT_TRUE(j["plan"].is_null());
  EXPECT_EQ(j["tensors"].size(), kTensorPreviewForTest);
  EXPECT_EQ(j["tensor_count"], kCount);
}

// An MLA (DeepSeek-style) KV cache: bytes per token = layers * (rank + rope_dim) * dtype size.
TEST_F(InspectTool, MlaKvCache) {
  constexpr int64_t kLayers = 61, kRank = 512, kRope = 64;
  const std::string path = dir_ + "/mla.dsa";
  auto w = ArtifactWriter::create(path);
  ASSERT_TRUE(w.isOk());
  flatbuffers::FlatBufferBuilder b;
  auto model = fb::CreateModelInfoDirect(b, "deepseek_v3", 129280, 7168, kLayers, 128, 128, 192,
                                         163840);
  auto kv = fb::CreateKVCacheSpec(b, fb::KVKind_MLA, kLayers, 64, 0, 0, 0, kRank, kRope,
                                  fb::DType_BF16);
  auto plan = fb::CreatePlanDirect(b, nullptr, nullptr, -1, -1, -1, -1, kv, 4096, 512);
  fb::FinishArtifactBuffer(b, fb::CreateArtifactDirect(b, kSchemaVersion, "t", "", model, 0,
                                                       nullptr, nullptr, plan));
  ASSERT_TRUE((*w)->finish(b.GetBufferPointer(), b.GetSize()).isOk());

  const RunResult r = run("'" + path + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "kv cache: MLA\n  layers: 61\n  block size: 64\n  rank: 512\n"))
      << r.output;
  EXPECT_TRUE(has(r.output, "  bytes per token: " + std::to_string(kLayers * (kRank + kRope) * 2)))
      << r.output;
  EXPECT_TRUE(has(r.output, "  max context: 163840\n")) << r.output;
  EXPECT_TRUE(has(r.output, "plan: 0 buffers, 0 launches\n")) << r.output;
  EXPECT_TRUE(has(r.output, "activation arena: 4096 bytes/token, 512 bytes/logit row\n"))
      << r.output;
}

// A tensor-parallel plan: tp_size on the plan line, the shard count on the sharded entry.
TEST_F(InspectTool, TensorParallelPlan) {
  const std::string path = dir_ + "/tp.dsa";
  auto w = ArtifactWriter::create(path);
  ASSERT_TRUE(w.isOk());
  const float data[2] = {1.0f, 2.0f};
  for (int i = 0; i < 2; ++i) ASSERT_TRUE((*w)->addSegmentFromMemory(data, sizeof(data)).isOk());
  flatbuffers::FlatBufferBuilder b;
  const std::vector<int64_t> shape = {1, 2};
  const std::vector<uint32_t> shards = {0, 1};
  std::vector<flatbuffers::Offset<fb::Tensor>> tensors = {
      fb::CreateTensorDirect(b, "w", nullptr, fb::DType_F32, &shape, 0, 8, -1, nullptr, 0, 0,
                             fb::QuantKind_None, 0, -1, -1, &shards),
      fb::CreateTensorDirect(b, "w", nullptr, fb::DType_F32, &shape, 1, 8, -1, nullptr, 0, 1)};
  std::vector<flatbuffers::Offset<fb::Segment>> segs;
  for (const auto& s : (*w)->segments()) segs.push_back(fb::CreateSegment(b, s.offset, s.size, s.xxh64));
  auto plan = fb::CreatePlanDirect(b, nullptr, nullptr, -1, -1, -1, -1, 0, 0, 0, 2);
  fb::FinishArtifactBuffer(b, fb::CreateArtifactDirect(b, kSchemaVersion, "t", "", 0, 0,
                                                       &tensors, &segs, plan));
  ASSERT_TRUE((*w)->finish(b.GetBufferPointer(), b.GetSize()).isOk());

  const RunResult r = run("'" + path + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "plan: 0 buffers, 0 launches, tp_size 2\n")) << r.output;
  EXPECT_TRUE(has(r.output, "  w  F32  [1, 2]  8 B  (2 shards)\n")) << r.output;
  EXPECT_TRUE(has(r.output, "  w  F32  [1, 2]  8 B  (shard of tp rank 1)\n")) << r.output;
  const RunResult js = run("--json '" + path + "'");
  ASSERT_EQ(js.exit_code, 0) << js.output;
  const nlohmann::json j = nlohmann::json::parse(js.output, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << js.output;
  EXPECT_EQ(j["plan"]["tp_size"], 2);
  EXPECT_EQ(j["tensors"][0]["shards"], 2);
  EXPECT_EQ(j["tensors"][1]["tp_rank"], 1);
  EXPECT_FALSE(j["tensors"][1].contains("shards"));

  // The tiny (tp = 1) artifact says nothing about tensor parallelism in text.
  const RunResult one = run("'" + path_ + "'");
  EXPECT_FALSE(has(one.output, "tp_size")) << one.output;
  EXPECT_FALSE(has(one.output, "shards")) << one.output;
}

// Strings come from the file unvalidated: invalid UTF-8 must not abort --json.
TEST_F(InspectTool, NonUtf8NamesStillPrint) {
  const std::string path = dir_ + "/utf8.dsa";
  auto w = ArtifactWriter::create(path);
  ASSERT_TRUE(w.isOk());
  const uint8_t byte = 7;
  ASSERT_TRUE((*w)->addSegmentFromMemory(&byte, 1).isOk());
  flatbuffers::FlatBufferBuilder b;
  const std::vector<int64_t> shape = {1};
  const auto& s = (*w)->segments()[0];
  std::vector<flatbuffers::Offset<fb::Tensor>> tensors = {
      fb::CreateTensorDirect(b, "bad\xff\xfename", nullptr, fb::DType_I8, &shape, 0, 1)};
  std::vector<flatbuffers::Offset<fb::Segment>> segs = {
      fb::CreateSegment(b, s.offset, s.size, s.xxh64)};
  fb::FinishArtifactBuffer(
      b, fb::CreateArtifactDirect(b, kSchemaVersion, "t", "", 0, 0, &tensors, &segs));
  ASSERT_TRUE((*w)->finish(b.GetBufferPointer(), b.GetSize()).isOk());
  const RunResult r = run("--json '" + path + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(r.output, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.output;
  EXPECT_EQ(j["tensors"][0]["name"], "bad\xEF\xBF\xBD\xEF\xBF\xBDname");  // U+FFFD twice
}

// Command-line mistakes exit with 2 (docs/tools.md), a missing file with 1.
TEST_F(InspectTool, BadUsage) {
  EXPECT_EQ(run("").exit_code, 2);
  EXPECT_EQ(run("'" + path_ + ".missing'").exit_code, 1);
  const RunResult r = run("--bogus '" + path_ + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.output, "ds-inspect: error: unknown option '--bogus'")) << r.output;
}

}  // namespace
}  // namespace ds::artifact
