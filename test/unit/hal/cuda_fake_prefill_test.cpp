// Long prefills of quantized GPU artifacts over the fake driver: more than 16 tokens of bf16
// activations run the quantized-weight tensor-core GEMM (ds_gemm_q_*, ds_cuda_gemm_q.h) instead
// of GEMV passes, every launch's device ranges inside live allocations (checkStep); decode stays
// on the GEMVs. DeepSeek's MLA prefills take the prefill attention (ds_mla_prefill_*).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "artifact/artifact_reader.h"
#include "exec/model_runner.h"
#include "fake_cuda_batches.h"
#include "fake_cuda_client.h"
#include "fake_cuda_step_checks.h"
#include "ds_cuda_kernels.h"
#include "hal/cuda/cuda_library.h"

namespace ds::test {
namespace {

const bool kFakeDriver = pointRuntimeAtFakeDriver();

StepBatch batchOf(int32_t tokens, int32_t first_pos, int64_t block_size) {
  return sequenceStep(tokenIds(tokens, 1, 50), first_pos, 64 / block_size + 1);
}

struct PrefillCase {
  const char* artifact;
  const char* gemm;  // the GEMM kernel its projections take ("": none, bf16 weights)
};

class FakeCudaLongPrefill : public ::testing::TestWithParam<PrefillCase> {};

TEST_P(FakeCudaLongPrefill, QuantizedProjectionsUseTheTensorCoreGemm) {
  const std::string path = std::string(DS_FAKE_CUDA_ARTIFACTS) + "/" + GetParam().artifact + ".dsa";
  if (!std::ifstream(path).good()) GTEST_SKIP() << path << " was not built";
  if (!std::ifstream(hal::cuda::buildTreeLibraryPath()).good()) GTEST_SKIP() << "no kernel library fatbin";
  auto art = artifact::Artifact::open(path);
  ASSERT_TRUE(art.isOk());
  auto plan = hal::StepPlan::decode(**art);
  ASSERT_TRUE(plan.isOk());
  RunnerOptions o;
  o.num_kv_blocks = 16;
  o.enforce_eager = true;
  auto runner = ModelRunner::create(**art, o);
  ASSERT_TRUE(runner.isOk()) << runner.status().toString();
  const int64_t bs = (*runner)->blockSize();
  const StepBatch prefill = batchOf(40, 0, bs);
  ASSERT_TRUE((*runner)->step(prefill).isOk()) << FakeCuda::get().last_error();
  FakeCuda::get().reset();
  auto view = (*runner)->step(prefill);  // the steady state: workspace sized
  ASSERT_TRUE(view.isOk()) << view.status().toString() << " / fake: " << FakeCuda::get().last_error();
  std::vector<std::string> names;
  for (size_t i = 0; i < FakeCuda::get().launch_count(); ++i) names.push_back(FakeCuda::get().launch(i).name);
  checkStep(*plan, names, 0, "bf16", plan->kv.kind == hal::KVKind::MLA ? "ds_mla_" : "ds_attn_");
  size_t gemm = 0, quant_gemv = 0;
  for (const std::string& n : names) {
    gemm += n.rfind("ds_gemm_q_", 0) == 0;
    quant_gemv += n.rfind("ds_gemv_wi4_", 0) == 0 || n.rfind("ds_gemv_wfp8_", 0) == 0 || n.rfind("ds_gemv_wi8_", 0) == 0;
    if (n.rfind("ds_gemm_q_", 0) == 0) EXPECT_EQ(n, GetParam().gemm);
  }
  // Every quantized projection of the 40 tokens is one GEMM; the only 8/4-bit GEMV left is the
  // logits' single row (when the output projection is quantized).
  EXPECT_GE(gemm, 2u * 3) << "two layers of q/k/v/o and MLP projections";
  EXPECT_LE(quant_gemv, 1u);
  // A decode step stays on the GEMVs.
  FakeCuda::get().reset();
  ASSERT_TRUE((*runner)->step(batchOf(1, 40, bs)).isOk());
  for (size_t i = 0; i < FakeCuda::get().launch_count(); ++i)
    EXPECT_NE(std::string(FakeCuda::get().launch(i).name).rfind("ds_gemm_q_", 0), 0u) << FakeCuda::get().launch(i).name;
}

INSTANTIATE_TEST_SUITE_P(Artifacts, FakeCudaLongPrefill,
                         ::testing::Values(PrefillCase{"tiny-llama.sm_90a.w4g64", "ds_gemm_q_i4_abf16"},
                                           PrefillCase{"tiny-llama.sm_90a.w4g128a", "ds_gemm_q_i4_abf16"},
                                           PrefillCase{"tiny-llama.sm_90a.w8", "ds_gemm_q_i8_abf16"},
                                           PrefillCase{"tiny-llama.sm_90a.fp8", "ds_gemm_q_fp8_abf16"},
                                           PrefillCase{"tiny-deepseek-v3-fp8.sm_90a", "ds_gemm_q_fp8_abf16"}),
                         [](const auto& info) {
                           std::string n = info.param.artifact;
                           for (char& c : n)
                             if (c == '-' || c == '.') c = '_';
                           return n;
                         });

// DeepSeek's MLA over 40-token prefills and a second 40-token chunk (positions 40..79): every
// layer attends with ds_mla_prefill_<kv>_a<act> (4-token query tiles, 8 heads a block, the
// sequence's row range), its params and ranges checked (checkStep: latent cache of the plan's
// bytes per slot, seq_q_start, workspace, kv_b); a decode step keeps ds_mla_attend_*.
class FakeCudaMlaPrefill : public ::testing::TestWithParam<PrefillCase> {};

TEST_P(FakeCudaMlaPrefill, LongPrefillsTakeThePrefillAttention) {
  const std::string path = std::string(DS_FAKE_CUDA_ARTIFACTS) + "/" + GetParam().artifact + ".dsa";
  if (!std::ifstream(path).good()) GTEST_SKIP() << path << " was not built";
  if (!std::ifstream(hal::cuda::buildTreeLibraryPath()).good()) GTEST_SKIP() << "no kernel library fatbin";
  auto art = artifact::Artifact::open(path);
  ASSERT_TRUE(art.isOk());
  auto plan = hal::StepPlan::decode(**art);
  ASSERT_TRUE(plan.isOk());
  ASSERT_EQ(plan->kv.kind, hal::KVKind::MLA);
  RunnerOptions o;
  o.num_kv_blocks = 16;
  o.enforce_eager = true;
  auto runner = ModelRunner::create(**art, o);
  ASSERT_TRUE(runner.isOk()) << runner.status().toString();
  const int64_t bs = (*runner)->blockSize();
  const std::string attend = std::string("ds_mla_prefill_") + GetParam().gemm;  // the kernel's tail
  for (int32_t first : {0, 40}) {
    SCOPED_TRACE("first position " + std::to_string(first));
    const StepBatch chunk = batchOf(40, first, bs);
    ASSERT_TRUE((*runner)->step(chunk).isOk()) << FakeCuda::get().last_error();
    FakeCuda::get().reset();
    auto view = (*runner)->step(chunk);  // the steady state: workspace sized
    ASSERT_TRUE(view.isOk()) << view.status().toString() << " / fake: " << FakeCuda::get().last_error();
    std::vector<std::string> names;
    for (size_t i = 0; i < FakeCuda::get().launch_count(); ++i) names.push_back(FakeCuda::get().launch(i).name);
    checkStep(*plan, names, 0, "bf16", "ds_mla_");
    int prefills = 0;
    for (size_t i = 0; i < FakeCuda::get().launch_count(); ++i) {
      const fake_cuda_launch_t l = FakeCuda::get().launch(i);
      EXPECT_NE(std::string(l.name).rfind("ds_mla_attend_", 0), 0u) << l.name;
      if (std::string(l.name) != attend) continue;
      ++prefills;
      ds_cuda_mla_decode_params p;
      ASSERT_EQ(l.param_bytes, sizeof p);
      std::memcpy(&p, l.params, sizeof p);
      EXPECT_EQ(p.num_tokens, 40);
      EXPECT_EQ(p.num_seqs, 1);
      EXPECT_EQ(p.max_q_len, 40);
      EXPECT_GE(p.max_context, first + 40);
      EXPECT_EQ(l.grid[0], 10u);
      EXPECT_EQ(l.grid[1], (uint32_t(p.heads) + 7) / 8);
      EXPECT_EQ(l.grid[2], 1u);
      EXPECT_EQ(l.block[0], 512u);
    }
    EXPECT_EQ(prefills, plan->kv.num_layers) << "every layer attends with " << attend;
  }
  FakeCuda::get().reset();
  ASSERT_TRUE((*runner)->step(batchOf(1, 79, bs)).isOk()) << FakeCuda::get().last_error();  // the table's last slot
  int decodes = 0;
  for (size_t i = 0; i < FakeCuda::get().launch_count(); ++i) {
    const std::string n = FakeCuda::get().launch(i).name;
    decodes += n.rfind("ds_mla_attend_", 0) == 0;
    EXPECT_NE(n.rfind("ds_mla_prefill_", 0), 0u) << n;
  }
  EXPECT_EQ(decodes, plan->kv.num_layers);
}

// PrefillCase.gemm: here the prefill kernel's name after ds_mla_prefill_.
INSTANTIATE_TEST_SUITE_P(Artifacts, FakeCudaMlaPrefill,
                         ::testing::Values(PrefillCase{"tiny-deepseek-v2.sm_90a", "bf16_abf16"},
                                           PrefillCase{"tiny-deepseek-v3.sm_90a", "bf16_abf16"},
                                           PrefillCase{"tiny-deepseek-v3-fp8.sm_90a", "bf16_abf16"},
                                           PrefillCase{"tiny-deepseek-v2.sm_90a.kvint8", "i8_abf16"},
                                           PrefillCase{"tiny-deepseek-v2.sm_90a.kvfp8", "fp8_abf16"},
                                           PrefillCase{"tiny-deepseek-v3.sm_90a.kvfp8", "fp8_abf16"}),
                         [](const auto& info) {
                           std::string n = info.param.artifact;
                           for (char& c : n)
                             if (c == '-' || c == '.') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace ds::test

namespace ds::test {
namespace {

// Scratch sized up front (Executable::reserveFor): a larger bucket's first step grows nothing,
// so the records of smaller buckets stay valid; a larger eager step synchronizes the stream at
// most once, not once per launch that needs more scratch.
TEST(FakeCudaWorkspace, SizedOnceNotLaunchByLaunch) {
  const std::string path = std::string(DS_FAKE_CUDA_ARTIFACTS) + "/tiny-deepseek-v3.sm_90a.dsa";
  if (!std::ifstream(path).good()) GTEST_SKIP() << path << " was not built";
  if (!std::ifstream(hal::cuda::buildTreeLibraryPath()).good()) GTEST_SKIP() << "no kernel library fatbin";
  auto art = artifact::Artifact::open(path);
  ASSERT_TRUE(art.isOk());
  RunnerOptions o;
  o.num_kv_blocks = 16;
  o.max_model_len = 64;
  auto runner = ModelRunner::create(**art, o);
  ASSERT_TRUE(runner.isOk()) << runner.status().toString();
  auto decode = [&](int32_t seqs, int32_t pos) {
    StepBatch b;
    for (int32_t q = 0; q < seqs; ++q) {
      b.token_ids.push_back(5 + q);
      b.positions.push_back(pos);
      b.token_seq.push_back(q);
      b.logit_rows.push_back(q);
      b.block_table.push_back(q);
    }
    b.num_seqs = seqs;
    b.max_blocks_per_seq = 1;
    return b;
  };
  // Bucket 1: recorded on its first step, replayed on the second.
  ASSERT_TRUE((*runner)->step(decode(1, 3)).isOk()) << FakeCuda::get().last_error();
  ASSERT_TRUE((*runner)->step(decode(1, 4)).isOk());
  FakeCuda::get().reset();
  ASSERT_TRUE((*runner)->step(decode(1, 5)).isOk());
  size_t from_graph = 0;
  for (size_t i = 0; i < FakeCuda::get().launch_count(); ++i) from_graph += FakeCuda::get().launch(i).from_graph;
  ASSERT_GT(from_graph, 0u) << "bucket 1 replays";
  // A larger bucket (8 sequences) records its own; bucket 1's record must still replay.
  ASSERT_TRUE((*runner)->step(decode(8, 6)).isOk()) << FakeCuda::get().last_error();
  FakeCuda::get().reset();
  ASSERT_TRUE((*runner)->step(decode(1, 7)).isOk());
  from_graph = 0;
  for (size_t i = 0; i < FakeCuda::get().launch_count(); ++i) from_graph += FakeCuda::get().launch(i).from_graph;
  EXPECT_EQ(from_graph, FakeCuda::get().launch_count()) << "bucket 1's record was dropped";
  // A longer prefill than any before: one synchronize for its scratch at most.
  const StepBatch prefill = sequenceStep(tokenIds(40, 1, 40), 0, 4, 10);
  FakeCuda::get().reset();
  ASSERT_TRUE((*runner)->step(prefill).isOk()) << FakeCuda::get().last_error();
  EXPECT_LE(FakeCuda::get().call_count("cuStreamSynchronize"), 2u) << "scratch grown launch by launch";
}

}  // namespace
}  // namespace ds::test
