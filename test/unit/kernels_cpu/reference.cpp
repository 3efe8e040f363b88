// Test helpers: random weights of every storage type and independent decoders in double precision.
#include "reference.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace ds::cpu::test {

double decodeF16(uint16_t h) {
  const int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v;
  if (e == 0) v = std::ldexp(m / 1024.0, -14);
  else if (e == 31) v = m ? std::numeric_limits<double>::quiet_NaN() : INFINITY;
  else v = std::ldexp(1.0 + m / 1024.0, e - 15);
  return sign ? -v : v;
}

double decodeBf16(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

double decodeFp8E4M3(uint8_t q) {
  const int sign = q >> 7, e = (q >> 3) & 15, m = q & 7;
  if (e == 15 && m == 7) return std::numeric_limits<double>::quiet_NaN();
  double v = e == 0 ? std::ldexp(m / 8.0, -6) : std::ldexp(1.0 + m / 8.0, e - 7);
  return sign ? -v : v;
}

namespace {

uint16_t toBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
  return static_cast<uint16_t>(u >> 16);
}

// Nearest f16 by search over the finite codes of the right sign (slow but obviously right).
uint16_t toF16(float f) {
  uint16_t best = 0;
  double best_err = INFINITY;
  const uint16_t sign = f < 0 ? 0x8000 : 0;
  for (uint32_t c = 0; c < 0x7c00; ++c) {
    double err = std::fabs(decodeF16(static_cast<uint16_t>(c | sign)) - f);
    if (err < best_err) best_err = err, best = static_cast<uint16_t>(c | sign);
  }
  return best;
}

}  // namespace

OwnedWeight randomWeight(Rng& rng, WeightType type, int64_t rows, int64_t cols, float amp,
                         int64_t block_rows, int64_t block_cols) {
  OwnedWeight w;
  const int64_t n = rows * cols;
  switch (type) {
    case WeightType::F32: {
      w.bytes.resize(n * 4);
      for (int64_t i = 0; i < n; ++i) {
        float f = rng.uniform(-amp, amp);
        std::memcpy(w.bytes.data() + i * 4, &f, 4);
      }
      break;
    }
    case WeightType::BF16:
    case WeightType::F16: {
      w.bytes.resize(n * 2);
      // f16 by search is slow: draw codes from a small pool of encoded values instead.
      std::vector<uint16_t> pool(256);
      for (auto& c : pool) {
        float f = rng.uniform(-amp, amp);
        c = type == WeightType::BF16 ? toBf16(f) : toF16(f);
      }
      for (int64_t i = 0; i < n; ++i) {
        uint16_t c = type == WeightType::BF16 ? toBf16(rng.uniform(-amp, amp)) : pool[rng.index(256)];
        std::memcpy(w.bytes.data() + i * 2, &c, 2);
      }
      break;
    }
    case WeightType::F8E4M3: {
      w.bytes.resize(n);
      for (int64_t i = 0; i < n; ++i) {
        uint8_t q;
        do q = static_cast<uint8_t>(rng.index(256)); while ((q & 0x7f) == 0x7f);
        w.bytes[i] = q;
      }
      if (block_rows > 0) {
        const int64_t nrb = (rows + block_rows - 1) / block_rows;
        const int64_t ncb = (cols + block_cols - 1) / block_cols;
        w.scales.resize(nrb * ncb);
        // FP8 values reach 448; scales bring them back to ~amp.
        for (auto& s : w.scales) s = rng.uniform(0.5f, 1.5f) * amp / 448.0f;
      }
      break;
    }
    case WeightType::I8:
    case WeightType::I4:
    case WeightType::I6:
      return randomQuantWeight(rng, type, rows, cols, amp, block_cols > 0 ? block_cols : 64);
  }
  w.view.data = w.bytes.data();
  w.view.type = type;
  w.view.rows = rows;
  w.view.cols = cols;
  if (!w.scales.empty()) {
    w.view.block_scale = w.scales.data();
    w.view.block_rows = block_rows;
    w.view.block_cols = block_cols;
  }
  return w;
}

OwnedWeight f32Weight(const std::vector<float>& values, int64_t rows, int64_t cols) {
  OwnedWeight w;
  w.bytes.resize(values.size() * 4);
  std::memcpy(w.bytes.data(), values.data(), w.bytes.size());
  w.view.data = w.bytes.data();
  w.view.type = WeightType::F32;
  w.view.rows = rows;
  w.view.cols = cols;
  return w;
}

OwnedWeight randomQuantWeight(Rng& rng, WeightType type, int64_t rows, int64_t cols, float amp,
                              int64_t group_size, bool asymmetric) {
  OwnedWeight w;
  if (type == WeightType::I4 || type == WeightType::I6) {
    const bool i6 = type == WeightType::I6;
    const int64_t rb = i6 ? 3 * ((cols + 3) / 4) : (cols + 1) / 2, G = (cols + group_size - 1) / group_size;
    w.bytes.resize(rows * rb);
    for (auto& b : w.bytes) b = static_cast<uint8_t>(rng.index(256));
    w.scales.resize(rows * G);
    for (auto& s : w.scales) s = rng.uniform(0.5f, 1.5f) * amp / (i6 ? 32.0f : 8.0f);
    if (asymmetric) {
      w.zeros.resize(rows * G);
      for (auto& z : w.zeros) z = rng.uniform(0.0f, 15.0f);
      w.view.group_zero = w.zeros.data();
    }
    w.view.group_scale = w.scales.data();
    w.view.group_size = group_size;
  } else {
    w.bytes.resize(rows * cols);
    for (auto& b : w.bytes) {
      do b = static_cast<uint8_t>(rng.index(256));
      while (type == WeightType::F8E4M3 && (b & 0x7f) == 0x7f);
    }
    w.scales.resize(rows);
    const float range = type == WeightType::I8 ? 128.0f : 448.0f;
    for (auto& s : w.scales) s = rng.uniform(0.5f, 1.5f) * amp / range;
    w.view.channel_scale = w.scales.data();
  }
  w.view.data = w.bytes.data();
  w.view.type = type;
  w.view.rows = rows;
  w.view.cols = cols;
  return w;
}

