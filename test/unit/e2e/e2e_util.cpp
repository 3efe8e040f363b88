// Loads goldens (golden.json + logits.safetensors) and runs artifacts through the Engine.
#include "e2e_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "exec/model_runner.h"
#include "ingest/safetensors.h"

namespace ds::test {

const std::vector<std::string>& goldenModels() {
  static const std::vector<std::string> models = {"stories260K", "tiny-llama", "tiny-qwen2",
                                                  "tiny-deepseek-v2", "tiny-deepseek-v3",
                                                  "tiny-deepseek-v3-fp8"};
  return models;
}

std::string artifactPath(const std::string& model) {
  return std::string(DS_E2E_ARTIFACTS) + "/" + model + ".dsa";
}

std::unique_ptr<artifact::Artifact> openArtifact(const std::string& model) {
  auto art = artifact::Artifact::open(artifactPath(model));
  EXPECT_TRUE(art.isOk()) << art.status().toString();
  return art.isOk() ? std::move(art.value()) : nullptr;
}

Golden loadGolden(const std::string& model) {
  std::string dir = std::string(DS_SOURCE_DIR) + "/test/golden/" + model;
  std::ifstream in(dir + "/golden.json");
  EXPECT_TRUE(in.good()) << dir;
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str());
  Golden g;
  g.model = model;
  g.vocab = j["vocab_size"].get<int64_t>();
  auto file = SafetensorsFile::open(dir + "/logits.safetensors");
  EXPECT_TRUE(file.isOk()) << file.status().toString();
  for (const auto& p : j["prompts"]) {
    GoldenPrompt gp;
    gp.prompt = p["prompt_ids"].get<std::vector<int32_t>>();
    gp.generated = p["generated_ids"].get<std::vector<int32_t>>();
    const TensorInfo* t = (*file)->find(p["logits_tensor"].get<std::string>());
    EXPECT_NE(t, nullptr);
    if (t) {
      gp.rows = t->shape[0];
      gp.logits.resize(t->numel);
      std::memcpy(gp.logits.data(), (*file)->data(*t), t->nbytes);
    }
    g.prompts.push_back(std::move(gp));
  }
  return g;
}

// Runs `tokens` of one sequence through the runner in chunks of `chunk` tokens, collecting the
// logits of every position.
std::vector<float> teacherForcedLogits(const artifact::Artifact& art, const std::vector<int32_t>& tokens,
                                 int64_t chunk, bool allow_native_code, int num_threads) {
  RunnerOptions ro;
  ro.num_kv_blocks = 64;
  ro.allow_native_code = allow_native_code;
  ro.num_threads = num_threads;
  auto runner = ModelRunner::create(art, ro);
  EXPECT_TRUE(runner.isOk()) << runner.status().toString();
  if (!runner.isOk()) return {};
  int64_t bs = (*runner)->blockSize();
  int64_t n = static_cast<int64_t>(tokens.size());
  StepBatch b;
  b.num_seqs = 1;
  b.max_blocks_per_seq = (n + bs - 1) / bs;
  // A scattered block table: sequence blocks are not contiguous in the cache.
  for (int64_t i = 0; i < b.max_blocks_per_seq; ++i) b.block_table.push_back(static_cast<int32_t>(63 - 3 * i));
  std::vector<float> all;
  for (int64_t start = 0; start < n; start += chunk) {
    int64_t end = std::min(n, start + chunk);
    b.token_ids.assign(tokens.begin() + start, tokens.begin() + end);
    b.positions.clear();
    b.logit_rows.clear();
    for (int64_t p = start; p < end; ++p) {
      b.positions.push_back(static_cast<int32_t>(p));
      b.logit_rows.push_back(static_cast<int32_t>(p - start));
    }
    b.token_seq.assign(end - start, 0);
    std::vector<float> logits;
    Status st = stepToHost(**runner, b, &logits);
    EXPECT_TRUE(st.isOk()) << st.toString();
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

std::vector<std::vector<int32_t>> generateGreedy(const artifact::Artifact& art,
                                                 const std::vector<std::vector<int32_t>>& prompts,
                                                 int64_t n, int64_t max_step_tokens,
                                                 bool allow_native_code) {
  EngineOptions opts;
  opts.allow_native_code = allow_native_code;
  opts.kv_cache_bytes = 16ull << 20;
  opts.max_step_tokens = max_step_tokens;
  auto engine = Engine::create(art, opts);
  EXPECT_TRUE(engine.isOk()) << engine.status().toString();
  if (!engine.isOk()) return {};
  std::vector<int64_t> ids;
  for (const auto& p : prompts) {
    GenerationRequest r;
    r.prompt = p;
    r.max_new_tokens = n;
    auto id = (*engine)->submit(r);
    EXPECT_TRUE(id.isOk()) << id.status().toString();
    ids.push_back(id.isOk() ? *id : -1);
  }
  std::vector<TokenEvent> events;
  while ((*engine)->hasWork()) {
    Status st = (*engine)->step(&events);
    EXPECT_TRUE(st.isOk()) << st.toString();
    if (!st.isOk()) break;
  }
  std::vector<std::vector<int32_t>> out;
  for (int64_t id : ids) out.push_back((*engine)->generated(id));
  return out;
}

LogitDiff compareLogits(const std::vector<float>& a, const std::vector<float>& b) {
  LogitDiff d;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    d.finite = d.finite && std::isfinite(a[i]);
    d.diff = std::max(d.diff, std::fabs(double(a[i]) - b[i]));
    d.ref = std::max(d.ref, std::fabs(double(b[i])));
  }
  return d;
}

}  // namespace ds::test
