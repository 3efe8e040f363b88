// FP8 tensor-core GEMM for DeepSeek's block-scaled FP8 weights with FP8 activations
// (include/ds_cuda_gemm_q.h ds_gemm_fp8mma_abf16): DeepSeek-V3's inference scheme. Each 1 x 128
// block of an activation row is quantized to E4M3 with scale amax / 448 (ds_kvq::encodeFp8's
// rounding: nearest even, saturating), the weights' codes are used as stored, mma.sync m16n8k32
// e4m3 x e4m3 accumulates each 128-wide K block in f32, and the block's sum is promoted into the
// result times both scales. sm_89 and newer (the sm_80 build of this kernel traps: its plan and
// the device's choice never launch it there).
#include <cuda_fp8.h>

#include "common.cuh"
#include "ds_cuda_kv_quant.h"

namespace ds::cuda {
namespace {

constexpr int kF8Tm = 64, kF8Tn = 64, kF8Tk = 128;
constexpr int kF8Ld = kF8Tk + 16;  // bytes per shared row: ldmatrix rows 16-byte aligned, no bank conflicts

__device__ __forceinline__ void ldsmX4(uint32_t (&r)[4], const uint8_t* p) {
  const uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}
__device__ __forceinline__ void ldsmX2(uint32_t (&r)[2], const uint8_t* p) {
  const uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(a));
}
// d += a b over 32 FP8 elements of K (the 8-bit operands' fragments are the bf16 m16n8k16 ones
// read as bytes: ldmatrix of b16 pairs fills them).
__device__ __forceinline__ void mmaFp8(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  (void)d, (void)a, (void)b;
  __trap();  // no FP8 MMA before sm_89: never planned there
#endif
}

__device__ __forceinline__ void gemmFp8Mma(const ds_cuda_gemm_q_params& p) {
  __shared__ __align__(16) uint8_t As[kF8Tm][kF8Ld];
  __shared__ __align__(16) uint8_t Bs[kF8Tn][kF8Ld];
  __shared__ float a_scale[kF8Tm];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
  const int m0 = blockIdx.y * kF8Tm, n0 = blockIdx.x * kF8Tn;
  const int kb_count = (p.K + p.block_cols - 1) / p.block_cols;
  const bf16* x = ptr<const bf16>(p.x);
  float acc[2][4][4], part[2][4][4];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[i][j][c] = 0.0f;

  for (int k0 = 0; k0 < p.K; k0 += kF8Tk) {
    // A: thread t quantizes half h = t % 2 (64 elements) of row r = t / 2 of the 1 x 128 block;
    // the row's amax comes from both halves (lanes t and t ^ 1).
    {
      const int r = tid >> 1, h = tid & 1;
      float v[64];
      float amax = 0.0f;
      if (m0 + r < p.M) {
        const uint4* src = reinterpret_cast<const uint4*>(x + static_cast<size_t>(m0 + r) * p.x_stride + k0 + h * 64);
#pragma unroll
        for (int u = 0; u < 8; ++u) {
          float f[8];
          loadN<8>(reinterpret_cast<const bf16*>(src + u), f);
#pragma unroll
          for (int i = 0; i < 8; ++i) v[8 * u + i] = f[i], amax = ds_kvq::absMaxStep(amax, f[i]);
        }
      } else {
#pragma unroll
        for (int i = 0; i < 64; ++i) v[i] = 0.0f;
      }
      amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
      const float s = amax > 0.0f ? __fdiv_rn(amax, 448.0f) : 1.0f;  // DeepSeek: amax / 448
      uint32_t q[16];
#pragma unroll
      for (int i = 0; i < 16; ++i) {
        uint32_t w = 0;
#pragma unroll
        for (int b = 0; b < 4; ++b) w |= uint32_t{ds_kvq::encodeFp8(__fdiv_rn(v[4 * i + b], s))} << (8 * b);
        q[i] = w;
      }
#pragma unroll
      for (int u = 0; u < 4; ++u)
        reinterpret_cast<uint4*>(&As[r][h * 64])[u] = make_uint4(q[4 * u], q[4 * u + 1], q[4 * u + 2], q[4 * u + 3]);
      if (h == 0) a_scale[r] = s;
    }
    // B: the codes as stored, 64 rows x 128 bytes (4 16-byte pieces per thread).
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int piece = tid + u * 128, r = piece >> 3, c = (piece & 7) * 16;
      uint4 v = make_uint4(0, 0, 0, 0);
      if (n0 + r < p.N) v = *reinterpret_cast<const uint4*>(ptr<const uint8_t>(p.w) + static_cast<size_t>(n0 + r) * p.K + k0 + c);
      *reinterpret_cast<uint4*>(&Bs[r][c]) = v;
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int c = 0; c < 4; ++c) part[i][j][c] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kF8Tk; kk += 32) {
      uint32_t a[2][4];
#pragma unroll
      for (int i = 0; i < 2; ++i) ldsmX4(a[i], &As[wm + 16 * i + (lane & 15)][kk + (lane >> 4) * 16]);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        uint32_t b[2];
        ldsmX2(b, &Bs[wn + 8 * j + (lane & 7)][kk + ((lane >> 3) & 1) * 16]);
#pragma unroll
        for (int i = 0; i < 2; ++i) mmaFp8(part[i][j], a[i], b);
      }
    }
    // Promotion: the block's f32 sums times the activation row's and the weight block's scales.
    const int kb = k0 / p.block_cols;
    const float* ws = ptr<const float>(p.scale);
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const int mi = wm + 16 * i + (lane >> 2) + 8 * (c >> 1);
          const int n = n0 + wn + 8 * j + 2 * (lane & 3) + (c & 1);
          const float sw = n < p.N ? ws[static_cast<size_t>(n / p.block_rows) * kb_count + kb] : 0.0f;
          acc[i][j][c] = fmaf(part[i][j][c], __fmul_rn(a_scale[mi], sw), acc[i][j][c]);
        }
    __syncthreads();
  }
  const float* bias = ptr<const float>(p.bias);
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int m = m0 + wm + 16 * i + (lane >> 2) + 8 * (c >> 1);
        const int n = n0 + wn + 8 * j + 2 * (lane & 3) + (c & 1);
        if (m >= p.M || n >= p.N) continue;
        const float y = bias ? acc[i][j][c] + bias[n] : acc[i][j][c];
        if (p.y_f32) ptr<float>(p.y)[static_cast<size_t>(m) * p.y_stride + n] = y;
        else ptr<bf16>(p.y)[static_cast<size_t>(m) * p.y_stride + n] = __float2bfloat16_rn(y);
      }
}

}  // namespace
}  // namespace ds::cuda

extern "C" __global__ void __launch_bounds__(128) ds_gemm_fp8mma_abf16(const __grid_constant__ ds_cuda_gemm_q_params p) {
  ds::cuda::gemmFp8Mma(p);
}
