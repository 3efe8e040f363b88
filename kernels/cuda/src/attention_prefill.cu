// Prefill flash-attention (FA2-style tiles on CUDA cores): causal by position, sliding window,
// GQA, keys and values read from the paged cache (float, or int8 / FP8 decoded as they are
// staged: kv_view.cuh). Correctness first; no tensor cores yet.
#include "common.cuh"
#include "kv_view.cuh"

namespace ds::cuda {
namespace {

constexpr int kPrefillWarps = 4;

__device__ __forceinline__ int64_t prefillSlot(const ds_cuda_paged_kv& kv, int seq, int pos) {
  const int block = ptr<const int32_t>(kv.block_table)[static_cast<int64_t>(seq) * kv.max_blocks_per_seq +
                                                       pos / kv.block_size];
  return static_cast<int64_t>(block) * kv.block_size + pos % kv.block_size;
}

// BM query rows per block (BM / 4 per warp), BN keys per tile (one key per lane for scores).
// Shared memory (dynamic, f32): q [BM][D], k [BN][D + 1] (padded: lanes read different rows),
// v [BN][D]; ds_cuda_plan_attn_prefill computes the same size.
// T: q and out; C: the cache's element (T, or KvI8 / KvF8).
template <class T, class C, int D, int BM, int BN>
__device__ __forceinline__ void attnPrefill(const ds_cuda_attn_prefill_params& p) {
  constexpr int RPW = BM / kPrefillWarps, DPL = D / 32;
  extern __shared__ float smem[];
  float* qs = smem;
  float* ks = qs + BM * D;
  float* vs = ks + BN * (D + 1);
  __shared__ int s_pos[BM], s_lo[BM];
  __shared__ int s_kmin, s_kmax;

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int seq = blockIdx.z, h = blockIdx.y;
  const int q0 = ptr<const int32_t>(p.seq_q_start)[seq];
  const int nq = ptr<const int32_t>(p.seq_q_start)[seq + 1] - q0;
  const int r0 = blockIdx.x * BM;
  if (r0 >= nq) return;
  const int rows = min(BM, nq - r0);
  const int Hkv = p.kv.kv_heads, kvh = h / (p.q_heads / Hkv);
  const int32_t* positions = ptr<const int32_t>(p.kv.positions);

  for (int i = threadIdx.x; i < BM * D; i += blockDim.x) {
    const int r = i / D, d = i % D;
    qs[i] = r < rows ? toF(ptr<const T>(p.q)[(static_cast<int64_t>(q0 + r0 + r) * p.q_heads + h) * D + d]) : 0.0f;
  }
  if (threadIdx.x < BM) {
    const int r = threadIdx.x;
    const int pos = r < rows ? positions[q0 + r0 + r] : -1;
    s_pos[r] = pos;
    s_lo[r] = r < rows && p.sliding_window > 0 ? max(0, pos - p.sliding_window + 1) : 0;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int kmin = INT_MAX, kmax = -1;
    for (int r = 0; r < rows; ++r) { kmin = min(kmin, s_lo[r]); kmax = max(kmax, s_pos[r]); }
    s_kmin = kmin;
    s_kmax = kmax;
  }
  __syncthreads();
  const int kmin = s_kmin, kmax = s_kmax;

  float acc[RPW][DPL], mx[RPW], l[RPW];
#pragma unroll
  for (int r = 0; r < RPW; ++r) {
    mx[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int i = 0; i < DPL; ++i) acc[r][i] = 0.0f;
  }
  const KvRegion<C> kc(p.kv.k_cache, p.kv), vc(p.kv.v_cache, p.kv);

  for (int kb = kmin; kb <= kmax; kb += BN) {
    __syncthreads();  // the previous tile is no longer read
    for (int i = threadIdx.x; i < BN * D; i += blockDim.x) {
      const int j = i / D, d = i % D, kp = kb + j;
      float kv = 0.0f, vv = 0.0f;
      if (kp <= kmax) {
        const int64_t r = prefillSlot(p.kv, seq, kp) * Hkv + kvh;
        kv = kc.at(r, D, d);
        vv = vc.at(r, D, d);
      }
      ks[j * (D + 1) + d] = kv;
      vs[j * D + d] = vv;
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < RPW; ++r) {
      const int rr = warp * RPW + r;
      if (rr >= rows) continue;
      const int kp = kb + lane;
      const bool valid = lane < BN && kp >= s_lo[rr] && kp <= s_pos[rr];
      float s = -INFINITY;
      if (valid) {
        float dot = 0.0f;
        const float* qr = qs + rr * D;
        const float* kr = ks + lane * (D + 1);
        for (int d = 0; d < D; ++d) dot = fmaf(qr[d], kr[d], dot);
        s = dot * p.scale;
      }
      const float m = fmaxf(mx[r], warpMax(s));
      if (m == -INFINITY) continue;  // no visible key in this tile yet (warp-uniform)
      const float e = valid ? __expf(s - m) : 0.0f;
      const float corr = __expf(mx[r] - m);
      mx[r] = m;
      l[r] = l[r] * corr + warpSum(e);
#pragma unroll
      for (int i = 0; i < DPL; ++i) acc[r][i] *= corr;
#pragma unroll 4
      for (int j = 0; j < BN; ++j) {
        const float pj = __shfl_sync(0xffffffffu, e, j);
#pragma unroll
        for (int i = 0; i < DPL; ++i) acc[r][i] = fmaf(pj, vs[j * D + lane + 32 * i], acc[r][i]);
      }
    }
  }

#pragma unroll
  for (int r = 0; r < RPW; ++r) {
    const int rr = warp * RPW + r;
    if (rr >= rows) continue;
    T* o = ptr<T>(p.out) + (static_cast<int64_t>(q0 + r0 + rr) * p.q_heads + h) * D;
    const float inv = 1.0f / l[r];
#pragma unroll
    for (int i = 0; i < DPL; ++i) o[lane + 32 * i] = fromF<T>(acc[r][i] * inv);
  }
}

// Small heads (head_dim <= 32, e.g. the tiny test models): one thread per (query row, head),
// the whole softmax over its keys in registers. Decode and prefill both run it (a decode step is
// a one-row prefill). Correctness only: real models take the tiled kernels above.
template <class T, class C>
__device__ __forceinline__ void attnSmall(const ds_cuda_attn_prefill_params& p) {
  constexpr int kMaxD = 32;
  const int seq = blockIdx.z, h = blockIdx.y;
  const int q0 = ptr<const int32_t>(p.seq_q_start)[seq];
  const int nq = ptr<const int32_t>(p.seq_q_start)[seq + 1] - q0;
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= nq) return;
  const int D = p.kv.head_dim, Hkv = p.kv.kv_heads, kvh = h / (p.q_heads / Hkv);
  const int64_t t = q0 + r;
  const int pos = ptr<const int32_t>(p.kv.positions)[t];
  const int lo = p.sliding_window > 0 ? max(0, pos - p.sliding_window + 1) : 0;
  const T* qrow = ptr<const T>(p.q) + (t * p.q_heads + h) * D;
  float q[kMaxD], acc[kMaxD];
#pragma unroll
  for (int d = 0; d < kMaxD; ++d) {
    q[d] = d < D ? toF(qrow[d]) : 0.0f;
    acc[d] = 0.0f;
  }
  const KvRegion<C> kc(p.kv.k_cache, p.kv), vc(p.kv.v_cache, p.kv);
  float mx = -INFINITY, l = 0.0f;
  for (int kp = lo; kp <= pos; ++kp) {
    const int64_t r = prefillSlot(p.kv, seq, kp) * Hkv + kvh;
    float s = 0.0f;
#pragma unroll
    for (int d = 0; d < kMaxD; ++d)
      if (d < D) s += q[d] * kc.at(r, D, d);
    s *= p.scale;
    const float m = fmaxf(mx, s);
    const float corr = __expf(mx - m), e = __expf(s - m);
    l = l * corr + e;
#pragma unroll
    for (int d = 0; d < kMaxD; ++d)
      if (d < D) acc[d] = acc[d] * corr + e * vc.at(r, D, d);
    mx = m;
  }
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  T* o = ptr<T>(p.out) + (t * p.q_heads + h) * D;
#pragma unroll
  for (int d = 0; d < kMaxD; ++d)
    if (d < D) o[d] = fromF<T>(acc[d] * inv);
}

}  // namespace
}  // namespace ds::cuda

