// Test helpers: random inputs, weight encoders and independent double-precision decoders.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_kernels.h"

namespace ds::cpu::test {

class Rng {
 public:
  explicit Rng(uint32_t seed) : gen_(seed) {}
  float uniform(float lo = -1.0f, float hi = 1.0f) {
    return std::uniform_real_distribution<float>(lo, hi)(gen_);
  }
  int64_t index(int64_t n) { return std::uniform_int_distribution<int64_t>(0, n - 1)(gen_); }
  std::vector<float> vec(int64_t n, float lo = -1.0f, float hi = 1.0f) {
    std::vector<float> v(n);
    for (auto& x : v) x = uniform(lo, hi);
    return v;
  }
  std::mt19937& gen() { return gen_; }

 private:
  std::mt19937 gen_;
};

// Owns the bytes (and block, channel or group scales and zero points) behind a WeightView.
struct OwnedWeight {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  std::vector<float> zeros;
  WeightView view;
};

// A random [rows, cols] weight of the given type with values of magnitude ~amp. FP8 weights get
// random block scales when block_rows > 0 (partial edge blocks when rows/cols are not multiples).
OwnedWeight randomWeight(Rng& rng, WeightType type, int64_t rows, int64_t cols, float amp = 1.0f,
                         int64_t block_rows = 0, int64_t block_cols = 0);
// A weight holding exactly the given f32 values (type F32).
OwnedWeight f32Weight(const std::vector<float>& values, int64_t rows, int64_t cols);

// Independent decoders written from the format definitions (not the kernels' bit tricks).
double decodeF16(uint16_t h);
double decodeBf16(uint16_t h);
double decodeFp8E4M3(uint8_t q);  // NaN for S.1111.111
// A random quantized weight with codes over the whole range (int8 -128..127, every nibble, FP8
// codes but NaN) and random positive scales: I8 / F8E4M3 with channel scales, I4 with groups of
// group_size (asymmetric: random float zero points in [0, 15], not only integers).
OwnedWeight randomQuantWeight(Rng& rng, WeightType type, int64_t rows, int64_t cols, float amp,
                              int64_t group_size = 0, bool asymmetric = false);
// The dequantized weight as a plain f32 view (via dequantRow).
OwnedWeight dequantizedF32(const WeightView& w);

// The whole matrix in double, block / channel / group scales applied (I4 zero points subtracted).
std::vector<double> refDequant(const WeightView& w);

// Relative error measure used by the tests: max |a - b| / (scale + max |b|).
double maxRelErr(const std::vector<float>& got, const std::vector<double>& want);

// linear() over x [T, w.cols] gives every row the same bits alone (decode tile shape), second in
// a batch of two, inside a batch of 7 (prefill tile shape) and on one thread. Requires T >= 8.
void expectRowsBatchInvariant(const WeightView& w, const std::vector<float>& x, int64_t T,
                              const std::string& name);

}  // namespace ds::cpu::test
