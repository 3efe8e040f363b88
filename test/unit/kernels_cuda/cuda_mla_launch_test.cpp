// Launch plans of the MLA decode and prefill kernels (kernels/cuda/include/ds_cuda_mla.h): the
// launch sequence, split-KV choice, workspace size and refusals; host only.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "ds_cuda_kernels.h"

namespace {

const ds_cuda_device_limits kH100 = {132, 48 * 1024};
constexpr ds_cuda_ptr kPtr = 0x10000;

bool isSymbol(const char* s) {
  for (const char* const* t = ds_cuda_kernel_symbols(); *t; ++t)
    if (std::strcmp(*t, s) == 0) return true;
  return false;
}

// DeepSeek-V3 attention (per rank of --tp 8: 16 heads): rank 512, rope 64, nope 128, v 128.
ds_cuda_mla_decode_params v3(int T, int heads, int context) {
  ds_cuda_mla_decode_params p{};
  p.kv.cache = p.kv.positions = p.kv.token_seq = p.kv.block_table = kPtr;
  p.kv.num_blocks = 1024;
  p.kv.block_size = 64;
  p.kv.rank = 512;
  p.kv.rope_dim = 64;
  p.kv.max_blocks_per_seq = 256;
  p.kv.dtype = DS_CUDA_BF16;
  p.q_nope = p.q_rope = p.kv_b = p.out = kPtr;
  p.num_tokens = T;
  p.heads = heads;
  p.nope_dim = 128;
  p.v_dim = 128;
  p.act_dtype = p.weight_dtype = DS_CUDA_BF16;
  p.scale = 0.1f;
  p.max_context = context;
  return p;
}

TEST(CudaMlaLaunch, SingleTokenLongContextSplits) {
  ds_cuda_mla_decode_params p = v3(1, 16, 8192);
  ds_cuda_plan plan;
  ASSERT_EQ(ds_cuda_plan_mla_decode(&p, &kH100, &plan), nullptr);
  ASSERT_EQ(plan.num_launches, 4);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_mla_absorb_abf16_wbf16");
  EXPECT_STREQ(plan.launches[1].symbol, "ds_mla_attend_bf16");
  EXPECT_STREQ(plan.launches[2].symbol, "ds_mla_combine");
  EXPECT_STREQ(plan.launches[3].symbol, "ds_mla_out_abf16_wbf16");
  EXPECT_EQ(plan.launches[1].grid[1], 2u);  // 16 heads, 8 per block
  // 2 head blocks fill 132 SMs twice over with 132 splits, capped at 8192 / 256 = 32.
  EXPECT_EQ(p.splits, 32);
  EXPECT_EQ(p.split_len, 256);
  EXPECT_EQ(plan.launches[1].grid[2], 32u);
  EXPECT_EQ(plan.workspace_bytes, 4u * (2 * 16 * 512 + 16 * 32 * 513));
  for (int i = 0; i < plan.num_launches; ++i) EXPECT_TRUE(isSymbol(plan.launches[i].symbol));
}

TEST(CudaMlaLaunch, BigBatchDoesNotSplit) {
  ds_cuda_mla_decode_params p = v3(256, 16, 4096);
  ds_cuda_plan plan;
  ASSERT_EQ(ds_cuda_plan_mla_decode(&p, &kH100, &plan), nullptr);
  EXPECT_EQ(p.splits, 1);
  EXPECT_EQ(p.split_len % DS_CUDA_MLA_TILE, 0);
  EXPECT_GE(p.split_len, 4096);
  ASSERT_EQ(plan.num_launches, 3);  // no combine
  EXPECT_STREQ(plan.launches[2].symbol, "ds_mla_out_abf16_wbf16");
  EXPECT_EQ(plan.workspace_bytes, 4u * 2 * 256 * 16 * 512);
  // Tiny models (rank 32, rope 16, f32) take the same kernels.
  ds_cuda_mla_decode_params t = v3(3, 4, 40);
  t.kv.rank = 32;
  t.kv.rope_dim = 16;
  t.nope_dim = 16;
  t.v_dim = 24;
  t.act_dtype = t.weight_dtype = t.kv.dtype = DS_CUDA_F32;
  ASSERT_EQ(ds_cuda_plan_mla_decode(&t, &kH100, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_mla_absorb_af32_wf32");
  EXPECT_STREQ(plan.launches[1].symbol, "ds_mla_attend_f32");
}

// DeepSeek-V3's kv_b is FP8 with 128 x 128 block scales: the projections decode it in registers.
TEST(CudaMlaLaunch, Fp8KvB) {
  ds_cuda_mla_decode_params p = v3(4, 16, 2048);
  p.weight_dtype = DS_CUDA_FP8_E4M3;
  ds_cuda_plan plan;
  EXPECT_NE(ds_cuda_plan_mla_decode(&p, &kH100, &plan), nullptr);  // no scales
  p.kv_b_scale = kPtr;
  p.block_rows = p.block_cols = 128;
  ASSERT_EQ(ds_cuda_plan_mla_decode(&p, &kH100, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_mla_absorb_abf16_wfp8");
  EXPECT_STREQ(plan.launches[plan.num_launches - 1].symbol, "ds_mla_out_abf16_wfp8");
  for (int i = 0; i < plan.num_launches; ++i) EXPECT_TRUE(isSymbol(plan.launches[i].symbol));
}

// The host's int8 latent cache: codes + per-slot scales, read by the int8 attend kernel.
TEST(CudaMlaLaunch, Int8LatentCache) {
  ds_cuda_mla_decode_params p = v3(2, 16, 1000);
  p.kv.dtype = DS_CUDA_KV_INT8;
  ds_cuda_plan plan;
  ASSERT_EQ(ds_cuda_plan_mla_decode(&p, &kH100, &plan), nullptr);
  EXPECT_STREQ(plan.launches[1].symbol, "ds_mla_attend_i8_abf16");
  ds_cuda_mla_kv_write_params w{};
  w.kv = p.kv;
  w.c_kv = w.k_rope = kPtr;
  w.num_tokens = 2;
  w.c_stride = 512;
  w.k_stride = 64;
  w.act_dtype = DS_CUDA_F32;
  ASSERT_EQ(ds_cuda_plan_mla_kv_write(&w, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_mla_kv_write_i8_af32");
  p.kv.dtype = 9;
  EXPECT_NE(ds_cuda_plan_mla_decode(&p, &kH100, &plan), nullptr);
}

// The host's fp8 latent cache: the same layout as int8's, E4M3 codes, searched scales.
TEST(CudaMlaLaunch, Fp8LatentCache) {
  ds_cuda_mla_decode_params p = v3(2, 16, 1000);
  p.kv.dtype = DS_CUDA_FP8_E4M3;
  ds_cuda_plan plan;
  ASSERT_EQ(ds_cuda_plan_mla_decode(&p, &kH100, &plan), nullptr);
  EXPECT_STREQ(plan.launches[1].symbol, "ds_mla_attend_fp8_abf16");
  p.act_dtype = DS_CUDA_F32;
  ASSERT_EQ(ds_cuda_plan_mla_decode(&p, &kH100, &plan), nullptr);
  EXPECT_STREQ(plan.launches[1].symbol, "ds_mla_attend_fp8_af32");
  ds_cuda_mla_kv_write_params w{};
  w.kv = p.kv;
  w.c_kv = w.k_rope = kPtr;
  w.num_tokens = 2;
  w.c_stride = 512;
  w.k_stride = 64;
  w.act_dtype = DS_CUDA_BF16;
  ASSERT_EQ(ds_cuda_plan_mla_kv_write(&w, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_mla_kv_write_fp8_abf16");
  EXPECT_EQ(plan.launches[0].grid[0], 2u);
  EXPECT_EQ(plan.launches[0].block[0], 128u);
  EXPECT_TRUE(isSymbol(plan.launches[0].symbol));
  w.act_dtype = 5;
  EXPECT_NE(ds_cuda_plan_mla_kv_write(&w, &plan), nullptr);
}

// The prefill: absorb, ds_mla_prefill_<kv>_a<act> over (ceil(max_q_len / 4), ceil(H / 8),
// num_seqs) blocks of 512 threads, out; no splits, q_lat + o_lat workspace.
TEST(CudaMlaLaunch, Prefill) {
  struct Case {
    int32_t kv, act;
    const char* attend;
  };
  for (const Case& c : {Case{DS_CUDA_BF16, DS_CUDA_BF16, "ds_mla_prefill_bf16_abf16"},
                        Case{DS_CUDA_F32, DS_CUDA_F32, "ds_mla_prefill_f32_af32"},
                        Case{DS_CUDA_KV_INT8, DS_CUDA_BF16, "ds_mla_prefill_i8_abf16"},
                        Case{DS_CUDA_KV_INT8, DS_CUDA_F32, "ds_mla_prefill_i8_af32"},
                        Case{DS_CUDA_FP8_E4M3, DS_CUDA_BF16, "ds_mla_prefill_fp8_abf16"},
                        Case{DS_CUDA_FP8_E4M3, DS_CUDA_F32, "ds_mla_prefill_fp8_af32"}}) {
    SCOPED_TRACE(c.attend);
    ds_cuda_mla_decode_params p = v3(300, 16, 700);  // 3 sequences of up to 130 tokens
    p.kv.dtype = c.kv;
    p.act_dtype = c.act;
    p.weight_dtype = c.act;
    p.seq_q_start = kPtr;
    p.num_seqs = 3;
    p.max_q_len = 130;
    ds_cuda_plan plan;
    ASSERT_EQ(ds_cuda_plan_mla_prefill(&p, &plan), nullptr);
    ASSERT_EQ(plan.num_launches, 3);
    EXPECT_STREQ(plan.launches[0].symbol, c.act == DS_CUDA_BF16 ? "ds_mla_absorb_abf16_wbf16" : "ds_mla_absorb_af32_wf32");
    EXPECT_STREQ(plan.launches[1].symbol, c.attend);
    EXPECT_STREQ(plan.launches[2].symbol, c.act == DS_CUDA_BF16 ? "ds_mla_out_abf16_wbf16" : "ds_mla_out_af32_wf32");
    EXPECT_EQ(plan.launches[0].grid[0], 300u);
    EXPECT_EQ(plan.launches[1].grid[0], 33u);  // ceil(130 / 4)
    EXPECT_EQ(plan.launches[1].grid[1], 2u);   // 16 heads, 8 per block
    EXPECT_EQ(plan.launches[1].grid[2], 3u);
    EXPECT_EQ(plan.launches[1].block[0], 512u);
    EXPECT_EQ(p.splits, 1);
    EXPECT_EQ(plan.workspace_bytes, 4u * 2 * 300 * 16 * 512);
    for (int i = 0; i < plan.num_launches; ++i) EXPECT_TRUE(isSymbol(plan.launches[i].symbol));
  }
  ds_cuda_mla_decode_params p = v3(40, 16, 40);
  ds_cuda_plan plan;
  p.num_seqs = 1;
  p.max_q_len = 40;
  const char* e = ds_cuda_plan_mla_prefill(&p, &plan);  // no seq_q_start
  ASSERT_NE(e, nullptr);
  EXPECT_NE(std::string(e).find("seq_q_start"), std::string::npos) << e;
  p.seq_q_start = kPtr;
  p.max_q_len = 41;
  EXPECT_NE(ds_cuda_plan_mla_prefill(&p, &plan), nullptr);
  p.max_q_len = 40;
  p.kv.dtype = DS_CUDA_F32;  // not the activations'
  EXPECT_NE(ds_cuda_plan_mla_prefill(&p, &plan), nullptr);
  EXPECT_EQ(plan.num_launches, 0);
}

TEST(CudaMlaLaunch, Refusals) {
  ds_cuda_plan plan;
  struct Bad {
    const char* field;
    void (*edit)(ds_cuda_mla_decode_params&);
  };
  const Bad cases[] = {
      {"kv.rank", [](auto& p) { p.kv.rank = 1024; }},
      {"kv.rope_dim", [](auto& p) { p.kv.rope_dim = 128; }},
      {"kv.dtype", [](auto& p) { p.kv.dtype = 7; }},
      {"act dtype", [](auto& p) { p.kv.dtype = DS_CUDA_F32; }},
      {"nope_dim", [](auto& p) { p.nope_dim = 512; }},
      {"max_context", [](auto& p) { p.max_context = 0; }},
      {"kv_b", [](auto& p) { p.kv_b = 0; }},
      {"f32 kv_b", [](auto& p) { p.weight_dtype = DS_CUDA_F32; }},
  };
  for (const Bad& b : cases) {
    ds_cuda_mla_decode_params p = v3(1, 16, 100);
    b.edit(p);
    const char* e = ds_cuda_plan_mla_decode(&p, &kH100, &plan);
    ASSERT_NE(e, nullptr) << b.field;
    EXPECT_NE(std::string(e).find(b.field), std::string::npos) << e;
    EXPECT_EQ(plan.num_launches, 0);
  }
  ds_cuda_mla_kv_write_params w{};
  w.kv = v3(1, 16, 100).kv;
  w.c_kv = w.k_rope = kPtr;
  w.num_tokens = 5;
  w.c_stride = 512;
  w.k_stride = 64;
  ASSERT_EQ(ds_cuda_plan_mla_kv_write(&w, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_mla_kv_write_bf16");
  EXPECT_EQ(plan.launches[0].grid[0], 5u);
  w.k_stride = 32;
  EXPECT_NE(ds_cuda_plan_mla_kv_write(&w, &plan), nullptr);
}

}  // namespace
