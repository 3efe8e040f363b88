// Launch planning of the tensor-core prefill GEMMs (include/ds_cuda_gemm_q.h): validation
// and geometry, pure functions of the params (no CUDA, no device memory).
#include <cstring>

#include "ds_cuda_kernels.h"
#include "launch_common.h"

using namespace ds_cuda_plan_util;

extern "C" {

const char* ds_cuda_plan_gemm_q(const ds_cuda_gemm_q_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (p->M < 1 || p->N < 1 || p->K < 1) return "gemm_q: M, N and K must be >= 1";
  if (p->K % 16) return "gemm_q: K must be a multiple of 16";
  if (p->x_stride < p->K || p->x_stride % 8) return "gemm_q: x_stride must be >= K and a multiple of 8";
  if (p->y_stride < p->N) return "gemm_q: y_stride must be >= N";
  if (p->y_f32 != 0 && p->y_f32 != 1) return "gemm_q: y_f32 must be 0 or 1";
  if (!p->x || !p->w || !p->scale || !p->y) return "gemm_q: x, w, scale and y are required";
  if (!aligned(p->x, 16) || !aligned(p->w, 16) || !aligned(p->scale, 4) || !aligned(p->zero, 4) ||
      !aligned(p->bias, 4) || !aligned(p->y, p->y_f32 ? 4 : 2))
    return "gemm_q: a pointer is misaligned (x and w need 16 bytes)";
  const char* kind = nullptr;
  switch (p->wtype) {
    case DS_CUDA_GEMM_Q_I4:
      if (p->group_size < 16 || p->group_size % 16) return "gemm_q: int4 groups must be a multiple of 16";
      kind = "i4_abf16";
      break;
    case DS_CUDA_GEMM_Q_FP8:
    case DS_CUDA_GEMM_Q_I8:
      if (p->zero) return "gemm_q: 8-bit weights have no zero points";
      if (p->block_rows < 1 || p->block_cols < 16 || p->block_cols % 16)
        return "gemm_q: 8-bit scale blocks need block_rows >= 1 and block_cols a multiple of 16";
      kind = p->wtype == DS_CUDA_GEMM_Q_FP8 ? "fp8_abf16" : "i8_abf16";
      break;
    default:
      return "gemm_q: unknown weight type";
  }
  const char* s = symbol("ds_gemm_q_", kind);
  if (!s) return "gemm_q: no kernel for the weight type";
  setLaunch(out->launches[0], s, ceilDiv(p->N, DS_CUDA_GEMM_Q_TILE_N), ceilDiv(p->M, DS_CUDA_GEMM_Q_TILE_M), 1, 128);
  out->num_launches = 1;
  return nullptr;
}

const char* ds_cuda_plan_gemm_fp8mma(const ds_cuda_gemm_q_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (p->wtype != DS_CUDA_GEMM_Q_FP8) return "gemm_fp8mma: FP8 weights only";
  if (p->K % 128) return "gemm_fp8mma: K must be a multiple of 128 (the activations' scale blocks)";
  if (p->block_cols % 128) return "gemm_fp8mma: weight scale blocks must span whole 128-column blocks";
  ds_cuda_plan q;  // the operands are ds_gemm_q's: its plan checks them
  if (const char* e = ds_cuda_plan_gemm_q(p, &q)) return e;
  setLaunch(out->launches[0], symbol("ds_gemm_fp8mma_", "abf16"), ceilDiv(p->N, DS_CUDA_GEMM_Q_TILE_N),
            ceilDiv(p->M, DS_CUDA_GEMM_Q_TILE_M), 1, 128);
  out->num_launches = 1;
  return nullptr;
}

const char* ds_cuda_plan_moe_gemm(const ds_cuda_moe_gemv_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (p->act_dtype != DS_CUDA_BF16) return "moe_gemm: bf16 activations only (f32: ds_moe_gemv)";
  // The same operands as the GEMV: its plan checks them.
  ds_cuda_plan gemv;
  if (const char* e = ds_cuda_plan_moe_gemv(p, &gemv)) return e;
  const int64_t tiles = ceilDiv(p->max_rows, DS_CUDA_GEMM_Q_TILE_M) + (p->num_local < p->max_rows ? p->num_local : p->max_rows);
  if (tiles > 65535) return "moe_gemm: more than 65535 row tiles (split the step)";
  const bool fp8 = p->weight_dtype == DS_CUDA_FP8_E4M3;
  const char* kernel = symbol(fp8 ? "ds_moe_gemm_wfp8_abf16_" : "ds_moe_gemm_wbf16_abf16_", p->swiglu ? "swiglu" : "plain");
  if (!kernel) return "moe_gemm: no kernel for these dtypes";
  setLaunch(out->launches[0], kernel, ceilDiv(p->N, DS_CUDA_GEMM_Q_TILE_N), tiles, 1, 128);
  out->num_launches = 1;
  return nullptr;
}

const char* ds_cuda_plan_moe_gemm_fp8mma(const ds_cuda_moe_gemv_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (p->weight_dtype != DS_CUDA_FP8_E4M3) return "moe_gemm_fp8mma: FP8 weights only";
  if (p->K % 128) return "moe_gemm_fp8mma: K must be a multiple of 128 (the activations' scale blocks)";
  ds_cuda_plan tiles;  // ds_moe_gemm's operands and row tiles
  if (const char* e = ds_cuda_plan_moe_gemm(p, &tiles)) return e;
  const char* kernel = symbol("ds_moe_gemm_wfp8_afp8_", p->swiglu ? "swiglu" : "plain");
  if (!kernel) return "moe_gemm_fp8mma: no kernel";
  setLaunch(out->launches[0], kernel, ceilDiv(p->N, p->swiglu ? DS_CUDA_GEMM_Q_TILE_N / 2 : DS_CUDA_GEMM_Q_TILE_N),
            tiles.launches[0].grid[1], 1, 128);
  out->num_launches = 1;
  return nullptr;
}

}  // extern "C"
