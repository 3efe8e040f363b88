// DeepSeek MLA decode and prefill over the paged latent cache (bf16 / f32 / int8 / fp8),
// up-projections absorbed (include/ds_cuda_mla.h). f32 accumulation throughout; the host's mlaAttention is the reference.
#include <cuda_fp8.h>

#include <type_traits>

#include "common.cuh"
#include "kv_quant_warp.cuh"
#include "kv_view.cuh"

namespace ds::cuda {
namespace {

constexpr int kMlaRankPerLane = DS_CUDA_MLA_MAX_RANK / 32;  // 16
constexpr int kMlaRopePerLane = DS_CUDA_MLA_MAX_ROPE / 32;  // 2
constexpr int kMlaRow = DS_CUDA_MLA_MAX_RANK + DS_CUDA_MLA_MAX_ROPE;

__device__ __forceinline__ size_t latentSlot(const ds_cuda_paged_latent& kv, int seq, int pos) {
  const int32_t block =
      ptr<const int32_t>(kv.block_table)[static_cast<size_t>(seq) * kv.max_blocks_per_seq + pos / kv.block_size];
  return static_cast<size_t>(block) * kv.block_size + pos % kv.block_size;
}

// kv_b element (row, col) as f32: bf16/f32 as stored, FP8 E4M3 times its block's scale (the
// host's dequantRow value: FP8 -> f16 is exact).
template <class W>
__device__ __forceinline__ float kvbAt(const ds_cuda_mla_decode_params& p, size_t row, int col) {
  const W* w = ptr<const W>(p.kv_b);
  if constexpr (sizeof(W) == 1) {
    const __half_raw h = __nv_cvt_fp8_to_halfraw(ptr<const __nv_fp8_storage_t>(p.kv_b)[row * p.kv.rank + col], __NV_E4M3);
    const int kb = (p.kv.rank + p.block_cols - 1) / p.block_cols;
    return __half2float(__half(h)) * ptr<const float>(p.kv_b_scale)[row / p.block_rows * kb + col / p.block_cols];
  } else {
    return toF(w[row * p.kv.rank + col]);
  }
}

// int8 latent rows (the host's quantizeVec: absmax / 127, round half even, clamp to +-127).
__device__ __forceinline__ float safeScale(float s) { return s > 0.0f && isfinite(s) ? s : 1.0f; }
template <class A>
__device__ __forceinline__ void quantizeRow(const A* x, int n, int8_t* q, float* scale) {
  float m = 0.0f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, fabsf(toF(x[i])));
  const float s = safeScale(blockMax(m) / 127.0f);
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    float r = rintf(toF(x[i]) / s);
    if (r != r) r = 0.0f;
    q[i] = static_cast<int8_t>(fminf(fmaxf(r, -127.0f), 127.0f));
  }
  if (threadIdx.x == 0) *scale = s;
}
// The int8 cache of one layer: scales [slots, 2] then codes [slots, rank + rope].
__device__ __forceinline__ float* latentScales(const ds_cuda_paged_latent& kv) {
  return ptr<float>(kv.cache);
}
__device__ __forceinline__ int8_t* latentCodes(const ds_cuda_paged_latent& kv) {
  return reinterpret_cast<int8_t*>(latentScales(kv) + static_cast<size_t>(kv.num_blocks) * kv.block_size * 2);
}

template <class A>
__device__ __forceinline__ void mlaKvWriteI8(const ds_cuda_mla_kv_write_params& p) {
  const int t = blockIdx.x;
  const ds_cuda_paged_latent& kv = p.kv;
  const size_t slot = latentSlot(kv, ptr<const int32_t>(kv.token_seq)[t], ptr<const int32_t>(kv.positions)[t]);
  int8_t* row = latentCodes(kv) + slot * (kv.rank + kv.rope_dim);
  float* sc = latentScales(kv) + slot * 2;
  quantizeRow(ptr<const A>(p.c_kv) + static_cast<size_t>(t) * p.c_stride, kv.rank, row, sc);
  quantizeRow(ptr<const A>(p.k_rope) + static_cast<size_t>(t) * p.k_stride, kv.rope_dim, row + kv.rank, sc + 1);
}

