// Mixture of experts: router, expert permutation, expert GEMV (bf16 / FP8 block-scaled, SwiGLU
// fused) and the weighted combine. Contract and launch order: include/ds_cuda_moe.h.
#include <cuda_fp8.h>

#include "common.cuh"

namespace ds::cuda {
namespace {

constexpr unsigned kFull = 0xffffffffu;
constexpr int kRouteWarps = 4;
constexpr int kPerLane = DS_CUDA_MOE_MAX_EXPERTS / 32;
constexpr int kNoIndex = 0x7fffffff;

// ranksBefore (common.cuh) is the host topK's order; NaN never reaches it (mapped to -inf),
// so every lane of a butterfly reduction ends with the same winner.
__device__ __forceinline__ void warpBest(float& v, int& i) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(kFull, v, o);
    const int oi = __shfl_xor_sync(kFull, i, o);
    if (ranksBefore(ov, oi, v, i)) v = ov, i = oi;
  }
}
__device__ __forceinline__ float finiteOrLowest(float v) { return isnan(v) ? -INFINITY : v; }

// One warp per token; lane l holds experts l + 32 j. Mirrors kernels/cpu/moe.cpp moeGate.
__device__ __forceinline__ void moeRoute(const ds_cuda_moe_route_params& p) {
  __shared__ float sScore[kRouteWarps][DS_CUDA_MOE_MAX_EXPERTS];
  __shared__ float sChoice[kRouteWarps][DS_CUDA_MOE_MAX_EXPERTS];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int t = blockIdx.x * kRouteWarps + warp;
  if (t >= p.num_tokens) return;  // whole warps leave; only __syncwarp below
  const int E = p.num_experts, K = p.top_k;
  const float* lg = ptr<const float>(p.logits) + static_cast<size_t>(t) * E;
  const float* bias = p.correction_bias ? ptr<const float>(p.correction_bias) : nullptr;
  float score[kPerLane], choice[kPerLane];
  float mx = -INFINITY;
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    const int i = lane + 32 * j;
    score[j] = i < E ? lg[i] : -INFINITY;
    mx = fmaxf(mx, score[j]);
  }
  if (p.scoring == DS_CUDA_MOE_SOFTMAX) {
    mx = warpMax(mx);
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      score[j] = lane + 32 * j < E ? expf(score[j] - mx) : 0.0f;
      sum += score[j];
    }
    sum = warpSum(sum);
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) score[j] /= sum;
  } else {
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) score[j] = 1.0f / (1.0f + expf(-score[j]));
  }
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    const int i = lane + 32 * j;
    choice[j] = i < E ? finiteOrLowest(score[j] + (bias ? bias[i] : 0.0f)) : -INFINITY;
    if (i < E) sScore[warp][i] = score[j], sChoice[warp][i] = choice[j];
  }
  __syncwarp();

  if (p.method != DS_CUDA_MOE_GREEDY && p.n_group > 1 && p.n_group <= E) {
    // Group g = experts [g per, (g + 1) per) is scored by lane g: its best choice (V2) or the
    // sum of its two best (V3, the host's topK of 2: lower index on ties).
    const int G = p.n_group, per = E / G;
    float gscore = -INFINITY;
    if (lane < G) {
      const float* c = sChoice[warp] + lane * per;
      float b0 = -INFINITY, b1 = -INFINITY;
      int i0 = kNoIndex, i1 = kNoIndex;
      for (int i = 0; i < per; ++i) {
        const float v = c[i];
        if (ranksBefore(v, i, b0, i0)) {
          b1 = b0, i1 = i0, b0 = v, i0 = i;
        } else if (ranksBefore(v, i, b1, i1)) {
          b1 = v, i1 = i;
        }
      }
      gscore = p.method == DS_CUDA_MOE_GROUP_LIMITED_GREEDY ? b0 : (per >= 2 ? b0 + b1 : b0);
      gscore = finiteOrLowest(gscore);
    }
    uint32_t keep = 0;
    bool taken = lane >= G;
    const int pick = min(p.topk_group, G);
    for (int k = 0; k < pick; ++k) {
      float v = taken ? -INFINITY : gscore;
      int i = taken ? kNoIndex : lane;
      warpBest(v, i);
      keep |= 1u << i;
      if (i == lane) taken = true;
    }
    const bool v2 = p.method == DS_CUDA_MOE_GROUP_LIMITED_GREEDY;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      const int i = lane + 32 * j, g = i / per;
      if (i < E && (g >= G || !((keep >> g) & 1u))) {
        choice[j] = v2 ? 0.0f : -INFINITY;
        if (v2) sScore[warp][i] = 0.0f;
      }
    }
    __syncwarp();
  }

  // Top-k over the choices: K rounds of a warp-wide best over the lanes' untaken experts.
  uint32_t takenMask = 0;
  int sel[DS_CUDA_MOE_MAX_TOPK];
  for (int k = 0; k < K; ++k) {
    float v = -INFINITY;
    int i = kNoIndex;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      const int x = lane + 32 * j;
      if (x < E && !((takenMask >> j) & 1u) && ranksBefore(choice[j], x, v, i)) v = choice[j], i = x;
    }
    warpBest(v, i);
    if ((i & 31) == lane) takenMask |= 1u << (i >> 5);
    sel[k < DS_CUDA_MOE_MAX_TOPK ? k : 0] = i;
  }
  if (lane != 0) return;
  float wt[DS_CUDA_MOE_MAX_TOPK];
  float denom = 0.0f;
  for (int k = 0; k < K; ++k) {
    wt[k] = sScore[warp][sel[k]];
    denom += wt[k];
  }
  denom += 1e-20f;
  float* wo = ptr<float>(p.weights) + static_cast<size_t>(t) * K;
  int32_t* io = ptr<int32_t>(p.ids) + static_cast<size_t>(t) * K;
  for (int k = 0; k < K; ++k) {
    float w = p.norm_topk_prob ? wt[k] / denom : wt[k];
    wo[k] = w * p.routed_scaling_factor;
    io[k] = sel[k];
  }
}

