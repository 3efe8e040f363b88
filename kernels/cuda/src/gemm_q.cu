// Prefill GEMM over quantized weights (include/ds_cuda_gemm_q.h): W tiles decoded to the host's
// f32 values, rounded to bf16 in shared memory, bf16 tensor-core MMA with f32 accumulation.
// Single-buffered (a first version: correct on sm_80+, not yet tuned).
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include "common.cuh"

namespace ds::cuda {
namespace {

constexpr int kQTm = DS_CUDA_GEMM_Q_TILE_M, kQTn = DS_CUDA_GEMM_Q_TILE_N, kQTk = DS_CUDA_GEMM_Q_TILE_K;
constexpr int kQPad = 8;  // bf16 elements of padding per shared row: ldmatrix without bank conflicts
constexpr int kQLd = kQTk + kQPad;

__device__ __forceinline__ uint32_t packBf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// Row n of the W tile, 16 columns [k, k + 16) as the host's f32 values, into Bs (bf16).
template <int WT>
__device__ __forceinline__ void decodeRow16(const ds_cuda_gemm_q_params& p, int n, int k, uint16_t* dst) {
  float f[16];
  if constexpr (WT == DS_CUDA_GEMM_Q_I4) {
    const int groups = (p.K + p.group_size - 1) / p.group_size;
    const uint2 raw = *reinterpret_cast<const uint2*>(ptr<const uint8_t>(p.w) + static_cast<size_t>(n) * (p.K / 2) + k / 2);
    const int g = k / p.group_size;  // 16 elements never straddle a group (groups % 16 == 0)
    const float s = ptr<const float>(p.scale)[static_cast<size_t>(n) * groups + g];
    const float z = p.zero ? ptr<const float>(p.zero)[static_cast<size_t>(n) * groups + g] : 0.0f;
    const __half2 bias2 = __float2half2_rn(p.zero ? DS_CUDA_I4_ASYM_BIAS : DS_CUDA_I4_SYM_BIAS);
    const uint32_t words[2] = {raw.x, raw.y};
#pragma unroll
    for (int q = 0; q < 2; ++q)
#pragma unroll
      for (int pr = 0; pr < 4; ++pr) {
        const uint32_t bits = DS_CUDA_I4_HALF2_BITS(words[q], pr);
        const float2 v = __half22float2(__hsub2(*reinterpret_cast<const __half2*>(&bits), bias2));
        // The host's arithmetic (and the GEMV's): q * s, or (q - z) * s, rounded in f32.
        f[8 * q + 2 * pr] = p.zero ? __fmul_rn(__fsub_rn(v.x, z), s) : __fmul_rn(v.x, s);
        f[8 * q + 2 * pr + 1] = p.zero ? __fmul_rn(__fsub_rn(v.y, z), s) : __fmul_rn(v.y, s);
      }
  } else {
    const int kb = (p.K + p.block_cols - 1) / p.block_cols;
    const float s = ptr<const float>(p.scale)[static_cast<size_t>(n / p.block_rows) * kb + k / p.block_cols];
    const uint4 raw = *reinterpret_cast<const uint4*>(ptr<const uint8_t>(p.w) + static_cast<size_t>(n) * p.K + k);
    const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 16; i += 2) {
      const uint32_t pair = (w[i >> 2] >> (8 * (i & 3))) & 0xffffu;
      if constexpr (WT == DS_CUDA_GEMM_Q_FP8) {
        // FP8 -> f16 is exact: decode(q) * s in f32, the host's dequantRow value.
        const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(pair), __NV_E4M3);
        const float2 v = __half22float2(*reinterpret_cast<const __half2*>(&h));
        f[i] = __fmul_rn(v.x, s);
        f[i + 1] = __fmul_rn(v.y, s);
      } else {
        f[i] = __fmul_rn(static_cast<float>(static_cast<int8_t>(pair & 0xff)), s);
        f[i + 1] = __fmul_rn(static_cast<float>(static_cast<int8_t>(pair >> 8)), s);
      }
    }
  }
  uint4 out[2];
  uint32_t* o = reinterpret_cast<uint32_t*>(out);
#pragma unroll
  for (int i = 0; i < 8; ++i) o[i] = packBf16(f[2 * i], f[2 * i + 1]);
  reinterpret_cast<uint4*>(dst)[0] = out[0];
  reinterpret_cast<uint4*>(dst)[1] = out[1];
}

