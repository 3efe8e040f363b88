// Launch planning of the MLA decode and prefill kernels (include/ds_cuda_mla.h): validation,
// split-KV choice and workspace size; pure functions of the params and the device limits.
#include <algorithm>
#include <cstring>

#include "ds_cuda_kernels.h"
#include "launch_common.h"

using namespace ds_cuda_plan_util;

namespace {

const char* checkLatent(const ds_cuda_paged_latent& kv) {
  if (!validDtype(kv.dtype) && kv.dtype != DS_CUDA_KV_INT8 && kv.dtype != DS_CUDA_FP8_E4M3)
    return "mla: kv.dtype not f32, bf16, int8 or fp8_e4m3";
  if (!kv.cache || !kv.positions || !kv.token_seq || !kv.block_table)
    return "mla: kv cache, positions, token_seq and block_table are required";
  if (kv.rank < 1 || kv.rank > DS_CUDA_MLA_MAX_RANK) return "mla: kv.rank must be in [1, 512]";
  if (kv.rope_dim < 1 || kv.rope_dim > DS_CUDA_MLA_MAX_ROPE) return "mla: kv.rope_dim must be in [1, 64]";
  if (kv.num_blocks < 1 || kv.block_size < 1 || kv.max_blocks_per_seq < 1)
    return "mla: num_blocks, block_size and max_blocks_per_seq must be >= 1";
  return nullptr;
}

// The checks and kernel names shared by the decode and the prefill plans.
struct MlaKernels {
  const char *absorb, *out, *attend, *prefill;
};
const char* checkMla(const ds_cuda_mla_decode_params* p, MlaKernels* k) {
  if (const char* e = checkLatent(p->kv)) return e;
  const bool fp8 = p->weight_dtype == DS_CUDA_FP8_E4M3;
  if (!validDtype(p->act_dtype) || !(validDtype(p->weight_dtype) || fp8))
    return "mla_decode: act_dtype must be f32 or bf16, weight_dtype f32, bf16 or fp8_e4m3";
  if (fp8 && (!p->kv_b_scale || p->block_rows < 1 || p->block_cols < 1))
    return "mla_decode: FP8 kv_b needs its block scales and block shape";
  const bool i8 = p->kv.dtype == DS_CUDA_KV_INT8, f8 = p->kv.dtype == DS_CUDA_FP8_E4M3;
  if (!i8 && !f8 && p->act_dtype != p->kv.dtype) return "mla_decode: the latent cache must have the act dtype";
  if (p->act_dtype == DS_CUDA_BF16 && p->weight_dtype == DS_CUDA_F32)
    return "mla_decode: f32 kv_b with bf16 activations is not built";
  if (p->num_tokens < 1 || p->heads < 1) return "mla_decode: num_tokens and heads must be >= 1";
  if (p->nope_dim < 1 || p->nope_dim > 256 || p->v_dim < 1)
    return "mla_decode: nope_dim must be in [1, 256] and v_dim >= 1";
  if (!p->q_nope || !p->q_rope || !p->kv_b || !p->out) return "mla_decode: q_nope, q_rope, kv_b and out are required";
  const bool wbf = p->weight_dtype == DS_CUDA_BF16;
  const bool abf = p->act_dtype == DS_CUDA_BF16;
  k->absorb = fp8   ? (abf ? "ds_mla_absorb_abf16_wfp8" : "ds_mla_absorb_af32_wfp8")
              : abf ? "ds_mla_absorb_abf16_wbf16"
              : wbf ? "ds_mla_absorb_af32_wbf16"
                    : "ds_mla_absorb_af32_wf32";
  k->out = fp8   ? (abf ? "ds_mla_out_abf16_wfp8" : "ds_mla_out_af32_wfp8")
           : abf ? "ds_mla_out_abf16_wbf16"
           : wbf ? "ds_mla_out_af32_wbf16"
                 : "ds_mla_out_af32_wf32";
  k->attend = i8   ? (abf ? "ds_mla_attend_i8_abf16" : "ds_mla_attend_i8_af32")
              : f8 ? (abf ? "ds_mla_attend_fp8_abf16" : "ds_mla_attend_fp8_af32")
                   : (abf ? "ds_mla_attend_bf16" : "ds_mla_attend_f32");
  k->prefill = i8   ? (abf ? "ds_mla_prefill_i8_abf16" : "ds_mla_prefill_i8_af32")
               : f8 ? (abf ? "ds_mla_prefill_fp8_abf16" : "ds_mla_prefill_fp8_af32")
                    : (abf ? "ds_mla_prefill_bf16_abf16" : "ds_mla_prefill_f32_af32");
  return nullptr;
}

}  // namespace

