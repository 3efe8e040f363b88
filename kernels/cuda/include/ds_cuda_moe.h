/* The mixture-of-experts part of the CUDA kernel library's contract (included by
 * ds_cuda_kernels.h; same conventions: POD params, ds_cuda_plan_* validate and plan, never read
 * device memory). One MoE layer (ds.moe_experts after ds.moe_gate) on the GPU is:
 *
 *   1. router logits  f32 [T, E] = x W_gate^T        (ds_cuda_plan_gemv with y_f32, or cuBLASLt)
 *   2. ds_moe_route     logits -> weights, ids [T, top_k] (scoring, group-limited top-k, scaling)
 *   3. ds_moe_permute   ids -> the step's routed slots grouped by local expert (stable: token
 *                       order inside an expert), one block
 *   4. ds_moe_gemv_*    gate/up with SwiGLU fused: h [rows, I] = silu(x_t Wg_e^T) * (x_t Wu_e^T)
 *   5. ds_moe_gemv_*    down: y [rows, H] = h_r Wd_e^T
 *   6. ds_moe_combine   out[t] = sum over t's local slots, experts ascending, of w y_row (+ shared)
 *
 * Expert parallelism: a rank holds experts [first_expert, first_expert + num_local); slots naming
 * other experts (or -1) are skipped by the permutation and the combine (the host's rule). The
 * number of routed rows is known on the device only: launches 4-5 are sized for the upper bound
 * T * top_k and their blocks read the real counts (expert_start, active) from device memory. */
#ifndef DS_CUDA_MOE_H
#define DS_CUDA_MOE_H

#include <stdint.h>

#include "ds_cuda_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Weight element types of the expert GEMV beyond DS_CUDA_F32 / DS_CUDA_BF16: DeepSeek's native
 * FP8 (E4M3) with f32 scales per 128 x 128 block (weight_scale_inv), dequantized in registers. */
enum { DS_CUDA_FP8_E4M3 = 2 };
enum { DS_CUDA_MOE_SOFTMAX = 0, DS_CUDA_MOE_SIGMOID = 1 };
/* Expert selection (ds.moe_gate's topk_method): plain top-k; V2's group-limited greedy (groups
 * ranked by their best score, masked scores 0); V3's noaux_tc (groups ranked by the sum of their
 * top-2 biased scores, masked choices -inf). */
enum { DS_CUDA_MOE_GREEDY = 0, DS_CUDA_MOE_GROUP_LIMITED_GREEDY = 1, DS_CUDA_MOE_NOAUX_TC = 2 };

#define DS_CUDA_MOE_MAX_EXPERTS 512      /* router: 16 experts per lane */
#define DS_CUDA_MOE_MAX_TOPK 16
#define DS_CUDA_MOE_MAX_GROUPS 32        /* one lane per group */
#define DS_CUDA_MOE_MAX_LOCAL_EXPERTS 256 /* permute: per-warp counters in shared memory */
#define DS_CUDA_MOE_FP8_BLOCK 128        /* FP8 scale block (rows and columns) */

/* ds_moe_route: one warp per token (4 per block of 128). weights/ids rows of the host kernel
 * (kernels/cpu/moe.cpp moeGate): the correction bias only steers the choice, the weights are the
 * unbiased scores, normalised to sum 1 (+1e-20) when norm_topk_prob, times the scaling factor.
 * Ties choose the lower expert index. */
typedef struct {
  ds_cuda_ptr logits;          /* f32 [T, num_experts] */
  ds_cuda_ptr correction_bias; /* f32 [num_experts], or 0 */
  ds_cuda_ptr weights;         /* f32 [T, top_k] out */
  ds_cuda_ptr ids;             /* int32 [T, top_k] out: global expert ids */
  int32_t num_tokens, num_experts, top_k;
  int32_t n_group, topk_group; /* 1, 1 without groups; num_experts % n_group == 0 */
  int32_t scoring;             /* DS_CUDA_MOE_SOFTMAX / _SIGMOID */
  int32_t method;              /* DS_CUDA_MOE_GREEDY / ... */
  int32_t norm_topk_prob;
  float routed_scaling_factor;
} ds_cuda_moe_route_params;
const char* ds_cuda_plan_moe_route(const ds_cuda_moe_route_params* p, ds_cuda_plan* out);

/* ds_moe_permute: one block of 1024 threads. Slot (t, j) of the step routes token t to global
 * expert ids[t, j]; its local expert is e = ids[t, j] - first_expert when in [0, num_local).
 * Rows of local expert e are [expert_start[e], expert_start[e + 1]), in slot order (t, then j);
 * expert_start[num_local] = all local rows. active[0..active[num_local]) lists the local experts
 * with rows, ascending (active[num_local] holds their count). row_token / row_weight give each
 * row's token and routing weight; slot_row[t * top_k + j] its row, -1 for skipped slots.
 * kernels/cpu/moe_routing.h (permuteByExpert) is the definition the GPU check compares with. */