__device__ __forceinline__ void ldmatrixX4(uint32_t (&r)[4], const uint16_t* p) {
  const uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}
__device__ __forceinline__ void ldmatrixX2(uint32_t (&r)[2], const uint16_t* p) {
  const uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(a));
}
__device__ __forceinline__ void mmaBf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <int WT>
__device__ __forceinline__ void gemmQ(const ds_cuda_gemm_q_params& p) {
  __shared__ __align__(16) uint16_t As[kQTm][kQLd];
  __shared__ __align__(16) uint16_t Bs[kQTn][kQLd];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;  // this warp's 32 x 32 of the tile
  const int m0 = blockIdx.y * kQTm, n0 = blockIdx.x * kQTn;
  const uint16_t* x = ptr<const uint16_t>(p.x);
  float acc[2][4][4];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[i][j][c] = 0.0f;

  for (int k0 = 0; k0 < p.K; k0 += kQTk) {
    // A: 64 rows x 32 bf16 = 256 16-byte pieces, two per thread; rows past M, columns past K zero.
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int piece = tid + u * 128, r = piece >> 2, c = (piece & 3) * 8;
      uint4 v = make_uint4(0, 0, 0, 0);
      if (m0 + r < p.M && k0 + c < p.K) v = *reinterpret_cast<const uint4*>(x + static_cast<size_t>(m0 + r) * p.x_stride + k0 + c);
      *reinterpret_cast<uint4*>(&As[r][c]) = v;
    }
    // W: 64 rows x 32 codes, 16 per thread, decoded; rows past N, columns past K zero.
    {
      const int r = tid >> 1, c = (tid & 1) * 16;
      if (n0 + r < p.N && k0 + c < p.K) {  // K % 16 == 0: a tile's second half may be past K
        decodeRow16<WT>(p, n0 + r, k0 + c, &Bs[r][c]);
      } else {
        reinterpret_cast<uint4*>(&Bs[r][c])[0] = make_uint4(0, 0, 0, 0);
        reinterpret_cast<uint4*>(&Bs[r][c])[1] = make_uint4(0, 0, 0, 0);
      }
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kQTk; kk += 16) {
      uint32_t a[2][4], b[4][2];
#pragma unroll
      for (int i = 0; i < 2; ++i) ldmatrixX4(a[i], &As[wm + 16 * i + (lane & 15)][kk + (lane >> 4) * 8]);
#pragma unroll
      for (int j = 0; j < 4; ++j) ldmatrixX2(b[j], &Bs[wn + 8 * j + (lane & 7)][kk + ((lane >> 3) & 1) * 8]);
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) mmaBf16(acc[i][j], a[i], b[j]);
    }
    __syncthreads();
  }
  // Accumulator (i, j): rows wm + 16 i + lane / 4 (+ 8), columns wn + 8 j + 2 (lane % 4) (+ 1).
  const float* bias = ptr<const float>(p.bias);
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int m = m0 + wm + 16 * i + (lane >> 2) + 8 * h;
        const int n = n0 + wn + 8 * j + 2 * (lane & 3);
        if (m >= p.M) continue;
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          if (n + e >= p.N) continue;
          float v = acc[i][j][2 * h + e];
          if (bias) v += bias[n + e];
          if (p.y_f32) ptr<float>(p.y)[static_cast<size_t>(m) * p.y_stride + n + e] = v;
          else ptr<bf16>(p.y)[static_cast<size_t>(m) * p.y_stride + n + e] = __float2bfloat16_rn(v);
        }
      }
}

}  // namespace
}  // namespace ds::cuda

#define DS_GEMM_Q(name, WT)                                                                \
  extern "C" __global__ void __launch_bounds__(128)                                        \
      ds_gemm_q_##name##_abf16(const __grid_constant__ ds_cuda_gemm_q_params p) {          \
    ds::cuda::gemmQ<WT>(p);                                                                \
  }
DS_GEMM_Q(i4, DS_CUDA_GEMM_Q_I4)
DS_GEMM_Q(fp8, DS_CUDA_GEMM_Q_FP8)
DS_GEMM_Q(i8, DS_CUDA_GEMM_Q_I8)
#undef DS_GEMM_Q
