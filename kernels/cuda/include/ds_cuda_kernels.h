/* The host-visible contract of the CUDA kernel library (kernels/cuda): symbol names, the POD
 * params struct each kernel takes as its single argument, and pure host functions that validate
 * a params struct and compute its launch geometry. Plain C (C99 / C++17), no CUDA headers, so the
 * driver-API device (runtime/src/hal/cuda) can include it and launch with
 *   void* args[] = {&params};
 *   cuLaunchKernel(fn, grid..., block..., shared_bytes, stream, args, NULL);
 * after cuModuleGetFunction(&fn, module, launch.symbol) on ds_cuda_kernels.fatbin.
 *
 * Conventions (docs/cuda_kernels.md has the full table):
 *  - Device pointers are ds_cuda_ptr (a CUdeviceptr: 64-bit integer); 0 means absent.
 *  - Storage is bf16 or f32 (ds_cuda_dtype); all arithmetic accumulates in f32.
 *  - Shapes are int32 element counts; strides are in elements.
 *  - Every ds_cuda_plan_* function returns NULL when the params are valid and fills *out, or a
 *    static string naming the first invalid field (and leaves *out zeroed). It reads shapes,
 *    dtypes, pointer alignment and the device limits only: never device memory. Plan functions
 *    may write the "set by plan" fields of the params (split counts).
 */
#ifndef DS_CUDA_KERNELS_H
#define DS_CUDA_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t ds_cuda_ptr;

/* Element types of buffers. */
enum { DS_CUDA_F32 = 0, DS_CUDA_BF16 = 1 };

/* The geometry of one kernel launch. symbol is a static string (the kernel's C name). */
typedef struct {
  const char* symbol;
  uint32_t grid[3];
  uint32_t block[3];
  uint32_t shared_bytes; /* dynamic shared memory */
} ds_cuda_launch;

/* A plan: up to four launches, in order, on one stream, plus the f32 workspace they share
 * (the caller allocates workspace_bytes, 256-byte aligned, and stores it in params.workspace). */
typedef struct {
  ds_cuda_launch launches[4];
  int32_t num_launches;
  uint64_t workspace_bytes;
} ds_cuda_plan;

/* What the plans need to know about the device (cuDeviceGetAttribute). */
typedef struct {
  int32_t sm_count;              /* CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT */
  int32_t max_shared_per_block;  /* bytes without opt-in: 48 KiB */
} ds_cuda_device_limits;

/* ---- GEMV / skinny GEMM: y[M, N] = x[M, K] W[N, K]^T (+ bias), M <= 16 ------------------------
 * Memory-bound decode path: each warp owns output columns, lanes stream W rows with 16-byte
 * loads (4 in flight per lane), x rows are read through the read-only cache, warp-shuffle
 * reduction. When there are too few column blocks to fill the device, K is split: launch 1
 * writes f32 partials [splits, M, N] to the workspace, launch 2 (ds_gemv_reduce_<a>) sums
 * them in split order (deterministic, no atomics), adds the bias and converts.
 * Symbols: ds_gemv_w<w>_a<a>_m<mt> with (w, a) in {(bf16, bf16), (bf16, f32), (f32, f32)} and
 * mt in {1, 2, 4, 8} for bf16 activations, {1, 2, 4} for f32 (rows per pass; grid.y covers M in
 * passes of mt rows). Rows 16-byte loads cannot walk (K or x_stride not a multiple of 8 bf16 / 4
 * f32 elements, or x, w not 16-byte aligned) take ds_gemv_any_w<w>_a<a>: scalar loads, one warp
 * per output element, no split (correct for any shape, not fast). */
typedef struct {
  ds_cuda_ptr x;         /* [M, x_stride] act dtype, 16-byte aligned for the fast kernels */
  ds_cuda_ptr w;         /* [N, K] weight dtype, row-major, 16-byte aligned */
  ds_cuda_ptr bias;      /* [N] f32, or 0 */
  ds_cuda_ptr y;         /* [M, y_stride] act dtype (f32 with y_f32) */
  ds_cuda_ptr workspace; /* f32 [splits, M, N] when splits > 1 */
  int32_t M, N, K;
  int32_t x_stride, y_stride;
  int32_t act_dtype, weight_dtype;
  int32_t splits;      /* set by plan: K splits (1 = no reduce pass) */
  int32_t k_per_split; /* set by plan: multiple of 256 elements */
  int32_t rows_per_pass; /* set by plan: mt */
  int32_t y_f32;       /* 1: y is f32 whatever act_dtype (the logits of a bf16 model) */
} ds_cuda_gemv_params;