// fp8: warp 0 quantizes the slot's c_kv, warp 1 its k_rope, each with the host's per-vector scale
// search (kv_quant_warp.cuh, the GQA writers' order: bit for bit the host's mlaKvWrite).
template <class A>
__device__ __forceinline__ void mlaKvWriteF8(const ds_cuda_mla_kv_write_params& p) {
  __shared__ float xs[DS_CUDA_MLA_MAX_RANK + DS_CUDA_MLA_MAX_ROPE];
  const int t = blockIdx.x, warp = threadIdx.x >> 5;
  if (warp > 1) return;
  const ds_cuda_paged_latent& kv = p.kv;
  const size_t slot = latentSlot(kv, ptr<const int32_t>(kv.token_seq)[t], ptr<const int32_t>(kv.positions)[t]);
  uint8_t* row = reinterpret_cast<uint8_t*>(latentCodes(kv)) + slot * (kv.rank + kv.rope_dim);
  float* sc = latentScales(kv) + slot * 2;
  if (warp == 0)
    quantizeWarp<A, true>(ptr<const A>(p.c_kv) + static_cast<size_t>(t) * p.c_stride, kv.rank, xs, row, sc);
  else
    quantizeWarp<A, true>(ptr<const A>(p.k_rope) + static_cast<size_t>(t) * p.k_stride, kv.rope_dim,
                          xs + DS_CUDA_MLA_MAX_RANK, row + kv.rank, sc + 1);
}

template <class T>
__device__ __forceinline__ void mlaKvWrite(const ds_cuda_mla_kv_write_params& p) {
  const int t = blockIdx.x;
  const ds_cuda_paged_latent& kv = p.kv;
  const int L = kv.rank + kv.rope_dim;
  T* row = ptr<T>(kv.cache) +
           latentSlot(kv, ptr<const int32_t>(kv.token_seq)[t], ptr<const int32_t>(kv.positions)[t]) * L;
  const T* c = ptr<const T>(p.c_kv) + static_cast<size_t>(t) * p.c_stride;
  const T* k = ptr<const T>(p.k_rope) + static_cast<size_t>(t) * p.k_stride;
  for (int i = threadIdx.x; i < L; i += blockDim.x) row[i] = i < kv.rank ? c[i] : k[i - kv.rank];
}

// One latent row of slot `slot` into dst[rank + rope] as f32, lanes along the row: float caches as
// stored; int8 (KvI8) / fp8 (KvF8) caches decode(code) * the slot's c_kv or k_rope scale (the
// host's mlaKvReadSlot value).
template <class KV>
__device__ __forceinline__ void loadLatentRow(const ds_cuda_paged_latent& kv, size_t slot, float* dst, int lane) {
  const int R = kv.rank, L = R + kv.rope_dim;
  if constexpr (std::is_same_v<KV, KvI8> || std::is_same_v<KV, KvF8>) {
    const uint8_t* codes = reinterpret_cast<const uint8_t*>(latentCodes(kv)) + slot * L;
    const float s0 = latentScales(kv)[slot * 2], s1 = latentScales(kv)[slot * 2 + 1];
    for (int c = lane; c < L; c += 32) dst[c] = decodeCode(KV{}, codes[c]) * (c < R ? s0 : s1);
  } else {
    const KV* row = ptr<const KV>(kv.cache) + slot * L;
    for (int c = lane; c < L; c += 32) dst[c] = toF(row[c]);
  }
}

// q_lat[t, h, r] = sum_d q_nope[t, h, d] W_uk[h][d, r]: one block per (token, head), threads
// over r (coalesced weight rows), d in order.
template <class A, class W>
__device__ __forceinline__ void mlaAbsorb(const ds_cuda_mla_decode_params& p) {
  __shared__ float sq[256];  // nope_dim <= 256 (plan)
  const int t = blockIdx.x, h = blockIdx.y, R = p.kv.rank, Dn = p.nope_dim;
  const A* qn = ptr<const A>(p.q_nope) + (static_cast<size_t>(t) * p.heads + h) * Dn;
  for (int d = threadIdx.x; d < Dn; d += blockDim.x) sq[d] = toF(qn[d]);
  __syncthreads();
  const size_t row0 = static_cast<size_t>(h) * (Dn + p.v_dim);
  float* out = ptr<float>(p.workspace) + (static_cast<size_t>(t) * p.heads + h) * R;
  for (int r = threadIdx.x; r < R; r += blockDim.x) {
    float acc = 0.0f;
    for (int d = 0; d < Dn; ++d) acc = fmaf(sq[d], kvbAt<W>(p, row0 + d, r), acc);
    out[r] = acc;
  }
}

