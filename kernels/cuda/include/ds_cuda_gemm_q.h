/* Prefill GEMM over quantized weights (included by ds_cuda_kernels.h; same conventions):
 * y[M, N] = x[M, K] W^T (+ f32 bias) with bf16 activations and W as the GEMVs read it (the GPU
 * int4 storage with group scales, FP8 E4M3 with block or per-channel scales, int8 per channel:
 * include/ds_cuda_layout.h). Each 64 x 32 tile of W is decoded to the host's f32 values
 * (q * s, (q - z) * s, decode(q) * s), rounded once to bf16 in shared memory, and multiplied on
 * the tensor cores (mma.sync m16n8k16 bf16, f32 accumulation): sm_80 and up, so A100 keeps the
 * FP8 bytes of DeepSeek-V3 and decodes them in the kernel. The GEMVs (M <= 16 rows per pass,
 * exact f32 products) stay the decode path.
 *
 * ds_gemm_q_<i4|fp8|i8>_abf16: tiles of 64 rows x 64 columns, 128 threads (4 warps of 32 x 32),
 * K in steps of 32 (a last half step zero-filled); grid (ceil(N / 64), ceil(M / 64)). Needs
 * K % 16 == 0, x rows 16-byte aligned (x_stride % 8 == 0), int4 groups a multiple of 16, FP8 /
 * int8 block columns a multiple of 16 (per channel: block_rows 1, block_cols K). */
#ifndef DS_CUDA_GEMM_Q_H
#define DS_CUDA_GEMM_Q_H

#include <stdint.h>

#include "ds_cuda_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { DS_CUDA_GEMM_Q_I4 = 0, DS_CUDA_GEMM_Q_FP8 = 1, DS_CUDA_GEMM_Q_I8 = 2 };
#define DS_CUDA_GEMM_Q_TILE_M 64
#define DS_CUDA_GEMM_Q_TILE_N 64
#define DS_CUDA_GEMM_Q_TILE_K 32

typedef struct {
  ds_cuda_ptr x, w, scale, zero, bias, y; /* zero: int4 zero points (0: symmetric) */
  int32_t M, N, K, x_stride, y_stride;
  int32_t wtype;                          /* DS_CUDA_GEMM_Q_* */
  int32_t group_size;                     /* int4: elements per group along K */
  int32_t block_rows, block_cols;         /* FP8 / int8: the scale blocks */
  int32_t y_f32;                          /* 1: y is f32 (logits), else bf16 */
} ds_cuda_gemm_q_params;
const char* ds_cuda_plan_gemm_q(const ds_cuda_gemm_q_params* p, ds_cuda_plan* out);

/* ds_gemm_fp8mma_abf16: FP8 weights with FP8 activations on the FP8 tensor cores (sm_89 and newer;
 * ds-compile --quant-act fp8, DeepSeek-V3's inference scheme): each 1 x 128 block of an x row is
 * quantized to E4M3 with scale amax / 448 (x / scale, nearest even, saturating:
 * include/ds_cuda_kv_quant.h encodeFp8), W's codes are used as stored, each 128-wide K block is
 * summed in f32 by mma.sync m16n8k32 and promoted into the result times the row's and the weight
 * block's scales (acc = fma(block sum, s_x * s_w, acc)); + f32 bias. The same params as
 * ds_gemm_q (wtype FP8). Needs K % 128 == 0, block_cols % 128 == 0 (per channel: block_cols K),
 * x_stride % 8; grid (ceil(N / 64), ceil(M / 64)), 128 threads. */
const char* ds_cuda_plan_gemm_fp8mma(const ds_cuda_gemm_q_params* p, ds_cuda_plan* out);

/* ds_moe_gemm_w<bf16|fp8>_abf16_<plain|swiglu>: the experts' grouped GEMM, the prefill form of
 * ds_moe_gemv_* with the same params and results contract (ds_cuda_moe.h: rows of local expert e
 * at [expert_start[e], expert_start[e + 1]), x rows gathered through row_token, FP8 128 x 128
 * block scales, SwiGLU with gate and up rounded to bf16 first) for bf16 activations: one launch
 * for all active experts, 64 x 64 tiles on the tensor cores (FP8 decoded to bf16 in shared
 * memory). The routed row counts live on the device: grid (ceil(N / 64), ceil(max_rows / 64) +
 * min(num_local, max_rows)) covers any split of the rows, and block y finds its (expert, row
 * tile) by walking the active experts; blocks past the last tile exit. 128 threads. */
const char* ds_cuda_plan_moe_gemm(const ds_cuda_moe_gemv_params* p, ds_cuda_plan* out);

/* ds_moe_gemm_wfp8_afp8_<plain|swiglu>: the experts' grouped GEMM with FP8 activations on the FP8
 * tensor cores (--quant-act fp8; ds_gemm_fp8mma's arithmetic: 1 x 128 activation blocks, FP8
 * 128 x 128 weight blocks, promotion per K block), ds_moe_gemm's rows and tiles. SwiGLU: a tile
 * holds 32 outputs of the gate and the same 32 of the up projection, combined through shared
 * memory (gate and up rounded to bf16 first, as the GEMV). K % 128 == 0, FP8 weights with block
 * scales; grid (ceil(N / (swiglu ? 32 : 64)), ds_moe_gemm's row tiles), 128 threads. */
const char* ds_cuda_plan_moe_gemm_fp8mma(const ds_cuda_moe_gemv_params* p, ds_cuda_plan* out);

#ifdef __cplusplus
}
#endif

#endif /* DS_CUDA_GEMM_Q_H */