#define DS_CUDA_GEMV_MAX_M 16
const char* ds_cuda_plan_gemv(ds_cuda_gemv_params* p, const ds_cuda_device_limits* dev,
                              ds_cuda_plan* out);

/* ---- Paged KV cache ----------------------------------------------------------------------------
 * The host layout (kernels/cpu/cpu_kernels.h PagedKV, runtime/src/engine/kv_blocks.h), one
 * layer: k_cache [num_blocks, block_size, kv_heads, head_dim], v_cache the same (v_dim ==
 * head_dim here), in the act dtype. Token t of the step belongs to sequence token_seq[t] at
 * position positions[t]; sequence s owns block block_table[s * max_blocks_per_seq + pos /
 * block_size], slot = block * block_size + pos % block_size.
 * Quantized caches (dtype DS_CUDA_KV_INT8 / DS_CUDA_FP8_E4M3, the host's --kv-cache int8 / fp8):
 * k_cache and v_cache each point at f32 scales [num_blocks * block_size * kv_heads] followed by
 * one-byte codes [num_blocks * block_size, kv_heads, head_dim] (num_blocks * block_size * kv_heads
 * % 4 == 0, so the codes stay 16-byte aligned): together artifact::kvBytesPerSlot per slot. Each
 * (slot, kv head) vector has its own scale, the host's (include/ds_cuda_kv_quant.h); value =
 * decode(code) * scale. k, v, q and out then have act_dtype (f32 / bf16). */
typedef struct {
  ds_cuda_ptr k_cache, v_cache;
  ds_cuda_ptr positions;   /* int32 [T] */
  ds_cuda_ptr token_seq;   /* int32 [T] */
  ds_cuda_ptr block_table; /* int32 [S, max_blocks_per_seq] */
  int32_t num_blocks, block_size, kv_heads, head_dim, max_blocks_per_seq;
  int32_t dtype; /* DS_CUDA_F32 / DS_CUDA_BF16 (= the activations'), DS_CUDA_KV_INT8, DS_CUDA_FP8_E4M3 */
} ds_cuda_paged_kv;

/* ds_kv_write_<dtype>: the step's k, v [T, kv_heads, head_dim] into their cache slots. Quantized
 * caches: ds_kv_write_{i8,fp8}_a<act> quantize each (token, kv head) vector on the way (grid T,
 * block 128, a warp per vector; fp8: a lane per candidate scale). */
typedef struct {
  ds_cuda_paged_kv kv;
  ds_cuda_ptr k, v;
  int32_t num_tokens;
  int32_t act_dtype; /* quantized caches: the dtype of k and v (float caches: kv.dtype) */
} ds_cuda_kv_write_params;
const char* ds_cuda_plan_kv_write(const ds_cuda_kv_write_params* p, ds_cuda_plan* out);

/* ---- Attention decode (flash-decoding) ---------------------------------------------------------
 * out[t, h] = softmax(q[t, h] . K[lo..pos] * scale) V[lo..pos] over token t's own sequence, with
 * lo = max(0, pos - sliding_window + 1) (sliding_window 0 = unlimited), GQA: head h reads kv head
 * h / (q_heads / kv_heads). Any token may be given (it is causal by position), but it is built
 * for one query token per sequence. Launch 1 (ds_attn_decode_<dtype>_d<head_dim>) grid =
 * (T, kv_heads * ceil(group / 4), splits): up to 4 query heads of one kv group per block, a
 * slice of split_len positions per block, one warp per position, online softmax. With splits >
 * 1 it writes f32 partials (normalized output + log-sum-exp) to the workspace and launch 2
 * (ds_attn_combine_<dtype>_d<head_dim>) merges them; with splits == 1 it writes out directly.
 * head_dim in {64, 128, 256}. q, out: [T, q_heads, head_dim] act dtype. Quantized caches:
 * ds_attn_decode_{i8,fp8}_a<act>_d<head_dim> (codes decoded in registers), then the act dtype's
 * combine. */
typedef struct {
  ds_cuda_paged_kv kv;
  ds_cuda_ptr q, out;
  ds_cuda_ptr workspace; /* f32: [T, q_heads, splits, head_dim] then [T, q_heads, splits] */
  int32_t num_tokens, q_heads;
  int32_t sliding_window;
  float scale;
  int32_t max_context; /* >= every token's attended length (pos + 1, or the window) */
  int32_t splits;      /* set by plan */
  int32_t split_len;   /* set by plan: positions per split, a multiple of 32 */
  int32_t act_dtype;   /* quantized caches: the dtype of q and out (float caches: kv.dtype) */
} ds_cuda_attn_decode_params;
const char* ds_cuda_plan_attn_decode(ds_cuda_attn_decode_params* p,
                                     const ds_cuda_device_limits* dev, ds_cuda_plan* out);

