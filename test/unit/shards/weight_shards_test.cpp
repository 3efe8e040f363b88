// Tensor-parallel shards: each part's elements decode (with the part's own scales) to exactly
// the whole tensor's values at the part's offset, for row and column cuts at awkward offsets.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "compiler/artifact/WeightShards.h"
#include "cpu/cpu_kernels.h"

namespace mlir::ds {
namespace {

namespace fb = ::ds::fb;
namespace cpu = ::ds::cpu;

std::vector<float> randomWeights(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.02f);
  std::vector<float> w(n);
  for (float& x : w) x = d(rng);
  for (int64_t i = 0; i < n; i += 97) w[i] *= 8.0f;  // outliers
  return w;
}

TEST(WeightShards, SlicePartCutsTheMiddleDimension) {
  std::vector<int64_t> shape{2, 6, 4};
  std::vector<float> full(48);
  for (int i = 0; i < 48; ++i) full[i] = static_cast<float>(i);
  std::vector<uint8_t> part = slicePart(reinterpret_cast<const uint8_t*>(full.data()), shape, 4, 1, 3, 1);
  ASSERT_EQ(part.size(), 2u * 2 * 4 * 4);
  const float* p = reinterpret_cast<const float*>(part.data());
  for (int o = 0; o < 2; ++o)
    for (int r = 0; r < 2; ++r)
      for (int c = 0; c < 4; ++c) EXPECT_EQ(p[(o * 2 + r) * 4 + c], full[(o * 6 + 2 + r) * 4 + c]);
}

// FP8 block scales of a 288 x 192 weight (blocks 128 x 128) cut 4 ways along rows (72-row parts,
// offsets inside blocks) and 3 ways along columns: every element keeps its original scale.
TEST(WeightShards, BlockScalesRegridInsideBlocks) {
  for (int64_t dim : {0, 1}) {
    int64_t pieces = dim == 0 ? 4 : 3;
    ShardedWeight w;
    w.fullShape = {288, 192};
    w.dim = dim;
    w.pieces = pieces;
    w.block = {128, 128};
    std::vector<float> scales{1, 2, 3, 4, 5, 6};  // 3 x 2 blocks
    w.blockScale = scales.data();
    for (int64_t part = 0; part < pieces; ++part) {
      std::vector<int64_t> block, shape;
      std::vector<float> s = partBlockScales(w, part, &block, &shape);
      int64_t rows = dim == 0 ? 288 / pieces : 288, cols = dim == 1 ? 192 / pieces : 192;
      int64_t r0 = dim == 0 ? part * rows : 0, c0 = dim == 1 ? part * cols : 0;
      ASSERT_EQ(s.size(), static_cast<size_t>(shape[0] * shape[1]));
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          float got = s[(i / block[0]) * shape[1] + j / block[1]];
          float want = scales[((r0 + i) / 128) * 2 + (c0 + j) / 128];
          ASSERT_EQ(got, want) << "dim " << dim << " part " << part << " at " << i << "," << j;
        }
    }
  }
}

cpu::WeightView view(const QuantizedWeight& q, const QuantEncoding& e, int64_t rows, int64_t cols,
                     int64_t groupSize) {
  cpu::WeightView v;
  v.data = q.codes.data();
  v.rows = rows;
  v.cols = cols;
  if (e.kind == fb::QuantKind_Int4Group || e.kind == fb::QuantKind_Int6Group) {
    v.type = e.kind == fb::QuantKind_Int4Group ? cpu::WeightType::I4 : cpu::WeightType::I6;
    v.group_scale = q.scales.data();
    v.group_zero = q.zeros.empty() ? nullptr : q.zeros.data();
    v.group_size = groupSize;
  } else {
    v.type = e.kind == fb::QuantKind_Int8PerChannel ? cpu::WeightType::I8 : cpu::WeightType::F8E4M3;
    v.channel_scale = q.scales.data();
  }
  return v;
}

struct SliceCase {
  const char* scheme;
  int64_t rows, cols, pieces;
  bool cutColumns;
};

class SliceQuantized : public ::testing::TestWithParam<SliceCase> {};

