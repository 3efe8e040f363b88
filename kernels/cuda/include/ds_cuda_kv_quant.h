/* Quantize-on-write of the GPU's int8 / FP8 (E4M3) GQA KV caches: the host's scheme (kernels/cpu
 * quantize.cpp detail::quantizeVec, kvFp8Factors, f32ToFp8E4M3), the same codes and scales bit for
 * bit. Plain C++ compiled by nvcc (every function __host__ __device__, used by ds_kv_write_{i8,fp8}_*
 * in src/attention_kvq.cu) and by the host unit test (test/unit/kernels_cuda/cuda_kv_quant_test.cpp),
 * which compares these functions, and the kernel's warp reduction order, with the host's kvWrite.
 *
 * Per (slot, kv head) vector x[n] of K or of V, one f32 scale:
 *   int8: s = safe(absmax / 127), q = clamp(round_half_even(x / s), -127, 127)
 *   fp8:  base = safe(absmax / 448); candidate k (0..18) s_k = k == 0 ? base : safe(base * kFactor[k]),
 *         kFactor = 2^(j / 16), j = -2..16 without 0 (exactly std::exp2(float(j) / 16.0f));
 *         err_k = sum over i in order of (double(x_i) - double(dec(enc(x_i / s_k)) * s_k))^2 in double;
 *         s = the first k of the least err (the host's strict "<" scan); q = enc(x / s),
 *         enc = saturating round-half-even E4M3 (NaN -> 0x7f), dec exact.
 *   safe(s) = s if s > 0 and finite, else 1. absmax ignores NaN (std::max / fmaxf).
 * The arithmetic is explicit (no contraction): f32 divide and multiply, then double subtract,
 * multiply and add, each rounded once, like the host (built with -ffp-contract=off). */
#ifndef DS_CUDA_KV_QUANT_H
#define DS_CUDA_KV_QUANT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define DS_KVQ_FN __host__ __device__ __forceinline__
#else
#define DS_KVQ_FN inline
#endif