/* ---- Attention prefill (FA2-style tiles, CUDA cores) --------------------------------------------
 * Same math as decode for many query tokens: causal by position, sliding window, GQA, keys and
 * values read from the paged cache (run ds_kv_write first). The step's tokens of sequence s are
 * rows [seq_q_start[s], seq_q_start[s + 1]) (contiguous, any positions). Grid =
 * (ceil(max_q_len / 16), q_heads, num_seqs), 128 threads: 16 query rows per block, K/V tiles of
 * 32 positions staged in shared memory as f32. ds_attn_prefill_<dtype>_d<head_dim>; quantized
 * caches: ds_attn_prefill_{i8,fp8}_a<act>_d<head_dim> (and ds_attn_small_{i8,fp8}_a<act>). */
typedef struct {
  ds_cuda_paged_kv kv;
  ds_cuda_ptr q, out;
  ds_cuda_ptr seq_q_start; /* int32 [num_seqs + 1] */
  int32_t num_seqs, max_q_len, q_heads;
  int32_t sliding_window;
  float scale;
  int32_t act_dtype; /* quantized caches: the dtype of q and out (float caches: kv.dtype) */
} ds_cuda_attn_prefill_params;
const char* ds_cuda_plan_attn_prefill(const ds_cuda_attn_prefill_params* p,
                                      const ds_cuda_device_limits* dev, ds_cuda_plan* out);
/* head_dim 1..32 (not 64/128/256): ds_cuda_plan_attn_prefill plans ds_attn_small_<dtype> (one
 * thread per query row and head, grid (ceil(max_q_len / 32), q_heads, num_seqs), 32 threads),
 * which also serves decode steps: ds_cuda_attn_has_decode says whether the split-KV decode
 * kernels exist for a head_dim (else run the prefill plan with one row per sequence). */
int ds_cuda_attn_has_decode(int32_t head_dim);

/* ---- RMSNorm and add + RMSNorm ------------------------------------------------------------------
 * ds_rms_norm_<dtype>: y = x / sqrt(mean(x^2) + eps) * weight, one block of 256 per row.
 * ds_add_rms_norm_<dtype>: sum = x + residual (rounded to dtype, written), y = rms_norm(sum).
 * weight [cols] in dtype, or f32 with weight_f32 (the GPU bf16 builds keep norm weights f32).
 * cols % 8 == 0 (bf16) or % 4 == 0 (f32); rows contiguous. */
typedef struct {
  ds_cuda_ptr x, residual, weight, y, sum;
  int32_t rows, cols;
  float eps;
  int32_t dtype;
  int32_t add;        /* 1: add_rms_norm (residual and sum required) */
  int32_t weight_f32; /* 1: weight is f32 whatever dtype is */
} ds_cuda_rms_norm_params;
const char* ds_cuda_plan_rms_norm(const ds_cuda_rms_norm_params* p, ds_cuda_plan* out);

/* ---- RoPE (in place) -----------------------------------------------------------------------------
 * ds_rope_<dtype>: rotates the first rot_dim channels of each head of x [T, token_stride] (heads
 * of head_dim at offsets h * head_dim) at positions[t]; cos/sin of positions[t] * inv_freq[i]
 * (inv_freq f32 [rot_dim / 2], the host's RopeTable: it carries every scaling variant) times
 * attention_factor, computed in double like the host. interleaved = 0: half-split (Llama
 * rotate_half), 1: pairs (2i, 2i + 1) (DeepSeek). Grid (T), 128 threads. */
typedef struct {
  ds_cuda_ptr x, positions, inv_freq;
  int32_t num_tokens, heads, head_dim, rot_dim, token_stride;
  int32_t interleaved;
  float attention_factor;
  int32_t dtype;
} ds_cuda_rope_params;
const char* ds_cuda_plan_rope(const ds_cuda_rope_params* p, ds_cuda_plan* out);

/* ---- Elementwise ---------------------------------------------------------------------------------
 * ds_swiglu_<dtype>: y[r, c] = silu(gate[r, c]) * up[r, c] with row strides (gate and up may be the
 *   two halves of one merged [rows, 2 cols] buffer).
 * ds_add_<dtype>: y[i] = a[i] + b[i] over n elements. */
typedef struct {
  ds_cuda_ptr gate, up, y;
  int32_t rows, cols, gate_stride, up_stride, y_stride;
  int32_t dtype;
} ds_cuda_swiglu_params;
const char* ds_cuda_plan_swiglu(const ds_cuda_swiglu_params* p, ds_cuda_plan* out);

typedef struct {
  ds_cuda_ptr a, b, y;
  int64_t n;
  int32_t dtype;
} ds_cuda_add_params;
const char* ds_cuda_plan_add(const ds_cuda_add_params* p, ds_cuda_plan* out);

