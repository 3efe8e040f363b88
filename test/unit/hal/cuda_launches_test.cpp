// The CUDA launch builder (hal/cuda/cuda_launches.h) without a GPU: for each dense kind, the
// kernel launches, their order and their parameters (pointers, dims, strides).
#include "hal/cuda/cuda_launches.h"

#include "cuda_launch_test_util.h"

#include "hal/cuda/cuda_launch_builder.h"

#include <gtest/gtest.h>

#include <cstring>

namespace ds::hal::cuda {
namespace {

using K = abi::KernelKind;
using test::buf;
using test::params;
using test::symbols;
using test::launch;

constexpr uint64_t kX = 0x100000, kY = 0x200000, kW = 0x300000, kB = 0x400000, kWs = 0x900000;

TEST(CudaLaunches, LinearChunksRowsBy16) {
  LaunchDesc l = launch(K::Linear, {0, 1});
  BufferDesc x = buf({64}), y = buf({32});
  CudaLaunchView v;
  v.launch = &l;
  v.in[0] = kX, v.in_desc[0] = &x, v.in_rows[0] = 20;
  v.out[0] = kY, v.out_desc[0] = &y, v.out_rows[0] = 20;
  v.weights[0] = kW, v.weight_shape[0] = {32, 64};
  v.weights[1] = kB, v.weight_shape[1] = {32};
  v.workspace = kWs;
  CudaStepView s;
  s.T = 20;
  auto plan = planCudaLaunch(v, s);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  ASSERT_GE(plan->calls.size(), 2u);
  auto p0 = params<ds_cuda_gemv_params>(plan->calls.front());
  auto p1 = params<ds_cuda_gemv_params>(plan->calls.back());
  EXPECT_EQ(p0.M, 16);
  EXPECT_EQ(p1.M, 4);
  EXPECT_EQ(p0.x, kX);
  EXPECT_EQ(p1.x, kX + 16 * 64 * 4);
  EXPECT_EQ(p1.y, kY + 16 * 32 * 4);
  EXPECT_EQ(p0.N, 32);
  EXPECT_EQ(p0.K, 64);
  EXPECT_EQ(p0.x_stride, 64);
  EXPECT_EQ(p0.y_stride, 32);
  EXPECT_EQ(p0.bias, kB);
  EXPECT_EQ(p0.w, kW);
  EXPECT_EQ(p0.act_dtype, DS_CUDA_F32);
  EXPECT_EQ(plan->calls.front().symbol.rfind("ds_gemv_wf32_af32_m", 0), 0u) << plan->calls.front().symbol;
}

TEST(CudaLaunches, QkvRopeMergedIsThreeGemvsAndTwoRopes) {
  LaunchDesc l = launch(K::QKVRope, {5, 5, 5, 6, 6, 6});
  l.params.rope.dim = 16;
  BufferDesc x = buf({64}), pos = buf({}, DType::I32);
  BufferDesc q = buf({4, 16}), k = buf({2, 16}), vv = buf({2, 16});
  CudaLaunchView v;
  v.launch = &l;
  v.in[0] = kX, v.in_desc[0] = &x, v.in_rows[0] = 3;
  v.in[1] = 0x5000, v.in_desc[1] = &pos, v.in_rows[1] = 3;
  const uint64_t qa = 0x10000, ka = 0x20000, va = 0x30000;
  v.out[0] = qa, v.out_desc[0] = &q, v.out[1] = ka, v.out_desc[1] = &k, v.out[2] = va,
  v.out_desc[2] = &vv;
  for (int i = 0; i < 3; ++i) v.out_rows[i] = 3;
  for (int i = 0; i < 6; ++i) v.weights[i] = i < 3 ? kW : kB;
  v.weight_shape[0] = {128, 64};
  v.weight_dtype[3] = DType::F32;
  v.inv_freq = 0x7000;
  CudaStepView s;
  s.T = 3;
  s.positions = 0x5000;
  auto plan = planCudaLaunch(v, s);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  ASSERT_EQ(plan->calls.size(), 5u) << ::testing::PrintToString(symbols(*plan));
  auto g1 = params<ds_cuda_gemv_params>(plan->calls[1]);
  auto g2 = params<ds_cuda_gemv_params>(plan->calls[2]);
  EXPECT_EQ(g1.w, kW + 64 * 64 * 4);  // rows [64, 96) of the merged weight
  EXPECT_EQ(g2.w, kW + 96 * 64 * 4);
  EXPECT_EQ(g1.bias, kB + 64 * 4);
  EXPECT_EQ(g1.y, ka);
  EXPECT_EQ(g1.N, 32);
  EXPECT_EQ(plan->calls[3].symbol, "ds_rope_f32");
  auto rq = params<ds_cuda_rope_params>(plan->calls[3]);
  auto rk = params<ds_cuda_rope_params>(plan->calls[4]);
  EXPECT_EQ(rq.x, qa);
  EXPECT_EQ(rq.heads, 4);
  EXPECT_EQ(rq.token_stride, 64);
  EXPECT_EQ(rq.rot_dim, 16);
  EXPECT_EQ(rq.inv_freq, 0x7000u);
  EXPECT_EQ(rk.x, ka);
  EXPECT_EQ(rk.heads, 2);
}

struct AttnFixture {
  LaunchDesc l = launch(K::Attention);
  BufferDesc q = buf({4, 64}), kv = buf({2, 64}), pos = buf({}, DType::I32), y = buf({4, 64});
  KVDesc kvd;
  uint64_t layers[2] = {0x1000000, 0x2000000};
  CudaLaunchView v;
  CudaStepView s;
  AttnFixture(int64_t T, int64_t seqs, int64_t max_q) {
    l.params.layer = 1;
    l.params.scale = 0.125f;
    kvd.kind = KVKind::GQA;
    kvd.num_layers = 2, kvd.block_size = 16, kvd.kv_heads = 2, kvd.head_dim = 64, kvd.v_dim = 64;
    v.launch = &l;
    const BufferDesc* ins[4] = {&q, &kv, &kv, &pos};
    for (int i = 0; i < 4; ++i) v.in[i] = 0x10000 * (i + 1), v.in_desc[i] = ins[i], v.in_rows[i] = T;
    v.out[0] = kY, v.out_desc[0] = &y, v.out_rows[0] = T;
    v.workspace = kWs;
    s.T = T, s.num_seqs = seqs, s.max_q_len = max_q, s.max_context = 40;
    s.positions = 0x40000, s.token_seq = 0x50000, s.block_table = 0x60000, s.seq_q_start = 0x70000;
    s.max_blocks_per_seq = 4, s.num_kv_blocks = 10;
    s.kv = &kvd;
    s.kv_layers = layers;
  }
};

TEST(CudaLaunches, AttentionDecodeWritesKvThenSplitKv) {
  AttnFixture f(2, 2, 1);
  auto plan = planCudaLaunch(f.v, f.s);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  ASSERT_GE(plan->calls.size(), 2u);
  EXPECT_EQ(plan->calls[0].symbol, "ds_kv_write_f32");
  auto w = params<ds_cuda_kv_write_params>(plan->calls[0]);
  EXPECT_EQ(w.kv.k_cache, f.layers[1]);
  EXPECT_EQ(w.kv.v_cache, f.layers[1] + 10 * 16 * 2 * 64 * 4);
  EXPECT_EQ(w.k, 0x20000u);
  EXPECT_EQ(w.v, 0x30000u);
  EXPECT_EQ(w.num_tokens, 2);
  EXPECT_EQ(plan->calls[1].symbol, "ds_attn_decode_f32_d64");
  auto d = params<ds_cuda_attn_decode_params>(plan->calls[1]);
  EXPECT_EQ(d.q, 0x10000u);
  EXPECT_EQ(d.out, kY);
  EXPECT_EQ(d.q_heads, 4);
  EXPECT_EQ(d.max_context, 40);
  EXPECT_FLOAT_EQ(d.scale, 0.125f);
  EXPECT_EQ(d.kv.block_table, 0x60000u);
  EXPECT_EQ(d.kv.max_blocks_per_seq, 4);
  if (d.splits > 1) {
    EXPECT_EQ(plan->calls.back().symbol, "ds_attn_combine_f32_d64");
  }
}

TEST(CudaLaunches, AttentionPrefillUsesSequenceRows) {
  AttnFixture f(7, 2, 5);
  auto plan = planCudaLaunch(f.v, f.s);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  ASSERT_EQ(symbols(*plan), (std::vector<std::string>{"ds_kv_write_f32", "ds_attn_prefill_f32_d64"}));
  auto p = params<ds_cuda_attn_prefill_params>(plan->calls[1]);
  EXPECT_EQ(p.seq_q_start, 0x70000u);
  EXPECT_EQ(p.num_seqs, 2);
  EXPECT_EQ(p.max_q_len, 5);
  EXPECT_EQ(plan->workspace_bytes, 0u);
}

// Heads of 8 (the tiny models): a decode step (one row per sequence) runs ds_attn_small through
// the prefill plan, reading the step's sequence rows.
TEST(CudaLaunches, SmallHeadDecodeRunsTheSmallKernel) {
  AttnFixture f(2, 2, 1);
  f.q = buf({4, 8});
  f.kv = buf({2, 8});
  f.y = buf({4, 8});
  f.kvd.head_dim = 8, f.kvd.v_dim = 8;
  auto plan = planCudaLaunch(f.v, f.s);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  ASSERT_EQ(symbols(*plan), (std::vector<std::string>{"ds_kv_write_f32", "ds_attn_small_f32"}));
  auto p = params<ds_cuda_attn_prefill_params>(plan->calls[1]);
  EXPECT_EQ(p.seq_q_start, 0x70000u);
  EXPECT_EQ(p.max_q_len, 1);
  EXPECT_EQ(p.kv.head_dim, 8);
  EXPECT_EQ(plan->calls[1].block[0], 32u);
}

// --kv-cache int8 / fp8 artifacts: the quantizing writer and the quantized-cache attention,
// named by the activations' dtype; each layer's buffer (artifact::kvBytesPerSlot per slot) split
// into K then V, each f32 scales then one-byte codes; a mismatched bytes-per-slot is refused.
TEST(CudaLaunches, QuantizedKvCaches) {
  for (DType q : {DType::I8, DType::F8E4M3}) {
    const std::string c = q == DType::I8 ? "i8" : "fp8";
    for (DType act : {DType::F32, DType::BF16}) {
      const std::string a = act == DType::BF16 ? "bf16" : "f32";
      SCOPED_TRACE(c + " " + a);
      for (int64_t max_q : {1, 5}) {
        AttnFixture f(max_q == 1 ? 2 : 7, 2, max_q);
        f.q = buf({4, 64}, act), f.kv = buf({2, 64}, act), f.y = buf({4, 64}, act);
        f.kvd.dtype = q;
        f.kvd.bytes_per_slot = 2 * (64 + 64) + 2 * 2 * 4;  // artifact::kvBytesPerSlot
        auto plan = planCudaLaunch(f.v, f.s);
        ASSERT_TRUE(plan.isOk()) << plan.status().message();
        EXPECT_EQ(plan->calls[0].symbol, "ds_kv_write_" + c + "_a" + a);
        auto w = params<ds_cuda_kv_write_params>(plan->calls[0]);
        EXPECT_EQ(w.kv.dtype, q == DType::I8 ? int32_t{DS_CUDA_KV_INT8} : int32_t{DS_CUDA_FP8_E4M3});
        EXPECT_EQ(w.act_dtype, act == DType::BF16 ? DS_CUDA_BF16 : DS_CUDA_F32);
        const uint64_t vectors = 10 * 16 * 2;  // blocks x block_size x kv heads
        EXPECT_EQ(w.kv.k_cache, f.layers[1]);
        EXPECT_EQ(w.kv.v_cache, f.layers[1] + vectors * (4 + 64));
        EXPECT_EQ(w.kv.v_cache + vectors * (4 + 64) - f.layers[1], 10 * 16 * f.kvd.bytes_per_slot);
        ASSERT_GE(plan->calls.size(), 2u);
        if (max_q == 1) {
          EXPECT_EQ(plan->calls[1].symbol, "ds_attn_decode_" + c + "_a" + a + "_d64");
          auto d = params<ds_cuda_attn_decode_params>(plan->calls[1]);
          EXPECT_EQ(d.kv.v_cache, w.kv.v_cache);
          EXPECT_EQ(d.act_dtype, w.act_dtype);
        } else {
          EXPECT_EQ(plan->calls[1].symbol, "ds_attn_prefill_" + c + "_a" + a + "_d64");
          auto p = params<ds_cuda_attn_prefill_params>(plan->calls[1]);
          EXPECT_EQ(p.kv.dtype, w.kv.dtype);
          EXPECT_EQ(p.act_dtype, w.act_dtype);
        }
        f.kvd.bytes_per_slot += 4;
        EXPECT_FALSE(planCudaLaunch(f.v, f.s).isOk());
      }
    }
  }
  AttnFixture f(2, 2, 1);  // a bf16 cache under f32 activations stays refused
  f.kvd.dtype = DType::BF16;
  EXPECT_FALSE(planCudaLaunch(f.v, f.s).isOk());
}

TEST(CudaLaunches, SwigluLinearAndLogitsUseScratch) {
  LaunchDesc l = launch(K::SwiGLULinear, {1, 2});
  BufferDesc x = buf({64}), y = buf({32});
  CudaLaunchView v;
  v.launch = &l;
  v.in[0] = kX, v.in_desc[0] = &x, v.in_rows[0] = 2;
  v.out[0] = kY, v.out_desc[0] = &y, v.out_rows[0] = 2;
  v.weights[0] = kW, v.weights[1] = kW + 0x10000;
  v.workspace = kWs;
  CudaStepView s;
  s.T = 2;
  auto plan = planCudaLaunch(v, s);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  ASSERT_EQ(plan->calls.back().symbol, "ds_swiglu_f32");
  auto up = params<ds_cuda_gemv_params>(plan->calls[plan->calls.size() - 2]);
  EXPECT_EQ(up.y, kWs + 32 * 4);
  EXPECT_EQ(up.y_stride, 64);
  auto sw = params<ds_cuda_swiglu_params>(plan->calls.back());
  EXPECT_EQ(sw.gate, kWs);
  EXPECT_EQ(sw.gate_stride, 64);
  EXPECT_EQ(sw.y, kY);
  EXPECT_GE(plan->workspace_bytes, 2u * 64 * 4);

  LaunchDesc lg = launch(K::Logits, {3});
  BufferDesc rows = buf({}, DType::I32), logits = buf({100});
  CudaLaunchView g;
  g.launch = &lg;
  g.in[0] = kX, g.in_desc[0] = &x, g.in_rows[0] = 5;
  g.in[1] = 0x8000, g.in_desc[1] = &rows, g.in_rows[1] = 1;
  g.out[0] = kY, g.out_desc[0] = &logits, g.out_rows[0] = 1;
  g.weights[0] = kW;
  g.workspace = kWs;
  s.T = 5, s.R = 1;
  plan = planCudaLaunch(g, s);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  EXPECT_EQ(plan->calls[0].symbol, "ds_gather_rows_f32");
  auto gr = params<ds_cuda_gather_rows_params>(plan->calls[0]);
  EXPECT_EQ(gr.y, kWs);
  EXPECT_EQ(gr.x_rows, 5);
  auto gv = params<ds_cuda_gemv_params>(plan->calls.back());
  EXPECT_EQ(gv.x, kWs);
  EXPECT_EQ(gv.N, 100);
  EXPECT_EQ(gv.M, 1);
}

TEST(CudaLaunches, EmbedNormAddAndGenerated) {
  BufferDesc ids = buf({}, DType::I32), h = buf({64});
  LaunchDesc e = launch(K::Embed, {0});
  CudaLaunchView v;
  v.launch = &e;
  v.in[0] = 0x8000, v.in_desc[0] = &ids, v.in_rows[0] = 3;
  v.out[0] = kY, v.out_desc[0] = &h, v.out_rows[0] = 3;
  v.weights[0] = kW, v.weight_shape[0] = {1000, 64};
  CudaStepView s;
  s.T = 3;
  auto plan = planCudaLaunch(v, s);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  auto ep = params<ds_cuda_embed_params>(plan->calls[0]);
  EXPECT_EQ(plan->calls[0].symbol, "ds_embed_f32");
  EXPECT_EQ(ep.table_rows, 1000);
  EXPECT_EQ(ep.hidden, 64);

  LaunchDesc n = launch(K::AddRmsNorm, {1});
  n.params.eps = 1e-5f;
  CudaLaunchView nv;
  nv.launch = &n;
  nv.in[0] = kX, nv.in[1] = kX + 0x1000, nv.out[0] = kY, nv.out[1] = kY + 0x1000;
  nv.in_desc[0] = nv.in_desc[1] = nv.out_desc[0] = nv.out_desc[1] = &h;
  nv.in_rows[0] = nv.out_rows[0] = 3;
  nv.weights[0] = kW, nv.weight_shape[0] = {64};
  plan = planCudaLaunch(nv, s);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  auto np = params<ds_cuda_rms_norm_params>(plan->calls[0]);
  EXPECT_EQ(plan->calls[0].symbol, "ds_add_rms_norm_f32");
  EXPECT_EQ(np.sum, kY);
  EXPECT_EQ(np.y, kY + 0x1000);
  EXPECT_EQ(np.residual, kX + 0x1000);
  EXPECT_EQ(np.rows, 3);
  EXPECT_EQ(np.cols, 64);

  // The same launch served by a generated kernel: memref descriptors, grid = rows, block = T.
  n.code_symbol = "k0";
  nv.generated = true;
  nv.generated_threads = 64;
  plan = planCudaLaunch(nv, s);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  ASSERT_EQ(plan->calls.size(), 1u);
  const CudaCall& c = plan->calls[0];
  EXPECT_TRUE(c.words);
  EXPECT_EQ(c.grid[0], 3u);
  EXPECT_EQ(c.block[0], 64u);
  EXPECT_EQ(c.params.size(), (4 * 7 + 5) * 8u);  // 4 buffers [rows, cols], 1 weight [n]
  uint64_t w[7];
  std::memcpy(w, c.params.data(), sizeof(w));
  EXPECT_EQ(w[0], kX);
  EXPECT_EQ(w[3], 3u);
  EXPECT_EQ(w[4], 64u);
  EXPECT_EQ(w[5], 64u);
  EXPECT_EQ(w[6], 1u);
}

// GPU bf16 builds keep norm weights f32 (ds-compile): the library norm reads them as f32.
TEST(CudaLaunches, Bf16NormWithF32Weights) {
  BufferDesc h = buf({64}, DType::BF16);
  LaunchDesc n = launch(K::RmsNorm, {1});
  n.params.eps = 1e-5f;
  CudaLaunchView v;
  v.launch = &n;
  v.in[0] = kX, v.out[0] = kY;
  v.in_desc[0] = v.out_desc[0] = &h;
  v.in_rows[0] = v.out_rows[0] = 2;
  v.weights[0] = kW, v.weight_shape[0] = {64};
  CudaStepView s;
  s.T = 2;
  for (DType w : {DType::F32, DType::BF16}) {
    v.weight_dtype[0] = w;
    auto plan = planCudaLaunch(v, s);
    ASSERT_TRUE(plan.isOk()) << plan.status().message();
    EXPECT_EQ(plan->calls[0].symbol, "ds_rms_norm_bf16");
    EXPECT_EQ(params<ds_cuda_rms_norm_params>(plan->calls[0]).weight_f32, w == DType::F32 ? 1 : 0);
  }
  v.weight_dtype[0] = DType::F16;
  EXPECT_FALSE(planCudaLaunch(v, s).isOk());
}

// The logits of a bf16 model land in the f32 logits buffer (y_f32), 4-byte rows.
TEST(CudaLaunches, Bf16LogitsAreWrittenAsF32) {
  BufferDesc h = buf({64}, DType::BF16), rows = buf({}, DType::I32), logits = buf({1000});
  LaunchDesc l = launch(K::Logits, {0});
  CudaLaunchView v;
  v.launch = &l;
  v.in[0] = kX, v.in_desc[0] = &h, v.in_rows[0] = 20;
  v.in[1] = kB, v.in_desc[1] = &rows, v.in_rows[1] = 18;
  v.out[0] = kY, v.out_desc[0] = &logits, v.out_rows[0] = 18;
  v.weights[0] = kW, v.weight_dtype[0] = DType::BF16, v.weight_shape[0] = {1000, 64};
  v.workspace = kWs;
  CudaStepView s;
  s.T = 20;
  s.R = 18;
  auto plan = planCudaLaunch(v, s);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  // gather, then GEMV chunks of 16 and 2 rows, each writing f32 rows at 4 bytes per element.
  std::vector<ds_cuda_gemv_params> g;
  for (const CudaCall& c : plan->calls)
    if (c.symbol.rfind("ds_gemv_w", 0) == 0) g.push_back(params<ds_cuda_gemv_params>(c));
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].y_f32, 1);
  EXPECT_EQ(g[0].y, kY);
  EXPECT_EQ(g[1].y, kY + 16 * 1000 * 4);
  EXPECT_EQ(g[1].M, 2);
}