extern "C" __global__ void __launch_bounds__(32)
    ds_attn_small_bf16(const __grid_constant__ ds_cuda_attn_prefill_params p) {
  ds::cuda::attnSmall<ds::cuda::bf16, ds::cuda::bf16>(p);
}
extern "C" __global__ void __launch_bounds__(32)
    ds_attn_small_f32(const __grid_constant__ ds_cuda_attn_prefill_params p) {
  ds::cuda::attnSmall<float, float>(p);
}

#define DS_ATTN_PREFILL(tn, T, D, BM, BN)                                                    \
  extern "C" __global__ void __launch_bounds__(128)                                          \
      ds_attn_prefill_##tn##_d##D(const __grid_constant__ ds_cuda_attn_prefill_params p) {   \
    ds::cuda::attnPrefill<T, T, D, BM, BN>(p);                                                  \
  }
// Tile sizes must match prefillTile() in launch.cpp.
DS_ATTN_PREFILL(bf16, ds::cuda::bf16, 64, 16, 32)
DS_ATTN_PREFILL(bf16, ds::cuda::bf16, 128, 16, 32)
DS_ATTN_PREFILL(bf16, ds::cuda::bf16, 256, 8, 16)
DS_ATTN_PREFILL(f32, float, 64, 16, 32)
DS_ATTN_PREFILL(f32, float, 128, 16, 32)
DS_ATTN_PREFILL(f32, float, 256, 8, 16)