// The host's permuteByExpert (kernels/cpu/moe_routing.h) on one block of 1024 threads: counts,
// a serial scan of at most 256 experts, then 1024-slot chunks in order, each slot's row = its
// expert's start + rows of earlier chunks + rows of earlier warps + its rank among its warp's
// lanes of the same expert (__match_any_sync): stable, deterministic, no global atomics.
constexpr int kPermuteThreads = 1024;
__device__ __forceinline__ void moePermute(const ds_cuda_moe_permute_params& p) {
  __shared__ int sCount[DS_CUDA_MOE_MAX_LOCAL_EXPERTS];
  __shared__ int sNext[DS_CUDA_MOE_MAX_LOCAL_EXPERTS];
  __shared__ int sWarp[kPermuteThreads / 32][DS_CUDA_MOE_MAX_LOCAL_EXPERTS];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int L = p.num_local, K = p.top_k;
  const int slots = p.num_tokens * K;
  const int32_t* ids = ptr<const int32_t>(p.ids);
  auto localOf = [&](int s) {
    const int e = ids[s] - p.first_expert;  // int32 ids and offsets: no overflow for valid plans
    return e >= 0 && e < L ? e : -1;
  };
  for (int e = tid; e < L; e += kPermuteThreads) sCount[e] = 0;
  __syncthreads();
  for (int s = tid; s < slots; s += kPermuteThreads)
    if (const int e = localOf(s); e >= 0) atomicAdd(&sCount[e], 1);
  __syncthreads();
  if (tid == 0) {
    int32_t* start = ptr<int32_t>(p.expert_start);
    int32_t* active = ptr<int32_t>(p.active);
    int run = 0, n = 0;
    for (int e = 0; e < L; ++e) {
      start[e] = run;
      sNext[e] = run;
      if (sCount[e] > 0) active[n++] = e;
      run += sCount[e];
    }
    start[L] = run;
    for (int e = n; e < L; ++e) active[e] = 0;
    active[L] = n;
  }
  __syncthreads();
  int32_t* rowToken = ptr<int32_t>(p.row_token);
  float* rowWeight = ptr<float>(p.row_weight);
  int32_t* slotRow = ptr<int32_t>(p.slot_row);
  const float* weights = ptr<const float>(p.weights);
  for (int base = 0; base < slots; base += kPermuteThreads) {
    const int s = base + tid;
    const int e = s < slots ? localOf(s) : -1;
    for (int x = lane; x < L; x += 32) sWarp[warp][x] = 0;
    __syncthreads();
    const unsigned peers = __match_any_sync(kFull, e);
    const int rank = __popc(peers & ((1u << lane) - 1u));
    if (e >= 0 && rank == 0) sWarp[warp][e] = __popc(peers);
    __syncthreads();
    for (int x = tid; x < L; x += kPermuteThreads) {
      int run = sNext[x];
      for (int w = 0; w < kPermuteThreads / 32; ++w) {
        const int c = sWarp[w][x];
        sWarp[w][x] = run;
        run += c;
      }
      sNext[x] = run;
    }
    __syncthreads();
    if (e >= 0) {
      const int r = sWarp[warp][e] + rank;
      rowToken[r] = s / K;
      rowWeight[r] = weights[s];
      slotRow[s] = r;
    } else if (s < slots) {
      slotRow[s] = -1;
    }
    __syncthreads();  // sWarp is reset by the next chunk
  }
}

