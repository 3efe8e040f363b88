// Tensor-core GEMMs for prefill (include/ds_cuda_gemm_q.h): over quantized weights (W tiles
// decoded to the host's f32 values, rounded to bf16 in shared memory), and the experts' grouped
// GEMM (one launch for every active expert). bf16 MMA, f32 accumulation, sm_80 and up.
// Single-buffered (a first version: correct by construction, not yet tuned).
#include "mma.cuh"

namespace ds::cuda {
namespace {

constexpr int kQTm = kMmaTile, kQTn = kMmaTile, kQTk = DS_CUDA_GEMM_Q_TILE_K;
constexpr int kQPad = 8;  // bf16 elements of padding per shared row: ldmatrix without bank conflicts
constexpr int kQLd = kQTk + kQPad;

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

// The tile loop shared by the GEMMs here: a 64 x 64 output tile (4 warps of 32 x 32), K in steps
// of 32. loadA(r, c, dst) fills 8 bf16 of A's tile row r at columns k0 + c (zeros past the rows or
// K); loadB(b, r, c, dst) 16 bf16 of matrix b's (NB of them: SwiGLU's gate and up) tile row r.
template <int NB>
struct GemmTile {
  uint16_t a[kQTm][kQLd];
  uint16_t b[NB][kQTn][kQLd];
};

template <int NB, class LoadA, class LoadB>
__device__ __forceinline__ void tileLoop(GemmTile<NB>& t, int K, float (&acc)[NB][2][4][4], LoadA loadA, LoadB loadB) {
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;  // this warp's 32 x 32 of the tile
#pragma unroll
  for (int b = 0; b < NB; ++b)
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int c = 0; c < 4; ++c) acc[b][i][j][c] = 0.0f;
  for (int k0 = 0; k0 < K; k0 += kQTk) {
    // A: 64 rows x 32 bf16 = 256 16-byte pieces, two per thread.
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int piece = tid + u * 128, r = piece >> 2, c = (piece & 3) * 8;
      loadA(r, k0 + c, &t.a[r][c]);
    }
    // B: 64 rows x 32 elements per matrix, 16 per thread.
#pragma unroll
    for (int b = 0; b < NB; ++b) loadB(b, tid >> 1, k0 + (tid & 1) * 16, &t.b[b][tid >> 1][(tid & 1) * 16]);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kQTk; kk += 16) {
      uint32_t a[2][4];
#pragma unroll
      for (int i = 0; i < 2; ++i) ldmatrixX4(a[i], &t.a[wm + 16 * i + (lane & 15)][kk + (lane >> 4) * 8]);
#pragma unroll
      for (int b = 0; b < NB; ++b)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          uint32_t f[2];
          ldmatrixX2(f, &t.b[b][wn + 8 * j + (lane & 7)][kk + ((lane >> 3) & 1) * 8]);
#pragma unroll
          for (int i = 0; i < 2; ++i) mmaBf16(acc[b][i][j], a[i], f);
        }
    }
    __syncthreads();
  }
}

// Calls out(row, col, values of the NB matrices) for the accumulators of this thread (mma.cuh).
template <int NB, class Out>
__device__ __forceinline__ void forEachAcc(const float (&acc)[NB][2][4][4], Out out) {
  forEachAccElem([&](int i, int j, int c, int row, int col) {
    float v[NB];
#pragma unroll
    for (int b = 0; b < NB; ++b) v[b] = acc[b][i][j][c];
    out(row, col, v);
  });
}

__device__ __forceinline__ void zero16(uint16_t* dst) {
  reinterpret_cast<uint4*>(dst)[0] = make_uint4(0, 0, 0, 0);
  reinterpret_cast<uint4*>(dst)[1] = make_uint4(0, 0, 0, 0);
}

template <int WT>
__device__ __forceinline__ void gemmQ(const ds_cuda_gemm_q_params& p) {
  __shared__ __align__(16) GemmTile<1> tile;
  const int m0 = blockIdx.y * kQTm, n0 = blockIdx.x * kQTn;
  const uint16_t* x = ptr<const uint16_t>(p.x);
  float acc[1][2][4][4];
  tileLoop<1>(
      tile, p.K, acc,
      [&](int r, int k, uint16_t* dst) {  // rows past M, columns past K: zero
        uint4 v = make_uint4(0, 0, 0, 0);
        if (m0 + r < p.M && k < p.K) v = *reinterpret_cast<const uint4*>(x + static_cast<size_t>(m0 + r) * p.x_stride + k);
        *reinterpret_cast<uint4*>(dst) = v;
      },
      [&](int, int r, int k, uint16_t* dst) {  // K % 16 == 0: a tile's second half may be past K
        if (n0 + r < p.N && k < p.K) decodeRow16<WT>(p, n0 + r, k, dst);
        else zero16(dst);
      });
  forEachAcc<1>(acc, [&](int mi, int ni, const float (&v)[1]) { storeGemmOut(p, m0 + mi, n0 + ni, v[0]); });
}

