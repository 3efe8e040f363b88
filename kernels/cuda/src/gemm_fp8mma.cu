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

// Half h of a 1 x 128 activation block (64 bf16 at src; row absent: zeros) quantized to E4M3
// into dst (64 bytes) with the block's scale amax / 448, the amax shared with the partner lane
// (lane ^ 1, the other half) through a shuffle: every lane of the warp must call it. Two passes
// over src (the second from L1) keep no 64-float array live: the GEMMs stay under 128 registers.
__device__ __forceinline__ float quantizeHalfBlock(const bf16* src, bool present, uint8_t* dst) {
  float amax = 0.0f;
  if (present) {
#pragma unroll
    for (int u = 0; u < 8; ++u) {
      float f[8];
      loadN<8>(src + 8 * u, f);
#pragma unroll
      for (int i = 0; i < 8; ++i) amax = ds_kvq::absMaxStep(amax, f[i]);
    }
  }
  amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
  const float s = amax > 0.0f ? __fdiv_rn(amax, 448.0f) : 1.0f;  // DeepSeek: amax / 448
#pragma unroll
  for (int u = 0; u < 8; ++u) {
    uint2 q = make_uint2(0, 0);
    if (present) {
      float f[8];
      loadN<8>(src + 8 * u, f);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        q.x |= uint32_t{ds_kvq::encodeFp8(__fdiv_rn(f[i], s))} << (8 * i);
        q.y |= uint32_t{ds_kvq::encodeFp8(__fdiv_rn(f[4 + i], s))} << (8 * i);
      }
    }
    reinterpret_cast<uint2*>(dst)[u] = q;
  }
  return s;
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
    // A: thread t quantizes half h = t % 2 (64 elements) of row r = t / 2 of the 1 x 128 block.
    {
      const int r = tid >> 1, h = tid & 1;
      const float s = quantizeHalfBlock(x + static_cast<size_t>(min(m0 + r, p.M - 1)) * p.x_stride + k0 + h * 64,
                                        m0 + r < p.M, &As[r][h * 64]);
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

// ---- The experts' grouped GEMM on the FP8 tensor cores (ds_moe_gemm_wfp8_afp8_*) ----
namespace ds::cuda {
namespace {

// Tile y -> (local expert, first routed row, end of its rows), as ds_moe_gemm's expertTile.
__device__ __forceinline__ bool expertTileF8(const ds_cuda_moe_gemv_params& p, int y, int* e, int* r0, int* r1) {
  const int32_t* active = ptr<const int32_t>(p.active);
  const int32_t* start = ptr<const int32_t>(p.expert_start);
  const int n = active[p.num_local];
  for (int i = 0; i < n; ++i) {
    const int ex = active[i], rows = start[ex + 1] - start[ex], tiles = (rows + kF8Tm - 1) / kF8Tm;
    if (y < tiles) {
      *e = ex;
      *r0 = start[ex] + y * kF8Tm;
      *r1 = min(start[ex + 1], *r0 + kF8Tm);
      return true;
    }
    y -= tiles;
  }
  return false;
}

// Plain: a 64 x 64 tile of W_e's outputs. SwiGLU: tile columns 0..31 are the gate's outputs
// [n0, n0 + 32) and 32..63 the up projection's same outputs, combined through shared memory.
template <bool SWIGLU>
__device__ __forceinline__ void moeGemmFp8Mma(const ds_cuda_moe_gemv_params& p) {
  struct Tiles {
    uint8_t a[kF8Tm][kF8Ld];
    uint8_t b[kF8Tn][kF8Ld];
  };
  __shared__ __align__(16) union {
    Tiles t;
    float out[kF8Tm][kF8Tn + 1];  // SwiGLU: the f32 tile, gate | up
  } sm;
  __shared__ float a_scale[kF8Tm];
  __shared__ int x_row[kF8Tm];
  int e = 0, r0 = 0, r1 = 0;
  if (!expertTileF8(p, blockIdx.y, &e, &r0, &r1)) return;  // the same for every thread
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
  constexpr int kCols = SWIGLU ? kF8Tn / 2 : kF8Tn;  // outputs per tile
  const int n0 = blockIdx.x * kCols;
  if (tid < kF8Tm) x_row[tid] = r0 + tid < r1 ? (p.gather ? ptr<const int32_t>(p.row_token)[r0 + tid] : r0 + tid) : -1;
  const size_t per_expert = static_cast<size_t>(p.N) * p.K;
  const int nb = (p.N + DS_CUDA_MOE_FP8_BLOCK - 1) / DS_CUDA_MOE_FP8_BLOCK;
  const int kbs = p.K / DS_CUDA_MOE_FP8_BLOCK;
  // Tile row r of B: its matrix (gate / up: SwiGLU's second half) and output n.
  auto bRow = [&](int r, int* which, int* n) {
    *which = SWIGLU && r >= kCols ? 1 : 0;
    *n = n0 + (SWIGLU ? r % kCols : r);
  };
  const bf16* x = ptr<const bf16>(p.x);
  float acc[2][4][4], part[2][4][4];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[i][j][c] = 0.0f;
  __syncthreads();
  for (int k0 = 0; k0 < p.K; k0 += kF8Tk) {
    {  // A: gathered rows, quantized per 1 x 128 block (two threads per row)
      const int r = tid >> 1, h = tid & 1;
      const int row = x_row[r];
      const float s = quantizeHalfBlock(x + static_cast<size_t>(row < 0 ? 0 : row) * p.x_stride + k0 + h * 64,
                                        row >= 0, &sm.t.a[r][h * 64]);
      if (h == 0) a_scale[r] = s;
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {  // B: expert e's codes as stored
      const int piece = tid + u * 128, r = piece >> 3, c = (piece & 7) * 16;
      int which = 0, n = 0;
      bRow(r, &which, &n);
      uint4 v = make_uint4(0, 0, 0, 0);
      if (n < p.N)
        v = *reinterpret_cast<const uint4*>(ptr<const uint8_t>(which ? p.w2 : p.w) + e * per_expert + static_cast<size_t>(n) * p.K + k0 + c);
      *reinterpret_cast<uint4*>(&sm.t.b[r][c]) = v;
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
      for (int i = 0; i < 2; ++i) ldsmX4(a[i], &sm.t.a[wm + 16 * i + (lane & 15)][kk + (lane >> 4) * 16]);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        uint32_t b[2];
        ldsmX2(b, &sm.t.b[wn + 8 * j + (lane & 7)][kk + ((lane >> 3) & 1) * 16]);
#pragma unroll
        for (int i = 0; i < 2; ++i) mmaFp8(part[i][j], a[i], b);
      }
    }
    const int kb = k0 / DS_CUDA_MOE_FP8_BLOCK;
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const int mi = wm + 16 * i + (lane >> 2) + 8 * (c >> 1);
          int which = 0, n = 0;
          bRow(wn + 8 * j + 2 * (lane & 3) + (c & 1), &which, &n);
          const float* ws = ptr<const float>(which ? p.w2_scale : p.w_scale) + static_cast<size_t>(e) * nb * kbs;
          const float sw = n < p.N ? ws[static_cast<size_t>(n / DS_CUDA_MOE_FP8_BLOCK) * kbs + kb] : 0.0f;
          acc[i][j][c] = fmaf(part[i][j][c], __fmul_rn(a_scale[mi], sw), acc[i][j][c]);
        }
    __syncthreads();
  }
  bf16* y = ptr<bf16>(p.y);
  if constexpr (!SWIGLU) {
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const int mi = wm + 16 * i + (lane >> 2) + 8 * (c >> 1);
          const int n = n0 + wn + 8 * j + 2 * (lane & 3) + (c & 1);
          if (x_row[mi] >= 0 && n < p.N) y[static_cast<size_t>(r0 + mi) * p.y_stride + n] = __float2bfloat16_rn(acc[i][j][c]);
        }
  } else {
    // Gate and up meet in shared memory (the tiles are done: the last loop ended synchronized).
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int c = 0; c < 4; ++c)
          sm.out[wm + 16 * i + (lane >> 2) + 8 * (c >> 1)][wn + 8 * j + 2 * (lane & 3) + (c & 1)] = acc[i][j][c];
    __syncthreads();
    for (int o = tid; o < kF8Tm * kCols; o += blockDim.x) {
      const int mi = o / kCols, ci = o % kCols, n = n0 + ci;
      if (x_row[mi] < 0 || n >= p.N) continue;
      // The GEMV's rounding points: gate and up in bf16, then silu(gate) * up.
      const float g = roundTo<bf16>(sm.out[mi][ci]), u = roundTo<bf16>(sm.out[mi][kCols + ci]);
      y[static_cast<size_t>(r0 + mi) * p.y_stride + n] = __float2bfloat16_rn(g / (1.0f + expf(-g)) * u);
    }
  }
}

}  // namespace
}  // namespace ds::cuda

extern "C" __global__ void __launch_bounds__(128) ds_moe_gemm_wfp8_afp8_plain(const __grid_constant__ ds_cuda_moe_gemv_params p) {
  ds::cuda::moeGemmFp8Mma<false>(p);
}
extern "C" __global__ void __launch_bounds__(128) ds_moe_gemm_wfp8_afp8_swiglu(const __grid_constant__ ds_cuda_moe_gemv_params p) {
  ds::cuda::moeGemmFp8Mma<true>(p);
}