TEST_P(SliceQuantized, PartsDecodeToTheWholeTensorsValues) {
  const SliceCase& c = GetParam();
  std::optional<QuantEncoding> e = parseQuantScheme(c.scheme);
  ASSERT_TRUE(e.has_value());
  std::vector<float> w = randomWeights(c.rows * c.cols, 7);
  QuantizedWeight whole;
  ASSERT_TRUE(quantizeWeight(*e, w.data(), 1, c.rows, c.cols, &whole));
  cpu::WeightView wv = view(whole, *e, c.rows, c.cols, e->group_size);
  int64_t lr = c.cutColumns ? c.rows : c.rows / c.pieces;
  int64_t lc = c.cutColumns ? c.cols / c.pieces : c.cols;
  std::vector<float> fullRow(c.cols), partRow(lc);
  for (int64_t part = 0; part < c.pieces; ++part) {
    QuantizedPart p = sliceQuantized(whole, *e, 1, c.rows, c.cols, c.cutColumns, c.pieces, part);
    cpu::WeightView pv = view(p.q, *e, lr, lc, p.group_size);
    ASSERT_EQ(p.q.codes.size(), static_cast<size_t>(lr * cpu::weightRowBytes(pv.type, lc)));
    for (int64_t r = 0; r < lr; ++r) {
      int64_t fr = c.cutColumns ? r : part * lr + r, off = c.cutColumns ? part * lc : 0;
      cpu::dequantRow(wv, fr, fullRow.data());
      cpu::dequantRow(pv, r, partRow.data());
      for (int64_t j = 0; j < lc; ++j)
        ASSERT_EQ(partRow[j], fullRow[off + j]) << c.scheme << " part " << part << " row " << r << " col " << j;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Schemes, SliceQuantized,
    ::testing::Values(SliceCase{"int8", 12, 172, 4, true}, SliceCase{"fp8", 12, 172, 4, true},
                      SliceCase{"int8", 12, 40, 4, false},
                      // 43-column parts: odd offsets (nibbles move), cuts inside 128-groups.
                      SliceCase{"int4_g128", 6, 172, 4, true},
                      SliceCase{"int4_g128_asym", 6, 172, 4, true},
                      // Aligned cuts keep the group size; 3 parts of 192 cut at 64 and 128.
                      SliceCase{"int4_g64_asym", 5, 192, 3, true},
                      SliceCase{"int4_g64", 16, 128, 4, false},
                      // int6: 43-column parts move codes across 3-byte quads; rows (the
                      // vocab-parallel output layer).
                      SliceCase{"int6_g64", 6, 172, 4, true},
                      SliceCase{"int6_g128", 16, 128, 4, false}),
    [](const auto& info) {
      return std::string(info.param.scheme) + (info.param.cutColumns ? "_columns" : "_rows");
    });

// Expert parallelism: stacked experts cut along dimension 0. Each part holds whole experts whose
// codes, scales and zero points decode to exactly the whole tensor's values, and FP8 block scales
// keep their grid.
TEST(WeightShards, ExpertCutsKeepWholeExperts) {
  const int64_t experts = 6, rows = 5, cols = 192, pieces = 3, local = experts / pieces;
  std::vector<float> w = randomWeights(experts * rows * cols, 11);
  for (const char* scheme : {"int8", "fp8", "int4_g64", "int4_g128_asym", "int6_g64"}) {
    std::optional<QuantEncoding> e = parseQuantScheme(scheme);
    ASSERT_TRUE(e.has_value());
    QuantizedWeight whole;
    ASSERT_TRUE(quantizeWeight(*e, w.data(), experts, rows, cols, &whole));
    const int64_t rowBytes = cpu::weightRowBytes(view(whole, *e, rows, cols, e->group_size).type, cols);
    std::vector<float> fullRow(cols), partRow(cols);
    for (int64_t part = 0; part < pieces; ++part) {
      QuantizedPart p = sliceQuantizedExperts(whole, *e, experts, rows, cols, pieces, part);
      ASSERT_EQ(p.q.codes.size(), static_cast<size_t>(local * rows * rowBytes)) << scheme;
      EXPECT_EQ(p.group_size, e->kind == fb::QuantKind_Int8PerChannel || e->kind == fb::QuantKind_Fp8PerChannel
                                  ? 0 : e->group_size);
      // All local experts' rows as one [local * rows, cols] matrix, against the whole one.
      cpu::WeightView wv = view(whole, *e, experts * rows, cols, e->group_size);
      cpu::WeightView pv = view(p.q, *e, local * rows, cols, p.group_size);
      for (int64_t r = 0; r < local * rows; ++r) {
        cpu::dequantRow(wv, part * local * rows + r, fullRow.data());
        cpu::dequantRow(pv, r, partRow.data());
        ASSERT_EQ(std::memcmp(partRow.data(), fullRow.data(), cols * sizeof(float)), 0)
            << scheme << " part " << part << " row " << r;
      }
    }
  }
  ShardedWeight sw;
  sw.fullShape = {experts, 300, cols};
  sw.experts = experts;
  sw.dim = 0;
  sw.pieces = pieces;
  sw.block = {128, 128};
  std::vector<float> scales(experts * 3 * 2);
  for (size_t i = 0; i < scales.size(); ++i) scales[i] = static_cast<float>(i + 1);
  sw.blockScale = scales.data();
  for (int64_t part = 0; part < pieces; ++part) {
    std::vector<int64_t> block, shape;
    std::vector<float> s = partBlockScales(sw, part, &block, &shape);
    EXPECT_EQ(block, (std::vector<int64_t>{128, 128}));
    EXPECT_EQ(shape, (std::vector<int64_t>{local, 3, 2}));
    EXPECT_EQ(s, std::vector<float>(scales.begin() + part * local * 6,
                                    scales.begin() + (part + 1) * local * 6));
  }
}

}  // namespace
}  // namespace mlir::ds
