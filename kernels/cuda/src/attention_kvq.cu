// GQA over int8 / FP8 (E4M3) KV caches (include/ds_cuda_kernels.h "Paged KV cache"): the
// quantize-on-write kernels (the host's per-vector scheme, include/ds_cuda_kv_quant.h, bit for bit)
// and the decode / prefill / small-head attention kernels of attention_decode.cu and
// attention_prefill.cu instantiated over the quantized caches (decoded in registers, kv_view.cuh).
#include "common.cuh"
#include "ds_cuda_kv_quant.h"
#include "kv_view.cuh"

namespace ds::cuda {
namespace {

constexpr int kKvqWarps = 4;
constexpr int kKvqMaxDim = 256;

// One (token, kv head) vector x[D] quantized by one warp into its codes and scale. The order is
// the one test/unit/kernels_cuda/cuda_kv_quant_test.cpp replays on the host: lane-strided absmax,
// an xor-butterfly max; fp8: lane k < 19 computes candidate k's error serially over the vector
// (staged in xs), then an xor butterfly keeps the least error (the earlier candidate on ties).
template <class A, bool FP8>
__device__ __forceinline__ void quantizeWarp(const A* x, int D, float* xs, uint8_t* codes, float* scale) {
  const int lane = threadIdx.x & 31;
  float m = 0.0f;
  for (int i = lane; i < D; i += 32) {
    const float v = toF(x[i]);
    xs[i] = v;
    m = ds_kvq::absMaxStep(m, v);
  }
  m = warpMax(m);
  __syncwarp();
  float s;
  if constexpr (!FP8) {
    s = ds_kvq::scaleI8(m);
    for (int i = lane; i < D; i += 32) codes[i] = static_cast<uint8_t>(ds_kvq::codeI8(xs[i], s));
  } else {
    const float base = ds_kvq::fp8Base(m);
    double e = INFINITY;
    int k = lane;
    if (lane < ds_kvq::kFp8Candidates) {
      const float c = ds_kvq::fp8Candidate(base, lane);
      e = 0.0;
      for (int i = 0; i < D; ++i) e = ds_kvq::fp8ErrStep(e, xs[i], c);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const double oe = __shfl_xor_sync(0xffffffffu, e, o);
      const int ok = __shfl_xor_sync(0xffffffffu, k, o);
      ds_kvq::fp8Keep(e, k, oe, ok);
    }
    s = ds_kvq::fp8Candidate(base, k);
    for (int i = lane; i < D; i += 32) codes[i] = ds_kvq::encodeFp8(ds_kvq::divF(xs[i], s));
  }
  if (lane == 0) *scale = s;
  __syncwarp();  // xs is reused for the warp's next vector
}

// Grid T, 4 warps: warp w takes vectors w, w + 4, ... of the token's 2 kv_heads (K heads, then V).
template <class A, bool FP8>
__device__ __forceinline__ void kvWriteQuant(const ds_cuda_kv_write_params& p) {
  __shared__ float xs[kKvqWarps][kKvqMaxDim];
  const int t = blockIdx.x, warp = threadIdx.x >> 5;
  const ds_cuda_paged_kv& kv = p.kv;
  const int H = kv.kv_heads, D = kv.head_dim;
  const int64_t slots_h = static_cast<int64_t>(kv.num_blocks) * kv.block_size * H;
  const int64_t slot = slotOf(kv, ptr<const int32_t>(kv.token_seq)[t], ptr<const int32_t>(kv.positions)[t]);
  for (int w = warp; w < 2 * H; w += kKvqWarps) {
    const bool is_v = w >= H;
    const int h = is_v ? w - H : w;
    float* scales = ptr<float>(is_v ? kv.v_cache : kv.k_cache);
    const int64_t r = slot * H + h;
    uint8_t* codes = reinterpret_cast<uint8_t*>(scales + slots_h) + r * D;
    const A* x = ptr<const A>(is_v ? p.v : p.k) + (static_cast<int64_t>(t) * H + h) * D;
    quantizeWarp<A, FP8>(x, D, xs[warp], codes, scales + r);
  }
}

}  // namespace
}  // namespace ds::cuda

#define DS_KVQ_ATTN_D(cn, C, an, A, D, BM, BN)                                                 \
  extern "C" __global__ void __launch_bounds__(128)                                            \
      ds_attn_decode_##cn##_a##an##_d##D(const __grid_constant__ ds_cuda_attn_decode_params p) { \
    ds::cuda::attnDecode<A, C, D>(p);                                                          \
  }                                                                                            \
  extern "C" __global__ void __launch_bounds__(128)                                            \
      ds_attn_prefill_##cn##_a##an##_d##D(const __grid_constant__ ds_cuda_attn_prefill_params p) { \
    ds::cuda::attnPrefill<A, C, D, BM, BN>(p);                                                 \
  }
// Tile sizes as DS_ATTN_PREFILL's (launch.cpp prefillTile).
#define DS_KVQ_KERNELS(cn, C, fp8, an, A)                                                      \
  extern "C" __global__ void __launch_bounds__(128)                                            \
      ds_kv_write_##cn##_a##an(const __grid_constant__ ds_cuda_kv_write_params p) {            \
    ds::cuda::kvWriteQuant<A, fp8>(p);                                                         \
  }                                                                                            \
  extern "C" __global__ void __launch_bounds__(32)                                             \
      ds_attn_small_##cn##_a##an(const __grid_constant__ ds_cuda_attn_prefill_params p) {      \
    ds::cuda::attnSmall<A, C>(p);                                                              \
  }                                                                                            \
  DS_KVQ_ATTN_D(cn, C, an, A, 64, 16, 32)                                                      \
  DS_KVQ_ATTN_D(cn, C, an, A, 128, 16, 32)                                                     \
  DS_KVQ_ATTN_D(cn, C, an, A, 256, 8, 16)
DS_KVQ_KERNELS(i8, ds::cuda::KvI8, false, bf16, ds::cuda::bf16)
DS_KVQ_KERNELS(i8, ds::cuda::KvI8, false, f32, float)
DS_KVQ_KERNELS(fp8, ds::cuda::KvF8, true, bf16, ds::cuda::bf16)
DS_KVQ_KERNELS(fp8, ds::cuda::KvF8, true, f32, float)