constexpr int kMoeWarps = 8;       // output columns per block
constexpr int kMoeRows = 4;        // routed rows per pass over the weights
constexpr int kMoeUnroll = 2;      // 16-byte weight loads in flight per lane and weight

// Elements [c, c + C) of 16 bytes of weights as floats: 8 bf16, or 16 FP8 E4M3 times the block's
// scale (FP8 -> half is exact, so each element is code * scale in f32, the host's value).
template <class W> struct WeightLoad;
template <> struct WeightLoad<bf16> {
  static constexpr int N = 8;
  template <int C>
  __device__ static void decode(uint4 r, int c, float /*scale*/, float* f) {
    const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int i = 0; i < C; ++i) {
      const uint32_t word = w[(c + i) >> 1];
      f[i] = __uint_as_float((c + i) & 1 ? word & 0xffff0000u : word << 16);
    }
  }
};
template <> struct WeightLoad<__nv_fp8_e4m3> {
  static constexpr int N = 16;
  template <int C>
  __device__ static void decode(uint4 r, int c, float scale, float* f) {
    const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int i = 0; i < C; i += 2) {
      const int pair = (c + i) >> 1;
      const __half2_raw raw = __nv_cvt_fp8x2_to_halfraw2(
          static_cast<__nv_fp8x2_storage_t>(w[pair >> 1] >> (16 * (pair & 1))), __NV_E4M3);
      const float2 v = __half22float2(*reinterpret_cast<const __half2*>(&raw));
      f[i] = v.x * scale;
      f[i + 1] = v.y * scale;
    }
  }
};

