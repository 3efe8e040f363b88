// The quantized-weight prefill GEMM in the launch builder (cuda_launch_builder.h quantizedGemm)
// and its plan (ds_cuda_plan_gemm_q): which calls a Linear over int4 / FP8 / int8 weights becomes
// for how many rows, the params it carries, and the shapes the plan refuses (GEMV passes then).
#include <gtest/gtest.h>

#include <cstring>

#include "hal/cuda/cuda_launches.h"

namespace ds::hal::cuda {
namespace {

using K = abi::KernelKind;

struct LinearCase {
  LaunchDesc l;
  BufferDesc x, y;
  CudaLaunchView v;
  LinearCase(DType wdt, int64_t rows, int64_t k, int64_t n) {
    l.kind = K::Linear;
    l.sig = abi::signature(K::Linear);
    l.inputs = {0};
    l.outputs = {1};
    l.weights = {0};
    x.cols = {k};
    x.row_elems = k;
    x.dtype = DType::BF16;
    y.cols = {n};
    y.row_elems = n;
    y.dtype = DType::BF16;
    v.launch = &l;
    v.in[0] = 0x100000, v.out[0] = 0x200000, v.weights[0] = 0x300000;
    v.in_desc[0] = &x, v.out_desc[0] = &y;
    v.in_rows[0] = v.out_rows[0] = rows;
    v.weight_dtype[0] = wdt;
    v.weight_shape[0] = {n, k};
    v.weight_scale[0] = 0x400000;
    v.workspace = 0x900000;
    v.quant_gemm = true;
  }
  std::vector<CudaCall> plan() {
    CudaStepView s;
    s.T = v.in_rows[0];
    StatusOr<CudaLaunchPlan> p = planCudaLaunch(v, s);
    EXPECT_TRUE(p.isOk()) << p.status().toString();
    return p.isOk() ? p->calls : std::vector<CudaCall>{};
  }
};

ds_cuda_gemm_q_params gemmParams(const CudaCall& c) {
  ds_cuda_gemm_q_params p{};
  EXPECT_EQ(c.params.size(), sizeof p);
  if (c.params.size() == sizeof p) std::memcpy(&p, c.params.data(), sizeof p);
  return p;
}

TEST(CudaQuantGemm, PrefillRowsTakeOneGemmDecodeRowsGemv) {
  LinearCase c(DType::I4, 40, 512, 200);
  c.v.weight_group[0] = 64;
  c.v.weight_zero[0] = 0x500000;
  std::vector<CudaCall> calls = c.plan();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].symbol, "ds_gemm_q_i4_abf16");
  EXPECT_EQ(calls[0].grid[0], 4u);  // ceil(200 / 64) column tiles
  EXPECT_EQ(calls[0].grid[1], 1u);  // ceil(40 / 64) row tiles
  EXPECT_EQ(calls[0].block[0], 128u);
  const ds_cuda_gemm_q_params p = gemmParams(calls[0]);
  EXPECT_EQ(p.M, 40);
  EXPECT_EQ(p.N, 200);
  EXPECT_EQ(p.K, 512);
  EXPECT_EQ(p.group_size, 64);
  EXPECT_EQ(p.x, 0x100000u);
  EXPECT_EQ(p.w, 0x300000u);
  EXPECT_EQ(p.scale, 0x400000u);
  EXPECT_EQ(p.zero, 0x500000u);
  EXPECT_EQ(p.y, 0x200000u);
  EXPECT_EQ(p.wtype, DS_CUDA_GEMM_Q_I4);
  // 16 rows (decode batches): GEMV; a library without the GEMM (an older artifact): GEMV passes.
  c.v.in_rows[0] = c.v.out_rows[0] = 16;
  calls = c.plan();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].symbol.rfind("ds_gemv_wi4_", 0), 0u) << calls[0].symbol;
  c.v.in_rows[0] = c.v.out_rows[0] = 40;
  c.v.quant_gemm = false;
  calls = c.plan();
  ASSERT_EQ(calls.size(), 3u);  // ceil(40 / 16)
  for (const CudaCall& k : calls) EXPECT_EQ(k.symbol.rfind("ds_gemv_wi4_", 0), 0u) << k.symbol;
}

