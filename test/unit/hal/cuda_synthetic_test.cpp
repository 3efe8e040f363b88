// Synthetic weights on the CUDA device without a GPU: the upload layout leaves synthetic tensors
// uncopied, and the ds_synthetic_fill calls planned over it, executed here with the kernel's
// element function, give exactly the host fill's tensors (docs/cuda.md "Synthetic weights").
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "artifact/synthetic_element.h"
#include "hal/cuda/cuda_synthetic.h"
#include "hal/cuda/cuda_upload.h"

namespace ds::hal::cuda {
namespace {

const ds_cuda_device_limits kH100 = {132, 48 << 10};

artifact::SyntheticSpec spec(fb::DType dtype, float mean, float std, uint64_t stream) {
  artifact::SyntheticSpec s;
  s.dtype = dtype;
  s.mean = mean;
  s.std = std;
  s.stream = stream;
  return s;
}

// What one call writes, computed as the kernel does (one thread per element / I4 byte).
void runOnHost(const SyntheticFillCall& c, uint8_t* base) {
  namespace s = synth;
  const ds_cuda_synthetic_fill_params& p = c.params;
  const int unit = ds_cuda_synthetic_unit_bytes(p.dtype);
  uint8_t* dst = base + c.offset;
  for (uint64_t i = 0; i < p.count; ++i) {
    const float v = s::value(p.key, p.first + i, p.mean, p.std);
    uint8_t* d = dst + i * unit;
    switch (p.dtype) {
      case DS_CUDA_SYNTH_F32: std::memcpy(d, &v, 4); break;
      case DS_CUDA_SYNTH_F16: { const uint16_t h = s::toF16(v); std::memcpy(d, &h, 2); break; }
      case DS_CUDA_SYNTH_BF16: { const uint16_t h = s::toBF16(v); std::memcpy(d, &h, 2); break; }
      case DS_CUDA_SYNTH_F8_E4M3: *d = s::toF8E4M3(s::clampTo(v, -448.0f, 448.0f)); break;
      case DS_CUDA_SYNTH_I8: *d = s::toI8(v); break;
      case DS_CUDA_SYNTH_I32: { const int32_t x = s::toI32(v); std::memcpy(d, &x, 4); break; }
      case DS_CUDA_SYNTH_I4: *d = s::i4Byte(p.key, p.mean, p.std, static_cast<uint64_t>(p.cols), p.first + i); break;
      default: FAIL() << p.dtype;
    }
  }
}

TEST(CudaSynthetic, PlannedCallsGiveTheHostFillForEveryDtype) {
  // A stored tensor between synthetic ones: it keeps its bytes, the others are filled.
  std::vector<SyntheticFillTensor> tensors;
  const struct { fb::DType d; std::vector<int64_t> shape; uint64_t nbytes; float mean, std; } specs[] = {
      {fb::DType_BF16, {33, 70}, 33 * 70 * 2, 0.0f, 0.02f},
      {fb::DType_F32, {1000}, 4000, 1.0f, 0.0f},
      {fb::DType_F16, {517}, 517 * 2, 0.0f, 0.01f},
      {fb::DType_F8_E4M3, {64, 65}, 64 * 65, 0.0f, 300.0f},
      {fb::DType_I8, {999}, 999, 0.0f, 60.0f},
      {fb::DType_I32, {77}, 77 * 4, -3.0f, 1e9f},
      {fb::DType_I4, {9, 13}, 9 * 7, 7.5f, 4.0f}};
  std::vector<uint64_t> sizes;
  for (const auto& s : specs) sizes.push_back(s.nbytes);
  sizes.insert(sizes.begin() + 3, 300);  // the stored tensor
  std::vector<bool> copied(sizes.size(), false);
  copied[3] = true;
  auto layout = planWeightUpload(sizes, 1024, 2, 256, copied);
  ASSERT_TRUE(layout.isOk()) << layout.status().message();
  for (size_t k = 0, i = 0; k < sizes.size(); ++k) {
    if (copied[k]) continue;
    SyntheticFillTensor t;
    t.tensor = static_cast<uint32_t>(k);
    t.name = "w" + std::to_string(k);
    t.shape = specs[i].shape;
    t.nbytes = specs[i].nbytes;
    t.spec = spec(specs[i].d, specs[i].mean, specs[i].std, 100 + k);
    t.offset = layout->offsets[k];
    tensors.push_back(t);
    ++i;
  }
  // Small calls so tensors span several of them.
  auto plan = planSyntheticFill(tensors, 42, kH100, 600);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  uint64_t total = 0;
  for (const auto& t : tensors) total += t.nbytes;
  EXPECT_EQ(plan->total_bytes, total);
  std::vector<uint8_t> device(layout->total_bytes, 0xEE);
  uint64_t written = 0;
  for (const SyntheticFillCall& c : plan->calls) {
    EXPECT_LE(c.bytes, 600u);
    EXPECT_EQ(c.params.dst, 0u);  // set at launch
    EXPECT_STREQ(c.launch.symbol, "ds_synthetic_fill");
    EXPECT_EQ(c.launch.block[0], 256u);
    EXPECT_GE(c.launch.grid[0], 1u);
    EXPECT_LE(c.launch.grid[0], 8u * 132);
    runOnHost(c, device.data());
    written += c.bytes;
  }
  EXPECT_EQ(written, total);
  for (const SyntheticFillTensor& t : tensors) {
    std::vector<uint8_t> host(t.nbytes);
    artifact::fillSyntheticTensor(t.spec, 42, t.shape, host.data(), host.size(), 1);
    EXPECT_EQ(std::memcmp(device.data() + t.offset, host.data(), t.nbytes), 0) << t.name;
  }
  // The stored tensor's range is not the fill's.
  for (uint64_t b = 0; b < 300; ++b) ASSERT_EQ(device[layout->offsets[3] + b], 0xEE);
}

TEST(CudaSynthetic, UploadCopiesOnlyStoredTensors) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 30; ++trial) {
    std::vector<uint64_t> sizes(1 + rng() % 10);
    std::vector<bool> copied(sizes.size());
    for (size_t i = 0; i < sizes.size(); ++i) {
      sizes[i] = rng() % 3000;
      copied[i] = rng() % 2;
    }
    auto p = planWeightUpload(sizes, 256 * (1 + rng() % 6), 2, 256, copied);
    ASSERT_TRUE(p.isOk());
    std::vector<uint8_t> device(p->total_bytes, 0xEE);
    for (size_t k = 0; k < p->chunks.size(); ++k) {
      const UploadChunk& c = p->chunks[k];
      EXPECT_EQ(c.slot, static_cast<int>(k % 2));
      ASSERT_FALSE(c.pieces.empty());
      EXPECT_EQ(c.pieces.front().staging_offset, 0u);  // trimmed to its pieces
      EXPECT_LE(c.bytes, p->staging_bytes);
      EXPECT_EQ(c.device_offset % 256, 0u);
      for (const UploadPiece& q : c.pieces) {
        ASSERT_TRUE(copied[q.tensor]);
        for (uint64_t b = 0; b < q.bytes; ++b)
          device[c.device_offset + q.staging_offset + b] = static_cast<uint8_t>(q.tensor + q.src_offset + b);
      }
      EXPECT_EQ(c.pieces.back().staging_offset + c.pieces.back().bytes, c.bytes);
    }
    for (size_t i = 0; i < sizes.size(); ++i)
      for (uint64_t b = 0; b < sizes[i]; ++b) {
        const uint8_t got = device[p->offsets[i] + b];
        if (copied[i]) {
          ASSERT_EQ(got, static_cast<uint8_t>(i + b)) << "tensor " << i << " byte " << b;
        } else {
          ASSERT_EQ(got, 0xEE) << "synthetic tensor " << i << " was copied over";
        }
      }
  }
  // All synthetic: nothing to copy.
  auto none = planWeightUpload({1000, 5000}, 1024, 2, 256, {false, false});
  ASSERT_TRUE(none.isOk());
  EXPECT_TRUE(none->chunks.empty());
  EXPECT_EQ(none->offsets, (std::vector<uint64_t>{0, 1024}));
}

