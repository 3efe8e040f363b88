// Shared by the GPU check programs' stages (kernel_check.cu, blaslt_check.cu, ...): CUDA runtime
// error checks, host bf16 and FP8 E4M3, random inputs, device buffers, the kernel library's
// launcher, and the pass/fail report with its tolerance helpers.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "ds_cuda_kernels.h"

namespace dscheck {

#define CK(call)                                                                         \
  do {                                                                                   \
    cudaError_t e_ = (call);                                                             \
    if (e_ != cudaSuccess) {                                                             \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(2);                                                                      \
    }                                                                                    \
  } while (0)

// ---- bf16 on the host (round to nearest even), without cuda_bf16's host paths ----
inline uint16_t toBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float fromBf16(uint16_t h) {
  uint32_t u = uint32_t{h} << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float roundBf16(float f) { return fromBf16(toBf16(f)); }

inline std::mt19937 rng(1234);
inline std::vector<float> randomVec(size_t n, float lo = -1.0f, float hi = 1.0f, bool bf16 = false) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = bf16 ? roundBf16(d(rng)) : d(rng);
  return v;
}

// A device buffer holding float data as f32 or bf16.
struct Buf {
  void* p = nullptr;
  size_t n = 0;
  int dtype = DS_CUDA_F32;
  Buf() = default;
  Buf(const std::vector<float>& v, int dt) : n(v.size()), dtype(dt) {
    if (dt == DS_CUDA_BF16) {
      std::vector<uint16_t> h(n);
      for (size_t i = 0; i < n; ++i) h[i] = toBf16(v[i]);
      CK(cudaMalloc(&p, std::max<size_t>(n, 1) * 2));
      CK(cudaMemcpy(p, h.data(), n * 2, cudaMemcpyHostToDevice));
    } else {
      CK(cudaMalloc(&p, std::max<size_t>(n, 1) * 4));
      CK(cudaMemcpy(p, v.data(), n * 4, cudaMemcpyHostToDevice));
    }
  }
  std::vector<float> get() const {
    std::vector<float> v(n);
    if (dtype == DS_CUDA_BF16) {
      std::vector<uint16_t> h(n);
      CK(cudaMemcpy(h.data(), p, n * 2, cudaMemcpyDeviceToHost));
      for (size_t i = 0; i < n; ++i) v[i] = fromBf16(h[i]);
    } else {
      CK(cudaMemcpy(v.data(), p, n * 4, cudaMemcpyDeviceToHost));
    }
    return v;
  }
  ds_cuda_ptr d() const { return reinterpret_cast<ds_cuda_ptr>(p); }
};
struct IBuf {
  void* p = nullptr;
  explicit IBuf(const std::vector<int32_t>& v) {
    CK(cudaMalloc(&p, std::max<size_t>(v.size(), 1) * 4));
    CK(cudaMemcpy(p, v.data(), v.size() * 4, cudaMemcpyHostToDevice));
  }
  ds_cuda_ptr d() const { return reinterpret_cast<ds_cuda_ptr>(p); }
};
inline ds_cuda_ptr scratch(uint64_t bytes) {
  void* p = nullptr;
  if (bytes) CK(cudaMalloc(&p, bytes));
  return reinterpret_cast<ds_cuda_ptr>(p);
}

inline cudaLibrary_t g_lib;
inline std::map<std::string, cudaKernel_t> g_kernels;

template <class P>
inline void launch(const ds_cuda_plan& plan, P& params) {
  for (int i = 0; i < plan.num_launches; ++i) {
    const ds_cuda_launch& l = plan.launches[i];
    cudaKernel_t& k = g_kernels[l.symbol];
    if (!k) CK(cudaLibraryGetKernel(&k, g_lib, l.symbol));
    void* args[] = {&params};
    CK(cudaLaunchKernel(reinterpret_cast<const void*>(k), dim3(l.grid[0], l.grid[1], l.grid[2]),
                        dim3(l.block[0], l.block[1], l.block[2]), args, l.shared_bytes, 0));
  }
  CK(cudaGetLastError());
}

inline int g_pass = 0, g_fail = 0;
// err <= tol[i] elementwise; prints one line.
inline void report(const std::string& name, const std::vector<float>& got, const std::vector<double>& ref,
            const std::vector<double>& tol) {
  double worst = 0, worst_ratio = 0;
  size_t bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double e = std::fabs(got[i] - ref[i]);
    if (!(e <= tol[i])) ++bad;
    worst = std::max(worst, e);
    worst_ratio = std::max(worst_ratio, tol[i] > 0 ? e / tol[i] : (e > 0 ? 1e9 : 0));
  }
  (bad ? g_fail : g_pass)++;
  std::printf("%-4s %-44s n=%-8zu max|err|=%.3g  max err/tol=%.3f%s\n", bad ? "FAIL" : "ok",
              name.c_str(), ref.size(), worst, worst_ratio,
              bad ? (" (" + std::to_string(bad) + " over tolerance)").c_str() : "");
}
inline void planOk(const char* err, const std::string& what) {
  if (err) {
    std::fprintf(stderr, "plan %s: %s\n", what.c_str(), err);
    std::exit(2);
  }
}
inline const char* dn(int dt) { return dt == DS_CUDA_BF16 ? "bf16" : dt == DS_CUDA_FP8_E4M3 ? "fp8" : "f32"; }
inline double outUlp(int dt, double ref) { return dt == DS_CUDA_BF16 ? std::fabs(ref) * (1.0 / 256) : std::fabs(ref) * 1e-6; }

