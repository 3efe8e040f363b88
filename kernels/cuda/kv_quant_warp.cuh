// One vector quantized by one warp with the host's per-vector scheme (include/ds_cuda_kv_quant.h),
// shared by the GQA writers (src/attention_kvq.cu) and MLA's latent writers (src/mla.cu).
#pragma once

#include "common.cuh"
#include "ds_cuda_kv_quant.h"

namespace ds::cuda {

// One vector x[D] (GQA: a (token, kv head) vector of K or V; MLA: a slot's c_kv or k_rope)
// quantized by one warp into its codes and scale. The order is the one
// test/unit/kernels_cuda/cuda_kv_quant_test.cpp replays on the host: lane-strided absmax,
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

}  // namespace ds::cuda
