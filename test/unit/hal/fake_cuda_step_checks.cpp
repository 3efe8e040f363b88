// checkStep (fake_cuda_step_checks.h): the launch-order and device-range checks of a fake-driver
// step, for the dense, quantized, MLA and MoE launches of the library and generated kernels.
#include "fake_cuda_step_checks.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "ds_cuda_kernels.h"
#include "fake_cuda_client.h"

namespace ds::test {
namespace {

bool startsWith(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

std::set<std::string> librarySymbols() {
  std::set<std::string> s;
  for (const char* const* p = ds_cuda_kernel_symbols(); *p; ++p) s.insert(*p);
  return s;
}

// A generated kernel's parameters are memref descriptors, one 8-byte word each: allocated,
// aligned, offset, sizes[r], strides[r] (docs/codegen.md). A descriptor starts where a word is a
// device address and the next one the same address; every descriptor's extent (in elements of at
// least 2 bytes) must lie inside the allocation it points into.
void checkDescriptors(const fake_cuda_launch_t& l) {
  const FakeCuda& f = FakeCuda::get();
  std::vector<int64_t> w(static_cast<size_t>(l.num_params));
  ASSERT_EQ(l.param_bytes, w.size() * 8);
  std::memcpy(w.data(), l.params, l.param_bytes);
  std::vector<size_t> starts;
  for (size_t i = 0; i + 2 < w.size(); ++i)
    if (w[i] != 0 && w[i] == w[i + 1] && f.is_device_range(static_cast<uint64_t>(w[i]), 1)) {
      starts.push_back(i);
      i += 2;
    }
  ASSERT_FALSE(starts.empty());
  ASSERT_EQ(starts[0], 0u);
  starts.push_back(w.size());
  for (size_t d = 0; d + 1 < starts.size(); ++d) {
    const size_t at = starts[d], words = starts[d + 1] - at;
    ASSERT_EQ((words - 3) % 2, 0u) << "descriptor " << d;
    const size_t rank = (words - 3) / 2;
    int64_t last = w[at + 2];
    for (size_t k = 0; k < rank; ++k) {
      ASSERT_GT(w[at + 3 + k], 0) << "descriptor " << d << " size " << k;
      last += (w[at + 3 + k] - 1) * w[at + 3 + rank + k];
    }
    EXPECT_TRUE(f.is_device_range(static_cast<uint64_t>(w[at + 1]), static_cast<uint64_t>(last + 1) * 2))
        << "descriptor " << d << " of rank " << rank << " reaches element " << last;
  }
}

// A GQA launch's cache: K then V regions of one layer's buffer, each in one live allocation;
// quantized: f32 scales then one-byte codes per vector, the two regions back to back and together
// artifact::kvBytesPerSlot (the plan's bytes_per_slot) per slot.
void checkGqaCache(const hal::StepPlan& plan, const ds_cuda_paged_kv& kv, int32_t act_dtype) {
  const FakeCuda& f = FakeCuda::get();
  const bool quant = kv.dtype == DS_CUDA_KV_INT8 || kv.dtype == DS_CUDA_FP8_E4M3;
  EXPECT_EQ(quant, plan.kv.dtype == hal::DType::I8 || plan.kv.dtype == hal::DType::F8E4M3);
  if (quant) EXPECT_EQ(kv.dtype, plan.kv.dtype == hal::DType::I8 ? DS_CUDA_KV_INT8 : DS_CUDA_FP8_E4M3);
  const uint64_t act = (quant ? act_dtype : kv.dtype) == DS_CUDA_BF16 ? 2 : 4;
  const uint64_t vectors = uint64_t(kv.num_blocks) * kv.block_size * kv.kv_heads;
  const uint64_t region = vectors * (quant ? 4 + uint64_t(kv.head_dim) : kv.head_dim * act);
  EXPECT_TRUE(f.is_device_range(kv.k_cache, region)) << "k cache";
  EXPECT_TRUE(f.is_device_range(kv.v_cache, region)) << "v cache";
  EXPECT_EQ(kv.v_cache, kv.k_cache + region);
  EXPECT_EQ(2 * region, uint64_t(kv.num_blocks) * kv.block_size * plan.kv.bytes_per_slot) << "bytes per slot";
  EXPECT_TRUE(f.is_device_range(kv.block_table, 4)) << "block table";
}

// An MLA launch's latent cache: one layer's buffer in one live allocation, artifact::kvBytesPerSlot
// (the plan's bytes_per_slot) per slot: float caches rank + rope elements of the activations'
// dtype; int8 / fp8 caches f32 scales [slots, 2] then one-byte codes [slots, rank + rope].
void checkLatentCache(const hal::StepPlan& plan, const ds_cuda_paged_latent& kv, uint64_t act) {
  const FakeCuda& f = FakeCuda::get();
  const bool int8 = plan.kv.dtype == hal::DType::I8, fp8 = plan.kv.dtype == hal::DType::F8E4M3;
  EXPECT_EQ(kv.dtype, int8  ? int32_t{DS_CUDA_KV_INT8}
                      : fp8 ? int32_t{DS_CUDA_FP8_E4M3}
                            : int32_t(act == 2 ? DS_CUDA_BF16 : DS_CUDA_F32));
  const uint64_t L = uint64_t(kv.rank) + kv.rope_dim;
  const uint64_t slot_bytes = int8 || fp8 ? L + 2 * 4 : L * act;
  EXPECT_EQ(slot_bytes, plan.kv.bytes_per_slot) << "bytes per slot";
  EXPECT_TRUE(f.is_device_range(kv.cache, uint64_t(kv.num_blocks) * kv.block_size * slot_bytes)) << "latent cache";
  EXPECT_TRUE(f.is_device_range(kv.block_table, uint64_t(kv.max_blocks_per_seq) * 4)) << "block table";
}

// Checks one step's launches: every name a library symbol or a generated entry of the plan (in
// plan order), embed first, KV writes each followed by attention, logits last, and the GEMV
// params' device ranges inside live allocations.
}  // namespace

void checkStep(const hal::StepPlan& plan, const std::vector<std::string>& names, size_t first,
               const char* dtype, const char* attention) {
  ASSERT_FALSE(names.empty());
  const std::set<std::string> lib = librarySymbols();
  std::vector<std::string> want_generated, got_generated;
  for (const hal::LaunchDesc& l : plan.launches)
    if (l.code_object >= 0 && !l.code_symbol.empty()) want_generated.push_back(l.code_symbol);
  for (const std::string& n : names)
    if (!lib.count(n)) got_generated.push_back(n);
  EXPECT_EQ(got_generated, want_generated) << "generated kernels out of plan order";
  EXPECT_EQ(names.front(), std::string("ds_embed_") + dtype);
  EXPECT_TRUE(startsWith(names.back(), "ds_gemv_")) << names.back();
  size_t kv_writes = 0;
  // GQA: ds_kv_write then attention; MLA: ds_mla_kv_write then the absorbed-query projection.
  const bool mla = plan.kv.kind == hal::KVKind::MLA;
  const std::string write = mla ? "ds_mla_kv_write_" : "ds_kv_write_";
  const char* next = mla ? "ds_mla_absorb_" : attention;
  for (size_t i = 0; i < names.size(); ++i) {
    if (!startsWith(names[i], write.c_str())) continue;
    ++kv_writes;
    // Quantized caches have writers of their own, named by the activations' dtype.
    const bool int8 = plan.kv.dtype == hal::DType::I8, fp8 = plan.kv.dtype == hal::DType::F8E4M3;
    EXPECT_EQ(names[i], write + (int8 ? std::string("i8_a") : fp8 ? std::string("fp8_a") : std::string()) + dtype);
    ASSERT_LT(i + 1, names.size());
    EXPECT_TRUE(startsWith(names[i + 1], next)) << names[i + 1];
  }
  EXPECT_EQ(static_cast<int64_t>(kv_writes), plan.kv.num_layers);
  const FakeCuda& f = FakeCuda::get();
  for (size_t i = first; i < f.launch_count(); ++i) {
    const fake_cuda_launch_t l = f.launch(i);
    SCOPED_TRACE(l.name);
    ASSERT_GE(l.num_params, 1) << "the fake read the kernel's parameter layout";
    if (!lib.count(l.name)) {
      checkDescriptors(l);
      continue;
    }
    ASSERT_EQ(l.num_params, 1);
    if (startsWith(l.name, "ds_gemv_wi4_") || startsWith(l.name, "ds_gemv_any_wi4_")) {
      ds_cuda_gemv_i4_params g;
      ASSERT_EQ(l.param_bytes, sizeof g);
      std::memcpy(&g, l.params, sizeof g);
      const uint64_t act = g.act_dtype == DS_CUDA_BF16 ? 2 : 4;
      const uint64_t groups = (uint64_t(g.K) + g.group_size - 1) / g.group_size;
      EXPECT_TRUE(f.is_device_range(g.x, (uint64_t(g.M - 1) * g.x_stride + g.K) * act)) << "x";
      EXPECT_TRUE(f.is_device_range(g.w, uint64_t(g.N) * g.K / 2)) << "w";
      EXPECT_TRUE(f.is_device_range(g.scale, uint64_t(g.N) * groups * 4)) << "scale";
      if (g.zero) {
        EXPECT_TRUE(f.is_device_range(g.zero, uint64_t(g.N) * groups * 4)) << "zero";
      }
      EXPECT_TRUE(f.is_device_range(g.y, (uint64_t(g.M - 1) * g.y_stride + g.N) * act)) << "y";
      continue;
    }
    if (startsWith(l.name, "ds_gemm_q_")) {  // prefill over quantized weights: x, codes, scales, y
      ds_cuda_gemm_q_params g;
      ASSERT_EQ(l.param_bytes, sizeof g);
      std::memcpy(&g, l.params, sizeof g);
      EXPECT_TRUE(f.is_device_range(g.x, (uint64_t(g.M - 1) * g.x_stride + g.K) * 2)) << "x";
      uint64_t scales = 0;
      if (g.wtype == DS_CUDA_GEMM_Q_I4) {
        EXPECT_TRUE(f.is_device_range(g.w, uint64_t(g.N) * g.K / 2)) << "w";
        scales = uint64_t(g.N) * ((uint64_t(g.K) + g.group_size - 1) / g.group_size);
      } else {
        EXPECT_TRUE(f.is_device_range(g.w, uint64_t(g.N) * g.K)) << "w";
        scales = ((uint64_t(g.N) + g.block_rows - 1) / g.block_rows) * ((uint64_t(g.K) + g.block_cols - 1) / g.block_cols);
      }
      EXPECT_TRUE(f.is_device_range(g.scale, scales * 4)) << "scale";
      if (g.zero) {
        EXPECT_TRUE(f.is_device_range(g.zero, scales * 4)) << "zero";
      }
      if (g.bias) {
        EXPECT_TRUE(f.is_device_range(g.bias, uint64_t(g.N) * 4)) << "bias";
      }
      EXPECT_TRUE(f.is_device_range(g.y, (uint64_t(g.M - 1) * g.y_stride + g.N) * (g.y_f32 ? 4 : 2))) << "y";
      continue;
    }
    if (startsWith(l.name, "ds_gemv_wfp8_") || startsWith(l.name, "ds_gemv_wi8_")) {  // codes, scales
      ds_cuda_gemv_fp8_params g;
      ASSERT_EQ(l.param_bytes, sizeof g);
      std::memcpy(&g, l.params, sizeof g);
      const uint64_t act = g.act_dtype == DS_CUDA_BF16 ? 2 : 4;
      const uint64_t nb = (uint64_t(g.N) + g.block_rows - 1) / g.block_rows;
      const uint64_t kb = (uint64_t(g.K) + g.block_cols - 1) / g.block_cols;
      EXPECT_TRUE(f.is_device_range(g.w, uint64_t(g.N) * g.K)) << "w";
      EXPECT_TRUE(f.is_device_range(g.scale, nb * kb * 4)) << "scale";
      EXPECT_TRUE(f.is_device_range(g.y, (uint64_t(g.M - 1) * g.y_stride + g.N) * act)) << "y";
      continue;
    }
    if (startsWith(l.name, "ds_moe_gemv_") || startsWith(l.name, "ds_moe_gemm_")) {  // expert weights, routed rows
      ds_cuda_moe_gemv_params g;
      ASSERT_EQ(l.param_bytes, sizeof g);
      std::memcpy(&g, l.params, sizeof g);
      const uint64_t act = g.act_dtype == DS_CUDA_BF16 ? 2 : 4;
      const uint64_t wb = g.weight_dtype == DS_CUDA_FP8_E4M3 ? 1 : 2;
      EXPECT_TRUE(f.is_device_range(g.w, uint64_t(g.num_local) * g.N * g.K * wb)) << "w";
      if (g.swiglu) {
        EXPECT_TRUE(f.is_device_range(g.w2, uint64_t(g.num_local) * g.N * g.K * wb)) << "w2";
      }
      if (wb == 1) {
        EXPECT_TRUE(f.is_device_range(g.w_scale, uint64_t(g.num_local) * ((g.N + 127) / 128) *
                                                      ((g.K + 127) / 128) * 4))
            << "w_scale";
      }
      EXPECT_TRUE(f.is_device_range(g.y, uint64_t(g.max_rows) * g.y_stride * act)) << "y";
      EXPECT_TRUE(f.is_device_range(g.active, uint64_t(g.num_local + 1) * 4)) << "active";
      continue;
    }
    if (startsWith(l.name, "ds_mla_attend_") || startsWith(l.name, "ds_mla_out_") ||
        startsWith(l.name, "ds_mla_prefill_")) {
      ds_cuda_mla_decode_params m;
      ASSERT_EQ(l.param_bytes, sizeof m);
      std::memcpy(&m, l.params, sizeof m);
      const uint64_t act = m.act_dtype == DS_CUDA_BF16 ? 2 : 4;
      const uint64_t wb = m.weight_dtype == DS_CUDA_BF16 ? 2 : m.weight_dtype == DS_CUDA_FP8_E4M3 ? 1 : 4;
      const uint64_t TH = uint64_t(m.num_tokens) * m.heads, R = uint64_t(m.kv.rank);
      // The split-KV plan covers the step's context (these steps attend to 5 and more positions).
      EXPECT_GT(m.max_context, 4) << "MLA planned for a context of " << m.max_context;
      if (m.seq_q_start) {  // the prefill plan: no splits, the sequences' row ranges
        EXPECT_EQ(m.splits, 1);
        EXPECT_GT(m.max_q_len, 1);
        EXPECT_TRUE(f.is_device_range(m.seq_q_start, uint64_t(m.num_seqs + 1) * 4)) << "seq_q_start";
      } else {
        EXPECT_GE(int64_t(m.splits) * m.split_len, m.max_context);
      }
      EXPECT_TRUE(f.is_device_range(m.kv_b, uint64_t(m.heads) * (m.nope_dim + m.v_dim) * R * wb)) << "kv_b";
      EXPECT_TRUE(f.is_device_range(m.out, TH * m.v_dim * act)) << "out";
      EXPECT_TRUE(f.is_device_range(m.workspace, 4 * (2 * TH * R + (m.splits > 1 ? TH * m.splits * (R + 1) : 0))))
          << "workspace";
      checkLatentCache(plan, m.kv, act);
      continue;
    }
    if (startsWith(l.name, "ds_mla_kv_write_")) {  // the step's c_kv / k_rope rows and the cache
      ds_cuda_mla_kv_write_params w;
      ASSERT_EQ(l.param_bytes, sizeof w);
      std::memcpy(&w, l.params, sizeof w);
      const bool quant = w.kv.dtype == DS_CUDA_KV_INT8 || w.kv.dtype == DS_CUDA_FP8_E4M3;
      const uint64_t act = (quant ? w.act_dtype : w.kv.dtype) == DS_CUDA_BF16 ? 2 : 4;
      EXPECT_TRUE(f.is_device_range(w.c_kv, (uint64_t(w.num_tokens - 1) * w.c_stride + w.kv.rank) * act)) << "c_kv";
      EXPECT_TRUE(f.is_device_range(w.k_rope, (uint64_t(w.num_tokens - 1) * w.k_stride + w.kv.rope_dim) * act))
          << "k_rope";
      checkLatentCache(plan, w.kv, act);
      continue;
    }
    if (startsWith(l.name, "ds_kv_write_")) {  // k, v rows and the cache layout
      ds_cuda_kv_write_params w;
      ASSERT_EQ(l.param_bytes, sizeof w);
      std::memcpy(&w, l.params, sizeof w);
      checkGqaCache(plan, w.kv, w.act_dtype);
      const bool quant = w.kv.dtype == DS_CUDA_KV_INT8 || w.kv.dtype == DS_CUDA_FP8_E4M3;
      const uint64_t act = (quant ? w.act_dtype : w.kv.dtype) == DS_CUDA_BF16 ? 2 : 4;
      const uint64_t rows = uint64_t(w.num_tokens) * w.kv.kv_heads * w.kv.head_dim * act;
      EXPECT_TRUE(f.is_device_range(w.k, rows)) << "k";
      EXPECT_TRUE(f.is_device_range(w.v, rows)) << "v";
      continue;
    }
    if (startsWith(l.name, "ds_attn_decode_")) {
      ds_cuda_attn_decode_params d;
      ASSERT_EQ(l.param_bytes, sizeof d);
      std::memcpy(&d, l.params, sizeof d);
      checkGqaCache(plan, d.kv, d.act_dtype);
      continue;
    }
    if (startsWith(l.name, "ds_attn_prefill_") || startsWith(l.name, "ds_attn_small_")) {
      ds_cuda_attn_prefill_params a;
      ASSERT_EQ(l.param_bytes, sizeof a);
      std::memcpy(&a, l.params, sizeof a);
      checkGqaCache(plan, a.kv, a.act_dtype);
      EXPECT_TRUE(f.is_device_range(a.seq_q_start, uint64_t(a.num_seqs + 1) * 4)) << "seq_q_start";
      continue;
    }
    if (!startsWith(l.name, "ds_gemv_w") && !startsWith(l.name, "ds_gemv_any_")) continue;
    ds_cuda_gemv_params g;
    ASSERT_EQ(l.param_bytes, sizeof g);
    std::memcpy(&g, l.params, sizeof g);
    const uint64_t act = g.act_dtype == DS_CUDA_BF16 ? 2 : 4, wt = g.weight_dtype == DS_CUDA_BF16 ? 2 : 4;
    const uint64_t yt = g.y_f32 ? 4 : act;
    EXPECT_TRUE(f.is_device_range(g.x, (uint64_t(g.M - 1) * g.x_stride + g.K) * act)) << "x";
    EXPECT_TRUE(f.is_device_range(g.w, uint64_t(g.N) * g.K * wt)) << "w";
    EXPECT_TRUE(f.is_device_range(g.y, (uint64_t(g.M - 1) * g.y_stride + g.N) * yt))
        << "y: M " << g.M << " N " << g.N << " K " << g.K << " y_stride " << g.y_stride;
    if (g.bias) {
      EXPECT_TRUE(f.is_device_range(g.bias, uint64_t(g.N) * 4)) << "bias";
    }
    if (g.splits > 1) {
      EXPECT_TRUE(f.is_device_range(g.workspace, uint64_t(g.splits) * g.M * g.N * 4)) << "workspace";
    }
  }
}


}  // namespace ds::test