extern "C" {

const char* ds_cuda_plan_mla_kv_write(const ds_cuda_mla_kv_write_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (const char* e = checkLatent(p->kv)) return e;
  if (p->num_tokens < 1) return "mla_kv_write: num_tokens must be >= 1";
  if (!p->c_kv || !p->k_rope) return "mla_kv_write: c_kv and k_rope are required";
  if (p->c_stride < p->kv.rank || p->k_stride < p->kv.rope_dim)
    return "mla_kv_write: strides must cover rank and rope_dim";
  const bool i8 = p->kv.dtype == DS_CUDA_KV_INT8, f8 = p->kv.dtype == DS_CUDA_FP8_E4M3;
  if ((i8 || f8) && !validDtype(p->act_dtype)) return "mla_kv_write: act_dtype not f32 or bf16";
  const bool abf = p->act_dtype == DS_CUDA_BF16;
  const char* sym = i8   ? (abf ? "ds_mla_kv_write_i8_abf16" : "ds_mla_kv_write_i8_af32")
                    : f8 ? (abf ? "ds_mla_kv_write_fp8_abf16" : "ds_mla_kv_write_fp8_af32")
                         : (p->kv.dtype == DS_CUDA_BF16 ? "ds_mla_kv_write_bf16" : "ds_mla_kv_write_f32");
  setLaunch(out->launches[0], sym, p->num_tokens, 1, 1, 128);
  out->num_launches = 1;
  return nullptr;
}

const char* ds_cuda_plan_mla_decode(ds_cuda_mla_decode_params* p, const ds_cuda_device_limits* dev,
                                    ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (!dev || dev->sm_count < 1) return "device limits: sm_count must be >= 1";
  MlaKernels k;
  if (const char* e = checkMla(p, &k)) return e;
  if (p->max_context < 1) return "mla_decode: max_context must be >= 1";
  const int64_t T = p->num_tokens, H = p->heads, R = p->kv.rank;
  const int64_t headBlocks = ceilDiv(H, DS_CUDA_MLA_HEADS_PER_BLOCK);
  // Split the context when (token, head-block) blocks cannot fill the device twice over.
  const int64_t blocks = T * headBlocks;
  int64_t splits = std::clamp<int64_t>(ceilDiv(2 * int64_t{dev->sm_count}, blocks), 1,
                                       std::min<int64_t>(64, ceilDiv(p->max_context, 256)));
  int64_t splitLen = ceilDiv(ceilDiv(p->max_context, splits), DS_CUDA_MLA_TILE) * DS_CUDA_MLA_TILE;
  splits = ceilDiv(p->max_context, splitLen);
  p->splits = static_cast<int32_t>(splits);
  p->split_len = static_cast<int32_t>(splitLen);
  int n = 0;
  setLaunch(out->launches[n++], k.absorb, T, H, 1, 128);
  setLaunch(out->launches[n++], k.attend, T, headBlocks, splits, 256);
  if (splits > 1) setLaunch(out->launches[n++], "ds_mla_combine", T, H, 1, 128);
  setLaunch(out->launches[n++], k.out, T, H, 1, 128);
  out->num_launches = n;
  const uint64_t TH = static_cast<uint64_t>(T * H);
  out->workspace_bytes = 4 * (2 * TH * R + (splits > 1 ? TH * splits * (R + 1) : 0));
  return nullptr;
}

const char* ds_cuda_plan_mla_prefill(ds_cuda_mla_decode_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  MlaKernels k;
  if (const char* e = checkMla(p, &k)) return e;
  if (!p->seq_q_start || p->num_seqs < 1 || p->max_q_len < 1)
    return "mla_prefill: seq_q_start, num_seqs >= 1 and max_q_len >= 1 are required";
  if (p->max_q_len > p->num_tokens) return "mla_prefill: max_q_len exceeds num_tokens";
  const int64_t T = p->num_tokens, H = p->heads, R = p->kv.rank;
  p->splits = 1;
  p->split_len = 0;
  setLaunch(out->launches[0], k.absorb, T, H, 1, 128);
  setLaunch(out->launches[1], k.prefill, ceilDiv(p->max_q_len, DS_CUDA_MLA_PREFILL_TOKENS),
            ceilDiv(H, DS_CUDA_MLA_HEADS_PER_BLOCK), p->num_seqs, 512);
  setLaunch(out->launches[2], k.out, T, H, 1, 128);
  out->num_launches = 3;
  out->workspace_bytes = 4 * 2 * static_cast<uint64_t>(T * H) * R;
  return nullptr;
}

}  // extern "C"
