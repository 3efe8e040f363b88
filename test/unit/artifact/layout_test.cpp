// 64-bit layout arithmetic (offsets past 4 GiB, overflow near 2^64) and derived metadata facts.
#include <gtest/gtest.h>

#include "artifact/artifact_info.h"
#include "artifact/layout.h"

namespace ds::artifact {
namespace {

constexpr uint64_t kGiB = 1ull << 30;

TEST(Layout, AlignUp) {
  uint64_t out = 0;
  ASSERT_TRUE(alignUp(0, 64, &out));
  EXPECT_EQ(out, 0u);
  ASSERT_TRUE(alignUp(65, 64, &out));
  EXPECT_EQ(out, 128u);
  ASSERT_TRUE(alignUp(5 * kGiB + 1, 64, &out));
  EXPECT_EQ(out, 5 * kGiB + 64);
  ASSERT_TRUE(alignUp(UINT64_MAX - 63, 64, &out));
  EXPECT_EQ(out, UINT64_MAX - 63);
  EXPECT_FALSE(alignUp(UINT64_MAX - 62, 64, &out));
}

// The writer's running layout for segments whose sizes and offsets pass 32 bits.
TEST(Layout, SegmentsBeyondFourGiB) {
  uint64_t end = sizeof(FileHeader);
  const uint64_t sizes[] = {3 * kGiB + 7, 2 * kGiB + 1, 1, 5 * kGiB};
  std::vector<uint64_t> offsets;
  for (uint64_t size : sizes) {
    StatusOr<SegmentPlacement> p = placeSegment(end, size);
    ASSERT_TRUE(p.isOk()) << p.status().toString();
    EXPECT_EQ(p->offset % kAlignment, 0u);
    EXPECT_GE(p->offset, end);
    EXPECT_LT(p->offset - end, kAlignment);
    EXPECT_EQ(p->end, p->offset + size);
    offsets.push_back(p->offset);
    end = p->end;
  }
  EXPECT_EQ(offsets[0], 64u);
  EXPECT_EQ(offsets[1], 64 + 3 * kGiB + 64);  // 3 GiB + 7 rounded up to 64
  EXPECT_EQ(offsets[2], offsets[1] + 2 * kGiB + 64);
  EXPECT_EQ(offsets[3], offsets[2] + 64);
  EXPECT_GT(offsets[3], 4 * kGiB);
  EXPECT_EQ(end, offsets[3] + 5 * kGiB);
}

TEST(Layout, PlacementOverflowIsAnError) {
  EXPECT_FALSE(placeSegment(UINT64_MAX - 10, 1).isOk());
  EXPECT_FALSE(placeSegment(64, UINT64_MAX).isOk());
  StatusOr<SegmentPlacement> p = placeSegment(UINT64_MAX - 127, 64);
  ASSERT_TRUE(p.isOk());
  EXPECT_EQ(p->end, UINT64_MAX - 63);
  StatusOr<SegmentPlacement> last = placeSegment(UINT64_MAX - 127, 127);  // ends at 2^64 - 1
  ASSERT_TRUE(last.isOk());
  EXPECT_EQ(last->end, UINT64_MAX);
  StatusOr<SegmentPlacement> bad = placeSegment(UINT64_MAX - 127, 128);
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().code(), DS_INVALID_ARGUMENT);
  EXPECT_NE(bad.status().message().find("overflows"), std::string::npos);
}

TEST(Layout, RangeInside) {
  EXPECT_TRUE(rangeInside(64, 0, 64, 64));
  EXPECT_TRUE(rangeInside(5 * kGiB, kGiB, 64, 6 * kGiB));
  EXPECT_FALSE(rangeInside(5 * kGiB, kGiB + 1, 64, 6 * kGiB));
  EXPECT_FALSE(rangeInside(0, 1, 64, 128));                    // before the region
  EXPECT_FALSE(rangeInside(7 * kGiB, 0, 64, 6 * kGiB));        // starts past the end
  EXPECT_FALSE(rangeInside(128, UINT64_MAX - 64, 64, 6 * kGiB));  // offset + size wraps
  // 32-bit truncation of 4 GiB + 64 would be 64: must not be accepted in a 1 KiB file.
  EXPECT_FALSE(rangeInside(4 * kGiB + 64, 16, 64, 1024));
}

// Pins the algorithm (XXH3_64bits, seed 0) to the xxHash reference value: changing it silently
// would make every existing artifact "corrupt".
TEST(Layout, ChecksumIsXxh3With64BitOutput) {
  EXPECT_EQ(checksum("", 0), 0x2D06800538D394C2ull);
  const char text[] = "ds artifact";
  StreamingChecksum pieces;
  pieces.update(text, 3);
  pieces.update(text + 3, sizeof(text) - 1 - 3);
  EXPECT_EQ(pieces.digest(), checksum(text, sizeof(text) - 1));
  EXPECT_NE(checksum(text, sizeof(text) - 1), checksum(text, sizeof(text) - 2));
}

TEST(Layout, HeaderChecksumCoversEveryFieldButItself) {
  FileHeader h{};
  const uint64_t base = headerChecksum(h);
  h.header_xxh64 = 12345;
  EXPECT_EQ(headerChecksum(h), base);
  h.file_size = 1;
  EXPECT_NE(headerChecksum(h), base);
  h.file_size = 0;
  h.metadata_offset = 4 * kGiB;  // a bit above 32 bits counts too
  EXPECT_NE(headerChecksum(h), base);
}

TEST(ArtifactInfo, DtypeSizes) {
  EXPECT_EQ(dtypeSize(fb::DType_F32), 4u);
  EXPECT_EQ(dtypeSize(fb::DType_BF16), 2u);
  EXPECT_EQ(dtypeSize(fb::DType_F16), 2u);
  EXPECT_EQ(dtypeSize(fb::DType_F8_E4M3), 1u);
  EXPECT_EQ(dtypeSize(fb::DType_I8), 1u);
  EXPECT_EQ(dtypeSize(fb::DType_I32), 4u);
  EXPECT_EQ(dtypeSize(static_cast<fb::DType>(200)), 0u);
}

const fb::KVCacheSpec* buildKv(flatbuffers::FlatBufferBuilder& b, fb::KVKind kind, int64_t layers,
                               int64_t kv_heads, int64_t head_dim, int64_t v_dim, int64_t rank,
                               int64_t rope_dim, fb::DType dtype) {
  b.Finish(fb::CreateKVCacheSpec(b, kind, layers, 16, kv_heads, head_dim, v_dim, rank, rope_dim,
                                 dtype));
  return flatbuffers::GetRoot<fb::KVCacheSpec>(b.GetBufferPointer());
}

TEST(ArtifactInfo, KvBytesPerToken) {
  {  // Llama-3-8B: 32 layers, 8 kv heads, head_dim 128, BF16 -> 128 KiB per token
    flatbuffers::FlatBufferBuilder b;
    EXPECT_EQ(kvBytesPerToken(*buildKv(b, fb::KVKind_GQA, 32, 8, 128, 128, 0, 0, fb::DType_BF16)),
              2ull * 32 * 8 * 128 * 2);
  }
  {  // int8 cache: one f32 scale per written K and V vector (kv head) of every slot
    flatbuffers::FlatBufferBuilder b;
    const fb::KVCacheSpec* kv = buildKv(b, fb::KVKind_GQA, 32, 8, 128, 128, 0, 0, fb::DType_I8);
    EXPECT_EQ(kvBytesPerToken(*kv), 32ull * 8 * (256 + 2 * 4));
    EXPECT_EQ(kvBytesPerBlock(*kv), 16ull * 32 * 8 * (256 + 2 * 4));
  }
  {  // fp8 latent cache: two scales per slot (c_kv's and k_rope's)
    flatbuffers::FlatBufferBuilder b;
    const fb::KVCacheSpec* kv = buildKv(b, fb::KVKind_MLA, 61, 0, 0, 0, 512, 64, fb::DType_F8_E4M3);
    EXPECT_EQ(kvBytesPerToken(*kv), 61ull * (576 + 8));
    EXPECT_EQ(kvBytesPerBlock(*kv), 16ull * 61 * (576 + 8));
  }
  {  // distinct V width
    flatbuffers::FlatBufferBuilder b;
    EXPECT_EQ(kvBytesPerToken(*buildKv(b, fb::KVKind_GQA, 2, 4, 192, 128, 0, 0, fb::DType_F32)),
              2ull * 4 * (192 + 128) * 4);
  }
  {  // DeepSeek-V3: 61 layers, kv_lora_rank 512 + rope 64, BF16
    flatbuffers::FlatBufferBuilder b;
    EXPECT_EQ(kvBytesPerToken(*buildKv(b, fb::KVKind_MLA, 61, 0, 0, 0, 512, 64, fb::DType_BF16)),
              61ull * (512 + 64) * 2);
  }
  {
    flatbuffers::FlatBufferBuilder b;
    EXPECT_EQ(kvBytesPerToken(*buildKv(b, fb::KVKind_None, 61, 8, 128, 0, 0, 0, fb::DType_BF16)),
              0u);
  }
}

TEST(ArtifactInfo, ShapeElements) {
  flatbuffers::FlatBufferBuilder b;
  b.Finish(b.CreateVector(std::vector<int64_t>{256, 7168, 2048}));
  auto* shape = flatbuffers::GetRoot<flatbuffers::Vector<int64_t>>(b.GetBufferPointer());
  uint64_t n = 0;
  ASSERT_TRUE(shapeElements(shape, &n));
  EXPECT_EQ(n, 256ull * 7168 * 2048);  // > 2^31: stacked DeepSeek experts
  flatbuffers::FlatBufferBuilder b2;
  b2.Finish(b2.CreateVector(std::vector<int64_t>{1ll << 40, 1ll << 30}));
  EXPECT_FALSE(shapeElements(
      flatbuffers::GetRoot<flatbuffers::Vector<int64_t>>(b2.GetBufferPointer()), &n));
  flatbuffers::FlatBufferBuilder b3;
  b3.Finish(b3.CreateVector(std::vector<int64_t>{4, -1}));
  EXPECT_FALSE(shapeElements(
      flatbuffers::GetRoot<flatbuffers::Vector<int64_t>>(b3.GetBufferPointer()), &n));
  ASSERT_TRUE(shapeElements(nullptr, &n));
  EXPECT_EQ(n, 1u);  // a scalar
}

}  // namespace
}  // namespace ds::artifact
