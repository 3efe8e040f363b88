// GPU weight storage (kernels/cuda/include/ds_cuda_layout.h): int4 rows repacked for the GPU's
// magic-number decode give back, through that decode's exact arithmetic, bit for bit the values
// the host kernels compute from the artifact's bytes; FP8 E4M3 (kept as stored) decodes exactly
// through f16, as the GPU kernels' cvt does. Host only.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "cpu/cpu_kernels.h"
#include "ds_cuda_kernels.h"

namespace {

namespace cpu = ds::cpu;

float halfBitsToFloat(uint16_t bits) {
  _Float16 h;
  std::memcpy(&h, &bits, 2);
  return static_cast<float>(h);
}

// What ds_gemv_wi4 computes for element c of a GPU-stored row: the f16 pair of its word, the
// exact f16 subtraction of the bias, then the host's f32 scale arithmetic.
float gpuI4Element(const uint8_t* gpuRow, int64_t c, float s, const float* z) {
  uint32_t word;
  std::memcpy(&word, gpuRow + (c / 8) * 4, 4);
  const int i = static_cast<int>(c % 8), pair = i / 2;
  const uint32_t bits = DS_CUDA_I4_HALF2_BITS(word, static_cast<uint32_t>(pair));
  const float biased = halfBitsToFloat(static_cast<uint16_t>(i % 2 ? bits >> 16 : bits & 0xffff));
  // f16 subtraction of 1032 / 1024 from an integer in [1024, 1039]: exact in f16 and in f32.
  const _Float16 q16 = static_cast<_Float16>(biased) -
                       static_cast<_Float16>(z ? DS_CUDA_I4_ASYM_BIAS : DS_CUDA_I4_SYM_BIAS);
  const float q = static_cast<float>(q16);
  return z ? (q - *z) * s : q * s;
}

class I4Layout : public ::testing::TestWithParam<bool> {};  // symmetric?

TEST_P(I4Layout, RepackedRowsDecodeToTheHostsValues) {
  const bool symmetric = GetParam();
  const int64_t rows = 6, cols = 256, group = 64, G = cols / group;
  std::mt19937 rng(symmetric ? 3 : 4);
  std::vector<uint8_t> codes(rows * cols / 2);
  for (uint8_t& b : codes) b = static_cast<uint8_t>(rng());
  // Every nibble value in every slot of the first word of row 0 and its neighbours.
  for (int i = 0; i < 16; ++i) codes[i] = static_cast<uint8_t>(i | ((15 - i) << 4));
  std::uniform_real_distribution<float> scale(1e-4f, 0.05f), zero(0.0f, 15.0f);
  std::vector<float> scales(rows * G), zeros(rows * G);
  for (float& s : scales) s = scale(rng);
  for (float& z : zeros) z = zero(rng);
  cpu::WeightView v;
  v.data = codes.data();
  v.type = cpu::WeightType::I4;
  v.rows = rows;
  v.cols = cols;
  v.group_scale = scales.data();
  v.group_zero = symmetric ? nullptr : zeros.data();
  v.group_size = group;

  std::vector<uint8_t> gpu = codes;
  ds_cuda_i4_to_gpu(gpu.data(), gpu.size(), symmetric);
  EXPECT_NE(gpu, codes);
  std::vector<float> host(cols);
  for (int64_t r = 0; r < rows; ++r) {
    cpu::dequantRow(v, r, host.data());
    const uint8_t* row = gpu.data() + r * cols / 2;
    for (int64_t c = 0; c < cols; ++c) {
      const float s = scales[r * G + c / group];
      const float got = gpuI4Element(row, c, s, symmetric ? nullptr : &zeros[r * G + c / group]);
      uint32_t a, b;
      std::memcpy(&a, &got, 4);
      std::memcpy(&b, &host[c], 4);
      ASSERT_EQ(a, b) << "row " << r << " col " << c << ": " << got << " vs host " << host[c];
    }
  }
  std::vector<uint8_t> back = gpu;
  ds_cuda_i4_from_gpu(back.data(), back.size(), symmetric);
  EXPECT_EQ(back, codes);
}

INSTANTIATE_TEST_SUITE_P(Codes, I4Layout, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "symmetric" : "asymmetric"; });

