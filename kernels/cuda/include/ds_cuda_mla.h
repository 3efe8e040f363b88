/* DeepSeek MLA decode and prefill on the GPU (part of the CUDA kernel library's contract,
 * included by ds_cuda_kernels.h): attention over the compressed latent cache with the
 * up-projections absorbed (as FlashMLA and the host's kernels/cpu/mla.cpp mlaAttention do):
 *
 *   q_lat[t, h]  = W_uk[h]^T q_nope[t, h]                         ds_mla_absorb_<a>   [R]
 *   s(p)         = (q_lat . c_kv[p] + q_rope[t, h] . k_rope[p]) * scale, p in [0, pos_t]
 *   o_lat[t, h]  = softmax(s) c_kv                                ds_mla_attend_<kv> (+ combine)
 *   out[t, h]    = W_uv[h] o_lat[t, h]                            ds_mla_out_<a>      [v_dim]
 *
 * with kv_b = [H * (nope_dim + v_dim), rank]: head h's rows are W_uk[h] (nope_dim rows) then
 * W_uv[h] (v_dim rows). The latent cache of a layer is paged like the host's PagedLatentKV:
 * [num_blocks, block_size, rank + rope_dim] (c_kv then k_rope) in the cache dtype (bf16 or f32),
 * or int8 (DS_CUDA_KV_INT8, the host's scheme: per slot an absmax / 127 scale for c_kv and one
 * for k_rope, round-half-even codes; the layer's f32 scales [num_blocks * block_size, 2] first,
 * then its int8 codes), or fp8 E4M3 (DS_CUDA_FP8_E4M3, the same layout with E4M3 codes; each
 * scale the host's least-squares search, include/ds_cuda_kv_quant.h). ds_mla_kv_write_* stores
 * the step's rows first.
 * rank <= 512, rope_dim <= 64 (DeepSeek-V2/V3: 512 and 64). */
#ifndef DS_CUDA_MLA_H
#define DS_CUDA_MLA_H

#include <stdint.h>

#include "ds_cuda_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DS_CUDA_MLA_MAX_RANK 512
#define DS_CUDA_MLA_MAX_ROPE 64
#define DS_CUDA_MLA_HEADS_PER_BLOCK 8 /* one warp per head */
#define DS_CUDA_MLA_TILE 16           /* latent rows staged in shared memory at a time */
#define DS_CUDA_MLA_PREFILL_TOKENS 4  /* query tokens per prefill block */
enum { DS_CUDA_KV_INT8 = 3 };         /* ds_cuda_paged_latent.dtype: int8 codes + scales */

typedef struct {
  ds_cuda_ptr cache;       /* [num_blocks, block_size, rank + rope_dim] dtype */
  ds_cuda_ptr positions;   /* int32 [T] */
  ds_cuda_ptr token_seq;   /* int32 [T] */
  ds_cuda_ptr block_table; /* int32 [S, max_blocks_per_seq] */
  int32_t num_blocks, block_size, rank, rope_dim, max_blocks_per_seq;
  int32_t dtype;           /* DS_CUDA_BF16 / DS_CUDA_F32 / DS_CUDA_KV_INT8 / DS_CUDA_FP8_E4M3 */
} ds_cuda_paged_latent;

/* ds_mla_kv_write_<dtype> (float caches: act = cache dtype) or ds_mla_kv_write_{i8,fp8}_a<act>
 * (quantized caches): c_kv [T, c_stride] and k_rope [T, k_stride] into token t's slot. Grid T,
 * block 128 (fp8: warp 0 searches c_kv's scale, warp 1 k_rope's). */
typedef struct {
  ds_cuda_paged_latent kv;
  ds_cuda_ptr c_kv, k_rope;
  int32_t num_tokens, c_stride, k_stride;
  int32_t act_dtype; /* quantized caches: the dtype of c_kv and k_rope */
} ds_cuda_mla_kv_write_params;
const char* ds_cuda_plan_mla_kv_write(const ds_cuda_mla_kv_write_params* p, ds_cuda_plan* out);

/* The decode: launches absorb (grid (T, H), 128), attend (grid (T, ceil(H / 8), splits), 256,
 * 16 latent rows per shared-memory tile, online softmax per warp), combine (only with splits >
 * 1: grid (T, H), 128) and out (grid (T, H), 128). Workspace (f32, set by plan): q_lat [T, H, R],
 * o_lat [T, H, R], then with splits > 1 partials [T, H, splits, R] and lse [T, H, splits]. */
typedef struct {
  ds_cuda_paged_latent kv;
  ds_cuda_ptr q_nope;    /* act [T, H, nope_dim] */
  ds_cuda_ptr q_rope;    /* act [T, H, rope_dim] */
  ds_cuda_ptr kv_b;      /* weight [H * (nope_dim + v_dim), rank] */
  ds_cuda_ptr kv_b_scale; /* FP8 kv_b: f32 scales [ceil(rows / block_rows), ceil(rank / block_cols)] */
  int32_t block_rows, block_cols;
  ds_cuda_ptr out;       /* act [T, H, v_dim] */
  ds_cuda_ptr workspace;
  int32_t num_tokens, heads, nope_dim, v_dim;
  int32_t act_dtype, weight_dtype; /* act: F32 / BF16 (as the cache); weight: F32 / BF16 /
                                      FP8_E4M3 (block-scaled, decoded in registers) */
  float scale;
  int32_t max_context;   /* >= every token's position + 1 */
  int32_t splits;        /* set by plan */
  int32_t split_len;     /* set by plan: positions per split, a multiple of 16 */
  /* Prefill only (ds_cuda_plan_mla_prefill): the step's rows by sequence. */
  ds_cuda_ptr seq_q_start; /* int32 [num_seqs + 1]: sequence s owns token rows [start[s], start[s + 1]) */
  int32_t num_seqs, max_q_len; /* max_q_len >= every sequence's row count */
} ds_cuda_mla_decode_params;
const char* ds_cuda_plan_mla_decode(ds_cuda_mla_decode_params* p, const ds_cuda_device_limits* dev,
                                    ds_cuda_plan* out);

/* The prefill (steps where sequences have many query tokens): absorb and out as the decode's, the
 * attention by ds_mla_prefill_<kv>_a<act> (kv bf16 / f32 = act, i8, fp8): grid (ceil(max_q_len /
 * 4), ceil(H / 8), num_seqs), 512 threads; a block takes 4 query tokens of one sequence and 8
 * heads (a warp: one head, 2 tokens) and streams the sequence's latent rows [0, the tile's last
 * position] through shared memory once (16-row tiles, 36 KiB), each token masked past its own
 * position, online softmax in f32, o_lat straight into the workspace (no splits: splits = 1,
 * split_len = 0 after plan). Workspace: q_lat [T, H, R], o_lat [T, H, R] (f32). Tokens of
 * sequence s are rows [seq_q_start[s], seq_q_start[s + 1]) and token_seq must agree. */
const char* ds_cuda_plan_mla_prefill(ds_cuda_mla_decode_params* p, ds_cuda_plan* out);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* DS_CUDA_MLA_H */
