// Launch plans of the CUDA kernel library (kernels/cuda/include/ds_cuda_kernels.h): geometry,
// split choices and validation, all on the host.
#include "ds_cuda_kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>
#include <string>

namespace {

const ds_cuda_device_limits kH100 = {132, 48 * 1024};
constexpr ds_cuda_ptr kPtr = 0x10000;  // any 256-byte aligned address: plans never dereference

ds_cuda_gemv_params gemv(int M, int N, int K, int act = DS_CUDA_BF16, int w = DS_CUDA_BF16) {
  ds_cuda_gemv_params p{};
  p.x = p.w = p.y = kPtr;
  p.M = M; p.N = N; p.K = K; p.x_stride = K; p.y_stride = N;
  p.act_dtype = act; p.weight_dtype = w;
  return p;
}

bool isSymbol(const char* s) {
  for (const char* const* t = ds_cuda_kernel_symbols(); *t; ++t)
    if (std::strcmp(*t, s) == 0) return true;
  return false;
}

TEST(CudaLaunch, SymbolTableIsUniqueAndNamed) {
  std::set<std::string> seen;
  for (const char* const* t = ds_cuda_kernel_symbols(); *t; ++t) {
    EXPECT_EQ(std::string(*t).rfind("ds_", 0), 0u) << *t;
    EXPECT_TRUE(seen.insert(*t).second) << "duplicate " << *t;
  }
  // 15 GEMV, 20 attention, 2 KV write, 4 norm, 2 rope, 12 elementwise, 1 synthetic fill, 12 MoE, 9 int4 (GEMV, repack), 10 FP8 / int8 GEMV, 19 MLA,
  // 2 tensor-parallel sums, 32 over int8 / FP8 KV caches (4 writes, 4 small-head, 12 decode, 12 prefill),
  // 3 quantized-weight prefill GEMMs, 4 experts' grouped GEMMs, 1 FP8 x FP8 tensor-core GEMM (+ 2 for the experts)
  // + 10 MLA: fp8 latent writes and attends (4), prefill attention over bf16 / f32 / int8 / fp8 (6)
  EXPECT_EQ(seen.size(), 106u + 2u + 32u + 3u + 4u + 10u + 1u + 2u);
  EXPECT_TRUE(isSymbol("ds_synthetic_fill"));
}

TEST(CudaLaunch, SyntheticFillGeometryAndRefusals) {
  ds_cuda_synthetic_fill_params p = {};
  p.dst = 4096;
  p.count = 1000;
  p.std = 0.02f;
  p.dtype = DS_CUDA_SYNTH_BF16;
  ds_cuda_plan plan;
  ASSERT_EQ(ds_cuda_plan_synthetic_fill(&p, &kH100, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_synthetic_fill");
  EXPECT_EQ(plan.num_launches, 1);
  EXPECT_EQ(plan.launches[0].grid[0], 4u);  // ceil(1000 / 256)
  EXPECT_EQ(plan.launches[0].block[0], 256u);
  p.count = uint64_t{1} << 32;  // 4 G elements: grid-stride over 8 blocks per SM
  ASSERT_EQ(ds_cuda_plan_synthetic_fill(&p, &kH100, &plan), nullptr);
  EXPECT_EQ(plan.launches[0].grid[0], 8u * 132);
  p.count = 0;
  ASSERT_EQ(ds_cuda_plan_synthetic_fill(&p, &kH100, &plan), nullptr);
  EXPECT_EQ(plan.num_launches, 0);
  p.count = 10;
  for (int d : {0, 1, 2, 3, 4, 5, 6}) EXPECT_GT(ds_cuda_synthetic_unit_bytes(d), 0) << d;
  EXPECT_EQ(ds_cuda_synthetic_unit_bytes(DS_CUDA_SYNTH_I32), 4);
  EXPECT_EQ(ds_cuda_synthetic_unit_bytes(DS_CUDA_SYNTH_I4), 1);
  EXPECT_EQ(ds_cuda_synthetic_unit_bytes(7), 0);
  auto refused = [&](ds_cuda_synthetic_fill_params q) { return ds_cuda_plan_synthetic_fill(&q, &kH100, &plan) != nullptr; };
  ds_cuda_synthetic_fill_params q = p;
  q.dtype = 7;
  EXPECT_TRUE(refused(q));
  q = p, q.dst = 0;
  EXPECT_TRUE(refused(q));
  q = p, q.dst = 4097;  // bf16 needs 2-byte alignment
  EXPECT_TRUE(refused(q));
  q = p, q.dtype = DS_CUDA_SYNTH_I4, q.cols = 0;
  EXPECT_TRUE(refused(q));
  q = p, q.std = -1.0f;
  EXPECT_TRUE(refused(q));
  q = p, q.mean = NAN;
  EXPECT_TRUE(refused(q));
  q = p, q.dtype = DS_CUDA_SYNTH_I4, q.cols = 7, q.dst = 4097;  // bytes: any address
  EXPECT_FALSE(refused(q));
}

TEST(CudaLaunch, GemvDecodeShapeNeedsNoSplit) {
  // Llama-3-8B gate/up at batch 1: 14336 columns / 8 per block = 1792 blocks fill 132 SMs.
  ds_cuda_gemv_params p = gemv(1, 14336, 4096);
  ds_cuda_plan plan;
  ASSERT_EQ(ds_cuda_plan_gemv(&p, &kH100, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_gemv_wbf16_abf16_m1");
  EXPECT_EQ(plan.num_launches, 1);
  EXPECT_EQ(plan.launches[0].grid[0], 1792u);
  EXPECT_EQ(plan.launches[0].grid[1], 1u);
  EXPECT_EQ(plan.launches[0].grid[2], 1u);
  EXPECT_EQ(plan.launches[0].block[0], 256u);
  EXPECT_EQ(plan.workspace_bytes, 0u);
  EXPECT_EQ(p.splits, 1);
  EXPECT_GE(p.k_per_split, 4096);
}

TEST(CudaLaunch, GemvSplitsKWhenColumnsCannotFillTheDevice) {
  ds_cuda_gemv_params p = gemv(3, 256, 4096);  // 32 column blocks for 132 SMs
  ds_cuda_plan plan;
  ASSERT_EQ(ds_cuda_plan_gemv(&p, &kH100, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_gemv_wbf16_abf16_m4");
  ASSERT_EQ(plan.num_launches, 2);
  EXPECT_STREQ(plan.launches[1].symbol, "ds_gemv_reduce_bf16");
  EXPECT_GT(p.splits, 1);
  EXPECT_LE(p.splits, 16);
  EXPECT_EQ(p.k_per_split % 256, 0);
  EXPECT_GE(int64_t{p.splits} * p.k_per_split, 4096);
  EXPECT_LT(int64_t{p.splits - 1} * p.k_per_split, 4096);  // no empty split
  EXPECT_EQ(plan.launches[0].grid[2], uint32_t(p.splits));
  EXPECT_EQ(plan.workspace_bytes, uint64_t(p.splits) * 3 * 256 * 4);
  EXPECT_EQ(plan.launches[1].grid[0], (3u * 256 + 255) / 256);
}

TEST(CudaLaunch, GemvRowTiles) {
  ds_cuda_plan plan;
  for (auto [M, act, sym, gy] : {std::tuple{2, DS_CUDA_BF16, "ds_gemv_wbf16_abf16_m2", 1},
                                 std::tuple{8, DS_CUDA_BF16, "ds_gemv_wbf16_abf16_m8", 1},
                                 std::tuple{16, DS_CUDA_BF16, "ds_gemv_wbf16_abf16_m8", 2},
                                 std::tuple{16, DS_CUDA_F32, "ds_gemv_wbf16_af32_m4", 4},
                                 std::tuple{5, DS_CUDA_F32, "ds_gemv_wbf16_af32_m4", 2}}) {
    ds_cuda_gemv_params p = gemv(M, 4096, 4096, act);
    ASSERT_EQ(ds_cuda_plan_gemv(&p, &kH100, &plan), nullptr);
    EXPECT_STREQ(plan.launches[0].symbol, sym) << M;
    EXPECT_EQ(plan.launches[0].grid[1], uint32_t(gy)) << M;
    EXPECT_TRUE(isSymbol(plan.launches[0].symbol));
  }
  ds_cuda_gemv_params p = gemv(1, 64, 64, DS_CUDA_F32, DS_CUDA_F32);
  ASSERT_EQ(ds_cuda_plan_gemv(&p, &kH100, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_gemv_wf32_af32_m1");
  EXPECT_EQ(p.splits, 1);  // K < 512: nothing to split
}

TEST(CudaLaunch, GemvRejectsBadShapes) {
  ds_cuda_plan plan;
  auto err = [&](ds_cuda_gemv_params p) { return ds_cuda_plan_gemv(&p, &kH100, &plan); };
  EXPECT_NE(err(gemv(17, 64, 64)), nullptr);  // M > 16: cuBLASLt's job
  EXPECT_NE(err(gemv(0, 64, 64)), nullptr);
  EXPECT_NE(err(gemv(1, 64, 64, DS_CUDA_BF16, DS_CUDA_F32)), nullptr);  // not built
  EXPECT_NE(err(gemv(1, 64, 64, 7)), nullptr);
  ds_cuda_gemv_params p = gemv(1, 64, 64);
  p.w = kPtr + 1;  // not even element-aligned
  EXPECT_NE(err(p), nullptr);
  p = gemv(2, 64, 64);
  p.x_stride = 60;  // < K
  EXPECT_NE(err(p), nullptr);
  p = gemv(1, 64, 64);
  p.y = 0;
  EXPECT_NE(err(p), nullptr);
  p = gemv(1, 64, 64);
  p.y_f32 = 2;
  EXPECT_NE(err(p), nullptr);
  p = gemv(1, 64, 64);
  ds_cuda_device_limits none = {0, 48 * 1024};
  EXPECT_NE(ds_cuda_plan_gemv(&p, &none, &plan), nullptr);
  EXPECT_EQ(plan.num_launches, 0);  // zeroed on error
}

// Rows 16-byte loads cannot walk run the scalar kernel, whole, one launch.
TEST(CudaLaunch, GemvAnyShapeTakesTheScalarKernel) {
  ds_cuda_plan plan;
  struct Case {
    ds_cuda_gemv_params p;
    const char* symbol;
  };
  ds_cuda_gemv_params odd = gemv(3, 64, 172);  // stories260K's down_proj (K % 8 = 4)
  ds_cuda_gemv_params f32odd = gemv(1, 64, 171, DS_CUDA_F32, DS_CUDA_F32);
  ds_cuda_gemv_params shifted = gemv(1, 64, 64);
  shifted.w = kPtr + 2;  // element-aligned, not 16-byte aligned
  ds_cuda_gemv_params strided = gemv(2, 64, 64, DS_CUDA_F32);
  strided.x_stride = 66;  // rows after the first lose 16-byte alignment
  for (Case c : {Case{odd, "ds_gemv_any_wbf16_abf16"}, Case{f32odd, "ds_gemv_any_wf32_af32"},
                 Case{shifted, "ds_gemv_any_wbf16_abf16"}, Case{strided, "ds_gemv_any_wbf16_af32"}}) {
    c.p.splits = 9;
    ASSERT_EQ(ds_cuda_plan_gemv(&c.p, &kH100, &plan), nullptr) << c.symbol;
    EXPECT_STREQ(plan.launches[0].symbol, c.symbol);
    EXPECT_EQ(plan.num_launches, 1);
    EXPECT_EQ(plan.workspace_bytes, 0u);
    EXPECT_EQ(c.p.splits, 1);
    EXPECT_EQ(plan.launches[0].grid[0], static_cast<uint32_t>((c.p.N + 7) / 8));
    EXPECT_EQ(plan.launches[0].grid[1], static_cast<uint32_t>(c.p.M));
    EXPECT_TRUE(isSymbol(plan.launches[0].symbol));
  }
  // Aligned shapes keep the vector kernels.
  ds_cuda_gemv_params even = gemv(3, 64, 176);
  ASSERT_EQ(ds_cuda_plan_gemv(&even, &kH100, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_gemv_wbf16_abf16_m4");
}

// f32 rows out of bf16 activations (logits): the reduce pass is the f32 one.
TEST(CudaLaunch, GemvF32OutputOfBf16Activations) {
  ds_cuda_plan plan;
  ds_cuda_gemv_params p = gemv(2, 512, 4096);
  p.y_f32 = 1;
  ASSERT_EQ(ds_cuda_plan_gemv(&p, &kH100, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_gemv_wbf16_abf16_m2");
  ASSERT_EQ(plan.num_launches, 2);  // 64 column blocks: split K
  EXPECT_STREQ(plan.launches[1].symbol, "ds_gemv_reduce_f32");
  p.y_f32 = 0;
  ASSERT_EQ(ds_cuda_plan_gemv(&p, &kH100, &plan), nullptr);
  EXPECT_STREQ(plan.launches[1].symbol, "ds_gemv_reduce_bf16");
}

ds_cuda_paged_kv kv(int kv_heads, int head_dim, int dtype = DS_CUDA_BF16) {
  ds_cuda_paged_kv c{};
  c.k_cache = c.v_cache = c.positions = c.token_seq = c.block_table = kPtr;
  c.num_blocks = 1024; c.block_size = 16; c.kv_heads = kv_heads; c.head_dim = head_dim;
  c.max_blocks_per_seq = 512; c.dtype = dtype;
  return c;
}

ds_cuda_attn_decode_params decode(int T, int q_heads, int kv_heads, int head_dim, int ctx) {
  ds_cuda_attn_decode_params p{};
  p.kv = kv(kv_heads, head_dim);
  p.q = p.out = kPtr;
  p.num_tokens = T; p.q_heads = q_heads; p.scale = 0.088f; p.max_context = ctx;
  return p;
}

TEST(CudaLaunch, DecodeSplitsLongContextsAtSmallBatch) {
  ds_cuda_attn_decode_params p = decode(1, 32, 8, 128, 8192);  // Llama-3-8B, batch 1
  ds_cuda_plan plan;
  ASSERT_EQ(ds_cuda_plan_attn_decode(&p, &kH100, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_attn_decode_bf16_d128");
  EXPECT_EQ(plan.launches[0].grid[0], 1u);
  EXPECT_EQ(plan.launches[0].grid[1], 8u);  // 8 kv heads x 1 chunk of 4 query heads
  EXPECT_EQ(plan.launches[0].block[0], 128u);
  EXPECT_EQ(p.splits, 32);  // ceil(264 / 8) = 33 capped by 8192 / 256
  EXPECT_EQ(p.split_len, 256);
  ASSERT_EQ(plan.num_launches, 2);
  EXPECT_STREQ(plan.launches[1].symbol, "ds_attn_combine_bf16_d128");
  EXPECT_EQ(plan.launches[1].grid[1], 32u);
  EXPECT_EQ(plan.workspace_bytes, uint64_t(1) * 32 * 32 * 129 * 4);
  EXPECT_GE(int64_t{p.splits} * p.split_len, 8192);
}

TEST(CudaLaunch, DecodeLargeBatchOrShortContextDoesNotSplit) {
  ds_cuda_plan plan;
  ds_cuda_attn_decode_params p = decode(128, 32, 8, 128, 8192);
  ASSERT_EQ(ds_cuda_plan_attn_decode(&p, &kH100, &plan), nullptr);
  EXPECT_EQ(p.splits, 1);
  EXPECT_EQ(plan.num_launches, 1);
  EXPECT_EQ(plan.workspace_bytes, 0u);
  p = decode(1, 32, 8, 128, 200);
  ASSERT_EQ(ds_cuda_plan_attn_decode(&p, &kH100, &plan), nullptr);
  EXPECT_EQ(p.splits, 1);
  p = decode(1, 28, 4, 64, 100000);  // Qwen2-7B-like group of 7: two head chunks
  p.sliding_window = 512;             // the window bounds the work, not max_context
  ASSERT_EQ(ds_cuda_plan_attn_decode(&p, &kH100, &plan), nullptr);
  EXPECT_EQ(plan.launches[0].grid[1], 8u);
  EXPECT_EQ(p.splits, 2);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_attn_decode_bf16_d64");
}

TEST(CudaLaunch, DecodeRejectsBadShapes) {
  ds_cuda_plan plan;
  auto err = [&](ds_cuda_attn_decode_params p) { return ds_cuda_plan_attn_decode(&p, &kH100, &plan); };
  EXPECT_NE(err(decode(1, 30, 8, 128, 10)), nullptr);  // q_heads % kv_heads
  EXPECT_NE(err(decode(1, 32, 8, 96, 10)), nullptr);   // head_dim not built
  EXPECT_NE(err(decode(1, 32, 8, 128, 0)), nullptr);
  EXPECT_NE(err(decode(0, 32, 8, 128, 10)), nullptr);
  ds_cuda_attn_decode_params p = decode(1, 32, 8, 128, 10);
  p.kv.block_table = 0;
  EXPECT_NE(err(p), nullptr);
  p = decode(1, 32, 8, 128, 10);
  p.scale = 0.0f;
  EXPECT_NE(err(p), nullptr);
  p = decode(1, 32, 8, 128, 10);
  p.kv.k_cache = kPtr + 4;
  EXPECT_NE(err(p), nullptr);
}

TEST(CudaLaunch, PrefillTilesAndSharedMemory) {
  ds_cuda_attn_prefill_params p{};
  p.kv = kv(8, 128, DS_CUDA_F32);
  p.q = p.out = p.seq_q_start = kPtr;
  p.num_seqs = 3; p.max_q_len = 70; p.q_heads = 32; p.scale = 0.088f;
  ds_cuda_plan plan;
  ASSERT_EQ(ds_cuda_plan_attn_prefill(&p, &kH100, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_attn_prefill_f32_d128");
  EXPECT_EQ(plan.launches[0].grid[0], 5u);  // ceil(70 / 16)
  EXPECT_EQ(plan.launches[0].grid[1], 32u);
  EXPECT_EQ(plan.launches[0].grid[2], 3u);
  EXPECT_EQ(plan.launches[0].shared_bytes, (16u * 128 + 32 * 129 + 32 * 128) * 4);
  p.kv.head_dim = 256;
  ASSERT_EQ(ds_cuda_plan_attn_prefill(&p, &kH100, &plan), nullptr);
  EXPECT_EQ(plan.launches[0].grid[0], 9u);  // 8 rows per block at d256
  EXPECT_LE(plan.launches[0].shared_bytes, 48u * 1024);
  ds_cuda_device_limits small = {132, 32 * 1024};
  EXPECT_NE(ds_cuda_plan_attn_prefill(&p, &small, &plan), nullptr);
  p.kv.head_dim = 128;
  p.num_seqs = 0;
  EXPECT_NE(ds_cuda_plan_attn_prefill(&p, &kH100, &plan), nullptr);
}

// Heads of 1..32 channels (the tiny test models) run ds_attn_small, one thread per (row, head),
// for prefill and decode alike; the split-KV decode kernels exist only for 64/128/256.
TEST(CudaLaunch, SmallHeadsRunTheSmallKernel) {
  ds_cuda_attn_prefill_params p{};
  p.kv = kv(2, 16, DS_CUDA_BF16);
  p.q = p.out = p.seq_q_start = kPtr;
  p.num_seqs = 2; p.max_q_len = 45; p.q_heads = 8; p.scale = 0.25f;
  ds_cuda_plan plan;
  ASSERT_EQ(ds_cuda_plan_attn_prefill(&p, &kH100, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_attn_small_bf16");
  EXPECT_EQ(plan.launches[0].grid[0], 2u);  // ceil(45 / 32)
  EXPECT_EQ(plan.launches[0].grid[1], 8u);
  EXPECT_EQ(plan.launches[0].grid[2], 2u);
  EXPECT_EQ(plan.launches[0].block[0], 32u);
  EXPECT_EQ(plan.launches[0].shared_bytes, 0u);
  EXPECT_EQ(ds_cuda_attn_has_decode(16), 0);
  EXPECT_EQ(ds_cuda_attn_has_decode(128), 1);
  p.kv.head_dim = 33;  // neither small nor tiled
  EXPECT_NE(ds_cuda_plan_attn_prefill(&p, &kH100, &plan), nullptr);
}

// int8 / FP8 caches (the host's --kv-cache int8 / fp8): the quantizing writer, decode, prefill and
// small-head kernels named by cache and activation dtype, the activation dtype's combine; refused
// without an activation dtype or with codes that would not be 16-byte aligned.
TEST(CudaLaunch, QuantizedCachesNameTheirKernels) {
  ds_cuda_plan plan;
  for (int q : {int{DS_CUDA_KV_INT8}, int{DS_CUDA_FP8_E4M3}}) {
    const std::string c = q == DS_CUDA_KV_INT8 ? "i8" : "fp8";
    for (int act : {int{DS_CUDA_BF16}, int{DS_CUDA_F32}}) {
      const std::string a = act == DS_CUDA_BF16 ? "bf16" : "f32";
      SCOPED_TRACE(c + " " + a);
      ds_cuda_kv_write_params w{};
      w.kv = kv(8, 128, q);
      w.k = w.v = kPtr;
      w.num_tokens = 5;
      w.act_dtype = act;
      ASSERT_EQ(ds_cuda_plan_kv_write(&w, &plan), nullptr);
      EXPECT_EQ(std::string(plan.launches[0].symbol), "ds_kv_write_" + c + "_a" + a);
      EXPECT_EQ(plan.launches[0].grid[0], 5u);
      EXPECT_EQ(plan.launches[0].block[0], 128u);
      ds_cuda_attn_decode_params d = decode(1, 32, 8, 128, 8192);
      d.kv.dtype = q;
      d.act_dtype = act;
      ASSERT_EQ(ds_cuda_plan_attn_decode(&d, &kH100, &plan), nullptr);
      ASSERT_EQ(plan.num_launches, 2);
      EXPECT_EQ(std::string(plan.launches[0].symbol), "ds_attn_decode_" + c + "_a" + a + "_d128");
      EXPECT_EQ(std::string(plan.launches[1].symbol), "ds_attn_combine_" + a + "_d128");
      EXPECT_EQ(d.splits, 32);  // the same split plan as the float caches
      ds_cuda_attn_prefill_params p{};
      p.kv = kv(8, 64, q);
      p.q = p.out = p.seq_q_start = kPtr;
      p.num_seqs = 3; p.max_q_len = 70; p.q_heads = 32; p.scale = 0.125f; p.act_dtype = act;
      ASSERT_EQ(ds_cuda_plan_attn_prefill(&p, &kH100, &plan), nullptr);
      EXPECT_EQ(std::string(plan.launches[0].symbol), "ds_attn_prefill_" + c + "_a" + a + "_d64");
      EXPECT_EQ(plan.launches[0].shared_bytes, (16u * 64 + 32 * 65 + 32 * 64) * 4);
      p.kv.head_dim = 8;
      ASSERT_EQ(ds_cuda_plan_attn_prefill(&p, &kH100, &plan), nullptr);
      EXPECT_EQ(std::string(plan.launches[0].symbol), "ds_attn_small_" + c + "_a" + a);
      for (const char* s : {"ds_kv_write_", "ds_attn_small_"}) EXPECT_TRUE(isSymbol((s + c + "_a" + a).c_str()));
    }
    ds_cuda_kv_write_params w{};
    w.kv = kv(8, 128, q);
    w.k = w.v = kPtr;
    w.num_tokens = 1;
    w.act_dtype = 7;  // not an activation dtype
    EXPECT_NE(ds_cuda_plan_kv_write(&w, &plan), nullptr);
    w.act_dtype = DS_CUDA_BF16;
    w.kv.num_blocks = 3, w.kv.block_size = 1, w.kv.kv_heads = 1;  // 3 vectors: codes misaligned
    EXPECT_NE(ds_cuda_plan_kv_write(&w, &plan), nullptr);
    w.kv.num_blocks = 4;
    EXPECT_EQ(ds_cuda_plan_kv_write(&w, &plan), nullptr);
  }
  ds_cuda_kv_write_params w{};
  w.kv = kv(8, 128, 9);  // no such cache dtype
  w.k = w.v = kPtr;
  w.num_tokens = 1;
  EXPECT_NE(ds_cuda_plan_kv_write(&w, &plan), nullptr);
  w.kv.dtype = DS_CUDA_BF16;  // float caches ignore act_dtype
  w.act_dtype = 7;
  ASSERT_EQ(ds_cuda_plan_kv_write(&w, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_kv_write_bf16");
}

TEST(CudaLaunch, NormRopeElementwise) {
  ds_cuda_plan plan;
  ds_cuda_rms_norm_params n{};
  n.x = n.weight = n.y = kPtr;
  n.rows = 7; n.cols = 4096; n.eps = 1e-5f; n.dtype = DS_CUDA_BF16;
  ASSERT_EQ(ds_cuda_plan_rms_norm(&n, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_rms_norm_bf16");
  EXPECT_EQ(plan.launches[0].grid[0], 7u);
  n.add = 1;
  EXPECT_NE(ds_cuda_plan_rms_norm(&n, &plan), nullptr);  // add without residual/sum
  n.residual = n.sum = kPtr;
  ASSERT_EQ(ds_cuda_plan_rms_norm(&n, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_add_rms_norm_bf16");
  n.cols = 4100;  // not a multiple of 8
  EXPECT_NE(ds_cuda_plan_rms_norm(&n, &plan), nullptr);
  n.cols = 4096;
  n.weight_f32 = 1;  // f32 norm weights with bf16 activations (GPU bf16 builds)
  ASSERT_EQ(ds_cuda_plan_rms_norm(&n, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_add_rms_norm_bf16");
  n.weight_f32 = 3;
  EXPECT_NE(ds_cuda_plan_rms_norm(&n, &plan), nullptr);

  ds_cuda_rope_params r{};
  r.x = r.positions = r.inv_freq = kPtr;
  r.num_tokens = 3; r.heads = 32; r.head_dim = 128; r.rot_dim = 128; r.token_stride = 32 * 128;
  r.attention_factor = 1.0f; r.dtype = DS_CUDA_F32;
  ASSERT_EQ(ds_cuda_plan_rope(&r, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_rope_f32");
  r.rot_dim = 130;
  EXPECT_NE(ds_cuda_plan_rope(&r, &plan), nullptr);
  r.rot_dim = 64; r.token_stride = 100;
  EXPECT_NE(ds_cuda_plan_rope(&r, &plan), nullptr);

  ds_cuda_swiglu_params s{};
  s.gate = s.up = s.y = kPtr;
  s.rows = 4; s.cols = 14336; s.gate_stride = s.up_stride = 2 * 14336; s.y_stride = 14336;
  ASSERT_EQ(ds_cuda_plan_swiglu(&s, &plan), nullptr);
  EXPECT_EQ(plan.launches[0].grid[0], 224u);  // 4 * 14336 / 256
  s.y_stride = 10;
  EXPECT_NE(ds_cuda_plan_swiglu(&s, &plan), nullptr);

  ds_cuda_add_params a{};
  a.a = a.b = a.y = kPtr;
  a.n = int64_t{1} << 40;
  ASSERT_EQ(ds_cuda_plan_add(&a, &plan), nullptr);
  EXPECT_EQ(plan.launches[0].grid[0], 65535u);  // grid-stride, capped

  ds_cuda_embed_params e{};
  e.ids = e.weight = e.y = kPtr;
  e.num_tokens = 5; e.hidden = 4096; e.table_rows = 128256;
  ASSERT_EQ(ds_cuda_plan_embed(&e, &plan), nullptr);
  EXPECT_EQ(plan.launches[0].grid[0], 5u);
  e.row_offset = -1;
  EXPECT_NE(ds_cuda_plan_embed(&e, &plan), nullptr);

  ds_cuda_gather_rows_params g{};
  g.x = g.rows = g.y = kPtr;
  g.num_rows = 2; g.x_rows = 9; g.hidden = 4096; g.dtype = DS_CUDA_BF16;
  ASSERT_EQ(ds_cuda_plan_gather_rows(&g, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_gather_rows_bf16");

  ds_cuda_argmax_params m{};
  m.x = m.out = kPtr;
  m.rows = 8; m.vocab = 128256; m.x_stride = 128256; m.dtype = DS_CUDA_BF16;
  ASSERT_EQ(ds_cuda_plan_argmax(&m, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_argmax_bf16");
  EXPECT_EQ(plan.launches[0].grid[0], 8u);
  m.x_stride = 100;
  EXPECT_NE(ds_cuda_plan_argmax(&m, &plan), nullptr);
}

TEST(CudaLaunch, EveryPlannedSymbolIsInTheTable) {
  ds_cuda_plan plan;
  for (int dt : {DS_CUDA_BF16, DS_CUDA_F32})
    for (int d : {64, 128, 256}) {
      ds_cuda_attn_decode_params p = decode(1, 8, 2, d, 4096);
      p.kv.dtype = dt;
      ASSERT_EQ(ds_cuda_plan_attn_decode(&p, &kH100, &plan), nullptr);
      for (int i = 0; i < plan.num_launches; ++i) EXPECT_TRUE(isSymbol(plan.launches[i].symbol));
    }
}

}  // namespace