namespace ds_kvq {

constexpr int kFp8Candidates = 19;

#if defined(__CUDA_ARCH__)
#define DS_KVQ_CONST __device__ __constant__
#else
#define DS_KVQ_CONST
#endif
DS_KVQ_CONST constexpr float kFp8Factors[kFp8Candidates] = {
    1.0f,           0x1.d5818ep-1f, 0x1.ea4afap-1f, 0x1.0b5586p+0f, 0x1.172b84p+0f,
    0x1.2387a6p+0f, 0x1.306fep+0f,  0x1.3dea64p+0f, 0x1.4bfdaep+0f, 0x1.5ab07ep+0f,
    0x1.6a09e6p+0f, 0x1.7a1148p+0f, 0x1.8ace54p+0f, 0x1.9c4918p+0f, 0x1.ae89fap+0f,
    0x1.c199bep+0f, 0x1.d5818ep+0f, 0x1.ea4afap+0f, 0x1p+1f};
#undef DS_KVQ_CONST

/* Rounded-once operations (nvcc would otherwise contract a multiply and an add into an FMA). */
DS_KVQ_FN float divF(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
DS_KVQ_FN float mulF(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
DS_KVQ_FN double sqAddD(double e, double d) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(e, __dmul_rn(d, d));
#else
  return e + d * d;
#endif
}
DS_KVQ_FN float roundEven(float v) {
#if defined(__CUDA_ARCH__)
  return rintf(v);
#else
  return nearbyintf(v);
#endif
}
DS_KVQ_FN uint32_t bitsOf(float v) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(v);
#else
  uint32_t b;
  memcpy(&b, &v, 4);
  return b;
#endif
}
DS_KVQ_FN float fromBits(uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(b);
#else
  float v;
  memcpy(&v, &b, 4);
  return v;
#endif
}

DS_KVQ_FN float safeScale(float s) { return s > 0.0f && isfinite(s) ? s : 1.0f; }
/* std::max(m, |x|) keeps m when x is NaN, as fmaxf does. */
DS_KVQ_FN float absMaxStep(float m, float x) { return fmaxf(m, fabsf(x)); }

/* f32 -> float8_e4m3fn, round half to even, saturating to +-448, NaN -> 0x7f (f32ToFp8E4M3). */
DS_KVQ_FN uint8_t encodeFp8(float x) {
  const uint32_t bits = bitsOf(x);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const uint32_t ua = bits & 0x7fffffffu;
  const float a = fromBits(ua);
  if (a != a) return sign | 0x7fu;
  if (a >= 448.0f) return sign | 0x7eu;
  if (a < 0x1p-6f) return sign | static_cast<uint8_t>(roundEven(mulF(a, 512.0f)));
  uint32_t u = ua + 0x7ffffu + ((ua >> 20) & 1u);
  const uint32_t code = (u >> 20) - (120u << 3);
  return sign | static_cast<uint8_t>(code < 0x7eu ? code : 0x7eu);
}
/* float8_e4m3fn -> f32, exact. */
DS_KVQ_FN float decodeFp8(uint8_t q) {
  const uint32_t sign = static_cast<uint32_t>(q & 0x80u) << 24;
  const uint32_t e = (q >> 3) & 0xfu, m = q & 7u;
  if (e == 15u && m == 7u) return fromBits(sign | 0x7fc00000u);
  if (e == 0u) return fromBits(sign | bitsOf(static_cast<float>(m) * 0x1p-9f));
  return fromBits(sign | ((e + 120u) << 23) | (m << 20));
}

/* int8 code of x for scale s. */
DS_KVQ_FN int8_t codeI8(float x, float s) {
  float r = roundEven(divF(x, s));
  if (r != r) r = 0.0f;
  return static_cast<int8_t>(fminf(fmaxf(r, -127.0f), 127.0f));
}
DS_KVQ_FN float scaleI8(float absmax) { return safeScale(divF(absmax, 127.0f)); }

DS_KVQ_FN float fp8Base(float absmax) { return safeScale(divF(absmax, 448.0f)); }
DS_KVQ_FN float fp8Candidate(float base, int k) {
  return k == 0 ? base : safeScale(mulF(base, kFp8Factors[k]));
}
/* One element's term of a candidate's error, added to e. */
DS_KVQ_FN double fp8ErrStep(double e, float x, float s) {
  const float dq = mulF(decodeFp8(encodeFp8(divF(x, s))), s);
  return sqAddD(e, static_cast<double>(x) - static_cast<double>(dq));
}
/* Candidate (ea, ka) wins over (eb, kb): less error, or equal (NaN errors: every candidate's, so
 * all equal) and the earlier candidate. The order the host's sequential scan picks. */
DS_KVQ_FN bool fp8Better(double ea, int ka, double eb, int kb) {
  return ea < eb || (!(eb < ea) && ka < kb);
}
/* One step of the kernel's warp reduction (xor butterfly over the candidates' lanes). */
DS_KVQ_FN void fp8Keep(double& e, int& k, double oe, int ok) {
  if (fp8Better(oe, ok, e, k)) e = oe, k = ok;
}

/* The whole definition, serially (what one GPU lane computes per candidate, and the reference
 * form): returns the scale and writes n codes. fp8 = false: int8 (codes as two's complement). */
DS_KVQ_FN float quantizeVec(bool fp8, const float* x, int n, uint8_t* q) {
  float m = 0.0f;
  for (int i = 0; i < n; ++i) m = absMaxStep(m, x[i]);
  if (!fp8) {
    const float s = scaleI8(m);
    for (int i = 0; i < n; ++i) q[i] = static_cast<uint8_t>(codeI8(x[i], s));
    return s;
  }
  const float base = fp8Base(m);
  float best = base;
  double best_err = 0.0;
  int best_k = -1;
  for (int k = 0; k < kFp8Candidates; ++k) {
    const float s = fp8Candidate(base, k);
    double e = 0.0;
    for (int i = 0; i < n; ++i) e = fp8ErrStep(e, x[i], s);
    if (best_k < 0 || fp8Better(e, k, best_err, best_k)) best = s, best_err = e, best_k = k;
  }
  for (int i = 0; i < n; ++i) q[i] = encodeFp8(divF(x[i], best));
  return best;
}

}  // namespace ds_kvq

#undef DS_KVQ_FN
#endif /* DS_CUDA_KV_QUANT_H */
