// FP8 tensor-core GEMMs for DeepSeek's block-scaled FP8 weights with FP8 activations
// (include/ds_cuda_gemm_q.h ds_gemm_fp8mma_abf16, ds_moe_gemm_wfp8_afp8_*): DeepSeek-V3's
// inference scheme. Each 1 x 128 block of an activation row is quantized to E4M3 with scale
// amax / 448 (ds_kvq::encodeFp8's rounding: nearest even, saturating), the weights' codes are
// used as stored, mma.sync m16n8k32 e4m3 x e4m3 accumulates each 128-wide K block in f32, and the
// block's sum is promoted into the result times both scales. sm_89 and newer (the sm_80 build
// traps: its plans and the device's choice never launch it there).
#include "ds_cuda_kv_quant.h"
#include "mma.cuh"

namespace ds::cuda {
namespace {

constexpr int kF8Tk = 128;
constexpr int kF8Ld = kF8Tk + 16;  // bytes per shared row: ldmatrix rows 16-byte aligned, no bank conflicts

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

struct Fp8Tile {
  uint8_t a[kMmaTile][kF8Ld];
  uint8_t b[kMmaTile][kF8Ld];
};

// The tile loop of both GEMMs: a 64 x 64 tile over K in 128-wide blocks. rowX(r) is A's tile row
// r (its 128 bf16 of each block read from there; null: a zero row), loadB(r, k, dst) copies 16
// codes of W's tile row r at column k, scaleW(col, kb) is the weight scale of tile column `col`
// in K block kb. acc: the promoted f32 sums (forEachAccElem's order).
template <class RowX, class LoadB, class ScaleW>
__device__ __forceinline__ void fp8TileLoop(Fp8Tile& t, float* a_scale, int K, float (&acc)[2][4][4], RowX rowX,
                                            LoadB loadB, ScaleW scaleW) {
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
  forEachAccElem([&](int i, int j, int c, int, int) { acc[i][j][c] = 0.0f; });
  for (int k0 = 0; k0 < K; k0 += kF8Tk) {
    {  // A: thread t quantizes half h = t % 2 (64 elements) of tile row r = t / 2
      const int r = tid >> 1, h = tid & 1;
      const bf16* row = rowX(r);
      const float s = quantizeHalfBlock(row ? row + k0 + h * 64 : nullptr, row != nullptr, &t.a[r][h * 64]);
      if (h == 0) a_scale[r] = s;
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {  // B: 64 rows x 128 codes as stored, 4 16-byte pieces per thread
      const int piece = tid + u * 128, r = piece >> 3, c = (piece & 7) * 16;
      loadB(r, k0 + c, &t.b[r][c]);
    }
    __syncthreads();
    float part[2][4][4];
    forEachAccElem([&](int i, int j, int c, int, int) { part[i][j][c] = 0.0f; });
#pragma unroll
    for (int kk = 0; kk < kF8Tk; kk += 32) {
      uint32_t a[2][4];
#pragma unroll
      for (int i = 0; i < 2; ++i) ldmatrixX4(a[i], &t.a[wm + 16 * i + (lane & 15)][kk + (lane >> 4) * 16]);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        uint32_t b[2];
        ldmatrixX2(b, &t.b[wn + 8 * j + (lane & 7)][kk + ((lane >> 3) & 1) * 16]);
#pragma unroll
        for (int i = 0; i < 2; ++i) mmaFp8(part[i][j], a[i], b);
      }
    }
    // Promotion: the block's f32 sums times the activation row's and the weight block's scales.
    const int kb = k0 / kF8Tk;
    forEachAccElem([&](int i, int j, int c, int row, int col) {
      acc[i][j][c] = fmaf(part[i][j][c], __fmul_rn(a_scale[row], scaleW(col, kb)), acc[i][j][c]);
    });
    __syncthreads();
  }
}

// 16 codes of row n of a row-major [N, K] FP8 matrix at column k (zeros past N).
__device__ __forceinline__ void loadCodes16(const uint8_t* w, int N, int K, int n, int k, uint8_t* dst) {
  *reinterpret_cast<uint4*>(dst) =
      n < N ? *reinterpret_cast<const uint4*>(w + static_cast<size_t>(n) * K + k) : make_uint4(0, 0, 0, 0);
}

__device__ __forceinline__ void gemmFp8Mma(const ds_cuda_gemm_q_params& p) {
  __shared__ __align__(16) Fp8Tile tile;
  __shared__ float a_scale[kMmaTile];
  const int m0 = blockIdx.y * kMmaTile, n0 = blockIdx.x * kMmaTile;
  const int kb_count = (p.K + p.block_cols - 1) / p.block_cols;
  const bf16* x = ptr<const bf16>(p.x);
  const float* ws = ptr<const float>(p.scale);
  float acc[2][4][4];
  fp8TileLoop(
      tile, a_scale, p.K, acc,
      [&](int r) { return m0 + r < p.M ? x + static_cast<size_t>(m0 + r) * p.x_stride : nullptr; },
      [&](int r, int k, uint8_t* dst) { loadCodes16(ptr<const uint8_t>(p.w), p.N, p.K, n0 + r, k, dst); },
      [&](int col, int kb) {
        const int n = n0 + col;  // block_cols % 128 == 0: one scale per 128-wide K block
        return n < p.N ? ws[static_cast<size_t>(n / p.block_rows) * kb_count + kb * kF8Tk / p.block_cols] : 0.0f;
      });
  forEachAccElem([&](int i, int j, int c, int row, int col) { storeGemmOut(p, m0 + row, n0 + col, acc[i][j][c]); });
}

// Plain: a 64 x 64 tile of W_e's outputs. SwiGLU: tile columns 0..31 are the gate's outputs
// [n0, n0 + 32) and 32..63 the up projection's same outputs, combined through shared memory.
template <bool SWIGLU>
__device__ __forceinline__ void moeGemmFp8Mma(const ds_cuda_moe_gemv_params& p) {
  __shared__ __align__(16) union {
    Fp8Tile t;
    float out[kMmaTile][kMmaTile + 1];  // SwiGLU: the f32 tile, gate | up
  } sm;
  __shared__ float a_scale[kMmaTile];
  __shared__ int x_row[kMmaTile];
  int e = 0, r0 = 0, r1 = 0;
  if (!expertTile(p, blockIdx.y, &e, &r0, &r1)) return;  // the same for every thread
  constexpr int kCols = SWIGLU ? kMmaTile / 2 : kMmaTile;  // outputs per tile
  const int n0 = blockIdx.x * kCols;
  if (threadIdx.x < kMmaTile) {
    const int r = r0 + threadIdx.x;
    x_row[threadIdx.x] = r < r1 ? (p.gather ? ptr<const int32_t>(p.row_token)[r] : r) : -1;
  }
  __syncthreads();
  const size_t per_expert = static_cast<size_t>(p.N) * p.K;
  const int nb = (p.N + DS_CUDA_MOE_FP8_BLOCK - 1) / DS_CUDA_MOE_FP8_BLOCK, kbs = p.K / DS_CUDA_MOE_FP8_BLOCK;
  // Tile column / B row r: its matrix (SwiGLU's second half: the up projection) and output n.
  const auto which = [&](int r) { return SWIGLU && r >= kCols ? 1 : 0; };
  const auto outN = [&](int r) { return n0 + (SWIGLU ? r % kCols : r); };
  const bf16* x = ptr<const bf16>(p.x);
  float acc[2][4][4];
  fp8TileLoop(
      sm.t, a_scale, p.K, acc,
      [&](int r) { return x_row[r] >= 0 ? x + static_cast<size_t>(x_row[r]) * p.x_stride : nullptr; },
      [&](int r, int k, uint8_t* dst) {
        loadCodes16(ptr<const uint8_t>(which(r) ? p.w2 : p.w) + e * per_expert, p.N, p.K, outN(r), k, dst);
      },
      [&](int col, int kb) {
        const float* ws = ptr<const float>(which(col) ? p.w2_scale : p.w_scale) + static_cast<size_t>(e) * nb * kbs;
        const int n = outN(col);
        return n < p.N ? ws[static_cast<size_t>(n / DS_CUDA_MOE_FP8_BLOCK) * kbs + kb] : 0.0f;
      });
  bf16* y = ptr<bf16>(p.y);
  if constexpr (!SWIGLU) {
    forEachAccElem([&](int i, int j, int c, int row, int col) {
      const int n = n0 + col;
      if (x_row[row] >= 0 && n < p.N) y[static_cast<size_t>(r0 + row) * p.y_stride + n] = __float2bfloat16_rn(acc[i][j][c]);
    });
  } else {
    // Gate and up meet in shared memory (the tiles are done: the loop ended synchronized).
    forEachAccElem([&](int i, int j, int c, int row, int col) { sm.out[row][col] = acc[i][j][c]; });
    __syncthreads();
    for (int o = threadIdx.x; o < kMmaTile * kCols; o += blockDim.x) {
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

extern "C" __global__ void __launch_bounds__(128) ds_gemm_fp8mma_abf16(const __grid_constant__ ds_cuda_gemm_q_params p) {
  ds::cuda::gemmFp8Mma(p);
}
extern "C" __global__ void __launch_bounds__(128) ds_moe_gemm_wfp8_afp8_plain(const __grid_constant__ ds_cuda_moe_gemv_params p) {
  ds::cuda::moeGemmFp8Mma<false>(p);
}
extern "C" __global__ void __launch_bounds__(128) ds_moe_gemm_wfp8_afp8_swiglu(const __grid_constant__ ds_cuda_moe_gemv_params p) {
  ds::cuda::moeGemmFp8Mma<true>(p);
}
