// Helpers of the end-to-end tests: artifacts, goldens (HF transformers outputs), runs.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "artifact/artifact_reader.h"

namespace ds::test {

struct GoldenPrompt {
  std::vector<int32_t> prompt;
  std::vector<int32_t> generated;
  std::vector<float> logits;  // [prompt + generated - 1 ... ] rows x vocab, as the golden stores
  int64_t rows = 0;
};

struct Golden {
  std::string model;
  int64_t vocab = 0;
  std::vector<GoldenPrompt> prompts;
};

// The models every e2e test covers.
const std::vector<std::string>& goldenModels();
std::string artifactPath(const std::string& model);
std::unique_ptr<artifact::Artifact> openArtifact(const std::string& model);
Golden loadGolden(const std::string& model);

// Logits [len, vocab] of every position of one sequence, run in steps of `chunk` tokens over a
// scattered block table (so KV blocks are not contiguous in the cache).
// num_threads: the CPU kernels' threads (0: the device's policy, one thread for these models).
std::vector<float> teacherForcedLogits(const artifact::Artifact& art,
                                       const std::vector<int32_t>& tokens, int64_t chunk,
                                       bool allow_native_code = true, int num_threads = 0);

// max |a - b| and max |b| over two logit arrays of the same size; `finite`: every a[i] is finite.
struct LogitDiff {
  double diff = 0, ref = 0;
  bool finite = true;
};
LogitDiff compareLogits(const std::vector<float>& a, const std::vector<float>& b);

// Greedy generation of `n` tokens for each prompt, all prompts in one engine (one batch).
std::vector<std::vector<int32_t>> generateGreedy(const artifact::Artifact& art,
                                                 const std::vector<std::vector<int32_t>>& prompts,
                                                 int64_t n, int64_t max_step_tokens = 512,
                                                 bool allow_native_code = true);

}  // namespace ds::test