typedef struct {
  ds_cuda_ptr ids;          /* int32 [T, top_k] */
  ds_cuda_ptr weights;      /* f32 [T, top_k] */
  ds_cuda_ptr expert_start; /* int32 [num_local + 1] out */
  ds_cuda_ptr active;       /* int32 [num_local + 1] out */
  ds_cuda_ptr row_token;    /* int32 [T * top_k] out */
  ds_cuda_ptr row_weight;   /* f32 [T * top_k] out */
  ds_cuda_ptr slot_row;     /* int32 [T * top_k] out */
  int32_t num_tokens, top_k, first_expert, num_local;
} ds_cuda_moe_permute_params;
const char* ds_cuda_plan_moe_permute(const ds_cuda_moe_permute_params* p, ds_cuda_plan* out);

/* ds_moe_gemv_w<bf16|fp8>_a<bf16|f32>_<plain|swiglu>: per routed row r of local expert e,
 *   plain:  y[r] = x_r W_e^T                       (the down projection)
 *   swiglu: y[r] = silu(x_r W_e^T) * (x_r W2_e^T)  (gate with up, one pass over both weights)
 * where x_r = x[row_token[r]] with gather (the step's tokens) or x[r] (the permuted h rows).
 * W, W2: [num_local, N, K] row-major (bf16, or FP8 E4M3 with f32 block scales [num_local,
 * ceil(N / 128), ceil(K / 128)]). Grid (ceil(N / 8), min(num_local, max_rows)): block y serves
 * active[y] (exits past the active count), 8 warps = 8 output columns, its expert's rows in
 * passes of 4, each lane streaming 16-byte weight loads; f32 accumulation, warp-shuffle sums.
 * K % 16 == 0, 16-byte aligned x rows (x_stride % 8 bf16 / % 4 f32) and weights. */
typedef struct {
  ds_cuda_ptr x;               /* act [rows of x, x_stride] */
  ds_cuda_ptr w, w2;           /* expert weights (w2 only with swiglu) */
  ds_cuda_ptr w_scale, w2_scale; /* FP8 block scales, or 0 */
  ds_cuda_ptr y;               /* act [max_rows, y_stride] */
  ds_cuda_ptr expert_start, active, row_token; /* from ds_moe_permute */
  int32_t N, K, x_stride, y_stride;
  int32_t num_local, max_rows; /* max_rows: T * top_k, the bound of the routed rows */
  int32_t gather, swiglu;
  int32_t act_dtype, weight_dtype; /* act: F32 / BF16; weight: BF16 / FP8_E4M3 */
} ds_cuda_moe_gemv_params;
const char* ds_cuda_plan_moe_gemv(const ds_cuda_moe_gemv_params* p, ds_cuda_plan* out);

/* ds_moe_combine_<dtype>: out[t] = sum over t's slots whose row is not -1, in ascending expert
 * order (the host kernel's order), of weights[t, j] * y[slot_row[t, j]], plus shared[t] when
 * given, accumulated in f32 and rounded once. Grid (T), block 256. */
typedef struct {
  ds_cuda_ptr y;        /* act [rows, hidden]: the down projections of the routed rows */
  ds_cuda_ptr ids, weights, slot_row; /* [T, top_k] */
  ds_cuda_ptr shared;   /* act [T, hidden] shared-expert output, or 0 */
  ds_cuda_ptr out;      /* act [T, hidden] */
  int32_t num_tokens, top_k, hidden;
  int32_t dtype;
} ds_cuda_moe_combine_params;
const char* ds_cuda_plan_moe_combine(const ds_cuda_moe_combine_params* p, ds_cuda_plan* out);

/* One workspace for steps 2-6 of a layer, 256-byte aligned regions (byte offsets from its base):
 * logits f32 [T, E], weights f32 [T, k], ids int32 [T, k], expert_start and active int32
 * [num_local + 1], row_token int32 / row_weight f32 / slot_row int32 [T k], h act [T k, I],
 * y act [T k, H]. */
typedef struct {
  uint64_t logits, weights, ids, expert_start, active, row_token, row_weight, slot_row, h, y;
  uint64_t total_bytes;
} ds_cuda_moe_workspace;
const char* ds_cuda_moe_workspace_layout(int32_t num_tokens, int32_t num_experts, int32_t top_k,
                                         int32_t num_local, int32_t inter, int32_t hidden,
                                         int32_t act_dtype, ds_cuda_moe_workspace* out);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* DS_CUDA_MOE_H */
