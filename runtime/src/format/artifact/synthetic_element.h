// The synthetic-weight element function (docs/artifact.md "Synthetic weights"), shared bit for
// bit by the host fill (synthetic.cpp) and the CUDA fill kernel (kernels/cuda/src/
// synthetic_fill.cu, which nvcc compiles with this folder on its include path). Plain C++ with
// no dependencies; every function is __host__ __device__ under nvcc.
//
// The arithmetic is explicit so no compiler can change it: the value is ONE fmaf(std, n, mean)
// (nvcc contracts a * b + c into an FMA by default; GCC did too in the host fill's x86-64-v3/v4
// clones but not in its baseline clone, so hosts without FMA computed other bits before this
// header), n is an exact integer times a power of two, and the encoders are integer code or
// round-to-nearest-even (rintf / nearbyintf) on values already clamped to a finite range.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define DS_SYNTH_FN __host__ __device__ __forceinline__
#else
#define DS_SYNTH_FN inline __attribute__((always_inline))
#endif

namespace ds::synth {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

DS_SYNTH_FN uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// One key per (seed, stream): streams of one seed and seeds of one stream never share counters.
DS_SYNTH_FN uint64_t streamKey(uint64_t seed, uint64_t stream) {
  return mix64(mix64(seed ^ 0x5DEECE66Dull) + stream * kGolden);
}

// Sum of the four 16-bit fields of one hash, centred and scaled to variance 1 (Irwin-Hall n=4):
// an integer in [-131070, 131070] times 2^-16 sqrt(3), exact up to the one product's rounding.
DS_SYNTH_FN float normal(uint64_t key, uint64_t index) {
  const uint64_t h = mix64(key + (index + 1) * kGolden);
  const int32_t sum = static_cast<int32_t>((h & 0xFFFF) + ((h >> 16) & 0xFFFF) +
                                           ((h >> 32) & 0xFFFF) + (h >> 48));
  constexpr float kScale = 1.7320508f / 65536.0f;  // sqrt(12 / 4) / 65536
  return static_cast<float>(sum - 2 * 65535) * kScale;
}

// Element `index`: mean + std * n, rounded once.
DS_SYNTH_FN float value(uint64_t key, uint64_t index, float mean, float std) {
  return fmaf(std, normal(key, index), mean);
}

DS_SYNTH_FN uint32_t bitsOf(float v) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(v);
#else
  uint32_t b;
  memcpy(&b, &v, 4);
  return b;
#endif
}

// std::clamp's order of comparisons (values here are never NaN).
DS_SYNTH_FN float clampTo(float v, float lo, float hi) { return v < lo ? lo : (hi < v ? hi : v); }

// Round to nearest, ties to even (the default rounding mode on the host).
DS_SYNTH_FN float roundEven(float v) {
#if defined(__CUDA_ARCH__)
  return rintf(v);
#else
  return nearbyintf(v);
#endif
}

// bf16 round to nearest even of a finite value.
DS_SYNTH_FN uint16_t toBF16(float v) {
  const uint32_t b = bitsOf(v);
  return static_cast<uint16_t>((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

// IEEE half, round to nearest even (ds::floatToHalf's algorithm, format/dtype.cpp).
DS_SYNTH_FN uint16_t toF16(float v) {
  const uint32_t bits = bitsOf(v);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t abs = bits & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return sign | 0x7E00;
  if (abs >= 0x477FF000u) return sign | 0x7C00;  // rounds to >= 65520: infinity
  if (abs >= 0x38800000u) {                        // normal half range (>= 2^-14)
    uint32_t r = abs - (112u << 23);
    r += 0xFFF + ((r >> 13) & 1);
    return sign | static_cast<uint16_t>(r >> 13);
  }
  if (abs < 0x33000000u) return sign;  // below half of the smallest subnormal: zero
  const uint32_t exp = abs >> 23;
  const uint32_t mant = (abs & 0x7FFFFF) | 0x800000;
  const uint32_t shift = 126 - exp;
  uint32_t result = mant >> shift;
  const uint32_t rem = mant & ((1u << shift) - 1);
  const uint32_t halfway = 1u << (shift - 1);
  if (rem > halfway || (rem == halfway && (result & 1))) ++result;
  return sign | static_cast<uint16_t>(result);
}

// float8 e4m3fn, round to nearest even, of a value in [-448, 448] (the fill clamps first; the
// same codes as ds::floatToFp8E4M3 there, which a unit test checks).
DS_SYNTH_FN uint8_t toF8E4M3(float v) {
  const uint32_t bits = bitsOf(v);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80);
  const uint32_t abs = bits & 0x7FFFFFFFu;
  if (abs >= 0x43E00000u) return sign | 0x7E;  // 448
  if (abs >= 0x3C800000u) {                    // normal e4m3 (>= 2^-6): rebias 127 -> 7
    uint32_t r = abs - (120u << 23);
    r += 0x7FFFF + ((r >> 20) & 1);
    return sign | static_cast<uint8_t>(r >> 20);
  }
  // Subnormal: multiples of 2^-9; |v| * 512 is exact and < 8 (8 rounds up to the first normal).
  float a;
#if defined(__CUDA_ARCH__)
  a = __uint_as_float(abs);
#else
  memcpy(&a, &abs, 4);
#endif
  return sign | static_cast<uint8_t>(roundEven(a * 512.0f));
}

DS_SYNTH_FN uint8_t toI8(float v) {
  return static_cast<uint8_t>(static_cast<int8_t>(clampTo(roundEven(v), -127.0f, 127.0f)));
}
DS_SYNTH_FN int32_t toI32(float v) {
  return static_cast<int32_t>(clampTo(roundEven(v), -2147483520.0f, 2147483520.0f));
}
DS_SYNTH_FN uint8_t i4Code(float v) { return static_cast<uint8_t>(clampTo(roundEven(v), 0.0f, 15.0f)); }

// Byte `b` of an I4 tensor of rows of `cols` codes, each row padded to (cols + 1) / 2 bytes:
// element c of row r is code r * cols + c, low nibble first; the pad nibble is 0.
DS_SYNTH_FN uint8_t i4Byte(uint64_t key, float mean, float std, uint64_t cols, uint64_t b) {
  const uint64_t row_bytes = (cols + 1) / 2;
  const uint64_t r = b / row_bytes, c = (b % row_bytes) * 2;
  uint8_t out = i4Code(value(key, r * cols + c, mean, std));
  if (c + 1 < cols) out |= static_cast<uint8_t>(i4Code(value(key, r * cols + c + 1, mean, std)) << 4);
  return out;
}

}  // namespace ds::synth