// ---- The experts' grouped GEMM (ds_moe_gemm_*): one launch for every active local expert. ----

template <bool FP8, bool SWIGLU>
__device__ __forceinline__ void moeGemm(const ds_cuda_moe_gemv_params& p) {
  constexpr int NB = SWIGLU ? 2 : 1;
  __shared__ __align__(16) GemmTile<NB> tile;
  __shared__ int x_row[kQTm];  // the x row of each tile row, -1 past the expert's rows
  int e = 0, r0 = 0, r1 = 0;
  if (!expertTile(p, blockIdx.y, &e, &r0, &r1)) return;  // the same for every thread
  const int n0 = blockIdx.x * kQTn;
  if (threadIdx.x < kQTm) {
    const int r = r0 + threadIdx.x;
    x_row[threadIdx.x] = r < r1 ? (p.gather ? ptr<const int32_t>(p.row_token)[r] : r) : -1;
  }
  __syncthreads();
  const size_t per_expert = static_cast<size_t>(p.N) * p.K;
  const int nb = (p.N + DS_CUDA_MOE_FP8_BLOCK - 1) / DS_CUDA_MOE_FP8_BLOCK;
  const int kb = (p.K + DS_CUDA_MOE_FP8_BLOCK - 1) / DS_CUDA_MOE_FP8_BLOCK;
  const uint16_t* x = ptr<const uint16_t>(p.x);
  float acc[NB][2][4][4];
  tileLoop<NB>(
      tile, p.K, acc,
      [&](int r, int k, uint16_t* dst) {
        uint4 v = make_uint4(0, 0, 0, 0);
        if (x_row[r] >= 0 && k < p.K) v = *reinterpret_cast<const uint4*>(x + static_cast<size_t>(x_row[r]) * p.x_stride + k);
        *reinterpret_cast<uint4*>(dst) = v;
      },
      [&](int b, int r, int k, uint16_t* dst) {
        const int n = n0 + r;
        if (n >= p.N || k >= p.K) return zero16(dst);
        const ds_cuda_ptr w = b ? p.w2 : p.w;
        if constexpr (FP8) {
          const float* sc = ptr<const float>(b ? p.w2_scale : p.w_scale) + static_cast<size_t>(e) * nb * kb;
          const float s = sc[(n / DS_CUDA_MOE_FP8_BLOCK) * kb + k / DS_CUDA_MOE_FP8_BLOCK];
          const uint4 raw = *reinterpret_cast<const uint4*>(ptr<const uint8_t>(w) + e * per_expert + static_cast<size_t>(n) * p.K + k);
          const uint32_t q[4] = {raw.x, raw.y, raw.z, raw.w};
          uint4 out[2];
          uint32_t* o = reinterpret_cast<uint32_t*>(out);
#pragma unroll
          for (int i = 0; i < 16; i += 2) {
            const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(
                static_cast<__nv_fp8x2_storage_t>((q[i >> 2] >> (8 * (i & 3))) & 0xffffu), __NV_E4M3);
            const float2 v = __half22float2(*reinterpret_cast<const __half2*>(&h));
            o[i / 2] = packBf16(__fmul_rn(v.x, s), __fmul_rn(v.y, s));  // the host's decode(q) * s
          }
          reinterpret_cast<uint4*>(dst)[0] = out[0];
          reinterpret_cast<uint4*>(dst)[1] = out[1];
        } else {
          const uint4* src = reinterpret_cast<const uint4*>(ptr<const uint16_t>(w) + e * per_expert + static_cast<size_t>(n) * p.K + k);
          reinterpret_cast<uint4*>(dst)[0] = src[0];
          reinterpret_cast<uint4*>(dst)[1] = src[1];
        }
      });
  forEachAcc<NB>(acc, [&](int mi, int ni, const float (&v)[NB]) {
    const int n = n0 + ni;
    if (x_row[mi] < 0 || n >= p.N) return;
    float out = v[0];
    if constexpr (SWIGLU) {
      // The GEMV's rounding points: gate and up in bf16, then silu(gate) * up.
      const float g = roundTo<bf16>(v[0]), u = roundTo<bf16>(v[1]);
      out = g / (1.0f + expf(-g)) * u;
    }
    ptr<bf16>(p.y)[static_cast<size_t>(r0 + mi) * p.y_stride + n] = __float2bfloat16_rn(out);
  });
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

#define DS_MOE_GEMM(w, FP8, kind, SWIGLU)                                                    \
  extern "C" __global__ void __launch_bounds__(128)                                          \
      ds_moe_gemm_w##w##_abf16_##kind(const __grid_constant__ ds_cuda_moe_gemv_params p) {   \
    ds::cuda::moeGemm<FP8, SWIGLU>(p);                                                        \
  }
DS_MOE_GEMM(bf16, false, plain, false)
DS_MOE_GEMM(bf16, false, swiglu, true)
DS_MOE_GEMM(fp8, true, plain, false)
DS_MOE_GEMM(fp8, true, swiglu, true)
#undef DS_MOE_GEMM
