// The experts of a long prefill over the fake driver: every MoE layer of a 40-token prefill runs
// the grouped tensor-core GEMM (ds_moe_gemm_*: gate/up with SwiGLU, then down; one launch each
// for all active experts) with its ranges inside live allocations; decode steps keep the GEMVs.
#include <gtest/gtest.h>

#include <fstream>

#include "artifact/artifact_reader.h"
#include "exec/model_runner.h"
#include "fake_cuda_batches.h"
#include "fake_cuda_client.h"
#include "fake_cuda_step_checks.h"
#include "hal/cuda/cuda_library.h"

namespace ds::test {
namespace {

const bool kFakeDriver = pointRuntimeAtFakeDriver();

StepBatch tokens(int32_t n, int32_t first_pos, int64_t block_size) {
  return sequenceStep(tokenIds(n, 2, 40), first_pos, 64 / block_size + 1);
}

std::vector<std::string> launched() {
  std::vector<std::string> names;
  for (size_t i = 0; i < FakeCuda::get().launch_count(); ++i) names.push_back(FakeCuda::get().launch(i).name);
  return names;
}

class FakeCudaMoePrefill : public ::testing::TestWithParam<const char*> {};

TEST_P(FakeCudaMoePrefill, ExpertsRunTheGroupedGemm) {
  const std::string path = std::string(DS_FAKE_CUDA_ARTIFACTS) + "/" + GetParam() + ".dsa";
  if (!std::ifstream(path).good()) GTEST_SKIP() << path << " was not built";
  if (!std::ifstream(hal::cuda::buildTreeLibraryPath()).good()) GTEST_SKIP() << "no kernel library fatbin";
  auto art = artifact::Artifact::open(path);
  ASSERT_TRUE(art.isOk());
  auto plan = hal::StepPlan::decode(**art);
  ASSERT_TRUE(plan.isOk());
  size_t moe_layers = 0;
  for (const hal::LaunchDesc& l : plan->launches) moe_layers += l.kind == abi::KernelKind::MoEExperts;
  ASSERT_GT(moe_layers, 0u);
  RunnerOptions o;
  o.num_kv_blocks = 16;
  o.enforce_eager = true;
  auto runner = ModelRunner::create(**art, o);
  ASSERT_TRUE(runner.isOk()) << runner.status().toString();
  const int64_t bs = (*runner)->blockSize();
  ASSERT_TRUE((*runner)->step(tokens(40, 0, bs)).isOk()) << FakeCuda::get().last_error();
  FakeCuda::get().reset();
  ASSERT_TRUE((*runner)->step(tokens(40, 0, bs)).isOk()) << FakeCuda::get().last_error();
  const std::string w = std::string(GetParam()).find("fp8") != std::string::npos ? "fp8" : "bf16";
  size_t swiglu = 0, down = 0, gemv = 0;
  for (const std::string& n : launched()) {
    swiglu += n == "ds_moe_gemm_w" + w + "_abf16_swiglu";
    down += n == "ds_moe_gemm_w" + w + "_abf16_plain";
    gemv += n.rfind("ds_moe_gemv_", 0) == 0;
  }
  EXPECT_EQ(swiglu, moe_layers);
  EXPECT_EQ(down, moe_layers);
  EXPECT_EQ(gemv, 0u);
  checkStep(*plan, launched(), 0, "bf16", "ds_attn_");
  FakeCuda::get().reset();
  ASSERT_TRUE((*runner)->step(tokens(1, 40, bs)).isOk());
  swiglu = gemv = 0;
  for (const std::string& n : launched()) {
    swiglu += n.rfind("ds_moe_gemm_", 0) == 0;
    gemv += n.rfind("ds_moe_gemv_", 0) == 0;
  }
  EXPECT_EQ(swiglu, 0u) << "decode keeps the expert GEMVs";
  EXPECT_EQ(gemv, 2 * moe_layers);
}

INSTANTIATE_TEST_SUITE_P(Artifacts, FakeCudaMoePrefill,
                         ::testing::Values("tiny-deepseek-v2.sm_90a", "tiny-deepseek-v3.sm_90a",
                                           "tiny-deepseek-v3-fp8.sm_90a"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-' || c == '.') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace ds::test
