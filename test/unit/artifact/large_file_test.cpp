// A sparse artifact with a tensor over 4 GiB and a segment placed past 4 GiB, read back through
// the reader: 64-bit offsets end to end without writing gigabytes (the big segment is a hole).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "artifact/artifact_reader.h"
#include "artifact/layout.h"
#include "artifact_test_util.h"

namespace ds::artifact {
namespace {

constexpr uint64_t kGiB = 1ull << 30;
// An FP8 [65536, 65537] tensor: 4 GiB + 64 KiB, past both the 2 GB and the 4 GiB marks.
constexpr int64_t kRows = 65536, kCols = 65537;
constexpr uint64_t kHugeBytes = uint64_t{kRows} * kCols;

uint64_t checksumOfZeros(uint64_t size) {
  static const std::vector<uint8_t> zeros(1 << 20, 0);
  StreamingChecksum s;
  for (uint64_t done = 0; done < size;) {
    const uint64_t n = std::min<uint64_t>(size - done, zeros.size());
    s.update(zeros.data(), n);
    done += n;
  }
  return s.digest();
}

class LargeFile : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::freshDir("large") + "/sparse.dsa";
    small_.resize(200);
    high_.resize(300);
    for (size_t i = 0; i < small_.size(); ++i) small_[i] = static_cast<uint8_t>(i + 1);
    for (size_t i = 0; i < high_.size(); ++i) high_[i] = static_cast<uint8_t>(255 - i);
    small_off_ = 64;
    huge_off_ = 320;                                  // after small_, 64-aligned
    high_off_ = (huge_off_ + kHugeBytes + 63) & ~63ull;  // > 4 GiB
    ASSERT_GT(high_off_, 4 * kGiB);

    // Segment index order differs from file order so the corrupted-high case is caught before
    // the reader would hash the 4 GiB hole.
    flatbuffers::FlatBufferBuilder b;
    const std::vector<int64_t> small_shape = {200}, high_shape = {300}, huge_shape = {kRows, kCols};
    std::vector<flatbuffers::Offset<fb::Tensor>> tensors = {
        fb::CreateTensorDirect(b, "small", nullptr, fb::DType_I8, &small_shape, 0, 200),
        fb::CreateTensorDirect(b, "high", nullptr, fb::DType_I8, &high_shape, 1, 300),
        fb::CreateTensorDirect(b, "huge", nullptr, fb::DType_F8_E4M3, &huge_shape, 2, kHugeBytes)};
    std::vector<flatbuffers::Offset<fb::Segment>> segs = {
        fb::CreateSegment(b, small_off_, small_.size(), checksum(small_.data(), small_.size())),
        fb::CreateSegment(b, high_off_, high_.size(), checksum(high_.data(), high_.size())),
        fb::CreateSegment(b, huge_off_, kHugeBytes, checksumOfZeros(kHugeBytes))};
    fb::FinishArtifactBuffer(
        b, fb::CreateArtifactDirect(b, kSchemaVersion, "test", "", 0, 0, &tensors, &segs));
    metadata_.assign(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  }

  void TearDown() override { std::filesystem::remove(path_); }

  // Writes the sparse file; false (test skipped) if the filesystem cannot hold it.
  bool writeSparse(bool corrupt_high) {
    std::vector<uint8_t> file(64, 0);
    FileHeader h{};
    std::memcpy(h.magic, kMagic, sizeof(kMagic));
    h.schema_version = kSchemaVersion;
    h.header_size = sizeof(FileHeader);
    h.metadata_offset = (high_off_ + high_.size() + 63) & ~63ull;
    h.metadata_size = metadata_.size();
    h.metadata_xxh64 = checksum(metadata_.data(), metadata_.size());
    h.data_offset = 64;
    h.file_size = h.metadata_offset + metadata_.size();
    testing::putHeader(&file, h);
    std::vector<uint8_t> high = high_;
    if (corrupt_high) high[299] ^= 0x80;

    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return false;
    bool ok = ::ftruncate(fd, static_cast<off_t>(h.file_size)) == 0;
    auto put = [&](const std::vector<uint8_t>& bytes, uint64_t at) {
      ok = ok && ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(at)) ==
                     static_cast<ssize_t>(bytes.size());
    };
    put(file, 0);
    put(small_, small_off_);
    put(high, high_off_);
    put(metadata_, h.metadata_offset);
    ::close(fd);
    return ok;
  }

  std::string path_;
  std::vector<uint8_t> small_, high_, metadata_;
  uint64_t small_off_ = 0, huge_off_ = 0, high_off_ = 0;
};

TEST_F(LargeFile, TensorOverFourGiBAndOffsetsPastFourGiB) {
  if (!writeSparse(false)) GTEST_SKIP() << "cannot create a sparse 4 GiB file here";
  Artifact::Options o;
  o.verify_weights = false;  // hashing the hole would page in 4 GiB
  auto a = Artifact::open(path_, o);
  ASSERT_TRUE(a.isOk()) << a.status().toString();
  EXPECT_GT((*a)->fileSize(), 4 * kGiB);

  const fb::Tensor* huge = (*a)->findTensor("huge");
  const fb::Tensor* high = (*a)->findTensor("high");
  ASSERT_NE(huge, nullptr);
  ASSERT_NE(high, nullptr);
  EXPECT_EQ(huge->nbytes(), kHugeBytes);
  const uint8_t* base = (*a)->segmentData(0) - small_off_;
  EXPECT_EQ(static_cast<uint64_t>((*a)->tensorData(*huge) - base), huge_off_);
  EXPECT_EQ(static_cast<uint64_t>((*a)->tensorData(*high) - base), high_off_);
  EXPECT_EQ(std::memcmp((*a)->tensorData(*high), high_.data(), high_.size()), 0);
  EXPECT_EQ((*a)->tensorData(*huge)[kHugeBytes - 1], 0);  // the hole's last byte
}

TEST_F(LargeFile, CorruptionPastFourGiBIsCaught) {
  if (!writeSparse(true)) GTEST_SKIP() << "cannot create a sparse 4 GiB file here";
  auto a = Artifact::open(path_);
  ASSERT_FALSE(a.isOk());
  EXPECT_EQ(a.status().code(), DS_DATA_LOSS);
  EXPECT_NE(a.status().message().find("weight segment 1 checksum mismatch (offset " +
                                      std::to_string(high_off_)),
            std::string::npos)
      << a.status().message();
  EXPECT_NE(a.status().message().find(path_), std::string::npos);
}

}  // namespace
}  // namespace ds::artifact