TEST(CudaQuantGemm, EightBitWeightsKeepTheirScaleBlocks) {
  LinearCase fp8(DType::F8E4M3, 100, 256, 192);
  fp8.v.weight_block_scale[0] = 0x600000;
  fp8.v.weight_block[0][0] = 128, fp8.v.weight_block[0][1] = 128;
  std::vector<CudaCall> calls = fp8.plan();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].symbol, "ds_gemm_q_fp8_abf16");
  ds_cuda_gemm_q_params p = gemmParams(calls[0]);
  EXPECT_EQ(p.scale, 0x600000u);
  EXPECT_EQ(p.block_rows, 128);
  EXPECT_EQ(p.block_cols, 128);
  EXPECT_EQ(calls[0].grid[1], 2u);  // 100 rows: two row tiles
  LinearCase i8(DType::I8, 20, 176, 64);  // per channel: blocks of 1 x K; K % 32 == 16 is taken
  calls = i8.plan();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].symbol, "ds_gemm_q_i8_abf16");
  p = gemmParams(calls[0]);
  EXPECT_EQ(p.block_rows, 1);
  EXPECT_EQ(p.block_cols, 176);
  // f32 activations stay on the GEMV passes (the GEMM is bf16 x bf16 on the tensor cores).
  i8.x.dtype = i8.y.dtype = DType::F32;
  calls = i8.plan();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].symbol.rfind("ds_gemv_wi8_af32", 0), 0u) << calls[0].symbol;
}

TEST(CudaQuantGemm, Fp8ActivationsTakeTheFp8TensorCores) {
  // --quant-act fp8 on a GPU with FP8 tensor cores (the executable sets fp8_act): prefill GEMMs
  // over FP8 weights whose K is whole 128-blocks run FP8 x FP8; others keep the bf16 GEMM.
  LinearCase c(DType::F8E4M3, 100, 256, 192);
  c.v.weight_block_scale[0] = 0x600000;
  c.v.weight_block[0][0] = 128, c.v.weight_block[0][1] = 128;
  c.v.fp8_act = true;
  std::vector<CudaCall> calls = c.plan();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].symbol, "ds_gemm_fp8mma_abf16");
  const ds_cuda_gemm_q_params p = gemmParams(calls[0]);
  EXPECT_EQ(p.wtype, DS_CUDA_GEMM_Q_FP8);
  EXPECT_EQ(p.scale, 0x600000u);
  EXPECT_EQ(p.K, 256);
  c.v.fp8_act = false;
  calls = c.plan();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].symbol, "ds_gemm_q_fp8_abf16");
  LinearCase odd(DType::F8E4M3, 100, 176, 64);  // per channel, K = 176: not whole 128-blocks
  odd.v.fp8_act = true;
  calls = odd.plan();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].symbol, "ds_gemm_q_fp8_abf16");
  LinearCase i8(DType::I8, 100, 256, 64);  // not FP8 weights: no FP8 activations
  i8.v.fp8_act = true;
  calls = i8.plan();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].symbol, "ds_gemm_q_i8_abf16");
  // Decode rows keep the GEMV (bf16 activations).
  c.v.fp8_act = true;
  c.v.in_rows[0] = c.v.out_rows[0] = 4;
  calls = c.plan();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].symbol.rfind("ds_gemv_wfp8_", 0), 0u) << calls[0].symbol;
}

