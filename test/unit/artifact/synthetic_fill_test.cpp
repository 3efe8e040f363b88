// The synthetic-weight fill (artifact/synthetic.h): spread, finiteness, determinism, streams,
// dtypes, and that every page of the result is really written.
#include "artifact/synthetic.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <cmath>
#include <cstring>
#include <vector>

#include "format/dtype.h"

namespace ds::artifact {
namespace {

SyntheticSpec spec(fb::DType dtype, float mean, float std, uint64_t stream) {
  SyntheticSpec s;
  s.dtype = dtype;
  s.mean = mean;
  s.std = std;
  s.stream = stream;
  return s;
}

std::vector<float> fillF32(uint64_t seed, uint64_t stream, uint64_t n, unsigned threads = 0) {
  std::vector<float> v(n, 0.0f);
  fillSyntheticTensor(spec(fb::DType_F32, 0.0f, 0.02f, stream), seed, {static_cast<int64_t>(n)},
                      reinterpret_cast<uint8_t*>(v.data()), n * 4, threads);
  return v;
}

TEST(SyntheticFillTest, MatrixValuesHaveMeanZeroStd002AndAreFinite) {
  const std::vector<float> v = fillF32(7, 3, 1 << 22);
  double sum = 0, sq = 0, maxAbs = 0;
  for (float x : v) {
    ASSERT_TRUE(std::isfinite(x));
    sum += x;
    sq += double(x) * x;
    maxAbs = std::max(maxAbs, double(std::fabs(x)));
  }
  const double mean = sum / v.size(), sd = std::sqrt(sq / v.size() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 1e-4);      // the mean's standard error is 1e-5
  EXPECT_NEAR(sd, 0.02, 0.02 * 0.01);
  EXPECT_LE(maxAbs, 0.02 * 3.4642);  // Irwin-Hall(4) is bounded by sqrt(12)
  EXPECT_GE(maxAbs, 0.02 * 3.0);     // ... but reaches the tails a normal reaches
}

TEST(SyntheticFillTest, DeterministicForAnyThreadCount) {
  const std::vector<float> one = fillF32(42, 5, 1 << 21, 1);
  const std::vector<float> many = fillF32(42, 5, 1 << 21, 7);
  EXPECT_EQ(0, std::memcmp(one.data(), many.data(), one.size() * 4));
  // Element i alone gives the same value as the bulk fill.
  for (uint64_t i : {0ull, 1ull, 12345ull, (1ull << 21) - 1})
    EXPECT_EQ(one[i], 0.02f * syntheticNormal(42, 5, i)) << i;
}

TEST(SyntheticFillTest, StreamsAndSeedsGiveDifferentValues) {
  const std::vector<float> a = fillF32(1, 0, 1 << 16), b = fillF32(1, 1, 1 << 16),
                           c = fillF32(2, 0, 1 << 16);
  size_t sameAB = 0, sameAC = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sameAB += a[i] == b[i];
    sameAC += a[i] == c[i];
  }
  // Values take ~2^18 levels: a few coincidences, not correlation.
  EXPECT_LT(sameAB, a.size() / 100);
  EXPECT_LT(sameAC, a.size() / 100);
}

TEST(SyntheticFillTest, EveryPageIsWrittenAndResident) {
  // Fresh anonymous memory is the zero page until written: a fill that skipped pages (or left
  // them zero) would show here as an all-zero 4 KiB page or a page not resident.
  const size_t bytes = 32u << 20, page = 4096;
  void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* p = static_cast<uint8_t*>(mem);
  fillSyntheticTensor(spec(fb::DType_BF16, 0.0f, 0.02f, 9), 11, {int64_t(bytes / 2)}, p, bytes);
  std::vector<unsigned char> resident((bytes + ::getpagesize() - 1) / ::getpagesize());
  ASSERT_EQ(0, ::mincore(mem, bytes, resident.data()));
  size_t notResident = 0;
  for (unsigned char r : resident) notResident += !(r & 1);
  EXPECT_EQ(notResident, 0u);
  size_t zeroPages = 0;
  for (size_t off = 0; off < bytes; off += page) {
    bool zero = true;
    for (size_t i = 0; i < page && zero; ++i) zero = p[off + i] == 0;
    zeroPages += zero;
  }
  EXPECT_EQ(zeroPages, 0u);
  ::munmap(mem, bytes);
}

TEST(SyntheticFillTest, DtypesGetValidCodes) {
  const uint64_t n = 1 << 16;
  std::vector<uint8_t> buf(n * 4);
  // Norm weights: std 0 is the constant mean, exactly.
  fillSyntheticTensor(spec(fb::DType_BF16, 1.0f, 0.0f, 0), 3, {int64_t(n)}, buf.data(), n * 2);
  for (uint64_t i = 0; i < n; ++i) {
    uint16_t bits;
    std::memcpy(&bits, buf.data() + 2 * i, 2);
    ASSERT_EQ(bf16ToFloat(bits), 1.0f);
  }
  // FP8 codes: finite (never the NaN code), spread like N(0, 1) with a tail clamp at 448.
  fillSyntheticTensor(spec(fb::DType_F8_E4M3, 0.0f, 100.0f, 1), 3, {int64_t(n)}, buf.data(), n);
  for (uint64_t i = 0; i < n; ++i) {
    ASSERT_NE(buf[i] & 0x7f, 0x7f) << i;
    ASSERT_LE(std::fabs(fp8E4M3ToFloat(buf[i])), 448.0f);
  }
  // Int8 codes stay in [-127, 127] (never -128).
  fillSyntheticTensor(spec(fb::DType_I8, 0.0f, 100.0f, 2), 3, {int64_t(n)}, buf.data(), n);
  for (uint64_t i = 0; i < n; ++i) ASSERT_NE(static_cast<int8_t>(buf[i]), -128);
  // Int4: rows padded to a byte, the pad nibble zero.
  const int64_t rows = 64, cols = 33, rowBytes = (cols + 1) / 2;
  std::vector<uint8_t> q(rows * rowBytes, 0xEE);
  fillSyntheticTensor(spec(fb::DType_I4, 7.5f, 4.0f, 4), 3, {rows, cols}, q.data(), q.size());
  for (int64_t r = 0; r < rows; ++r) ASSERT_EQ(q[r * rowBytes + rowBytes - 1] >> 4, 0) << r;
}

TEST(SyntheticFillTest, ThroughputIsReported) {
  // Not asserted (CI machines vary): the figure docs/artifact.md quotes.
  const uint64_t bytes = 256ull << 20;
  std::vector<uint8_t> buf(bytes);
  auto t0 = std::chrono::steady_clock::now();
  fillSyntheticTensor(spec(fb::DType_BF16, 0.0f, 0.02f, 0), 1, {int64_t(bytes / 2)}, buf.data(),
                      bytes);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("synthetic fill: %.1f MiB bf16 in %.3f s = %.2f GB/s on %u threads\n",
              bytes / 1048576.0, s, bytes / 1e9 / s, std::thread::hardware_concurrency());
}

}  // namespace
}  // namespace ds::artifact