template <class W, class A, bool SWIGLU>
__device__ __forceinline__ void moeGemv(const ds_cuda_moe_gemv_params& p) {
  constexpr int V = WeightLoad<W>::N;
  const int32_t* active = ptr<const int32_t>(p.active);
  if (static_cast<int>(blockIdx.y) >= active[p.num_local]) return;
  const int e = active[blockIdx.y];
  const int32_t* start = ptr<const int32_t>(p.expert_start);
  const int r0 = start[e], r1 = start[e + 1];
  const int lane = threadIdx.x & 31;
  const int n = blockIdx.x * kMoeWarps + (threadIdx.x >> 5);
  if (n >= p.N) return;
  const size_t rowOff = (static_cast<size_t>(e) * p.N + n) * p.K;
  const W* w1 = ptr<const W>(p.w) + rowOff;
  const W* w2 = SWIGLU ? ptr<const W>(p.w2) + rowOff : nullptr;
  const int kb = (p.K + DS_CUDA_MOE_FP8_BLOCK - 1) / DS_CUDA_MOE_FP8_BLOCK;
  const size_t scaleRow =
      (static_cast<size_t>(e) * ((p.N + DS_CUDA_MOE_FP8_BLOCK - 1) / DS_CUDA_MOE_FP8_BLOCK) +
       n / DS_CUDA_MOE_FP8_BLOCK) * kb;
  const float* s1 = p.w_scale ? ptr<const float>(p.w_scale) + scaleRow : nullptr;
  const float* s2 = SWIGLU && p.w2_scale ? ptr<const float>(p.w2_scale) + scaleRow : nullptr;
  const int32_t* rowToken = ptr<const int32_t>(p.row_token);
  const A* x = ptr<const A>(p.x);

  for (int rb = r0; rb < r1; rb += kMoeRows) {
    const int rows = min(kMoeRows, r1 - rb);
    const A* xr[kMoeRows];
#pragma unroll
    for (int m = 0; m < kMoeRows; ++m) {
      const int r = rb + min(m, rows - 1);
      xr[m] = x + static_cast<size_t>(p.gather ? rowToken[r] : r) * p.x_stride;
    }
    float acc[kMoeRows], acc2[kMoeRows];
#pragma unroll
    for (int m = 0; m < kMoeRows; ++m) acc[m] = acc2[m] = 0.0f;
    for (int base = lane * V; base < p.K; base += 32 * V * kMoeUnroll) {
      uint4 a[kMoeUnroll], b[kMoeUnroll];
#pragma unroll
      for (int u = 0; u < kMoeUnroll; ++u) {
        const int k = base + u * 32 * V;
        const bool in = k < p.K;
        a[u] = in ? __ldcs(reinterpret_cast<const uint4*>(w1 + k)) : make_uint4(0, 0, 0, 0);
        if constexpr (SWIGLU)
          b[u] = in ? __ldcs(reinterpret_cast<const uint4*>(w2 + k)) : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
      for (int u = 0; u < kMoeUnroll; ++u) {
        const int k = base + u * 32 * V;
        if (k >= p.K) break;
        const int blk = k / DS_CUDA_MOE_FP8_BLOCK;
        const float sa = s1 ? s1[blk] : 1.0f, sb = SWIGLU && s2 ? s2[blk] : 1.0f;
        // One 16-byte activation load (C elements) at a time, its weights decoded just before:
        // few live registers, so the f32 and FP8 paths stay spill-free.
        constexpr int C = Vec<A>::N;
#pragma unroll
        for (int c = 0; c < V; c += C) {
          float wa[C], wb[C];
          WeightLoad<W>::template decode<C>(a[u], c, sa, wa);
          if constexpr (SWIGLU) WeightLoad<W>::template decode<C>(b[u], c, sb, wb);
#pragma unroll
          for (int m = 0; m < kMoeRows; ++m) {
            if (m < rows) {
              float xf[C];
              loadN<C>(xr[m] + k + c, xf);
#pragma unroll
              for (int i = 0; i < C; ++i) {
                acc[m] = fmaf(wa[i], xf[i], acc[m]);
                if constexpr (SWIGLU) acc2[m] = fmaf(wb[i], xf[i], acc2[m]);
              }
            }
          }
        }
      }
    }
#pragma unroll
    for (int m = 0; m < kMoeRows; ++m) {
      acc[m] = warpSum(acc[m]);
      if constexpr (SWIGLU) acc2[m] = warpSum(acc2[m]);
    }
    if (lane == 0) {
      A* y = ptr<A>(p.y);
#pragma unroll
      for (int m = 0; m < kMoeRows; ++m) {
        if (m >= rows) break;
        float v = acc[m];
        if constexpr (SWIGLU) {
          // The separate kernels' rounding points: gate and up stored in A, then ds_swiglu.
          const float g = roundTo<A>(acc[m]), u = roundTo<A>(acc2[m]);
          v = g / (1.0f + expf(-g)) * u;
        }
        y[static_cast<size_t>(rb + m) * p.y_stride + n] = fromF<A>(v);
      }
    }
  }
}

// out[t] = routed rows weighted, experts ascending (the host's order), plus the shared experts.
template <class A>
__device__ __forceinline__ void moeCombine(const ds_cuda_moe_combine_params& p) {
  __shared__ int sRow[DS_CUDA_MOE_MAX_TOPK];
  __shared__ float sW[DS_CUDA_MOE_MAX_TOPK];
  __shared__ int sN;
  const int t = blockIdx.x, K = p.top_k;
  if (threadIdx.x == 0) {
    const int32_t* ids = ptr<const int32_t>(p.ids) + static_cast<size_t>(t) * K;
    const int32_t* rows = ptr<const int32_t>(p.slot_row) + static_cast<size_t>(t) * K;
    const float* w = ptr<const float>(p.weights) + static_cast<size_t>(t) * K;
    int id[DS_CUDA_MOE_MAX_TOPK];
    int n = 0;
    for (int j = 0; j < K; ++j) {  // insertion by expert id: K <= 16
      if (rows[j] < 0) continue;
      int at = n++;
      while (at > 0 && id[at - 1] > ids[j]) {
        id[at] = id[at - 1], sRow[at] = sRow[at - 1], sW[at] = sW[at - 1];
        --at;
      }
      id[at] = ids[j], sRow[at] = rows[j], sW[at] = w[j];
    }
    sN = n;
  }
  __syncthreads();
  const A* y = ptr<const A>(p.y);
  const A* shared = p.shared ? ptr<const A>(p.shared) + static_cast<size_t>(t) * p.hidden : nullptr;
  A* out = ptr<A>(p.out) + static_cast<size_t>(t) * p.hidden;
  for (int c = threadIdx.x; c < p.hidden; c += blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j < sN; ++j)  // o += y * w, unfused like the host
      acc = __fadd_rn(acc, __fmul_rn(toF(y[static_cast<size_t>(sRow[j]) * p.hidden + c]), sW[j]));
    if (shared) acc = __fadd_rn(acc, toF(shared[c]));
    out[c] = fromF<A>(acc);
  }
}

}  // namespace
}  // namespace ds::cuda

