// Packed weights (WeightView::packed): every kernel reads them with the results of the row-major
// layout, bit for bit, on every path (AVX-512 pair tiles, AVX2 tiles with a stride, portable).
#include <gtest/gtest.h>

#include <cstring>

#include "cpu/cpu_kernels.h"
#include "reference.h"

namespace ds::cpu::test {
namespace {

struct PackCase {
  const char* name;
  WeightType type;
  int64_t group;  // I4 groups; FP8: block size (0 = channel scales)
  bool asym;
};

void PrintTo(const PackCase& c, std::ostream* os) { *os << c.name; }

const PackCase kPackCases[] = {
    {"bf16", WeightType::BF16, 0, false},       {"f16", WeightType::F16, 0, false},
    {"fp8_block", WeightType::F8E4M3, 16, false}, {"fp8_channel", WeightType::F8E4M3, 0, false},
    {"i8", WeightType::I8, 0, false},           {"i4_sym_g32", WeightType::I4, 32, false},
    {"i4_sym_g128", WeightType::I4, 128, false}, {"i4_asym_g64", WeightType::I4, 64, true},
    {"i4_sym_g20", WeightType::I4, 20, false},  // not a multiple of 8: the panel path reads it
    {"i6_g64", WeightType::I6, 64, false},      // 6-byte chunks of 8 columns
};

OwnedWeight make(Rng& rng, const PackCase& c, int64_t rows, int64_t cols) {
  if (c.type == WeightType::BF16 || c.type == WeightType::F16 ||
      (c.type == WeightType::F8E4M3 && c.group > 0))
    return randomWeight(rng, c.type, rows, cols, 0.5f, c.group, c.group);
  return randomQuantWeight(rng, c.type, rows, cols, 0.5f, c.group, c.asym);
}

struct Packed {
  std::vector<uint8_t> bytes;
  WeightView view;
};

Packed pack(const WeightView& w) {
  Packed p;
  p.bytes.resize(w.rows * weightRowBytes(w.type, w.cols));
  p.view = packWeight(w, p.bytes.data());
  return p;
}

class PackedWeights : public ::testing::TestWithParam<PackCase> {};

TEST_P(PackedWeights, LayoutInterleavesChunksOfFourRows) {
  Rng rng(7);
  const PackCase& c = GetParam();
  const OwnedWeight w = make(rng, c, 8, 40);
  ASSERT_TRUE(canPackWeight(w.view));
  const Packed p = pack(w.view);
  EXPECT_EQ(p.view.packed, kPackRows);
  const int64_t rb = weightRowBytes(c.type, 40), cb = weightRowBytes(c.type, kPackChunk);
  // Chunk 2 of row 5 (group 1, row 1 in it) sits at group start + (2 * 4 + 1) chunks.
  EXPECT_EQ(0, std::memcmp(p.bytes.data() + 4 * rb + (2 * 4 + 1) * cb,
                           w.bytes.data() + 5 * rb + 2 * cb, cb));
  EXPECT_NE(p.bytes, w.bytes);
}

TEST_P(PackedWeights, DequantRowAndEmbedEqualRowMajor) {
  Rng rng(11);
  const OwnedWeight w = make(rng, GetParam(), 12, 136);
  const Packed p = pack(w.view);
  std::vector<float> a(136), b(136);
  for (int64_t r = 0; r < 12; ++r) {
    dequantRow(w.view, r, a.data());
    dequantRow(p.view, r, b.data());
    ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4)) << "row " << r;
  }
  const int32_t ids[3] = {11, 0, 6};
  std::vector<float> ea(3 * 136), eb(3 * 136);
  embed(ids, 3, w.view, ea.data());
  embed(ids, 3, p.view, eb.data());
  EXPECT_EQ(0, std::memcmp(ea.data(), eb.data(), ea.size() * 4));
}

// The decode tiles (T <= 2), the panels (T > 2) and every T in between give the row-major
// results bit for bit: batch invariance holds across the two layouts too.
TEST_P(PackedWeights, LinearEqualsRowMajorBitwiseForEveryT) {
  Rng rng(13);
  const int64_t N = 44, K = 392;  // 11 groups; K covers several int4 groups and FP8 blocks
  const OwnedWeight w = make(rng, GetParam(), N, K);
  const Packed p = pack(w.view);
  for (int64_t T : {1, 2, 3, 5}) {
    std::vector<float> x(T * K);
    for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
    std::vector<float> a(T * N), b(T * N), one(N);
    linear(x.data(), T, w.view, nullptr, a.data());
    linear(x.data(), T, p.view, nullptr, b.data());
    ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4)) << "T = " << T;
    for (int64_t t = 0; t < T; ++t) {
      linear(x.data() + t * K, 1, p.view, nullptr, one.data());
      ASSERT_EQ(0, std::memcmp(one.data(), b.data() + t * N, N * 4)) << "T = " << T << " row " << t;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, PackedWeights, ::testing::ValuesIn(kPackCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(PackedWeightsEligibility, OnlyWholeGroupsAndChunksOfNonF32Weights) {
  WeightView v;
  v.type = WeightType::BF16;
  v.rows = 8;
  v.cols = 16;
  EXPECT_TRUE(canPackWeight(v));
  v.rows = 6;
  EXPECT_FALSE(canPackWeight(v));  // a partial group
  v.rows = 8;
  v.cols = 20;
  EXPECT_FALSE(canPackWeight(v));  // a partial chunk
  v.cols = 16;
  v.type = WeightType::F32;
  EXPECT_FALSE(canPackWeight(v));  // f32 rows are read in place
  v.type = WeightType::I4;
  v.packed = kPackRows;
  EXPECT_FALSE(canPackWeight(v));  // already packed
}

}  // namespace
}  // namespace ds::cpu::test
