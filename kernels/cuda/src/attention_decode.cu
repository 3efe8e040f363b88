// Paged attention decode with split-KV (flash-decoding): per (token, head group, split) partial
// softmax, then a log-sum-exp combine. Also the paged KV write. The cache may be int8 / FP8
// (kv_view.cuh: decoded in registers; their writer is attention_kvq.cu).
#include "common.cuh"
#include "kv_view.cuh"

namespace ds::cuda {
namespace {

constexpr int kDecodeWarps = 4;
constexpr int kDecodeHeads = 4;  // query heads of one kv group per block

__device__ __forceinline__ int64_t slotOf(const ds_cuda_paged_kv& kv, int seq, int pos) {
  const int block = ptr<const int32_t>(kv.block_table)[static_cast<int64_t>(seq) * kv.max_blocks_per_seq +
                                                       pos / kv.block_size];
  return static_cast<int64_t>(block) * kv.block_size + pos % kv.block_size;
}

// T: q and out; C: the cache's element (T, or KvI8 / KvF8).
template <class T, class C, int D>
__device__ __forceinline__ void attnDecode(const ds_cuda_attn_decode_params& p) {
  constexpr int VPL = D / 32;  // channels per lane (contiguous)
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int t = blockIdx.x, split = blockIdx.z;
  const int Hkv = p.kv.kv_heads, group = p.q_heads / Hkv;
  const int chunks = (group + kDecodeHeads - 1) / kDecodeHeads;
  const int kvh = blockIdx.y / chunks;
  const int h0 = kvh * group + (blockIdx.y % chunks) * kDecodeHeads;
  const int nh = min(kDecodeHeads, kvh * group + group - h0);
  const int seq = ptr<const int32_t>(p.kv.token_seq)[t];
  const int pos = ptr<const int32_t>(p.kv.positions)[t];
  const int lo = p.sliding_window > 0 ? max(0, pos - p.sliding_window + 1) : 0;
  const int begin = lo + split * p.split_len;
  // The last split takes whatever remains, so a max_context that was too small costs speed only.
  const int end = split == p.splits - 1 ? pos + 1 : min(pos + 1, begin + p.split_len);

  float q[kDecodeHeads][VPL], acc[kDecodeHeads][VPL], mx[kDecodeHeads], l[kDecodeHeads];
  const T* qt = ptr<const T>(p.q) + (static_cast<int64_t>(t) * p.q_heads + h0) * D + lane * VPL;
#pragma unroll
  for (int h = 0; h < kDecodeHeads; ++h) {
    if (h < nh) loadSmall<VPL>(qt + h * D, q[h]);
    mx[h] = -INFINITY;
    l[h] = 0.0f;
#pragma unroll
    for (int i = 0; i < VPL; ++i) acc[h][i] = 0.0f;
  }

  const KvRegion<C> kc(p.kv.k_cache, p.kv), vc(p.kv.v_cache, p.kv);
  for (int j = begin + warp; j < end; j += kDecodeWarps) {
    const int64_t r = slotOf(p.kv, seq, j) * Hkv + kvh;
    float kf[VPL], vf[VPL];
    kc.template load<VPL>(r, D, lane * VPL, kf);
    vc.template load<VPL>(r, D, lane * VPL, vf);
#pragma unroll
    for (int h = 0; h < kDecodeHeads; ++h) {
      if (h >= nh) continue;
      float s = 0.0f;
#pragma unroll
      for (int i = 0; i < VPL; ++i) s = fmaf(q[h][i], kf[i], s);
      s = warpSum(s) * p.scale;
      const float m = fmaxf(mx[h], s);
      const float corr = __expf(mx[h] - m), e = __expf(s - m);
      mx[h] = m;
      l[h] = l[h] * corr + e;
#pragma unroll
      for (int i = 0; i < VPL; ++i) acc[h][i] = fmaf(e, vf[i], acc[h][i] * corr);
    }
  }

  // Merge the warps' running softmax states.
  __shared__ float s_m[kDecodeWarps][kDecodeHeads], s_l[kDecodeWarps][kDecodeHeads];
  __shared__ float s_acc[kDecodeWarps][kDecodeHeads][D];
#pragma unroll
  for (int h = 0; h < kDecodeHeads; ++h) {
    if (lane == 0) { s_m[warp][h] = mx[h]; s_l[warp][h] = l[h]; }
#pragma unroll
    for (int i = 0; i < VPL; ++i) s_acc[warp][h][lane * VPL + i] = acc[h][i];
  }
  __syncthreads();
  const int S = p.splits;
  for (int idx = threadIdx.x; idx < nh * D; idx += blockDim.x) {
    const int h = idx / D, d = idx % D;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kDecodeWarps; ++w) M = fmaxf(M, s_m[w][h]);
    float L = 0.0f, O = 0.0f;
    if (M != -INFINITY) {
#pragma unroll
      for (int w = 0; w < kDecodeWarps; ++w) {
        const float c = __expf(s_m[w][h] - M);
        L += s_l[w][h] * c;
        O += s_acc[w][h][d] * c;
      }
    }
    const int64_t th = static_cast<int64_t>(t) * p.q_heads + h0 + h;
    if (S == 1) {
      ptr<T>(p.out)[th * D + d] = fromF<T>(O / L);
    } else {
      float* po = ptr<float>(p.workspace);
      po[(th * S + split) * D + d] = L > 0.0f ? O / L : 0.0f;
      if (d == 0) {
        float* lse = po + static_cast<int64_t>(p.num_tokens) * p.q_heads * S * D;
        lse[th * S + split] = L > 0.0f ? M + __logf(L) : -INFINITY;
      }
    }
  }
}

// out[t, h] = sum_s exp(lse_s - max) o_s / sum_s exp(lse_s - max). Grid (T, q_heads).
template <class T, int D>
__device__ __forceinline__ void attnCombine(const ds_cuda_attn_decode_params& p) {
  const int S = p.splits;
  const int64_t th = static_cast<int64_t>(blockIdx.x) * p.q_heads + blockIdx.y;
  const float* po = ptr<const float>(p.workspace);
  const float* lse = po + static_cast<int64_t>(p.num_tokens) * p.q_heads * S * D + th * S;
  float M = -INFINITY;
  for (int s = 0; s < S; ++s) M = fmaxf(M, lse[s]);
  float L = 0.0f;
  for (int s = 0; s < S; ++s) L += __expf(lse[s] - M);
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float O = 0.0f;
    for (int s = 0; s < S; ++s) O += __expf(lse[s] - M) * po[(th * S + s) * D + d];
    ptr<T>(p.out)[th * D + d] = fromF<T>(O / L);
  }
}