// One warp per head, 8 heads per block sharing each staged tile of latent rows; positions
// [split * split_len, ...) of the token's own sequence up to its position.
template <class KV, class A>
__device__ __forceinline__ void mlaAttend(const ds_cuda_mla_decode_params& p) {
  __shared__ float tile[DS_CUDA_MLA_TILE][kMlaRow];
  const ds_cuda_paged_latent& kv = p.kv;
  const int t = blockIdx.x, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int h = blockIdx.y * DS_CUDA_MLA_HEADS_PER_BLOCK + warp;
  const int R = kv.rank, Dr = kv.rope_dim, H = p.heads;
  const int seq = ptr<const int32_t>(kv.token_seq)[t];
  const int n = ptr<const int32_t>(kv.positions)[t] + 1;
  // The last split takes every position past the others (a context beyond max_context is the
  // caller's bug, but never silently truncated).
  const int lo = blockIdx.z * p.split_len;
  const int hi = blockIdx.z + 1 == gridDim.z ? n : min(n, lo + p.split_len);
  const bool head = h < H;
  float q[kMlaRankPerLane], qr[kMlaRopePerLane], o[kMlaRankPerLane];
  const float* qlat = ptr<const float>(p.workspace) + (static_cast<size_t>(t) * H + (head ? h : 0)) * R;
  const A* qrope = ptr<const A>(p.q_rope) + (static_cast<size_t>(t) * H + (head ? h : 0)) * Dr;
#pragma unroll
  for (int i = 0; i < kMlaRankPerLane; ++i) {
    const int r = lane + 32 * i;
    q[i] = r < R ? qlat[r] : 0.0f;
    o[i] = 0.0f;
  }
#pragma unroll
  for (int i = 0; i < kMlaRopePerLane; ++i) {
    const int r = lane + 32 * i;
    qr[i] = r < Dr ? toF(qrope[r]) : 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int p0 = lo; p0 < hi; p0 += DS_CUDA_MLA_TILE) {
    const int rows = min(DS_CUDA_MLA_TILE, hi - p0);
    __syncthreads();  // the previous tile is read by every warp
    // A warp per latent row: its slot once, lanes along the row.
    for (int j = warp; j < rows; j += DS_CUDA_MLA_HEADS_PER_BLOCK) {
      loadLatentRow<KV>(kv, latentSlot(kv, seq, p0 + j), tile[j], lane);
    }
    __syncthreads();
    if (!head) continue;
    for (int j = 0; j < rows; ++j) {
      float s = 0.0f;
#pragma unroll
      for (int i = 0; i < kMlaRankPerLane; ++i)
        if (lane + 32 * i < R) s = fmaf(q[i], tile[j][lane + 32 * i], s);
#pragma unroll
      for (int i = 0; i < kMlaRopePerLane; ++i)
        if (lane + 32 * i < Dr) s = fmaf(qr[i], tile[j][R + lane + 32 * i], s);
      s = warpSum(s) * p.scale;
      const float mNew = fmaxf(m, s);
      const float corr = expf(m - mNew), e = expf(s - mNew);
      l = l * corr + e;
#pragma unroll
      for (int i = 0; i < kMlaRankPerLane; ++i)
        if (lane + 32 * i < R) o[i] = fmaf(e, tile[j][lane + 32 * i], o[i] * corr);
      m = mNew;
    }
  }
  if (!head) return;
  float* ws = ptr<float>(p.workspace);
  const size_t TH = static_cast<size_t>(p.num_tokens) * H, th = static_cast<size_t>(t) * H + h;
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  // splits == 1: o_lat directly; else this split's normalized partial and its log-sum-exp.
  float* dst = p.splits == 1 ? ws + TH * R + th * R
                             : ws + 2 * TH * R + (th * p.splits + blockIdx.z) * R;
#pragma unroll
  for (int i = 0; i < kMlaRankPerLane; ++i)
    if (lane + 32 * i < R) dst[lane + 32 * i] = o[i] * inv;
  if (p.splits > 1 && lane == 0)
    ws[2 * TH * R + TH * p.splits * R + th * p.splits + blockIdx.z] = l > 0.0f ? m + logf(l) : -INFINITY;
}