OwnedWeight dequantizedF32(const WeightView& q) {
  std::vector<float> values(q.rows * q.cols);
  for (int64_t r = 0; r < q.rows; ++r) dequantRow(q, r, values.data() + r * q.cols);
  return f32Weight(values, q.rows, q.cols);
}

std::vector<double> refDequant(const WeightView& w) {
  std::vector<double> out(w.rows * w.cols);
  const auto* b = static_cast<const uint8_t*>(w.data);
  for (int64_t r = 0; r < w.rows; ++r)
    for (int64_t c = 0; c < w.cols; ++c) {
      const int64_t i = r * w.cols + c;
      double v = 0;
      switch (w.type) {
        case WeightType::F32: {
          float f;
          std::memcpy(&f, b + i * 4, 4);
          v = f;
          break;
        }
        case WeightType::F16:
        case WeightType::BF16: {
          uint16_t h;
          std::memcpy(&h, b + i * 2, 2);
          v = w.type == WeightType::F16 ? decodeF16(h) : decodeBf16(h);
          break;
        }
        case WeightType::F8E4M3: v = decodeFp8E4M3(b[i]); break;
        case WeightType::I8: v = static_cast<int8_t>(b[i]); break;
        case WeightType::I6: {
          // Bit 6c + k of the row's little-endian bit stream is bit k of column c's code.
          const uint8_t* row = b + r * 3 * ((w.cols + 3) / 4);
          int u = 0;
          for (int k = 0; k < 6; ++k) u |= ((row[(6 * c + k) / 8] >> ((6 * c + k) % 8)) & 1) << k;
          v = u >= 32 ? u - 64 : u;
          const int64_t G = (w.cols + w.group_size - 1) / w.group_size;
          v *= w.group_scale[r * G + c / w.group_size];
          break;
        }
        case WeightType::I4: {
          const int byte = b[r * ((w.cols + 1) / 2) + c / 2];
          const int nib = c % 2 == 0 ? byte & 15 : byte >> 4;
          v = w.group_zero ? nib : (nib >= 8 ? nib - 16 : nib);
          if (w.group_scale) {
            const int64_t G = (w.cols + w.group_size - 1) / w.group_size, g = r * G + c / w.group_size;
            if (w.group_zero) v -= w.group_zero[g];
            v *= w.group_scale[g];
          }
          break;
        }
      }
      if (w.channel_scale) v *= w.channel_scale[r];
      if (w.block_scale) {
        const int64_t ncb = (w.cols + w.block_cols - 1) / w.block_cols;
        v *= w.block_scale[(r / w.block_rows) * ncb + c / w.block_cols];
      }
      out[i] = v;
    }
  return out;
}

double maxRelErr(const std::vector<float>& got, const std::vector<double>& want) {
  double scale = 0, err = 0;
  for (double v : want) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < got.size(); ++i) {
    double d = std::fabs(double(got[i]) - want[i]);
    if (std::isnan(d)) return INFINITY;
    err = std::max(err, d);
  }
  return err / (scale > 0 ? scale : 1.0);
}

void expectRowsBatchInvariant(const WeightView& w, const std::vector<float>& x, int64_t T,
                              const std::string& name) {
  const int64_t N = w.rows, K = w.cols;
  std::vector<float> all(T * N), one(N);
  linear(x.data(), T, w, nullptr, all.data());
  for (int64_t t : {int64_t{0}, int64_t{5}, T - 1}) {
    // Alone (decode tile shape), and second in a batch of two.
    linear(x.data() + t * K, 1, w, nullptr, one.data());
    EXPECT_EQ(0, std::memcmp(one.data(), all.data() + t * N, N * 4)) << name << " t=" << t;
    std::vector<float> pair(2 * K), pair_out(2 * N);
    std::memcpy(pair.data(), x.data() + 7 * K, K * 4);
    std::memcpy(pair.data() + K, x.data() + t * K, K * 4);
    linear(pair.data(), 2, w, nullptr, pair_out.data());
    EXPECT_EQ(0, std::memcmp(pair_out.data() + N, all.data() + t * N, N * 4)) << name;
  }
  // A batch of 7 (prefill tile shape, token at another index).
  std::vector<float> seven(7 * N);
  linear(x.data() + (T - 7) * K, 7, w, nullptr, seven.data());
  EXPECT_EQ(0, std::memcmp(seven.data(), all.data() + (T - 7) * N, 7 * N * 4)) << name;
  const int saved = numThreads();
  setNumThreads(1);
  std::vector<float> serial(T * N);
  linear(x.data(), T, w, nullptr, serial.data());
  setNumThreads(saved);
  EXPECT_EQ(0, std::memcmp(serial.data(), all.data(), T * N * 4)) << name;
}

}  // namespace ds::cpu::test