template <class T>
__device__ __forceinline__ void kvWrite(const ds_cuda_kv_write_params& p) {
  const int t = blockIdx.x;
  const int seq = ptr<const int32_t>(p.kv.token_seq)[t];
  const int pos = ptr<const int32_t>(p.kv.positions)[t];
  const int64_t slot = slotOf(p.kv, seq, pos);
  const int64_t w = static_cast<int64_t>(p.kv.kv_heads) * p.kv.head_dim;
  const T* k = ptr<const T>(p.k) + t * w;
  const T* v = ptr<const T>(p.v) + t * w;
  T* kc = ptr<T>(p.kv.k_cache) + slot * w;
  T* vc = ptr<T>(p.kv.v_cache) + slot * w;
  for (int64_t i = threadIdx.x; i < w; i += blockDim.x) {
    kc[i] = k[i];
    vc[i] = v[i];
  }
}

}  // namespace
}  // namespace ds::cuda

#define DS_ATTN_DECODE(tn, T, D)                                                            \
  extern "C" __global__ void __launch_bounds__(128)                                         \
      ds_attn_decode_##tn##_d##D(const __grid_constant__ ds_cuda_attn_decode_params p) {    \
    ds::cuda::attnDecode<T, T, D>(p);                                                          \
  }                                                                                         \
  extern "C" __global__ void __launch_bounds__(128)                                         \
      ds_attn_combine_##tn##_d##D(const __grid_constant__ ds_cuda_attn_decode_params p) {   \
    ds::cuda::attnCombine<T, D>(p);                                                         \
  }
DS_ATTN_DECODE(bf16, ds::cuda::bf16, 64)
DS_ATTN_DECODE(bf16, ds::cuda::bf16, 128)
DS_ATTN_DECODE(bf16, ds::cuda::bf16, 256)
DS_ATTN_DECODE(f32, float, 64)
DS_ATTN_DECODE(f32, float, 128)
DS_ATTN_DECODE(f32, float, 256)

extern "C" __global__ void __launch_bounds__(128)
    ds_kv_write_bf16(const __grid_constant__ ds_cuda_kv_write_params p) {
  ds::cuda::kvWrite<ds::cuda::bf16>(p);
}
extern "C" __global__ void __launch_bounds__(128)
    ds_kv_write_f32(const __grid_constant__ ds_cuda_kv_write_params p) {
  ds::cuda::kvWrite<float>(p);
}
