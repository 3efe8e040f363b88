// DType names/sizes and bit-exact F16/BF16/FP8 conversions against known bit patterns.
#include "format/dtype.h"

#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

namespace ds {
namespace {

uint32_t bitsOf(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

TEST(DTypeTest, NamesAndSizesRoundTrip) {
  const struct { const char* name; size_t size; } cases[] = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I64", 8}, {"I32", 4},
      {"I16", 2}, {"I8", 1}, {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1}, {"BOOL", 1}};
  for (const auto& c : cases) {
    DType d;
    ASSERT_TRUE(parseDType(c.name, &d)) << c.name;
    EXPECT_STREQ(dtypeName(d), c.name);
    EXPECT_EQ(dtypeSize(d), c.size) << c.name;
  }
  DType d;
  EXPECT_FALSE(parseDType("f32", &d));  // the format is case-sensitive
  EXPECT_FALSE(parseDType("F8_E4M3FN", &d));
  EXPECT_FALSE(parseDType("", &d));
}

TEST(DTypeTest, BF16KnownPatterns) {
  EXPECT_EQ(bf16ToFloat(0x3F80), 1.0f);
  EXPECT_EQ(bf16ToFloat(0xC000), -2.0f);
  EXPECT_EQ(bf16ToFloat(0x3EAB), 0.333984375f);
  EXPECT_EQ(bf16ToFloat(0x7F80), std::numeric_limits<float>::infinity());
  EXPECT_EQ(bf16ToFloat(0x0001), std::ldexp(1.0f, -133));  // smallest subnormal
  EXPECT_TRUE(std::isnan(bf16ToFloat(0x7FC0)));
  EXPECT_TRUE(std::signbit(bf16ToFloat(0x8000)));
}

TEST(DTypeTest, HalfKnownPatterns) {
  EXPECT_EQ(halfToFloat(0x3C00), 1.0f);
  EXPECT_EQ(halfToFloat(0xC000), -2.0f);
  EXPECT_EQ(halfToFloat(0x3555), 0.333251953125f);
  EXPECT_EQ(halfToFloat(0x7BFF), 65504.0f);
  EXPECT_EQ(halfToFloat(0x0400), std::ldexp(1.0f, -14));     // smallest normal
  EXPECT_EQ(halfToFloat(0x0001), std::ldexp(1.0f, -24));     // smallest subnormal
  EXPECT_EQ(halfToFloat(0x03FF), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(halfToFloat(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(halfToFloat(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(halfToFloat(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(halfToFloat(0x7E00)));
  EXPECT_TRUE(std::isnan(halfToFloat(0x7C01)));  // signalling NaN stays NaN, not infinity
  EXPECT_TRUE(std::signbit(halfToFloat(0x8000)));
}

TEST(DTypeTest, Fp8E4M3KnownPatterns) {
  EXPECT_EQ(fp8E4M3ToFloat(0x00), 0.0f);
  EXPECT_TRUE(std::signbit(fp8E4M3ToFloat(0x80)));
  EXPECT_EQ(fp8E4M3ToFloat(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(fp8E4M3ToFloat(0x07), std::ldexp(7.0f, -9));  // largest subnormal
  EXPECT_EQ(fp8E4M3ToFloat(0x08), std::ldexp(1.0f, -6));  // smallest normal
  EXPECT_EQ(fp8E4M3ToFloat(0x38), 1.0f);
  EXPECT_EQ(fp8E4M3ToFloat(0x3F), 1.875f);
  EXPECT_EQ(fp8E4M3ToFloat(0x40), 2.0f);
  EXPECT_EQ(fp8E4M3ToFloat(0x78), 256.0f);  // exponent 15 is a normal exponent in e4m3fn
  EXPECT_EQ(fp8E4M3ToFloat(0x7E), 448.0f);  // max finite
  EXPECT_EQ(fp8E4M3ToFloat(0xFE), -448.0f);
  EXPECT_EQ(fp8E4M3ToFloat(0xB8), -1.0f);
  EXPECT_TRUE(std::isnan(fp8E4M3ToFloat(0x7F)));  // S.1111.111 is the only NaN, no infinities
  EXPECT_TRUE(std::isnan(fp8E4M3ToFloat(0xFF)));
  int nans = 0;
  for (int b = 0; b < 256; ++b) nans += std::isnan(fp8E4M3ToFloat(static_cast<uint8_t>(b)));
  EXPECT_EQ(nans, 2);
  for (int b = 0; b < 256; ++b) EXPECT_FALSE(std::isinf(fp8E4M3ToFloat(static_cast<uint8_t>(b))));
}

TEST(DTypeTest, Fp8E5M2KnownPatterns) {
  EXPECT_EQ(fp8E5M2ToFloat(0x3C), 1.0f);
  EXPECT_EQ(fp8E5M2ToFloat(0x01), std::ldexp(1.0f, -16));
  EXPECT_EQ(fp8E5M2ToFloat(0x7B), 57344.0f);
  EXPECT_EQ(fp8E5M2ToFloat(0x7C), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(fp8E5M2ToFloat(0x7F)));
}

#if defined(__FLT16_MAX__)
// The compiler's own _Float16 conversions are an independent reference for every half pattern.
TEST(DTypeTest, HalfMatchesCompilerFloat16Exhaustively) {
  for (uint32_t h = 0; h < 65536; ++h) {
    _Float16 ref;
    const uint16_t bits = static_cast<uint16_t>(h);
    std::memcpy(&ref, &bits, 2);
    const float expected = static_cast<float>(ref);
    const float got = halfToFloat(bits);
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(got)) << std::hex << h;
    } else {
      ASSERT_EQ(bitsOf(got), bitsOf(expected)) << std::hex << h;
      ASSERT_EQ(floatToHalf(got), bits) << std::hex << h;  // narrowing inverts it exactly
    }
  }
}

TEST(DTypeTest, FloatToHalfRoundsLikeCompiler) {
  uint32_t state = 12345;
  for (int i = 0; i < 200000; ++i) {
    state = state * 1664525u + 1013904223u;
    // Exponents 100..149 cover half's underflow, subnormal, normal and overflow ranges.
    const uint32_t bits = (state & 0x807FFFFFu) | ((100u + (state >> 24) % 50u) << 23);
    float f;
    std::memcpy(&f, &bits, 4);
    const _Float16 ref = static_cast<_Float16>(f);
    uint16_t ref_bits;
    std::memcpy(&ref_bits, &ref, 2);
    ASSERT_EQ(floatToHalf(f), ref_bits) << f;
  }
}
#endif

TEST(DTypeTest, NarrowingRoundsToNearestEven) {
  EXPECT_EQ(floatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3C00);      // tie -> even (down)
  EXPECT_EQ(floatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie -> even (up)
  EXPECT_EQ(floatToHalf(65519.0f), 0x7BFF);
  EXPECT_EQ(floatToHalf(65520.0f), 0x7C00);  // rounds past max: infinity
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -25)), 0x0000);  // half the smallest subnormal: tie to 0
  EXPECT_EQ(floatToHalf(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(floatToBF16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);  // tie -> even
  EXPECT_EQ(floatToBF16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);
  EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBF16(std::nanf("")))));
  EXPECT_EQ(floatToFp8E4M3(1.0625f), 0x38);  // halfway between 1.0 and 1.125: even code 0x38
  EXPECT_EQ(floatToFp8E4M3(1.1875f), 0x3A);  // halfway between 1.125 (0x39) and 1.25 (0x3A)
  EXPECT_EQ(floatToFp8E4M3(1000.0f), 0x7E);  // saturates
  EXPECT_EQ(floatToFp8E4M3(-1000.0f), 0xFE);
  EXPECT_EQ(floatToFp8E4M3(std::ldexp(1.0f, -10)), 0x00);  // half the smallest subnormal: tie to 0
  EXPECT_TRUE(std::isnan(fp8E4M3ToFloat(floatToFp8E4M3(std::numeric_limits<float>::infinity()))));
}

TEST(DTypeTest, Fp8AndBF16EncodeDecodeExhaustively) {
  for (int b = 0; b < 256; ++b) {
    const float f = fp8E4M3ToFloat(static_cast<uint8_t>(b));
    if (std::isnan(f)) continue;
    EXPECT_EQ(floatToFp8E4M3(f), b) << b;
  }
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16ToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(floatToBF16(f), h) << h;
  }
}

TEST(DTypeTest, ConvertRowHandlesUnalignedSources) {
  // One spare leading byte makes the 2-byte elements odd-aligned.
  const uint8_t raw[] = {0xEE, 0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00};
  float out[3];
  ASSERT_TRUE(convertToFloat(DType::kF16, raw + 1, out, 3).isOk());
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], std::ldexp(1.0f, -24));
  const uint8_t fp8[] = {0x38, 0x7E, 0x01};
  ASSERT_TRUE(convertToFloat(DType::kF8_E4M3, fp8, out, 3).isOk());
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], 448.0f);
  EXPECT_EQ(out[2], std::ldexp(1.0f, -9));
  const uint8_t bf[] = {0x80, 0x3F, 0x00, 0xC0};
  ASSERT_TRUE(convertToFloat(DType::kBF16, bf, out, 2).isOk());
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  Status s = convertToFloat(DType::kI32, bf, out, 1);
  EXPECT_EQ(s.code(), DS_UNSUPPORTED);
  EXPECT_NE(s.message().find("I32"), std::string::npos);
}

}  // namespace
}  // namespace ds