// ---- cuBLASLt (view.blaslt): GEMMs of more than kGemvMaxRows rows ------------------------------

const GemmDesc& gemmOf(const CudaCall& c) {
  EXPECT_EQ(c.kind, CudaCallKind::BlasLtGemm) << c.symbol;
  return c.gemm;
}

struct LinearFixture {
  LaunchDesc l = launch(K::Linear, {0, 1});
  BufferDesc x = buf({64}), y = buf({32});
  CudaLaunchView v;
  CudaStepView s;
  LinearFixture(int64_t rows, bool bias, DType act = DType::F32, DType w = DType::F32) {
    if (!bias) l.weights = {0};
    x.dtype = y.dtype = act;
    v.launch = &l;
    v.in[0] = kX, v.in_desc[0] = &x, v.in_rows[0] = rows;
    v.out[0] = kY, v.out_desc[0] = &y, v.out_rows[0] = rows;
    v.weights[0] = kW, v.weight_shape[0] = {32, 64}, v.weight_dtype[0] = w;
    if (bias) v.weights[1] = kB, v.weight_shape[1] = {32}, v.weight_dtype[1] = DType::F32;
    v.workspace = kWs;
    v.blaslt = true;
    s.T = rows;
  }
};

TEST(CudaLaunches, LinearAboveTheGemvLimitIsOneBlasLtGemm) {
  static_assert(kGemvMaxRows == 16);
  for (bool bias : {false, true}) {
    LinearFixture f(17, bias);
    auto plan = planCudaLaunch(f.v, f.s);
    ASSERT_TRUE(plan.isOk()) << plan.status().message();
    ASSERT_EQ(plan->calls.size(), 1u) << ::testing::PrintToString(symbols(*plan));
    EXPECT_EQ(plan->calls[0].symbol, "cublasLtMatmul");
    EXPECT_TRUE(plan->calls[0].params.empty());
    const GemmDesc& g = gemmOf(plan->calls[0]);
    EXPECT_EQ(g.x, kX);
    EXPECT_EQ(g.w, kW);
    EXPECT_EQ(g.y, kY);
    EXPECT_EQ(g.bias, bias ? kB : 0u);
    EXPECT_EQ(g.M, 17);
    EXPECT_EQ(g.N, 32);
    EXPECT_EQ(g.K, 64);
    EXPECT_EQ(g.x_stride, 64);
    EXPECT_EQ(g.w_stride, 64);
    EXPECT_EQ(g.y_stride, 32);
    EXPECT_EQ(g.act_dtype, DS_CUDA_F32);
    EXPECT_EQ(g.weight_dtype, DS_CUDA_F32);
    EXPECT_EQ(plan->workspace_bytes, 0u);  // cuBLASLt's workspace is the device's
    BlasLtMatmulPlan p;
    ASSERT_EQ(planBlasLtGemm(g, &p), nullptr);
    EXPECT_EQ(p.epilogue, bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
    EXPECT_EQ(p.m, 32);
    EXPECT_EQ(p.n, 17);
    EXPECT_EQ(p.a.ptr, kW);
    EXPECT_EQ(p.d.ld, 32);
  }
}

TEST(CudaLaunches, GemvStaysAtOrBelowTheLimitAndWithoutBlasLt) {
  LinearFixture at_limit(16, true);
  auto plan = planCudaLaunch(at_limit.v, at_limit.s);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  ASSERT_EQ(plan->calls.size(), 1u);
  EXPECT_EQ(plan->calls[0].kind, CudaCallKind::Kernel);
  EXPECT_EQ(params<ds_cuda_gemv_params>(plan->calls[0]).M, 16);

  LinearFixture off(100, true);
  off.v.blaslt = false;  // no cuBLASLt on the device: 7 GEMV chunks
  plan = planCudaLaunch(off.v, off.s);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  ASSERT_EQ(plan->calls.size(), 7u);
  for (const CudaCall& c : plan->calls) EXPECT_EQ(c.kind, CudaCallKind::Kernel) << c.symbol;
  EXPECT_EQ(params<ds_cuda_gemv_params>(plan->calls.back()).M, 4);
}

TEST(CudaLaunches, BlasLtDtypes) {
  // bf16 x bf16 with the f32 bias: one GEMM, the bias declared f32.
  LinearFixture bf(64, true, DType::BF16, DType::BF16);
  auto plan = planCudaLaunch(bf.v, bf.s);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  ASSERT_EQ(plan->calls.size(), 1u);
  const GemmDesc& g = gemmOf(plan->calls[0]);
  EXPECT_EQ(g.act_dtype, DS_CUDA_BF16);
  EXPECT_EQ(g.weight_dtype, DS_CUDA_BF16);
  EXPECT_EQ(g.bias_dtype, DS_CUDA_F32);
  BlasLtMatmulPlan p;
  ASSERT_EQ(planBlasLtGemm(g, &p), nullptr);
  EXPECT_EQ(p.a.type, CUDA_R_16BF);
  EXPECT_EQ(p.bias_type, CUDA_R_32F);

  // f32 activations x bf16 weights: cuBLASLt wants one type, so the GEMV kernels keep it.
  LinearFixture mixed(40, false, DType::F32, DType::BF16);
  plan = planCudaLaunch(mixed.v, mixed.s);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  ASSERT_EQ(plan->calls.size(), 3u);
  for (const CudaCall& c : plan->calls) {
    EXPECT_EQ(c.kind, CudaCallKind::Kernel);
    EXPECT_EQ(c.symbol.rfind("ds_gemv_wbf16_af32_m", 0), 0u) << c.symbol;
  }

  // bf16 activations x f32 weights: refused as before (no GEMV kernel either).
  LinearFixture refused(40, false, DType::BF16, DType::F32);
  plan = planCudaLaunch(refused.v, refused.s);
  EXPECT_FALSE(plan.isOk());
}

TEST(CudaLaunches, SwigluLinearThroughBlasLt) {
  for (bool merged : {true, false}) {
    LaunchDesc l = launch(K::SwiGLULinear, merged ? std::vector<int32_t>{1, 1} : std::vector<int32_t>{1, 2});
    BufferDesc x = buf({64}, DType::BF16), y = buf({32}, DType::BF16);
    CudaLaunchView v;
    v.launch = &l;
    v.in[0] = kX, v.in_desc[0] = &x, v.in_rows[0] = 20;
    v.out[0] = kY, v.out_desc[0] = &y, v.out_rows[0] = 20;
    v.weights[0] = kW, v.weights[1] = merged ? kW : kW + 0x10000;
    v.weight_dtype[0] = v.weight_dtype[1] = DType::BF16;
    v.workspace = kWs;
    v.blaslt = true;
    CudaStepView s;
    s.T = 20;
    auto plan = planCudaLaunch(v, s);
    ASSERT_TRUE(plan.isOk()) << plan.status().message();
    ASSERT_EQ(plan->calls.size(), merged ? 2u : 3u) << ::testing::PrintToString(symbols(*plan));
    const GemmDesc& gate = gemmOf(plan->calls[0]);
    EXPECT_EQ(gate.x, kX);
    EXPECT_EQ(gate.w, kW);
    EXPECT_EQ(gate.y, kWs);        // scratch [T, 2N]: gate then up
    EXPECT_EQ(gate.y_stride, 64);  // 2N
    EXPECT_EQ(gate.M, 20);
    EXPECT_EQ(gate.K, 64);
    EXPECT_EQ(gate.N, merged ? 64 : 32);
    if (!merged) {
      const GemmDesc& up = gemmOf(plan->calls[1]);
      EXPECT_EQ(up.w, kW + 0x10000);
      EXPECT_EQ(up.y, kWs + 32 * 2);  // the up half of each scratch row (bf16)
      EXPECT_EQ(up.y_stride, 64);
      EXPECT_EQ(up.N, 32);
      BlasLtMatmulPlan p;
      ASSERT_EQ(planBlasLtGemm(up, &p), nullptr);
      EXPECT_EQ(p.d.ld, 64);
      EXPECT_EQ(p.d.align, 64u);
    }
    EXPECT_EQ(plan->calls.back().symbol, "ds_swiglu_bf16");
    auto sw = params<ds_cuda_swiglu_params>(plan->calls.back());
    EXPECT_EQ(sw.gate, kWs);
    EXPECT_EQ(sw.up, kWs + 32 * 2);
    EXPECT_EQ(plan->workspace_bytes, 20u * 64 * 2);  // the scratch only
  }
}

TEST(CudaLaunches, QkvRopeMergedThroughBlasLt) {
  LaunchDesc l = launch(K::QKVRope, {5, 5, 5, 6, 6, 6});
  l.params.rope.dim = 16;
  BufferDesc x = buf({64}), pos = buf({}, DType::I32);
  BufferDesc q = buf({4, 16}), k = buf({2, 16}), vv = buf({2, 16});
  CudaLaunchView v;
  v.launch = &l;
  v.in[0] = kX, v.in_desc[0] = &x, v.in_rows[0] = 33;
  v.in[1] = 0x5000, v.in_desc[1] = &pos, v.in_rows[1] = 33;
  const uint64_t qa = 0x10000, ka = 0x20000, va = 0x30000;
  v.out[0] = qa, v.out_desc[0] = &q, v.out[1] = ka, v.out_desc[1] = &k, v.out[2] = va, v.out_desc[2] = &vv;
  for (int i = 0; i < 3; ++i) v.out_rows[i] = 33;
  for (int i = 0; i < 6; ++i) v.weights[i] = i < 3 ? kW : kB;
  v.weight_shape[0] = {128, 64};
  v.weight_dtype[3] = DType::F32;
  v.inv_freq = 0x7000;
  v.blaslt = true;
  CudaStepView s;
  s.T = 33;
  s.positions = 0x5000;
  auto plan = planCudaLaunch(v, s);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  ASSERT_EQ(symbols(*plan), (std::vector<std::string>{"cublasLtMatmul", "cublasLtMatmul", "cublasLtMatmul",
                                                      "ds_rope_f32", "ds_rope_f32"}));
  const uint64_t ys[3] = {qa, ka, va};
  const int64_t ns[3] = {64, 32, 32}, rows_before[3] = {0, 64, 96};
  for (int i = 0; i < 3; ++i) {
    const GemmDesc& g = gemmOf(plan->calls[i]);
    EXPECT_EQ(g.w, kW + static_cast<uint64_t>(rows_before[i] * 64 * 4)) << i;  // row range
    EXPECT_EQ(g.bias, kB + static_cast<uint64_t>(rows_before[i] * 4)) << i;
    EXPECT_EQ(g.y, ys[i]);
    EXPECT_EQ(g.N, ns[i]);
    EXPECT_EQ(g.y_stride, ns[i]);
    EXPECT_EQ(g.M, 33);
    EXPECT_EQ(g.K, 64);
  }
  EXPECT_EQ(params<ds_cuda_rope_params>(plan->calls[3]).x, qa);
  EXPECT_EQ(params<ds_cuda_rope_params>(plan->calls[4]).x, ka);
}

TEST(CudaLaunches, LogitsGatherThenBlasLt) {
  LaunchDesc lg = launch(K::Logits, {3});
  BufferDesc x = buf({64}, DType::BF16), rows = buf({}, DType::I32), logits = buf({1000}, DType::BF16);
  CudaLaunchView g;
  g.launch = &lg;
  g.in[0] = kX, g.in_desc[0] = &x, g.in_rows[0] = 40;
  g.in[1] = 0x8000, g.in_desc[1] = &rows, g.in_rows[1] = 24;
  g.out[0] = kY, g.out_desc[0] = &logits, g.out_rows[0] = 24;
  g.weights[0] = kW, g.weight_dtype[0] = DType::BF16;
  g.workspace = kWs;
  g.blaslt = true;
  CudaStepView s;
  s.T = 40, s.R = 24;
  auto plan = planCudaLaunch(g, s);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  ASSERT_EQ(symbols(*plan), (std::vector<std::string>{"ds_gather_rows_bf16", "cublasLtMatmul"}));
  const GemmDesc& gm = gemmOf(plan->calls[1]);
  EXPECT_EQ(gm.x, kWs);  // the gathered rows [R, H]
  EXPECT_EQ(gm.x_stride, 64);
  EXPECT_EQ(gm.M, 24);
  EXPECT_EQ(gm.N, 1000);
  EXPECT_EQ(gm.K, 64);
  EXPECT_EQ(gm.y, kY);
  EXPECT_EQ(gm.y_stride, 1000);
  EXPECT_EQ(gm.bias, 0u);
  // A decode step's few logit rows stay on GEMV.
  s.R = 4;
  g.in_rows[1] = g.out_rows[0] = 4;
  plan = planCudaLaunch(g, s);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  EXPECT_EQ(plan->calls.back().kind, CudaCallKind::Kernel);
}

// With cuBLASLt, the logits of a bf16 model: bf16 A/B, f32 D.
TEST(CudaLaunches, Bf16LogitsGemmHasF32Output) {
  BufferDesc h = buf({64}, DType::BF16), rows = buf({}, DType::I32), logits = buf({1000});
  LaunchDesc l = launch(K::Logits, {0});
  CudaLaunchView v;
  v.launch = &l;
  v.blaslt = true;
  v.in[0] = kX, v.in_desc[0] = &h, v.in_rows[0] = 40;
  v.in[1] = kB, v.in_desc[1] = &rows, v.in_rows[1] = 40;
  v.out[0] = kY, v.out_desc[0] = &logits, v.out_rows[0] = 40;
  v.weights[0] = kW, v.weight_dtype[0] = DType::BF16, v.weight_shape[0] = {1000, 64};
  v.workspace = kWs;
  CudaStepView s;
  s.T = 40;
  s.R = 40;
  auto plan = planCudaLaunch(v, s);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  const GemmDesc& g = gemmOf(plan->calls.back());
  EXPECT_TRUE(g.y_f32);
  BlasLtMatmulPlan p;
  ASSERT_EQ(planBlasLtGemm(g, &p), nullptr);
  EXPECT_EQ(p.a.type, CUDA_R_16BF);
  EXPECT_EQ(p.b.type, CUDA_R_16BF);
  EXPECT_EQ(p.d.type, CUDA_R_32F);
}

// Row ranges of quantized weights (the q/k/v parts of a merged projection): int4 group scales
// advance by ceil(K / group) per row (a partial last group counts: tiny-llama's K = 64 with
// groups of 128 has one), FP8 per-channel scales by one per row.
TEST(CudaLaunches, QuantizedRowRangesFindTheirScales) {
  CudaLaunchView v;
  v.weights[0] = 0x100000, v.weight_scale[0] = 0x200000, v.weight_zero[0] = 0x300000;
  v.weight_dtype[0] = DType::I4, v.weight_group[0] = 128;
  CudaStepView s;
  builder::Builder b(v, s);
  auto dt = b.weightDType(0);
  ASSERT_TRUE(dt.isOk());
  EXPECT_EQ(*dt, builder::kInt4);
  builder::WeightRef r = b.weightRef(0, *dt, /*row0=*/64, /*K=*/64);
  EXPECT_EQ(r.w, 0x100000u + 64 * 32);      // 64 rows of 32 bytes
  EXPECT_EQ(r.scale, 0x200000u + 64 * 4);   // one (partial) group per row
  EXPECT_EQ(r.zero, 0x300000u + 64 * 4);
  r = b.weightRef(0, *dt, 3, 4096);
  EXPECT_EQ(r.scale, 0x200000u + 3 * 32 * 4);
  v.weight_dtype[0] = DType::F8E4M3, v.weight_zero[0] = 0, v.weight_group[0] = 0;
  builder::Builder c(v, s);
  dt = c.weightDType(0);
  ASSERT_TRUE(dt.isOk());
  EXPECT_EQ(*dt, builder::kFp8);
  r = c.weightRef(0, *dt, 10, 256);
  EXPECT_EQ(r.w, 0x100000u + 10 * 256);
  EXPECT_EQ(r.scale, 0x200000u + 10 * 4);
  EXPECT_EQ(r.block_rows, 1);
  EXPECT_EQ(r.block_cols, 256);
}

TEST(CudaLaunches, RefusesWhatTheLibraryLacks) {
  BufferDesc x = buf({64});
  CudaLaunchView v;
  v.in_desc[0] = &x;
  CudaStepView s;
  LaunchDesc lin = launch(K::Linear, {0});
  BufferDesc y = buf({32});
  v.launch = &lin;
  v.out_desc[0] = &y;
  v.in_rows[0] = 1;
  v.weight_dtype[0] = DType::I8;
  auto plan = planCudaLaunch(v, s);
  ASSERT_FALSE(plan.isOk());
  EXPECT_NE(plan.status().message().find("its scales are missing"), std::string::npos)
      << plan.status().message();
  // int4 without its group scales is refused the same way; with them it is an int4 GEMV.
  v.weight_dtype[0] = DType::I4;
  plan = planCudaLaunch(v, s);
  ASSERT_FALSE(plan.isOk());
  v.weight_scale[0] = 0x40000;
  v.weight_group[0] = 32;
  v.in[0] = 0x10000, v.out[0] = 0x20000, v.weights[0] = 0x30000;
  plan = planCudaLaunch(v, s);
  ASSERT_TRUE(plan.isOk()) << plan.status().toString();
  ASSERT_EQ(plan->calls.size(), 1u);
  EXPECT_EQ(plan->calls[0].symbol.rfind("ds_gemv_", 0), 0u);
  EXPECT_NE(plan->calls[0].symbol.find("wi4"), std::string::npos) << plan->calls[0].symbol;
}

}  // namespace
}  // namespace ds::hal::cuda