// Prefill (many query tokens per sequence): grid (ceil(max_q_len / 4), ceil(H / 8), num_seqs),
// 16 warps. The block takes 4 query tokens of sequence s = blockIdx.z (rows seq_q_start[s] +
// 4 blockIdx.x + {0..3}) and 8 heads: warp w attends for head (w & 7) and tokens 2 (w >> 3) and
// 2 (w >> 3) + 1 of the tile (registers: q_lat, q_rope, o_lat of 2 rows, 16 + 2 + 16 each), so
// each 16-row latent tile, staged once, serves 32 (token, head) rows (the decode kernel: 8). Tiles
// cover positions [0, the tile's last position]; a token's scores stop at its own position
// (causal by position). Online softmax in f32; o_lat into the workspace as the decode's.
constexpr int kMlaPrefillRowsPerWarp = 2;
constexpr int kMlaPrefillWarps = 16;
constexpr int kMlaPrefillTokens = kMlaPrefillRowsPerWarp * (kMlaPrefillWarps / DS_CUDA_MLA_HEADS_PER_BLOCK);
static_assert(kMlaPrefillTokens == DS_CUDA_MLA_PREFILL_TOKENS, "the plan's grid");

template <class KV, class A>
__device__ __forceinline__ void mlaPrefill(const ds_cuda_mla_decode_params& p) {
  constexpr int Q = kMlaPrefillRowsPerWarp;
  __shared__ float tile[DS_CUDA_MLA_TILE][kMlaRow];
  const ds_cuda_paged_latent& kv = p.kv;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, seq = blockIdx.z;
  const int h = blockIdx.y * DS_CUDA_MLA_HEADS_PER_BLOCK + (warp % DS_CUDA_MLA_HEADS_PER_BLOCK);
  const int R = kv.rank, Dr = kv.rope_dim, H = p.heads;
  const int32_t* qstart = ptr<const int32_t>(p.seq_q_start);
  const int first = qstart[seq], count = qstart[seq + 1] - first;
  const int tile0 = blockIdx.x * kMlaPrefillTokens;
  if (tile0 >= count) return;  // the whole block: shorter sequences than max_q_len
  const int32_t* positions = ptr<const int32_t>(kv.positions);
  // The tile's context: every position up to its last token's (positions need not be sorted).
  int hi = 0;
  for (int i = 0; i < kMlaPrefillTokens && tile0 + i < count; ++i) hi = max(hi, positions[first + tile0 + i] + 1);
  const bool head = h < H;
  int t[Q], pos[Q];
  float q[Q][kMlaRankPerLane], qr[Q][kMlaRopePerLane], o[Q][kMlaRankPerLane], m[Q], l[Q];
#pragma unroll
  for (int k = 0; k < Q; ++k) {
    const int i = tile0 + (warp / DS_CUDA_MLA_HEADS_PER_BLOCK) * Q + k;
    t[k] = first + min(i, count - 1);
    pos[k] = head && i < count ? positions[t[k]] : -1;  // -1: no row, every score masked
    const float* qlat = ptr<const float>(p.workspace) + (static_cast<size_t>(t[k]) * H + (head ? h : 0)) * R;
    const A* qrope = ptr<const A>(p.q_rope) + (static_cast<size_t>(t[k]) * H + (head ? h : 0)) * Dr;
#pragma unroll
    for (int i2 = 0; i2 < kMlaRankPerLane; ++i2) {
      const int r = lane + 32 * i2;
      q[k][i2] = r < R ? qlat[r] : 0.0f;
      o[k][i2] = 0.0f;
    }
#pragma unroll
    for (int i2 = 0; i2 < kMlaRopePerLane; ++i2) {
      const int r = lane + 32 * i2;
      qr[k][i2] = r < Dr ? toF(qrope[r]) : 0.0f;
    }
    m[k] = -INFINITY, l[k] = 0.0f;
  }
  int last = -1;  // the warp's latest position: tiles past it skip the arithmetic
#pragma unroll
  for (int k = 0; k < Q; ++k) last = max(last, pos[k]);
  for (int p0 = 0; p0 < hi; p0 += DS_CUDA_MLA_TILE) {
    const int rows = min(DS_CUDA_MLA_TILE, hi - p0);
    __syncthreads();  // the previous tile is read by every warp
    for (int j = warp; j < rows; j += kMlaPrefillWarps) loadLatentRow<KV>(kv, latentSlot(kv, seq, p0 + j), tile[j], lane);
    __syncthreads();
    const int jn = min(rows, last - p0 + 1);  // warp-uniform
    for (int j = 0; j < jn; ++j) {
      float s[Q];
#pragma unroll
      for (int k = 0; k < Q; ++k) s[k] = 0.0f;
#pragma unroll
      for (int i = 0; i < kMlaRankPerLane; ++i)
        if (lane + 32 * i < R) {
          const float c = tile[j][lane + 32 * i];
#pragma unroll
          for (int k = 0; k < Q; ++k) s[k] = fmaf(q[k][i], c, s[k]);
        }
#pragma unroll
      for (int i = 0; i < kMlaRopePerLane; ++i)
        if (lane + 32 * i < Dr) {
          const float c = tile[j][R + lane + 32 * i];
#pragma unroll
          for (int k = 0; k < Q; ++k) s[k] = fmaf(qr[k][i], c, s[k]);
        }
#pragma unroll
      for (int k = 0; k < Q; ++k) {
        const float sk = warpSum(s[k]) * p.scale;
        if (p0 + j > pos[k]) continue;  // causal: past this token's position
        const float mNew = fmaxf(m[k], sk);
        const float corr = expf(m[k] - mNew), e = expf(sk - mNew);
        l[k] = l[k] * corr + e;
#pragma unroll
        for (int i = 0; i < kMlaRankPerLane; ++i)
          if (lane + 32 * i < R) o[k][i] = fmaf(e, tile[j][lane + 32 * i], o[k][i] * corr);
        m[k] = mNew;
      }
    }
  }
  float* ws = ptr<float>(p.workspace);
  const size_t TH = static_cast<size_t>(p.num_tokens) * H;
#pragma unroll
  for (int k = 0; k < Q; ++k) {
    if (pos[k] < 0) continue;
    float* dst = ws + TH * R + (static_cast<size_t>(t[k]) * H + h) * R;
    const float inv = l[k] > 0.0f ? 1.0f / l[k] : 0.0f;
#pragma unroll
    for (int i = 0; i < kMlaRankPerLane; ++i)
      if (lane + 32 * i < R) dst[lane + 32 * i] = o[k][i] * inv;
  }
}

