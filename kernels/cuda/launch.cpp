// Host-side launch planning of the CUDA kernel library: validation and grid/block/shared memory
// for each kernel (pure functions of shapes and device limits; no CUDA needed).
#include "ds_cuda_kernels.h"

#include <algorithm>
#include <cstring>

#include "launch_common.h"

using namespace ds_cuda_plan_util;

namespace {

// Symbols are static strings; built from a fixed table so the plan never allocates.
const char* pick(const char* const* table, int n, const char* prefix, const char* suffix) {
  const size_t lp = std::strlen(prefix), ls = std::strlen(suffix);
  for (int i = 0; i < n; ++i) {
    const char* s = table[i];
    const size_t l = std::strlen(s);
    if (l == lp + ls && std::strncmp(s, prefix, lp) == 0 && std::strcmp(s + lp, suffix) == 0)
      return s;
  }
  return nullptr;
}

const char* const kSymbols[] = {
#define DS_GEMV_SYMS(w, a) "ds_gemv_w" w "_a" a "_m1", "ds_gemv_w" w "_a" a "_m2", \
                           "ds_gemv_w" w "_a" a "_m4"
    DS_GEMV_SYMS("bf16", "bf16"), "ds_gemv_wbf16_abf16_m8", DS_GEMV_SYMS("bf16", "f32"),
    DS_GEMV_SYMS("f32", "f32"),
    "ds_gemv_reduce_bf16", "ds_gemv_reduce_f32",
    "ds_gemv_any_wbf16_abf16", "ds_gemv_any_wbf16_af32", "ds_gemv_any_wf32_af32",
#define DS_ATTN_SYMS(k, t) "ds_attn_" k "_" t "_d64", "ds_attn_" k "_" t "_d128", "ds_attn_" k "_" t "_d256"
    DS_ATTN_SYMS("decode", "bf16"), DS_ATTN_SYMS("decode", "f32"),
    DS_ATTN_SYMS("combine", "bf16"), DS_ATTN_SYMS("combine", "f32"),
    DS_ATTN_SYMS("prefill", "bf16"), DS_ATTN_SYMS("prefill", "f32"),
    "ds_attn_small_bf16", "ds_attn_small_f32",
    "ds_kv_write_bf16", "ds_kv_write_f32",
#define DS_KVQ_SYMS(c, a) "ds_kv_write_" c "_a" a, "ds_attn_small_" c "_a" a, \
    DS_ATTN_SYMS("decode", c "_a" a), DS_ATTN_SYMS("prefill", c "_a" a)
    DS_KVQ_SYMS("i8", "bf16"), DS_KVQ_SYMS("i8", "f32"), DS_KVQ_SYMS("fp8", "bf16"), DS_KVQ_SYMS("fp8", "f32"),
    "ds_rms_norm_bf16", "ds_rms_norm_f32", "ds_add_rms_norm_bf16", "ds_add_rms_norm_f32",
    "ds_rope_bf16", "ds_rope_f32",
    "ds_swiglu_bf16", "ds_swiglu_f32", "ds_add_bf16", "ds_add_f32",
    "ds_embed_bf16", "ds_embed_f32", "ds_gather_rows_bf16", "ds_gather_rows_f32",
    "ds_argmax_bf16", "ds_argmax_f32", "ds_copy_cols_bf16", "ds_copy_cols_f32",
    "ds_synthetic_fill",
    "ds_moe_route", "ds_moe_permute",
#define DS_MOE_GEMV_SYMS(w, a) "ds_moe_gemv_w" w "_a" a "_plain", "ds_moe_gemv_w" w "_a" a "_swiglu"
    DS_MOE_GEMV_SYMS("bf16", "bf16"), DS_MOE_GEMV_SYMS("bf16", "f32"),
    DS_MOE_GEMV_SYMS("fp8", "bf16"), DS_MOE_GEMV_SYMS("fp8", "f32"),
    "ds_moe_combine_bf16", "ds_moe_combine_f32",
    "ds_gemv_wi4_abf16_m1", "ds_gemv_wi4_abf16_m2", "ds_gemv_wi4_abf16_m4",
    "ds_gemv_wi4_af32_m1", "ds_gemv_wi4_af32_m2", "ds_gemv_wi4_af32_m4", "ds_i4_to_gpu",
    "ds_gemv_any_wi4_abf16", "ds_gemv_any_wi4_af32",
    "ds_gemv_wfp8_abf16_m1", "ds_gemv_wfp8_abf16_m2", "ds_gemv_wfp8_abf16_m4",
    "ds_gemv_wfp8_af32_m1", "ds_gemv_wfp8_af32_m2",
    "ds_gemv_wi8_abf16_m1", "ds_gemv_wi8_abf16_m2", "ds_gemv_wi8_abf16_m4",
    "ds_gemv_wi8_af32_m1", "ds_gemv_wi8_af32_m2",
    "ds_mla_kv_write_bf16", "ds_mla_kv_write_f32", "ds_mla_attend_bf16", "ds_mla_attend_f32",
    "ds_mla_absorb_abf16_wbf16", "ds_mla_absorb_af32_wbf16", "ds_mla_absorb_af32_wf32",
    "ds_mla_out_abf16_wbf16", "ds_mla_out_af32_wbf16", "ds_mla_out_af32_wf32", "ds_mla_combine",
    "ds_mla_absorb_abf16_wfp8", "ds_mla_absorb_af32_wfp8", "ds_mla_out_abf16_wfp8", "ds_mla_out_af32_wfp8",
    "ds_mla_kv_write_i8_abf16", "ds_mla_kv_write_i8_af32", "ds_mla_attend_i8_abf16", "ds_mla_attend_i8_af32",
    "ds_mla_kv_write_fp8_abf16", "ds_mla_kv_write_fp8_af32", "ds_mla_attend_fp8_abf16", "ds_mla_attend_fp8_af32",
    "ds_mla_prefill_bf16_abf16", "ds_mla_prefill_f32_af32", "ds_mla_prefill_i8_abf16", "ds_mla_prefill_i8_af32",
    "ds_mla_prefill_fp8_abf16", "ds_mla_prefill_fp8_af32",
    "ds_comm_sum_ranks_bf16", "ds_comm_sum_ranks_f32",
    "ds_gemm_q_i4_abf16", "ds_gemm_q_fp8_abf16", "ds_gemm_q_i8_abf16",
    "ds_moe_gemm_wbf16_abf16_plain", "ds_moe_gemm_wbf16_abf16_swiglu", "ds_moe_gemm_wfp8_abf16_plain",
    "ds_moe_gemm_wfp8_abf16_swiglu", "ds_gemm_fp8mma_abf16", "ds_moe_gemm_wfp8_afp8_plain",
    "ds_moe_gemm_wfp8_afp8_swiglu",
    nullptr,
};
constexpr int kNumSymbols = sizeof(kSymbols) / sizeof(kSymbols[0]) - 1;

const char* sym(const char* prefix, const char* suffix) {
  return pick(kSymbols, kNumSymbols, prefix, suffix);
}

}  // namespace

