/* int4 group-quantized weights on the GPU: their storage and the GEMV that reads it (part of the
 * CUDA kernel library's contract, included by ds_cuda_kernels.h). The artifact stores int4 rows as the host reads them: element
 * c of a row in byte c / 2, low nibble first, symmetric codes two's complement. The GPU kernels
 * want each 32-bit word (8 consecutive elements) rearranged so that one mask-and-or turns two
 * elements into an f16 pair (the FasterTransformer / Marlin "magic number" decode):
 *
 *   element i of the word sits in nibble slot i / 2 + 4 * (i % 2)       (0 4 1 5 2 6 3 7)
 *   symmetric codes are stored offset by 8 (q + 8 in [0, 15]); asymmetric codes as they are
 *   DS_CUDA_I4_HALF2_BITS(w, p) = f16 pair (1024 + u[2p], 1024 + u[2p + 1]), u the stored
 *   nibbles; subtracting 1032 (symmetric) or 1024 (asymmetric) in f16 is exact and gives q.
 *
 * The permutation stays inside each word, so it is applied to any 4-byte-aligned piece of a
 * tensor as the weights are staged for upload (rows of int4 weights are whole words: cols % 8
 * == 0); fat artifacts keep one copy of the weights for the host and the GPUs. */
#ifndef DS_CUDA_LAYOUT_H
#define DS_CUDA_LAYOUT_H

#include <stdint.h>

#include "ds_cuda_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DS_CUDA_I4_HALF2_BITS(w, p) ((((w) >> (4u * (p))) & 0x000f000fu) | 0x64006400u)
#define DS_CUDA_I4_SYM_BIAS 1032.0f  /* f16 1024 + 8 */
#define DS_CUDA_I4_ASYM_BIAS 1024.0f

/* In place over n bytes (n % 4 == 0) of row-major int4 codes: host storage -> GPU storage, and
 * back. symmetric: two's complement codes (no zero points). */
void ds_cuda_i4_to_gpu(uint8_t* bytes, uint64_t n, int symmetric);
void ds_cuda_i4_from_gpu(uint8_t* bytes, uint64_t n, int symmetric);

/* ds_i4_to_gpu: ds_cuda_i4_to_gpu on the device, in place over `words` 32-bit words (synthetic
 * int4 weights, filled on the device in the host's storage). Grid-stride, block 256. */
typedef struct {
  ds_cuda_ptr data; /* 4-byte aligned */
  uint64_t words;
  int32_t symmetric;
} ds_cuda_i4_to_gpu_params;
const char* ds_cuda_plan_i4_to_gpu(const ds_cuda_i4_to_gpu_params* p, const ds_cuda_device_limits* dev,
                                   ds_cuda_plan* out);

/* ds_gemv_wi4_a<bf16|f32>_m<1|2|4>: y[M, N] = x[M, K] W^T (+ f32 bias) for W in the GPU int4
 * storage with f32 group scales [N, K / group_size] (and zero points, asymmetric): element value
 * q * s, or (q - z) * s, in f32 as the host computes it (kernels/cpu/cpu_kernels.h WeightView).
 * One output column per warp, each lane a 16-byte load (32 elements, one group) at a time;
 * grid (ceil(N / 8), ceil(M / mt)), block 256, no split, when K % 32 == 0, group_size is a
 * multiple of 32 dividing K and x rows are 16-byte aligned; other shapes (K % 8 == 0, any group,
 * a partial last group) take ds_gemv_any_wi4_a<act>: a warp per output, 32-bit word loads,
 * grid (ceil(N / 8), M). M <= 16 per launch. */
typedef struct {
  ds_cuda_ptr x, w, scale, zero, bias, y; /* zero: 0 = symmetric */
  int32_t M, N, K, x_stride, y_stride, group_size;
  int32_t act_dtype;
  int32_t rows_per_pass; /* set by plan */
} ds_cuda_gemv_i4_params;
const char* ds_cuda_plan_gemv_i4(ds_cuda_gemv_i4_params* p, ds_cuda_plan* out);

/* ds_gemv_w<fp8|i8>_abf16_m<1|2|4>, ds_gemv_w<fp8|i8>_af32_m<1|2>: y[M, N] = x[M, K] W^T (+ f32 bias) for DeepSeek's FP8 E4M3
 * weights as stored (row-major codes) with f32 scales per block_rows x block_cols block
 * ([ceil(N / br), ceil(K / bc)]): element value decode(q) * scale in f32, the host's (FP8 -> f16
 * is exact). Same geometry as the bf16 GEMV: a warp per column, 16-byte loads (16 codes) per
 * lane; K % 16 == 0, block_cols % 16 == 0, x rows 16-byte aligned. sm_80 has no FP8 MMA and
 * needs none here: the decode is in registers on every arch. */
typedef struct {
  ds_cuda_ptr x, w, scale, bias, y;
  int32_t M, N, K, x_stride, y_stride, block_rows, block_cols;
  int32_t act_dtype;
  int32_t rows_per_pass; /* set by plan */
  /* 1: the codes are int8 (ds_gemv_wi8_*: --quant w8), value q * scale; 0: FP8 E4M3. Per-channel
   * scales (--quant w8 / fp8) are blocks of 1 x K. */
  int32_t int8_codes;
} ds_cuda_gemv_fp8_params;
const char* ds_cuda_plan_gemv_fp8(ds_cuda_gemv_fp8_params* p, ds_cuda_plan* out);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* DS_CUDA_LAYOUT_H */