TEST(CudaSynthetic, Refusals) {
  SyntheticFillTensor t;
  t.name = "odd";
  t.shape = {10};
  t.nbytes = 7;  // not whole f32 elements
  t.spec = spec(fb::DType_F32, 0, 1, 0);
  auto bad = planSyntheticFill({t}, 1, kH100);
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().code(), DS_DATA_LOSS);
  EXPECT_NE(bad.status().message().find("'odd'"), std::string::npos) << bad.status().message();
  t.nbytes = 40;
  t.spec.dtype = static_cast<fb::DType>(42);
  auto dtype = planSyntheticFill({t}, 1, kH100);
  ASSERT_FALSE(dtype.isOk());
  EXPECT_EQ(dtype.status().code(), DS_UNSUPPORTED);
  t.spec = spec(fb::DType_I4, 0, 1, 0);
  t.shape = {4, 5};
  t.nbytes = 11;  // rows of 3 bytes
  EXPECT_EQ(planSyntheticFill({t}, 1, kH100).status().code(), DS_DATA_LOSS);
  t.spec = spec(fb::DType_F32, 0, -1.0f, 0);  // negative std: the kernel plan refuses it
  t.shape = {10};
  t.nbytes = 40;
  EXPECT_EQ(planSyntheticFill({t}, 1, kH100).status().code(), DS_INVALID_ARGUMENT);
  // An empty tensor: no call.
  t.spec = spec(fb::DType_BF16, 0, 1, 0);
  t.nbytes = 0;
  auto empty = planSyntheticFill({t}, 1, kH100);
  ASSERT_TRUE(empty.isOk());
  EXPECT_TRUE(empty->calls.empty());
}

}  // namespace
}  // namespace ds::hal::cuda
