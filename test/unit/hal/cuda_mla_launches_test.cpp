// The launch builder's mla_attention (hal/cuda/cuda_launches_deepseek.cpp) without a GPU: the
// latent write, then the decode kernels for one token per sequence or the prefill attention for
// steps with several tokens of a sequence (when the library has it), over bf16 / f32 / int8 / fp8
// latent caches, with their parameters.
#include "hal/cuda/cuda_launches.h"

#include "cuda_launch_test_util.h"

#include <gtest/gtest.h>

#include <cstring>

namespace ds::hal::cuda {
namespace {

using K = abi::KernelKind;
using test::buf;
using test::params;
using test::symbols;

// DeepSeek-V2-Lite's attention: 16 heads, rank 512, rope 64, nope 128, v 128; layer 1 of 2.
struct MlaFixture {
  LaunchDesc l;
  BufferDesc qn, qr, ckv, kr, y;
  KVDesc kvd;
  uint64_t layers[2] = {0x1000000, 0x2000000};
  CudaLaunchView v;
  CudaStepView s;
  MlaFixture(DType act, DType cache, int64_t T, int64_t seqs, int64_t max_q) {
    qn = buf({16, 128}, act), qr = buf({16, 64}, act), ckv = buf({512}, act), kr = buf({64}, act);
    y = buf({16, 128}, act);
    l.kind = K::MlaAttention;
    l.sig = abi::signature(K::MlaAttention);
    for (size_t i = 0; i < l.sig->num_inputs; ++i) l.inputs.push_back(static_cast<int>(i));
    for (size_t i = 0; i < l.sig->num_outputs; ++i) l.outputs.push_back(static_cast<int>(10 + i));
    l.weights = {0};
    l.params.layer = 1;
    l.params.heads = 16, l.params.nope_dim = 128, l.params.v_dim = 128;
    l.params.scale = 0.07f;
    const bool quant = cache == DType::I8 || cache == DType::F8E4M3;
    kvd.kind = KVKind::MLA;
    kvd.dtype = cache;
    kvd.num_layers = 2, kvd.block_size = 16, kvd.rank = 512, kvd.rope_dim = 64;
    kvd.bytes_per_slot = quant ? 576 + 8 : 576 * (act == DType::BF16 ? 2 : 4);  // artifact::kvBytesPerSlot
    v.launch = &l;
    const BufferDesc* ins[4] = {&qn, &qr, &ckv, &kr};
    for (int i = 0; i < 4; ++i) v.in[i] = 0x10000 * (i + 1), v.in_desc[i] = ins[i], v.in_rows[i] = T;
    v.out[0] = 0x200000, v.out_desc[0] = &y, v.out_rows[0] = T;
    v.weights[0] = 0x300000;
    v.weight_dtype[0] = act;
    v.weight_shape[0] = {16 * 256, 512};
    v.workspace = 0x900000;
    v.mla_prefill = true;
    s.T = T, s.num_seqs = seqs, s.max_q_len = max_q, s.max_context = 300;
    s.positions = 0x40000, s.token_seq = 0x50000, s.block_table = 0x60000, s.seq_q_start = 0x70000;
    s.max_blocks_per_seq = 20, s.num_kv_blocks = 64;
    s.kv = &kvd;
    s.kv_layers = layers;
  }
};

TEST(CudaMlaLaunches, DecodeStepsKeepTheSplitKvDecode) {
  MlaFixture f(DType::BF16, DType::BF16, 2, 2, 1);
  auto plan = planCudaLaunch(f.v, f.s);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  const std::vector<std::string> got = symbols(*plan);
  ASSERT_GE(got.size(), 4u);
  EXPECT_EQ(got[0], "ds_mla_kv_write_bf16");
  EXPECT_EQ(got[1], "ds_mla_absorb_abf16_wbf16");
  EXPECT_EQ(got[2], "ds_mla_attend_bf16");
  EXPECT_EQ(got.back(), "ds_mla_out_abf16_wbf16");
  auto d = params<ds_cuda_mla_decode_params>(plan->calls[2]);
  EXPECT_EQ(d.seq_q_start, 0u) << "the decode plan reads no row ranges";
  EXPECT_EQ(d.max_context, 300);
  EXPECT_EQ(d.kv.cache, f.layers[1]);
}

TEST(CudaMlaLaunches, PrefillStepsTakeThePrefillAttention) {
  struct Case {
    DType act, cache;
    const char *write, *attend;
    int32_t kv_dtype;
  };
  for (const Case& c : {Case{DType::BF16, DType::BF16, "ds_mla_kv_write_bf16", "ds_mla_prefill_bf16_abf16", DS_CUDA_BF16},
                        Case{DType::F32, DType::F32, "ds_mla_kv_write_f32", "ds_mla_prefill_f32_af32", DS_CUDA_F32},
                        Case{DType::BF16, DType::I8, "ds_mla_kv_write_i8_abf16", "ds_mla_prefill_i8_abf16", DS_CUDA_KV_INT8},
                        Case{DType::F32, DType::I8, "ds_mla_kv_write_i8_af32", "ds_mla_prefill_i8_af32", DS_CUDA_KV_INT8},
                        Case{DType::BF16, DType::F8E4M3, "ds_mla_kv_write_fp8_abf16", "ds_mla_prefill_fp8_abf16",
                             DS_CUDA_FP8_E4M3},
                        Case{DType::F32, DType::F8E4M3, "ds_mla_kv_write_fp8_af32", "ds_mla_prefill_fp8_af32",
                             DS_CUDA_FP8_E4M3}}) {
    SCOPED_TRACE(c.attend);
    MlaFixture f(c.act, c.cache, 45, 2, 40);  // 40 + 5 tokens
    auto plan = planCudaLaunch(f.v, f.s);
    ASSERT_TRUE(plan.isOk()) << plan.status().message();
    const std::string a = c.act == DType::BF16 ? "abf16_wbf16" : "af32_wf32";
    ASSERT_EQ(symbols(*plan), (std::vector<std::string>{c.write, "ds_mla_absorb_" + a, c.attend, "ds_mla_out_" + a}));
    auto w = params<ds_cuda_mla_kv_write_params>(plan->calls[0]);
    EXPECT_EQ(w.kv.dtype, c.kv_dtype);
    EXPECT_EQ(w.kv.cache, f.layers[1]);
    EXPECT_EQ(w.c_kv, 0x30000u);
    EXPECT_EQ(w.k_rope, 0x40000u);
    EXPECT_EQ(w.num_tokens, 45);
    EXPECT_EQ(w.act_dtype, c.act == DType::BF16 ? DS_CUDA_BF16 : DS_CUDA_F32);
    auto p = params<ds_cuda_mla_decode_params>(plan->calls[2]);
    EXPECT_EQ(p.kv.dtype, c.kv_dtype);
    EXPECT_EQ(p.seq_q_start, 0x70000u);
    EXPECT_EQ(p.num_seqs, 2);
    EXPECT_EQ(p.max_q_len, 40);
    EXPECT_EQ(p.num_tokens, 45);
    EXPECT_EQ(p.heads, 16);
    EXPECT_EQ(p.splits, 1);
    EXPECT_EQ(p.q_nope, 0x10000u);
    EXPECT_EQ(p.q_rope, 0x20000u);
    EXPECT_EQ(p.out, 0x200000u);
    EXPECT_FLOAT_EQ(p.scale, 0.07f);
    EXPECT_EQ(plan->calls[2].grid[0], 10u);  // ceil(40 / 4) query tiles
    EXPECT_EQ(plan->calls[2].grid[1], 2u);   // 16 heads, 8 per block
    EXPECT_EQ(plan->calls[2].grid[2], 2u);   // sequences
    EXPECT_EQ(plan->calls[2].block[0], 512u);
    EXPECT_EQ(plan->workspace_bytes, 4u * 2 * 45 * 16 * 512);
    // A bytes-per-slot that is not the kernels' layout is refused.
    f.kvd.bytes_per_slot += 4;
    EXPECT_FALSE(planCudaLaunch(f.v, f.s).isOk());
  }
}

// A library without the prefill kernels (embedded by an older ds-compile) keeps the decode ones.
TEST(CudaMlaLaunches, OlderLibrariesKeepTheDecodeKernels) {
  MlaFixture f(DType::BF16, DType::F8E4M3, 40, 1, 40);
  f.v.mla_prefill = false;
  auto plan = planCudaLaunch(f.v, f.s);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  EXPECT_EQ(symbols(*plan)[0], "ds_mla_kv_write_fp8_abf16");
  EXPECT_EQ(symbols(*plan)[2], "ds_mla_attend_fp8_abf16");
  f.v.mla_prefill = true;
  f.s.seq_q_start = 0;
  EXPECT_FALSE(planCudaLaunch(f.v, f.s).isOk()) << "a prefill without its row ranges";
}

}  // namespace
}  // namespace ds::hal::cuda