/* ---- Gathers and argmax --------------------------------------------------------------------------
 * ds_embed_<dtype>: y[t] = weight[ids[t] - row_offset] for ids in [row_offset, row_offset +
 *   table_rows), zero rows otherwise (vocab-parallel ranks). weight [table_rows, H].
 * ds_gather_rows_<dtype>: y[r] = x[rows[r]] (rows < x_rows, else zeros), H columns (logits rows).
 * ds_argmax_<dtype>: out[r] = the lowest index of the maximum of x[r, 0..V) (torch.argmax and the
 *   host greedy sampler); NaN never wins; an all-NaN row gives 0. One block of 256 per row. */
typedef struct {
  ds_cuda_ptr ids, weight, y;
  int32_t num_tokens, hidden, table_rows, row_offset;
  int32_t dtype;
} ds_cuda_embed_params;
const char* ds_cuda_plan_embed(const ds_cuda_embed_params* p, ds_cuda_plan* out);

typedef struct {
  ds_cuda_ptr x, rows, y;
  int32_t num_rows, x_rows, hidden;
  int32_t dtype;
} ds_cuda_gather_rows_params;
const char* ds_cuda_plan_gather_rows(const ds_cuda_gather_rows_params* p, ds_cuda_plan* out);

typedef struct {
  ds_cuda_ptr x, out;
  int32_t rows, vocab, x_stride;
  int32_t dtype;
} ds_cuda_argmax_params;
/* ds_copy_cols_<dtype>: y[r, 0..cols) = x[r, 0..cols) with row strides (x may point inside a row:
 * a column slice; the MLA projections' q_nope / q_rope and c_kv / k_rope splits). Grid-stride. */
typedef struct {
  ds_cuda_ptr x, y;
  int32_t rows, cols, x_stride, y_stride;
  int32_t dtype;
} ds_cuda_copy_cols_params;
const char* ds_cuda_plan_copy_cols(const ds_cuda_copy_cols_params* p, ds_cuda_plan* out);
const char* ds_cuda_plan_argmax(const ds_cuda_argmax_params* p, ds_cuda_plan* out);

/* ---- Synthetic weights ---------------------------------------------------------------------------
 * ds_synthetic_fill: elements [first, first + count) of a synthetic tensor (ds-compile --weights
 * random) into dst, which points at element `first`; I4: bytes [first, first + count) of rows of
 * `cols` codes padded to (cols + 1) / 2 bytes. The bytes are exactly the host fill's
 * (runtime/src/format/artifact/synthetic_element.h, which both compile): element i is
 * fmaf(std, n(key, i), mean) encoded in dtype. key = ds::synth::streamKey(seed, stream).
 * Grid-stride, block 256. dtype: the artifact's DType numbering (below). */
enum {
  DS_CUDA_SYNTH_F32 = 0, DS_CUDA_SYNTH_F16 = 1, DS_CUDA_SYNTH_BF16 = 2, DS_CUDA_SYNTH_F8_E4M3 = 3,
  DS_CUDA_SYNTH_I8 = 4, DS_CUDA_SYNTH_I32 = 5, DS_CUDA_SYNTH_I4 = 6
};
typedef struct {
  ds_cuda_ptr dst;       /* element (I4: byte) `first` of the tensor, aligned to the element */
  uint64_t key;          /* the stream's key */
  uint64_t first, count; /* elements (I4: bytes) */
  int64_t cols;          /* I4: codes per row (>= 1); ignored otherwise */
  float mean, std;
  int32_t dtype;         /* DS_CUDA_SYNTH_* */
} ds_cuda_synthetic_fill_params;
/* Bytes per element of a DS_CUDA_SYNTH_* dtype (I4: 1, the unit of `first` and `count`), 0 for
 * anything else. */
int32_t ds_cuda_synthetic_unit_bytes(int32_t dtype);
const char* ds_cuda_plan_synthetic_fill(const ds_cuda_synthetic_fill_params* p,
                                        const ds_cuda_device_limits* dev, ds_cuda_plan* out);

/* Every kernel symbol the fatbin exports, NULL-terminated (for load-time checks). */
const char* const* ds_cuda_kernel_symbols(void);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#include "ds_cuda_layout.h" /* GPU storage of int4 weights */
#include "ds_cuda_moe.h"    /* the mixture-of-experts kernels */
#include "ds_cuda_mla.h"    /* DeepSeek MLA decode */
#include "ds_cuda_collective.h" /* tensor-parallel reductions */
#include "ds_cuda_gemm_q.h"   /* prefill GEMM over quantized weights */

#endif /* DS_CUDA_KERNELS_H */
