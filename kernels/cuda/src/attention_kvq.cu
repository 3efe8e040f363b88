// GQA over int8 / FP8 (E4M3) KV caches (include/ds_cuda_kernels.h "Paged KV cache"): the
// quantize-on-write kernels (the host's per-vector scheme, include/ds_cuda_kv_quant.h, bit for bit)
// and the decode / prefill / small-head attention kernels of attention_decode.cu and
// attention_prefill.cu instantiated over the quantized caches (decoded in registers, kv_view.cuh).
#include "common.cuh"
#include "kv_quant_warp.cuh"
#include "kv_view.cuh"

namespace ds::cuda {
namespace {

constexpr int kKvqWarps = 4;
constexpr int kKvqMaxDim = 256;

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
