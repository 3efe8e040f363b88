// The shared synthetic element function (artifact/synthetic_element.h, also compiled by nvcc
// into the CUDA fill kernel) against the host fill and against independent references: the
// host fill must give exactly synth::value encoded by the synth:: encoders, for every dtype,
// offset and spec; the encoders must equal format/dtype.cpp's codecs; the value must be one
// correctly rounded fma (no contraction differences between the CPU's clones and the GPU).
#include "artifact/synthetic_element.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "artifact/synthetic.h"
#include "format/dtype.h"

namespace ds::artifact {
namespace {

struct Case {
  fb::DType dtype;
  int bytes;  // per element (0: I4)
};
const Case kCases[] = {{fb::DType_F32, 4}, {fb::DType_F16, 2}, {fb::DType_BF16, 2},
                       {fb::DType_F8_E4M3, 1}, {fb::DType_I8, 1}, {fb::DType_I32, 4}};
// (mean, std): weights, norms, codes, saturating FP8 / I8 / I32 and a constant.
const float kSpecs[][2] = {{0.0f, 0.02f}, {1.0f, 0.0f}, {0.0f, 1.0f}, {7.5f, 4.0f},
                           {0.0f, 300.0f}, {-3.0f, 60.0f}, {0.0f, 1e9f}, {1e-3f, 1e-4f}};

// The element's bytes by the shared function alone, as the CUDA kernel computes them.
void elementBytes(fb::DType dtype, uint64_t key, uint64_t i, float mean, float std, uint8_t* out) {
  const float v = synth::value(key, i, mean, std);
  switch (dtype) {
    case fb::DType_F32: std::memcpy(out, &v, 4); break;
    case fb::DType_F16: { uint16_t h = synth::toF16(v); std::memcpy(out, &h, 2); break; }
    case fb::DType_BF16: { uint16_t h = synth::toBF16(v); std::memcpy(out, &h, 2); break; }
    case fb::DType_F8_E4M3: *out = synth::toF8E4M3(synth::clampTo(v, -448.0f, 448.0f)); break;
    case fb::DType_I8: *out = synth::toI8(v); break;
    case fb::DType_I32: { int32_t x = synth::toI32(v); std::memcpy(out, &x, 4); break; }
    default: FAIL();
  }
}

TEST(SyntheticElement, HostFillIsTheSharedElementForEveryDtype) {
  std::mt19937_64 rng(7);
  for (const Case& c : kCases)
    for (const auto& ms : kSpecs)
      for (uint64_t first : {uint64_t{0}, uint64_t{1}, uint64_t{12345}, uint64_t{1} << 33}) {
        SyntheticSpec s;
        s.dtype = c.dtype;
        s.mean = ms[0];
        s.std = ms[1];
        s.stream = rng() % 1000;
        const uint64_t seed = rng(), n = 4099;  // odd: vector loops and their tails
        std::vector<uint8_t> got(n * c.bytes), want(n * c.bytes);
        fillSyntheticRange(s, seed, first, n, got.data());
        const uint64_t key = synth::streamKey(seed, s.stream);
        for (uint64_t i = 0; i < n; ++i)
          elementBytes(c.dtype, key, first + i, s.mean, s.std, want.data() + i * c.bytes);
        ASSERT_EQ(got, want) << fb::EnumNameDType(c.dtype) << " mean " << ms[0] << " std " << ms[1]
                             << " first " << first;
      }
}

TEST(SyntheticElement, HostI4FillIsTheSharedByteFunction) {
  for (int64_t cols : {1, 2, 7, 64, 999})
    for (const auto& ms : {std::pair{7.5f, 4.0f}, std::pair{0.0f, 100.0f}, std::pair{15.0f, 0.0f}}) {
      SyntheticSpec s;
      s.dtype = fb::DType_I4;
      s.mean = ms.first;
      s.std = ms.second;
      s.stream = 3;
      const int64_t rows = 37, row_bytes = (cols + 1) / 2;
      std::vector<uint8_t> got(rows * row_bytes);
      fillSyntheticTensor(s, 11, {rows, cols}, got.data(), got.size(), 3);
      const uint64_t key = synth::streamKey(11, 3);
      for (uint64_t b = 0; b < got.size(); ++b)
        ASSERT_EQ(got[b], synth::i4Byte(key, s.mean, s.std, cols, b)) << "cols " << cols << " byte " << b;
    }
}

// The value is exactly fma(std, n, mean) rounded once: checked in double, where std * n is
// exact (24 + 24 bits) and the sum's rounding to float is the fma's for these magnitudes.
TEST(SyntheticElement, ValueIsOneRoundedFma) {
  const uint64_t key = synth::streamKey(5, 9);
  for (const auto& ms : kSpecs)
    for (uint64_t i = 0; i < 20000; ++i) {
      const float n = synth::normal(key, i);
      const double exact = static_cast<double>(ms[1]) * n + ms[0];
      EXPECT_EQ(synth::value(key, i, ms[0], ms[1]), std::fma(ms[1], n, ms[0]));
      EXPECT_LE(std::fabs(synth::value(key, i, ms[0], ms[1]) - exact),
                std::fabs(exact) * 0x1p-24 + 1e-45) << i;
      ASSERT_EQ(syntheticNormal(5, 9, i), n);
    }
}

// The encoders against format/dtype.cpp's (which convert real checkpoints): every 61st float
// bit pattern (70 million values) plus every FP8 / half rounding boundary and its neighbours.
TEST(SyntheticElement, EncodersMatchTheDtypeCodecs) {
  auto check = [](uint32_t bits) {
    float v;
    std::memcpy(&v, &bits, 4);
    if (!std::isfinite(v)) return;
    ASSERT_EQ(synth::toF16(v), floatToHalf(v)) << std::hexfloat << v;
    ASSERT_EQ(synth::toBF16(v), floatToBF16(v)) << std::hexfloat << v;
    if (std::fabs(v) <= 448.0f) {
      ASSERT_EQ(synth::toF8E4M3(v), floatToFp8E4M3(v)) << std::hexfloat << v;
    }
  };
  for (uint64_t bits = 0; bits <= 0xFFFFFFFFull; bits += 61) check(static_cast<uint32_t>(bits));
  // FP8 codes, the midpoints between neighbours and one ulp either side, both signs.
  for (int code = 0; code < 0x7E; ++code) {
    float lo = 0, hi = 0;
    const uint8_t a = static_cast<uint8_t>(code), z = static_cast<uint8_t>(code + 1);
    ASSERT_TRUE(convertToFloat(DType::kF8_E4M3, &a, &lo, 1).isOk());
    ASSERT_TRUE(convertToFloat(DType::kF8_E4M3, &z, &hi, 1).isOk());
    for (float m : {lo, hi, (lo + hi) / 2})
      for (float v : {m, std::nextafter(m, 0.0f), std::nextafter(m, 1000.0f)}) {
        uint32_t bits;
        std::memcpy(&bits, &v, 4);
        check(bits);
        check(bits | 0x80000000u);
      }
  }
  // Half: the subnormal, normal and overflow boundaries.
  for (float m : {0x1p-25f, 0x1p-24f, 0x1.8p-24f, 0x1p-14f, 0x1.ffcp-15f, 65504.0f, 65520.0f})
    for (float v : {m, std::nextafter(m, 0.0f), std::nextafter(m, 1e6f)}) {
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      check(bits);
      check(bits | 0x80000000u);
    }
}

TEST(SyntheticElement, IntegerCodesRoundHalfToEvenAndClamp) {
  EXPECT_EQ(synth::toI8(2.5f), 2);
  EXPECT_EQ(synth::toI8(3.5f), 4);
  EXPECT_EQ(static_cast<int8_t>(synth::toI8(-300.0f)), -127);
  EXPECT_EQ(synth::toI8(1e9f), 127);
  EXPECT_EQ(synth::toI32(-2.5f), -2);
  EXPECT_EQ(synth::toI32(3e9f), 2147483520);
  EXPECT_EQ(synth::i4Code(-1.0f), 0);
  EXPECT_EQ(synth::i4Code(14.5f), 14);
  EXPECT_EQ(synth::i4Code(99.0f), 15);
}

}  // namespace
}  // namespace ds::artifact