const char* ds_cuda_plan_util::symbol(const char* prefix, const char* suffix) { return sym(prefix, suffix); }

namespace {

const char* checkDevice(const ds_cuda_device_limits* dev) {
  if (!dev || dev->sm_count < 1) return "device limits: sm_count must be >= 1";
  if (dev->max_shared_per_block < 16384) return "device limits: max_shared_per_block < 16 KiB";
  return nullptr;
}

constexpr int32_t kSmallHeadDim = 32;  // ds_attn_small's register arrays
bool tiledHeadDim(int32_t d) { return d == 64 || d == 128 || d == 256; }

bool quantKV(int32_t d) { return d == DS_CUDA_KV_INT8 || d == DS_CUDA_FP8_E4M3; }

// The cache part of a kernel's name: "bf16" / "f32", or "i8_a<act>" / "fp8_a<act>" for the
// quantized caches (null when act is not f32 / bf16).
const char* kvName(int32_t kv_dtype, int32_t act) {
  if (!quantKV(kv_dtype)) return dtypeName(kv_dtype);
  if (!validDtype(act)) return nullptr;
  static const char* const names[2][2] = {{"i8_af32", "i8_abf16"}, {"fp8_af32", "fp8_abf16"}};
  return names[kv_dtype == DS_CUDA_FP8_E4M3][act == DS_CUDA_BF16];
}
// The dtype of q, out, k and v.
int32_t actOf(const ds_cuda_paged_kv& kv, int32_t act) { return quantKV(kv.dtype) ? act : kv.dtype; }

const char* checkPagedKV(const ds_cuda_paged_kv& kv, int32_t act) {
  if (!validDtype(kv.dtype) && !quantKV(kv.dtype)) return "kv.dtype: not f32, bf16, int8 or fp8_e4m3";
  if (!kvName(kv.dtype, act)) return "kv: a quantized cache needs act_dtype f32 or bf16";
  if (quantKV(kv.dtype) && int64_t{kv.num_blocks} * kv.block_size * kv.kv_heads % 4)
    return "kv: a quantized cache needs num_blocks * block_size * kv_heads % 4 == 0 (code alignment)";
  if (!kv.k_cache || !kv.v_cache || !kv.positions || !kv.token_seq || !kv.block_table)
    return "kv: a cache, positions, token_seq or block_table pointer is 0";
  if (kv.num_blocks < 1 || kv.block_size < 1 || kv.kv_heads < 1 || kv.max_blocks_per_seq < 1)
    return "kv: num_blocks, block_size, kv_heads and max_blocks_per_seq must be >= 1";
  if (kv.head_dim != 64 && kv.head_dim != 128 && kv.head_dim != 256 &&
      !(kv.head_dim >= 1 && kv.head_dim <= kSmallHeadDim))
    return "kv.head_dim: only 64, 128, 256 (tiled) and 1..32 (ds_attn_small) are built";
  if (!aligned(kv.k_cache, 16) || !aligned(kv.v_cache, 16)) return "kv: caches not 16-byte aligned";
  return nullptr;
}

const char* headDimSuffix(int32_t d) { return d == 64 ? "_d64" : d == 128 ? "_d128" : "_d256"; }

// Prefill tiles: (rows per block, keys per tile); must match DS_ATTN_PREFILL in the kernels.
void prefillTile(int32_t d, int& bm, int& bn) {
  bm = d == 256 ? 8 : 16;
  bn = d == 256 ? 16 : 32;
}

#define DS_FAIL(msg) \
  do {               \
    return (msg);    \
  } while (0)

}  // namespace