// o_lat = sum_z exp(lse_z - max) o_z / sum_z exp(lse_z - max), splits in order.
__device__ __forceinline__ void mlaCombine(const ds_cuda_mla_decode_params& p) {
  const int R = p.kv.rank, S = p.splits;
  const size_t TH = static_cast<size_t>(p.num_tokens) * p.heads;
  const size_t th = static_cast<size_t>(blockIdx.x) * p.heads + blockIdx.y;
  float* ws = ptr<float>(p.workspace);
  const float* part = ws + 2 * TH * R + th * S * R;
  const float* lse = ws + 2 * TH * R + TH * S * R + th * S;
  float mx = -INFINITY;
  for (int z = 0; z < S; ++z) mx = fmaxf(mx, lse[z]);
  float den = 0.0f;
  for (int z = 0; z < S; ++z) den += lse[z] == -INFINITY ? 0.0f : expf(lse[z] - mx);
  for (int r = threadIdx.x; r < R; r += blockDim.x) {
    float acc = 0.0f;
    for (int z = 0; z < S; ++z)
      if (lse[z] != -INFINITY) acc = fmaf(expf(lse[z] - mx), part[static_cast<size_t>(z) * R + r], acc);
    ws[TH * R + th * R + r] = den > 0.0f ? acc / den : 0.0f;
  }
}

// out[t, h, v] = W_uv[h][v, :] . o_lat[t, h]: a warp per output, lanes along the rank.
template <class A, class W>
__device__ __forceinline__ void mlaOut(const ds_cuda_mla_decode_params& p) {
  __shared__ float so[DS_CUDA_MLA_MAX_RANK];
  const int t = blockIdx.x, h = blockIdx.y, R = p.kv.rank;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  const size_t TH = static_cast<size_t>(p.num_tokens) * p.heads;
  const float* olat = ptr<const float>(p.workspace) + TH * R + (static_cast<size_t>(t) * p.heads + h) * R;
  for (int r = threadIdx.x; r < R; r += blockDim.x) so[r] = olat[r];
  __syncthreads();
  const size_t row0 = static_cast<size_t>(h) * (p.nope_dim + p.v_dim) + p.nope_dim;
  A* out = ptr<A>(p.out) + (static_cast<size_t>(t) * p.heads + h) * p.v_dim;
  for (int v = warp; v < p.v_dim; v += warps) {
    float acc = 0.0f;
    for (int r = lane; r < R; r += 32) acc = fmaf(kvbAt<W>(p, row0 + v, r), so[r], acc);
    acc = warpSum(acc);
    if (lane == 0) out[v] = fromF<A>(acc);
  }
}

}  // namespace
}  // namespace ds::cuda