TEST(CudaQuantGemm, PlanRefusesWhatTheKernelCannotWalk) {
  ds_cuda_gemm_q_params p{};
  p.x = 0x1000, p.w = 0x2000, p.scale = 0x3000, p.y = 0x4000;
  p.M = 40, p.N = 64, p.K = 512, p.x_stride = 512, p.y_stride = 64;
  p.wtype = DS_CUDA_GEMM_Q_I4;
  p.group_size = 64;
  ds_cuda_plan plan;
  ASSERT_EQ(ds_cuda_plan_gemm_q(&p, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_gemm_q_i4_abf16");
  auto refused = [&](auto change, const char* why) {
    ds_cuda_gemm_q_params q = p;
    change(q);
    const char* e = ds_cuda_plan_gemm_q(&q, &plan);
    ASSERT_NE(e, nullptr) << why;
    EXPECT_NE(std::string(e).find(why), std::string::npos) << e;
  };
  refused([](auto& q) { q.K = 520; q.x_stride = 520; }, "K must be a multiple of 16");
  refused([](auto& q) { q.x_stride = 516; }, "x_stride");
  refused([](auto& q) { q.group_size = 24; }, "int4 groups must be a multiple of 16");
  refused([](auto& q) { q.x = 0x1008; }, "misaligned");
  refused([](auto& q) { q.wtype = DS_CUDA_GEMM_Q_FP8; q.block_rows = 128; q.block_cols = 8; }, "block_cols a multiple of 16");
  refused([](auto& q) { q.wtype = DS_CUDA_GEMM_Q_I8; q.block_rows = 1; q.block_cols = 512; q.zero = 0x5000; }, "no zero points");
  refused([](auto& q) { q.wtype = 7; }, "unknown weight type");
  // FP8 x FP8: whole 128-column blocks of K and of the weight scales.
  ds_cuda_gemm_q_params f = p;
  f.wtype = DS_CUDA_GEMM_Q_FP8;
  f.block_rows = 128, f.block_cols = 128;
  ASSERT_EQ(ds_cuda_plan_gemm_fp8mma(&f, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_gemm_fp8mma_abf16");
  f.K = 192, f.x_stride = 192;
  EXPECT_NE(std::string(ds_cuda_plan_gemm_fp8mma(&f, &plan)).find("multiple of 128"), std::string::npos);
  f.K = 512, f.x_stride = 512, f.block_cols = 64;
  EXPECT_NE(std::string(ds_cuda_plan_gemm_fp8mma(&f, &plan)).find("whole 128-column blocks"), std::string::npos);
  f.block_cols = 128, f.wtype = DS_CUDA_GEMM_Q_I8;
  EXPECT_NE(std::string(ds_cuda_plan_gemm_fp8mma(&f, &plan)).find("FP8 weights only"), std::string::npos);
}

TEST(CudaQuantGemm, ExpertsFp8TensorCorePlan) {
  // --quant-act fp8 experts: ds_moe_gemm's row tiles; a SwiGLU tile holds 32 gate and 32 up outputs.
  ds_cuda_moe_gemv_params g{};
  g.x = 0x1000, g.w = 0x2000, g.w2 = 0x3000, g.w_scale = 0x4000, g.w2_scale = 0x5000, g.y = 0x6000;
  g.expert_start = 0x7000, g.active = 0x8000, g.row_token = 0x9000;
  g.N = 2048, g.K = 7168, g.x_stride = 7168, g.y_stride = 2048;
  g.num_local = 32, g.max_rows = 8 * 500;
  g.gather = g.swiglu = 1;
  g.act_dtype = DS_CUDA_BF16;
  g.weight_dtype = DS_CUDA_FP8_E4M3;
  ds_cuda_plan plan, tiles;
  ASSERT_EQ(ds_cuda_plan_moe_gemm(&g, &tiles), nullptr);
  ASSERT_EQ(ds_cuda_plan_moe_gemm_fp8mma(&g, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_moe_gemm_wfp8_afp8_swiglu");
  EXPECT_EQ(plan.launches[0].grid[0], 2048u / 32);
  EXPECT_EQ(plan.launches[0].grid[1], tiles.launches[0].grid[1]);  // ceil(4000 / 64) + 32
  EXPECT_EQ(plan.launches[0].grid[1], 63u + 32u);
  g.gather = g.swiglu = 0, g.w2 = g.w2_scale = 0, g.N = 7168, g.K = 2048, g.x_stride = 2048, g.y_stride = 7168;
  ASSERT_EQ(ds_cuda_plan_moe_gemm_fp8mma(&g, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_moe_gemm_wfp8_afp8_plain");
  EXPECT_EQ(plan.launches[0].grid[0], 7168u / 64);
  g.K = 2112, g.x_stride = 2112;  // not whole 128-blocks
  EXPECT_NE(std::string(ds_cuda_plan_moe_gemm_fp8mma(&g, &plan)).find("multiple of 128"), std::string::npos);
  g.K = 2048, g.x_stride = 2048, g.weight_dtype = DS_CUDA_BF16, g.w_scale = 0;
  EXPECT_NE(std::string(ds_cuda_plan_moe_gemm_fp8mma(&g, &plan)).find("FP8 weights only"), std::string::npos);
}

}  // namespace
}  // namespace ds::hal::cuda