extern "C" {

const char* const* ds_cuda_kernel_symbols(void) { return kSymbols; }

const char* ds_cuda_plan_gemv(ds_cuda_gemv_params* p, const ds_cuda_device_limits* dev,
                              ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (const char* e = checkDevice(dev)) return e;
  if (!validDtype(p->act_dtype) || !validDtype(p->weight_dtype)) DS_FAIL("gemv: dtype not f32 or bf16");
  if (p->weight_dtype == DS_CUDA_F32 && p->act_dtype == DS_CUDA_BF16)
    DS_FAIL("gemv: f32 weights with bf16 activations are not built");
  if (p->M < 1 || p->M > DS_CUDA_GEMV_MAX_M) DS_FAIL("gemv: M must be in [1, 16] (larger M: cuBLASLt)");
  if (p->N < 1 || p->K < 1) DS_FAIL("gemv: N and K must be >= 1");
  if (p->x_stride < p->K) DS_FAIL("gemv: x_stride must be >= K");
  if (p->y_stride < p->N) DS_FAIL("gemv: y_stride must be >= N");
  if (!p->x || !p->w || !p->y) DS_FAIL("gemv: x, w and y are required");
  if (p->y_f32 != 0 && p->y_f32 != 1) DS_FAIL("gemv: y_f32 must be 0 or 1");
  if (!aligned(p->x, dtypeBytes(p->act_dtype)) || !aligned(p->w, dtypeBytes(p->weight_dtype)))
    DS_FAIL("gemv: x or w misaligned for its dtype");
  if (!aligned(p->bias, 4) || !aligned(p->y, p->y_f32 ? 4 : dtypeBytes(p->act_dtype))) DS_FAIL("gemv: bias or y misaligned");
  const int vec = p->weight_dtype == DS_CUDA_BF16 ? 8 : 4;  // elements per 16-byte load
  if (p->K % vec || p->x_stride % vec || !aligned(p->x, 16) || !aligned(p->w, 16)) {
    // Rows that 16-byte loads cannot walk (K = 172 in stories260K's MLP): scalar loads, one
    // warp per output column and row, no split. Correct for any shape, not fast.
    p->splits = 1;
    p->k_per_split = p->K;
    p->rows_per_pass = 1;
    const char* s = p->weight_dtype == DS_CUDA_F32 ? sym("ds_gemv_any_wf32_a", dtypeName(p->act_dtype))
                                                   : sym("ds_gemv_any_wbf16_a", dtypeName(p->act_dtype));
    setLaunch(out->launches[0], s, ceilDiv(p->N, 8), p->M, 1, 256);
    out->num_launches = 1;
    return nullptr;
  }

  // Rows per pass: the smallest built tile >= M (f32 activations stop at 4: see gemv.cu).
  const int max_mt = p->act_dtype == DS_CUDA_BF16 ? 8 : 4;
  const int mt = std::min(max_mt, p->M == 1 ? 1 : p->M == 2 ? 2 : p->M <= 4 ? 4 : 8);
  const int64_t gx = ceilDiv(p->N, 8), gy = ceilDiv(p->M, mt);
  // Split K when the column blocks cannot fill the device twice over (memory-bound: every SM
  // must stream), in chunks of 256 elements (a warp's 32 lanes x 8), at most 16 splits.
  int64_t splits = 1;
  const int64_t blocks = gx * gy, target = 2 * int64_t{dev->sm_count};
  if (blocks < target) splits = std::min<int64_t>({ceilDiv(target, blocks), p->K / 256, 16});
  splits = std::max<int64_t>(splits, 1);
  int64_t kps = ceilDiv(ceilDiv(p->K, splits), 256) * 256;
  splits = ceilDiv(p->K, kps);
  p->splits = static_cast<int32_t>(splits);
  p->k_per_split = static_cast<int32_t>(kps);
  p->rows_per_pass = mt;

  char suffix[32];
  const char* mts = mt == 1 ? "_m1" : mt == 2 ? "_m2" : mt == 4 ? "_m4" : "_m8";
  std::strcpy(suffix, "_a");
  std::strcat(suffix, dtypeName(p->act_dtype));
  std::strcat(suffix, mts);
  const char* s = p->weight_dtype == DS_CUDA_BF16 ? sym("ds_gemv_wbf16", suffix) : sym("ds_gemv_wf32", suffix);
  setLaunch(out->launches[0], s, gx, gy, splits, 256);
  out->num_launches = 1;
  if (splits > 1) {
    setLaunch(out->launches[1], sym("ds_gemv_reduce_", dtypeName(p->y_f32 ? DS_CUDA_F32 : p->act_dtype)),
              ceilDiv(int64_t{p->M} * p->N, 256), 1, 1, 256);
    out->num_launches = 2;
    out->workspace_bytes = static_cast<uint64_t>(splits) * p->M * p->N * 4;
  }
  return nullptr;
}

const char* ds_cuda_plan_kv_write(const ds_cuda_kv_write_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (const char* e = checkPagedKV(p->kv, p->act_dtype)) return e;
  if (p->num_tokens < 1) DS_FAIL("kv_write: num_tokens must be >= 1");
  if (!p->k || !p->v) DS_FAIL("kv_write: k and v are required");
  setLaunch(out->launches[0], sym("ds_kv_write_", kvName(p->kv.dtype, p->act_dtype)), p->num_tokens, 1, 1, 128);
  out->num_launches = 1;
  return nullptr;
}

const char* ds_cuda_plan_attn_decode(ds_cuda_attn_decode_params* p,
                                     const ds_cuda_device_limits* dev, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (const char* e = checkDevice(dev)) return e;
  if (const char* e = checkPagedKV(p->kv, p->act_dtype)) return e;
  if (p->num_tokens < 1) DS_FAIL("attn_decode: num_tokens must be >= 1");
  if (p->q_heads < 1 || p->q_heads % p->kv.kv_heads) DS_FAIL("attn_decode: q_heads must be a multiple of kv_heads");
  if (p->max_context < 1) DS_FAIL("attn_decode: max_context must be >= 1");
  if (p->sliding_window < 0) DS_FAIL("attn_decode: sliding_window must be >= 0");
  if (!(p->scale > 0.0f)) DS_FAIL("attn_decode: scale must be > 0");
  if (!p->q || !p->out) DS_FAIL("attn_decode: q and out are required");
  if (!aligned(p->q, 16)) DS_FAIL("attn_decode: q must be 16-byte aligned");

  const int64_t group = p->q_heads / p->kv.kv_heads, chunks = ceilDiv(group, 4);
  const int64_t base = int64_t{p->num_tokens} * p->kv.kv_heads * chunks;
  const int64_t ctx = p->sliding_window > 0 ? std::min(p->max_context, p->sliding_window) : p->max_context;
  // Enough (token, group, split) blocks for two waves, splits of at least 256 positions, <= 64.
  int64_t splits = std::clamp<int64_t>(ceilDiv(2 * int64_t{dev->sm_count}, base), 1,
                                       std::min<int64_t>(64, ceilDiv(ctx, 256)));
  const int64_t len = ceilDiv(ceilDiv(ctx, splits), 32) * 32;
  splits = ceilDiv(ctx, len);
  p->splits = static_cast<int32_t>(splits);
  p->split_len = static_cast<int32_t>(len);

  char suffix[32], combine[16];
  std::strcpy(suffix, "_");
  std::strcat(suffix, kvName(p->kv.dtype, p->act_dtype));
  std::strcat(suffix, headDimSuffix(p->kv.head_dim));
  std::strcpy(combine, "_");  // the partials are f32; out has the activations' dtype
  std::strcat(combine, dtypeName(actOf(p->kv, p->act_dtype)));
  std::strcat(combine, headDimSuffix(p->kv.head_dim));
  setLaunch(out->launches[0], sym("ds_attn_decode", suffix), p->num_tokens,
            p->kv.kv_heads * chunks, splits, 128);
  out->num_launches = 1;
  if (splits > 1) {
    setLaunch(out->launches[1], sym("ds_attn_combine", combine), p->num_tokens, p->q_heads, 1, 128);
    out->num_launches = 2;
    out->workspace_bytes = static_cast<uint64_t>(p->num_tokens) * p->q_heads * splits *
                           (p->kv.head_dim + 1) * 4;
  }
  return nullptr;
}

const char* ds_cuda_plan_attn_prefill(const ds_cuda_attn_prefill_params* p,
                                      const ds_cuda_device_limits* dev, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (const char* e = checkDevice(dev)) return e;
  if (const char* e = checkPagedKV(p->kv, p->act_dtype)) return e;
  if (p->num_seqs < 1 || p->num_seqs > 65535) DS_FAIL("attn_prefill: num_seqs must be in [1, 65535]");
  if (p->max_q_len < 1) DS_FAIL("attn_prefill: max_q_len must be >= 1");
  if (p->q_heads < 1 || p->q_heads % p->kv.kv_heads) DS_FAIL("attn_prefill: q_heads must be a multiple of kv_heads");
  if (p->sliding_window < 0) DS_FAIL("attn_prefill: sliding_window must be >= 0");
  if (!(p->scale > 0.0f)) DS_FAIL("attn_prefill: scale must be > 0");
  if (!p->q || !p->out || !p->seq_q_start) DS_FAIL("attn_prefill: q, out and seq_q_start are required");
  if (!tiledHeadDim(p->kv.head_dim)) {  // small heads: one thread per (row, head)
    setLaunch(out->launches[0], sym("ds_attn_small_", kvName(p->kv.dtype, p->act_dtype)), ceilDiv(p->max_q_len, 32),
              p->q_heads, p->num_seqs, 32);
    out->num_launches = 1;
    return nullptr;
  }
  int bm, bn;
  prefillTile(p->kv.head_dim, bm, bn);
  const int64_t d = p->kv.head_dim;
  const int64_t smem = (bm * d + bn * (d + 1) + bn * d) * 4;
  if (smem > dev->max_shared_per_block) DS_FAIL("attn_prefill: tile needs more shared memory than the device allows");
  char suffix[32];
  std::strcpy(suffix, "_");
  std::strcat(suffix, kvName(p->kv.dtype, p->act_dtype));
  std::strcat(suffix, headDimSuffix(p->kv.head_dim));
  setLaunch(out->launches[0], sym("ds_attn_prefill", suffix), ceilDiv(p->max_q_len, bm),
            p->q_heads, p->num_seqs, 128, static_cast<uint32_t>(smem));
  out->num_launches = 1;
  return nullptr;
}

int ds_cuda_attn_has_decode(int32_t head_dim) { return tiledHeadDim(head_dim) ? 1 : 0; }

const char* ds_cuda_plan_rms_norm(const ds_cuda_rms_norm_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (!validDtype(p->dtype)) DS_FAIL("rms_norm: dtype not f32 or bf16");
  if (p->rows < 1 || p->cols < 1) DS_FAIL("rms_norm: rows and cols must be >= 1");
  if (p->cols % (p->dtype == DS_CUDA_BF16 ? 8 : 4)) DS_FAIL("rms_norm: cols must be a multiple of 8 (bf16) or 4 (f32)");
  if (!(p->eps >= 0.0f)) DS_FAIL("rms_norm: eps must be >= 0");
  if (!p->x || !p->weight || !p->y) DS_FAIL("rms_norm: x, weight and y are required");
  if (p->add && (!p->residual || !p->sum)) DS_FAIL("rms_norm: add needs residual and sum");
  if (p->weight_f32 != 0 && p->weight_f32 != 1) DS_FAIL("rms_norm: weight_f32 must be 0 or 1");
  for (ds_cuda_ptr q : {p->x, p->weight, p->y, p->residual, p->sum})
    if (!aligned(q, 16)) DS_FAIL("rms_norm: buffers must be 16-byte aligned");
  setLaunch(out->launches[0], sym(p->add ? "ds_add_rms_norm_" : "ds_rms_norm_", dtypeName(p->dtype)),
            p->rows, 1, 1, 256);
  out->num_launches = 1;
  return nullptr;
}

const char* ds_cuda_plan_rope(const ds_cuda_rope_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (!validDtype(p->dtype)) DS_FAIL("rope: dtype not f32 or bf16");
  if (p->num_tokens < 1 || p->heads < 1 || p->head_dim < 2) DS_FAIL("rope: num_tokens, heads >= 1 and head_dim >= 2");
  if (p->rot_dim < 2 || p->rot_dim % 2 || p->rot_dim > p->head_dim || p->rot_dim > 512)
    DS_FAIL("rope: rot_dim must be even, <= head_dim and <= 512");
  if (p->token_stride < int64_t{p->heads} * p->head_dim) DS_FAIL("rope: token_stride < heads * head_dim");
  if (p->interleaved != 0 && p->interleaved != 1) DS_FAIL("rope: interleaved must be 0 or 1");
  if (!p->x || !p->positions || !p->inv_freq) DS_FAIL("rope: x, positions and inv_freq are required");
  setLaunch(out->launches[0], sym("ds_rope_", dtypeName(p->dtype)), p->num_tokens, 1, 1, 128);
  out->num_launches = 1;
  return nullptr;
}

const char* ds_cuda_plan_swiglu(const ds_cuda_swiglu_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (!validDtype(p->dtype)) DS_FAIL("swiglu: dtype not f32 or bf16");
  if (p->rows < 1 || p->cols < 1) DS_FAIL("swiglu: rows and cols must be >= 1");
  if (p->gate_stride < p->cols || p->up_stride < p->cols || p->y_stride < p->cols)
    DS_FAIL("swiglu: strides must be >= cols");
  if (!p->gate || !p->up || !p->y) DS_FAIL("swiglu: gate, up and y are required");
  setLaunch(out->launches[0], sym("ds_swiglu_", dtypeName(p->dtype)),
            strideBlocks(int64_t{p->rows} * p->cols), 1, 1, 256);
  out->num_launches = 1;
  return nullptr;
}

const char* ds_cuda_plan_add(const ds_cuda_add_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (!validDtype(p->dtype)) DS_FAIL("add: dtype not f32 or bf16");
  if (p->n < 1) DS_FAIL("add: n must be >= 1");
  if (!p->a || !p->b || !p->y) DS_FAIL("add: a, b and y are required");
  setLaunch(out->launches[0], sym("ds_add_", dtypeName(p->dtype)), strideBlocks(p->n), 1, 1, 256);
  out->num_launches = 1;
  return nullptr;
}

const char* ds_cuda_plan_embed(const ds_cuda_embed_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (!validDtype(p->dtype)) DS_FAIL("embed: dtype not f32 or bf16");
  if (p->num_tokens < 1 || p->hidden < 1 || p->table_rows < 1) DS_FAIL("embed: num_tokens, hidden and table_rows must be >= 1");
  if (p->row_offset < 0) DS_FAIL("embed: row_offset must be >= 0");
  if (!p->ids || !p->weight || !p->y) DS_FAIL("embed: ids, weight and y are required");
  setLaunch(out->launches[0], sym("ds_embed_", dtypeName(p->dtype)), p->num_tokens, 1, 1, 256);
  out->num_launches = 1;
  return nullptr;
}

const char* ds_cuda_plan_gather_rows(const ds_cuda_gather_rows_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (!validDtype(p->dtype)) DS_FAIL("gather_rows: dtype not f32 or bf16");
  if (p->num_rows < 1 || p->x_rows < 1 || p->hidden < 1) DS_FAIL("gather_rows: num_rows, x_rows and hidden must be >= 1");
  if (!p->x || !p->rows || !p->y) DS_FAIL("gather_rows: x, rows and y are required");
  setLaunch(out->launches[0], sym("ds_gather_rows_", dtypeName(p->dtype)), p->num_rows, 1, 1, 256);
  out->num_launches = 1;
  return nullptr;
}

const char* ds_cuda_plan_copy_cols(const ds_cuda_copy_cols_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (!validDtype(p->dtype)) DS_FAIL("copy_cols: dtype not f32 or bf16");
  if (p->rows < 1 || p->cols < 1) DS_FAIL("copy_cols: rows and cols must be >= 1");
  if (p->x_stride < p->cols || p->y_stride < p->cols) DS_FAIL("copy_cols: strides must be >= cols");
  if (!p->x || !p->y) DS_FAIL("copy_cols: x and y are required");
  setLaunch(out->launches[0], sym("ds_copy_cols_", dtypeName(p->dtype)),
            strideBlocks(int64_t{p->rows} * p->cols), 1, 1, 256);
  out->num_launches = 1;
  return nullptr;
}

const char* ds_cuda_plan_argmax(const ds_cuda_argmax_params* p, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (!validDtype(p->dtype)) DS_FAIL("argmax: dtype not f32 or bf16");
  if (p->rows < 1 || p->vocab < 1) DS_FAIL("argmax: rows and vocab must be >= 1");
  if (p->x_stride < p->vocab) DS_FAIL("argmax: x_stride must be >= vocab");
  if (!p->x || !p->out) DS_FAIL("argmax: x and out are required");
  setLaunch(out->launches[0], sym("ds_argmax_", dtypeName(p->dtype)), p->rows, 1, 1, 256);
  out->num_launches = 1;
  return nullptr;
}

int32_t ds_cuda_synthetic_unit_bytes(int32_t dtype) {
  switch (dtype) {
    case DS_CUDA_SYNTH_F32: case DS_CUDA_SYNTH_I32: return 4;
    case DS_CUDA_SYNTH_F16: case DS_CUDA_SYNTH_BF16: return 2;
    case DS_CUDA_SYNTH_F8_E4M3: case DS_CUDA_SYNTH_I8: case DS_CUDA_SYNTH_I4: return 1;
    default: return 0;
  }
}

const char* ds_cuda_plan_synthetic_fill(const ds_cuda_synthetic_fill_params* p,
                                        const ds_cuda_device_limits* dev, ds_cuda_plan* out) {
  std::memset(out, 0, sizeof(*out));
  if (const char* e = checkDevice(dev)) return e;
  const int32_t unit = ds_cuda_synthetic_unit_bytes(p->dtype);
  if (!unit) DS_FAIL("synthetic_fill: dtype is not F32, F16, BF16, F8_E4M3, I8, I32 or I4");
  if (!p->dst) DS_FAIL("synthetic_fill: dst is required");
  if (!aligned(p->dst, static_cast<uint32_t>(unit))) DS_FAIL("synthetic_fill: dst is not aligned to the element");
  if (p->dtype == DS_CUDA_SYNTH_I4 && p->cols < 1) DS_FAIL("synthetic_fill: I4 needs cols >= 1");
  if (!(p->std >= 0.0f) || !(p->mean == p->mean))
    DS_FAIL("synthetic_fill: mean and std must be numbers, std >= 0");
  if (p->count == 0) return nullptr;  // nothing to launch
  // Grid-stride: up to 8 blocks of 256 per SM (a fill is a hash per element, bandwidth-bound).
  const int64_t blocks = std::clamp<int64_t>(ceilDiv(static_cast<int64_t>(std::min<uint64_t>(p->count, uint64_t{1} << 40)), 256),
                                             1, int64_t{8} * dev->sm_count);
  setLaunch(out->launches[0], "ds_synthetic_fill", blocks, 1, 1, 256);
  out->num_launches = 1;
  return nullptr;
}

}  // extern "C"