extern "C" __global__ void __launch_bounds__(128)
    ds_moe_route(const __grid_constant__ ds_cuda_moe_route_params p) {
  ds::cuda::moeRoute(p);
}
extern "C" __global__ void __launch_bounds__(1024)
    ds_moe_permute(const __grid_constant__ ds_cuda_moe_permute_params p) {
  ds::cuda::moePermute(p);
}

#define DS_MOE_GEMV(wn, an, W, A)                                                          \
  extern "C" __global__ void __launch_bounds__(256, 2)                                     \
      ds_moe_gemv_w##wn##_a##an##_plain(const __grid_constant__ ds_cuda_moe_gemv_params p) { \
    ds::cuda::moeGemv<W, A, false>(p);                                                     \
  }                                                                                        \
  extern "C" __global__ void __launch_bounds__(256, 2)                                     \
      ds_moe_gemv_w##wn##_a##an##_swiglu(const __grid_constant__ ds_cuda_moe_gemv_params p) { \
    ds::cuda::moeGemv<W, A, true>(p);                                                      \
  }
DS_MOE_GEMV(bf16, bf16, ds::cuda::bf16, ds::cuda::bf16)
DS_MOE_GEMV(bf16, f32, ds::cuda::bf16, float)
DS_MOE_GEMV(fp8, bf16, __nv_fp8_e4m3, ds::cuda::bf16)
DS_MOE_GEMV(fp8, f32, __nv_fp8_e4m3, float)

extern "C" __global__ void __launch_bounds__(256)
    ds_moe_combine_bf16(const __grid_constant__ ds_cuda_moe_combine_params p) {
  ds::cuda::moeCombine<ds::cuda::bf16>(p);
}
extern "C" __global__ void __launch_bounds__(256)
    ds_moe_combine_f32(const __grid_constant__ ds_cuda_moe_combine_params p) {
  ds::cuda::moeCombine<float>(p);
}