inline ds_cuda_device_limits g_dev;

// ---- FP8 E4M3 block-scaled weights (DeepSeek-V3's storage) on the host ----
// FP8 E4M3 (OCP, "fn": no infinities, S.1111.111 NaN) to its exact value.
inline double e4m3(uint8_t b) {
  const int e = (b >> 3) & 15, m = b & 7;
  const double mag = e ? std::ldexp(1.0 + m / 8.0, e - 7) : std::ldexp(double(m), -9);
  return b & 0x80 ? -mag : mag;
}
// A [rows, cols] FP8 matrix: random finite codes (every byte but the two NaNs, so the top binade
// 256..448 and the subnormals are in), f32 scales [ceil(rows / br), ceil(cols / bc)] uniform in
// [slo, shi], and the element values decode(code) * scale in f32 (exact in double, rounded
// once: the host's dequantRow value and the kernels' f32 product). codes: a device copy.
// int8: int8 codes instead (every byte), value q * scale.
struct Fp8Matrix {
  int rows = 0, cols = 0, br = 0, bc = 0;
  std::vector<uint8_t> q;
  std::vector<float> scale, f;
  void* codes = nullptr;
  Buf dscale;
  void release() { (void)cudaFree(codes), (void)cudaFree(dscale.p); }
};
inline Fp8Matrix randomFp8(int rows, int cols, int br, int bc, float slo, float shi, bool int8 = false) {
  Fp8Matrix w;
  w.rows = rows, w.cols = cols, w.br = br, w.bc = bc;
  const int kb = (cols + bc - 1) / bc;
  w.q.resize(size_t(rows) * cols);
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& c : w.q)
    do c = uint8_t(byte(rng)); while (!int8 && (c & 0x7f) == 0x7f);
  w.scale = randomVec(size_t((rows + br - 1) / br) * kb, slo, shi);
  w.f.resize(w.q.size());
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const uint8_t q = w.q[size_t(r) * cols + c];
      w.f[size_t(r) * cols + c] = float((int8 ? double(int8_t(q)) : e4m3(q)) * w.scale[size_t(r / br) * kb + c / bc]);
    }
  CK(cudaMalloc(&w.codes, std::max<size_t>(w.q.size(), 1)));
  CK(cudaMemcpy(w.codes, w.q.data(), w.q.size(), cudaMemcpyHostToDevice));
  w.dscale = Buf(w.scale, DS_CUDA_F32);
  return w;
}

// blaslt_check.cu: GEMMs through cuBLASLt (dlopen) with the runtime's planBlasLtGemm, counted in
// g_pass / g_fail (SKIP without the library), then their timing next to GEMV chunks.
void blasLtStage();
void blasLtTiming();

}  // namespace dscheck
