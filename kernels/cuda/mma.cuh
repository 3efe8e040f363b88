// Tensor-core building blocks of the prefill GEMMs (src/gemm_q.cu, src/gemm_fp8mma.cu): a 64 x 64
// output tile computed by 4 warps of 32 x 32, ldmatrix fragments, mma.sync (bf16 and FP8), the
// accumulators' tile coordinates, the experts' tile walk and the dense GEMMs' output store.
#pragma once

#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include "common.cuh"

namespace ds::cuda {

constexpr int kMmaTile = 64;  // output rows and columns of a block's tile

__device__ __forceinline__ uint32_t packBf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// Four / two 8 x 8 matrices of 16-bit pairs from shared memory (bf16 elements, or FP8 bytes read
// in pairs: the 8-bit m16n8k32 fragments are the bf16 m16n8k16 ones read as bytes).
__device__ __forceinline__ void ldmatrixX4(uint32_t (&r)[4], const void* p) {
  const uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}
__device__ __forceinline__ void ldmatrixX2(uint32_t (&r)[2], const void* p) {
  const uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(a));
}

// d += a b over 16 bf16 elements of K.
__device__ __forceinline__ void mmaBf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// d += a b over 32 FP8 E4M3 elements of K (sm_89 and newer; the sm_80 build traps: never planned).
__device__ __forceinline__ void mmaFp8(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  (void)d, (void)a, (void)b;
  __trap();
#endif
}

// f(i, j, c, row, col) for each accumulator acc[i][j][c] of this thread (i: 16-row, j: 8-column
// fragment of its warp's 32 x 32), with its row and column in the 64 x 64 tile: rows
// wm + 16 i + lane / 4 (+ 8 for c >= 2), columns wn + 8 j + 2 (lane % 4) + c % 2.
template <class F>
__device__ __forceinline__ void forEachAccElem(F f) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c)
        f(i, j, c, wm + 16 * i + (lane >> 2) + 8 * (c >> 1), wn + 8 * j + 2 * (lane & 3) + (c & 1));
}

// Tile y of an experts' launch -> (local expert, its first routed row, the end of its rows),
// walking the active experts in order (ceil(rows / 64) tiles each); false past the last tile.
__device__ __forceinline__ bool expertTile(const ds_cuda_moe_gemv_params& p, int y, int* e, int* r0, int* r1) {
  const int32_t* active = ptr<const int32_t>(p.active);
  const int32_t* start = ptr<const int32_t>(p.expert_start);
  const int n = active[p.num_local];
  for (int i = 0; i < n; ++i) {
    const int ex = active[i], rows = start[ex + 1] - start[ex], tiles = (rows + kMmaTile - 1) / kMmaTile;
    if (y < tiles) {
      *e = ex;
      *r0 = start[ex] + y * kMmaTile;
      *r1 = min(start[ex + 1], *r0 + kMmaTile);
      return true;
    }
    y -= tiles;
  }
  return false;
}

// y[m, n] of a dense prefill GEMM (ds_cuda_gemm_q_params): + bias, f32 or bf16.
__device__ __forceinline__ void storeGemmOut(const ds_cuda_gemm_q_params& p, int m, int n, float v) {
  if (m >= p.M || n >= p.N) return;
  const float y = p.bias ? v + ptr<const float>(p.bias)[n] : v;
  if (p.y_f32) ptr<float>(p.y)[static_cast<size_t>(m) * p.y_stride + n] = y;
  else ptr<bf16>(p.y)[static_cast<size_t>(m) * p.y_stride + n] = __float2bfloat16_rn(y);
}

}  // namespace ds::cuda