#define DS_MLA_DTYPE(tn, T)                                                                    \
  extern "C" __global__ void __launch_bounds__(128)                                            \
      ds_mla_kv_write_##tn(const __grid_constant__ ds_cuda_mla_kv_write_params p) {            \
    ds::cuda::mlaKvWrite<T>(p);                                                                \
  }                                                                                            \
  extern "C" __global__ void __launch_bounds__(256)                                            \
      ds_mla_attend_##tn(const __grid_constant__ ds_cuda_mla_decode_params p) {                \
    ds::cuda::mlaAttend<T, T>(p);                                                              \
  }
DS_MLA_DTYPE(bf16, ds::cuda::bf16)
DS_MLA_DTYPE(f32, float)

// ds_mla_prefill_<kv>_a<act>: kv bf16 / f32 (= act), i8, fp8.
#define DS_MLA_PREFILL(kn, KV, an, A)                                                          \
  extern "C" __global__ void __launch_bounds__(512)                                            \
      ds_mla_prefill_##kn##_a##an(const __grid_constant__ ds_cuda_mla_decode_params p) {       \
    ds::cuda::mlaPrefill<KV, A>(p);                                                            \
  }
DS_MLA_PREFILL(bf16, ds::cuda::bf16, bf16, ds::cuda::bf16)
DS_MLA_PREFILL(f32, float, f32, float)
DS_MLA_PREFILL(i8, ds::cuda::KvI8, bf16, ds::cuda::bf16)
DS_MLA_PREFILL(i8, ds::cuda::KvI8, f32, float)
DS_MLA_PREFILL(fp8, ds::cuda::KvF8, bf16, ds::cuda::bf16)
DS_MLA_PREFILL(fp8, ds::cuda::KvF8, f32, float)

#define DS_MLA_QUANT(an, A)                                                                    \
  extern "C" __global__ void __launch_bounds__(128)                                            \
      ds_mla_kv_write_i8_a##an(const __grid_constant__ ds_cuda_mla_kv_write_params p) {        \
    ds::cuda::mlaKvWriteI8<A>(p);                                                              \
  }                                                                                            \
  extern "C" __global__ void __launch_bounds__(256, 1)                                         \
      ds_mla_attend_i8_a##an(const __grid_constant__ ds_cuda_mla_decode_params p) {            \
    ds::cuda::mlaAttend<ds::cuda::KvI8, A>(p);                                                 \
  }                                                                                            \
  extern "C" __global__ void __launch_bounds__(128)                                            \
      ds_mla_kv_write_fp8_a##an(const __grid_constant__ ds_cuda_mla_kv_write_params p) {       \
    ds::cuda::mlaKvWriteF8<A>(p);                                                              \
  }                                                                                            \
  extern "C" __global__ void __launch_bounds__(256, 1)                                         \
      ds_mla_attend_fp8_a##an(const __grid_constant__ ds_cuda_mla_decode_params p) {           \
    ds::cuda::mlaAttend<ds::cuda::KvF8, A>(p);                                                 \
  }
DS_MLA_QUANT(bf16, ds::cuda::bf16)
DS_MLA_QUANT(f32, float)

#define DS_MLA_PROJ(an, A, wn, W)                                                              \
  extern "C" __global__ void __launch_bounds__(128)                                            \
      ds_mla_absorb_a##an##_w##wn(const __grid_constant__ ds_cuda_mla_decode_params p) {       \
    ds::cuda::mlaAbsorb<A, W>(p);                                                              \
  }                                                                                            \
  extern "C" __global__ void __launch_bounds__(128)                                            \
      ds_mla_out_a##an##_w##wn(const __grid_constant__ ds_cuda_mla_decode_params p) {          \
    ds::cuda::mlaOut<A, W>(p);                                                                 \
  }
DS_MLA_PROJ(bf16, ds::cuda::bf16, bf16, ds::cuda::bf16)
DS_MLA_PROJ(f32, float, bf16, ds::cuda::bf16)
DS_MLA_PROJ(f32, float, f32, float)
DS_MLA_PROJ(bf16, ds::cuda::bf16, fp8, __nv_fp8_e4m3)
DS_MLA_PROJ(f32, float, fp8, __nv_fp8_e4m3)

extern "C" __global__ void __launch_bounds__(128)
    ds_mla_combine(const __grid_constant__ ds_cuda_mla_decode_params p) {
  ds::cuda::mlaCombine(p);
}