// The permutation stays inside 32-bit words: repacking a tensor piece by piece (upload chunks)
// equals repacking it whole.
TEST(I4Layout, PiecewiseEqualsWhole) {
  std::vector<uint8_t> codes(4096);
  std::mt19937 rng(5);
  for (uint8_t& b : codes) b = static_cast<uint8_t>(rng());
  std::vector<uint8_t> whole = codes, pieces = codes;
  ds_cuda_i4_to_gpu(whole.data(), whole.size(), 1);
  for (size_t at = 0; at < pieces.size(); at += 256)
    ds_cuda_i4_to_gpu(pieces.data() + at, 256, 1);
  EXPECT_EQ(whole, pieces);
}

// DeepSeek's FP8 weights stay as stored: the GPU kernels convert E4M3 pairs to f16 (cvt), then
// f32, then multiply by the block scale. f16 holds every finite E4M3 value exactly, so that is
// the host's code * scale bit for bit.
TEST(Fp8Layout, EveryE4M3ValueIsExactInF16) {
  for (int code = 0; code < 256; ++code) {
    if ((code & 0x7f) == 0x7f) continue;  // NaN
    const uint8_t byte = static_cast<uint8_t>(code);
    float v;
    cpu::WeightView w;
    w.data = &byte;
    w.type = cpu::WeightType::F8E4M3;
    w.rows = w.cols = 1;
    cpu::dequantRow(w, 0, &v);
    const float through16 = static_cast<float>(static_cast<_Float16>(v));
    EXPECT_EQ(through16, v) << "code 0x" << std::hex << code;
    for (float scale : {1.0f, 0.0173f, 3.1e-5f}) {
      w.block_scale = &scale;
      w.block_rows = w.block_cols = 128;
      float scaled;
      cpu::dequantRow(w, 0, &scaled);
      EXPECT_EQ(through16 * scale, scaled) << "code 0x" << std::hex << code;
      w.block_scale = nullptr;
    }
  }
}

TEST(I4Layout, GemvPlan) {
  ds_cuda_gemv_i4_params p{};
  p.x = p.w = p.scale = p.y = 0x10000;
  p.M = 3;
  p.N = 4096;
  p.K = 4096;
  p.x_stride = 4096;
  p.y_stride = 4096;
  p.group_size = 128;
  p.act_dtype = DS_CUDA_BF16;
  ds_cuda_plan plan;
  ASSERT_EQ(ds_cuda_plan_gemv_i4(&p, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_gemv_wi4_abf16_m2");
  EXPECT_EQ(plan.launches[0].grid[0], 512u);
  EXPECT_EQ(plan.launches[0].grid[1], 2u);
  // Shapes the 16-byte kernel cannot walk take the word-by-word one.
  p.group_size = 48;
  ASSERT_EQ(ds_cuda_plan_gemv_i4(&p, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_gemv_any_wi4_abf16");
  EXPECT_EQ(plan.launches[0].grid[1], 3u);
  p.group_size = 128;
  p.K = p.x_stride = 4000;
  ASSERT_EQ(ds_cuda_plan_gemv_i4(&p, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_gemv_any_wi4_abf16");
  p.K = 4004;  // not whole 32-bit words of codes
  EXPECT_NE(ds_cuda_plan_gemv_i4(&p, &plan), nullptr);
  p.K = p.x_stride = 4096;
  p.scale = 0;
  EXPECT_NE(ds_cuda_plan_gemv_i4(&p, &plan), nullptr);
}

TEST(Fp8Layout, GemvPlan) {
  ds_cuda_gemv_fp8_params p{};
  p.x = p.w = p.scale = p.y = 0x10000;
  p.M = 7;
  p.N = 7168;
  p.K = 2048;
  p.x_stride = 2048;
  p.y_stride = 7168;
  p.block_rows = p.block_cols = 128;
  p.act_dtype = DS_CUDA_BF16;
  ds_cuda_plan plan;
  ASSERT_EQ(ds_cuda_plan_gemv_fp8(&p, &plan), nullptr);
  EXPECT_STREQ(plan.launches[0].symbol, "ds_gemv_wfp8_abf16_m4");
  EXPECT_EQ(plan.launches[0].grid[0], 896u);
  EXPECT_EQ(plan.launches[0].grid[1], 2u);
  p.block_cols = 8;  // a block inside one 16-code load
  EXPECT_NE(ds_cuda_plan_gemv_fp8(&p, &plan), nullptr);
  p.block_cols = 128;
  p.K = 2040;
  EXPECT_NE(ds_cuda_plan_gemv_fp8(&p, &plan), nullptr);
  p.K = 2048;
  p.scale = 0;
  EXPECT_NE(ds_cuda_plan_gemv_fp8(&p, &plan), nullptr);
}

}  // namespace
