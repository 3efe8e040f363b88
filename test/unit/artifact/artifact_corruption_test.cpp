// Artifact::open on damaged files: each case asserts the error class and that the file is named.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <xxhash.h>

#include <cstring>

#include "artifact/artifact_reader.h"
#include "artifact_test_util.h"

namespace ds::artifact {
namespace {

using testing::TinyModel;

class Corruption : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::freshDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    good_path_ = dir_ + "/good.dsa";
    ASSERT_TRUE(testing::writeTiny(good_path_).isOk());
    good_ = testing::readFile(good_path_);
    ASSERT_GT(good_.size(), sizeof(FileHeader));
  }

  // Writes `bytes` to a new file and opens it.
  StatusOr<std::unique_ptr<Artifact>> openBytes(const std::vector<uint8_t>& bytes,
                                                bool verify_weights = true) {
    path_ = dir_ + "/bad" + std::to_string(n_++) + ".dsa";
    testing::writeFile(path_, bytes);
    Artifact::Options o;
    o.verify_weights = verify_weights;
    return Artifact::open(path_, o);
  }

  // The open failed with `code` and a message naming the file and containing `text`.
  void expectError(const StatusOr<std::unique_ptr<Artifact>>& r, ds_status_code_t code,
                   const std::string& text, const std::string& file = "") {
    ASSERT_FALSE(r.isOk()) << "opened a bad artifact (" << text << ")";
    EXPECT_EQ(r.status().code(), code) << r.status().toString();
    const std::string& m = r.status().message();
    EXPECT_NE(m.find(file.empty() ? path_ : file), std::string::npos) << m;
    EXPECT_NE(m.find(text), std::string::npos) << m;
  }

  const fb::Artifact* goodMeta() const {
    return fb::GetArtifact(good_.data() + testing::headerOf(good_).metadata_offset);
  }
  uint64_t segmentOffset(uint32_t i) const { return goodMeta()->segments()->Get(i)->offset(); }

  std::string dir_, good_path_, path_;
  std::vector<uint8_t> good_;
  int n_ = 0;
};

TEST_F(Corruption, GoodFileOpens) {
  auto a = Artifact::open(good_path_);
  ASSERT_TRUE(a.isOk()) << a.status().toString();
}

TEST_F(Corruption, TruncatedInsideHeader) {
  for (size_t n : {size_t{1}, size_t{8}, size_t{40}, sizeof(FileHeader) - 1}) {
    expectError(openBytes({good_.begin(), good_.begin() + n}), DS_DATA_LOSS, "truncated");
  }
}

TEST_F(Corruption, TruncatedInsideMetadata) {
  const FileHeader h = testing::headerOf(good_);
  for (uint64_t cut : {h.metadata_offset + 1, h.metadata_offset + h.metadata_size / 2,
                       h.file_size - 1}) {
    expectError(openBytes({good_.begin(), good_.begin() + cut}), DS_DATA_LOSS, "truncated");
  }
}

TEST_F(Corruption, TruncatedInsideSegment) {
  const uint64_t cut = segmentOffset(2) + 3;
  expectError(openBytes({good_.begin(), good_.begin() + cut}), DS_DATA_LOSS, "truncated");
  expectError(openBytes({good_.begin(), good_.begin() + cut}, false), DS_DATA_LOSS, "truncated");
}

TEST_F(Corruption, TrailingBytes) {
  std::vector<uint8_t> bytes = good_;
  bytes.push_back(0);
  expectError(openBytes(bytes), DS_DATA_LOSS, "trailing bytes");
}

TEST_F(Corruption, FlippedMetadataByte) {
  std::vector<uint8_t> bytes = good_;
  const FileHeader h = testing::headerOf(bytes);
  bytes[h.metadata_offset + h.metadata_size / 2] ^= 0x10;
  expectError(openBytes(bytes), DS_DATA_LOSS, "metadata checksum");
}

TEST_F(Corruption, FlippedWeightByteCaughtOnlyWhenVerifying) {
  std::vector<uint8_t> bytes = good_;
  const uint64_t at = segmentOffset(4) + 5;
  bytes[at] ^= 0x01;
  expectError(openBytes(bytes), DS_DATA_LOSS, "weight segment 4 checksum");

  auto lazy = openBytes(bytes, /*verify_weights=*/false);
  ASSERT_TRUE(lazy.isOk()) << lazy.status().toString();
  const fb::Tensor* t = (*lazy)->meta()->tensors()->Get(4);
  EXPECT_EQ((*lazy)->tensorData(*t)[5], bytes[at]);  // the flipped byte, served as is
}

TEST_F(Corruption, WrongMagic) {
  std::vector<uint8_t> bytes = good_;
  bytes[0] = 'X';
  expectError(openBytes(bytes), DS_INVALID_ARGUMENT, "not a ds artifact");
  // A text file of header length is not mistaken for a damaged artifact either.
  expectError(openBytes(std::vector<uint8_t>(100, 'a')), DS_INVALID_ARGUMENT, "not a ds artifact");
}

TEST_F(Corruption, FutureSchemaVersion) {
  std::vector<uint8_t> bytes = good_;
  FileHeader h = testing::headerOf(bytes);
  h.schema_version = kSchemaVersion + 1;
  testing::putHeader(&bytes, h);
  auto r = openBytes(bytes);
  expectError(r, DS_FAILED_PRECONDITION, "rebuild it with ds-compile");
  EXPECT_NE(r.status().message().find("schema version " + std::to_string(kSchemaVersion + 1)),
            std::string::npos);
}

TEST_F(Corruption, HeaderChecksum) {
  std::vector<uint8_t> bytes = good_;
  bytes[offsetof(FileHeader, metadata_size)] ^= 0x01;  // not re-checksummed
  expectError(openBytes(bytes), DS_DATA_LOSS, "header checksum");
}

TEST_F(Corruption, MetadataRangeOutsideFile) {
  const FileHeader good = testing::headerOf(good_);
  for (uint64_t offset : {good.file_size, good.file_size + 64, uint64_t{1} << 40,
                          UINT64_MAX - 63}) {
    std::vector<uint8_t> bytes = good_;
    FileHeader h = good;
    h.metadata_offset = offset;
    testing::putHeader(&bytes, h);
    expectError(openBytes(bytes), DS_DATA_LOSS, "metadata range");
  }
  std::vector<uint8_t> bytes = good_;
  FileHeader h = good;
  h.metadata_size = UINT64_MAX;  // offset + size overflows
  testing::putHeader(&bytes, h);
  expectError(openBytes(bytes), DS_DATA_LOSS, "metadata range");
}

// Valid checksums over garbage: only the flatbuffer Verifier stands between it and a crash.
TEST_F(Corruption, VerifierRejectsGarbageWithValidChecksums) {
  const FileHeader h = testing::headerOf(good_);
  std::vector<uint8_t> garbage(h.metadata_size);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>(i * 37 + 11);
  garbage[0] = 0xf0;  // root offset far past the end
  garbage[1] = 0xff;
  std::memcpy(garbage.data() + 4, "DSA1", 4);
  std::vector<uint8_t> bytes = good_;
  testing::replaceMetadata(&bytes, garbage);
  expectError(openBytes(bytes), DS_DATA_LOSS, "Verifier");

  // A corrupted vtable inside otherwise real metadata.
  std::vector<uint8_t> md(good_.begin() + h.metadata_offset,
                          good_.begin() + h.metadata_offset + h.metadata_size);
  uint32_t root = 0;
  std::memcpy(&root, md.data(), 4);
  int32_t vt = 0;
  std::memcpy(&vt, md.data() + root, 4);
  const uint32_t vtable = root - vt;
  const uint16_t huge = 0xfff0;  // the Artifact vtable claims to be 64 KiB long
  std::memcpy(md.data() + vtable, &huge, 2);
  bytes = good_;
  testing::replaceMetadata(&bytes, md);
  expectError(openBytes(bytes), DS_DATA_LOSS, "Verifier");
}

// Every single-byte flip of the metadata, checksums recomputed: open() either rejects it with
// DATA_LOSS or everything it hands out stays in bounds (ASan/UBSan builds check the reads).
TEST_F(Corruption, EveryMetadataByteFlipIsContained) {
  const FileHeader h = testing::headerOf(good_);
  const std::vector<uint8_t> md(good_.begin() + h.metadata_offset,
                                good_.begin() + h.metadata_offset + h.metadata_size);
  int rejected = 0;
  for (size_t i = 0; i < md.size(); ++i) {
    std::vector<uint8_t> flipped = md;
    flipped[i] ^= 0xff;
    std::vector<uint8_t> bytes = good_;
    testing::replaceMetadata(&bytes, flipped);
    auto r = openBytes(bytes);
    if (!r.isOk()) {
      ASSERT_EQ(r.status().code(), DS_DATA_LOSS) << "byte " << i << ": " << r.status().toString();
      ++rejected;
      continue;
    }
    // Accepted (e.g. a flipped name byte): every tensor lies between header and metadata.
    const Artifact& a = **r;
    ASSERT_TRUE(a.meta()->segments() && a.meta()->segments()->size() > 0) << "byte " << i;
    const uint8_t* base = a.segmentData(0) - a.meta()->segments()->Get(0)->offset();
    volatile uint8_t sink = 0;
    for (const fb::Tensor* t : *a.meta()->tensors()) {
      const uint8_t* d = a.tensorData(*t);
      ASSERT_GE(d, base + sizeof(FileHeader)) << "byte " << i;
      ASSERT_LE(d + t->nbytes(), base + a.header().metadata_offset) << "byte " << i;
      for (uint64_t j = 0; j < t->nbytes(); ++j) sink = sink + d[j];
    }
  }
  EXPECT_GT(rejected, static_cast<int>(md.size() / 2));
}

TEST_F(Corruption, WrongFileIdentifier) {
  const FileHeader h = testing::headerOf(good_);
  std::vector<uint8_t> md(good_.begin() + h.metadata_offset,
                          good_.begin() + h.metadata_offset + h.metadata_size);
  std::memcpy(md.data() + 4, "XXXX", 4);
  std::vector<uint8_t> bytes = good_;
  testing::replaceMetadata(&bytes, md);
  expectError(openBytes(bytes), DS_DATA_LOSS, "identifier");
}

TEST_F(Corruption, EmptyFile) {
  expectError(openBytes({}), DS_DATA_LOSS, "empty");
}

TEST_F(Corruption, DirectoryPath) {
  auto r = Artifact::open(dir_);
  expectError(r, DS_INVALID_ARGUMENT, "not a regular file", dir_);
}

TEST_F(Corruption, MissingFile) {
  const std::string missing = dir_ + "/missing.dsa";
  expectError(Artifact::open(missing), DS_NOT_FOUND, "cannot open", missing);
}

// Hand-assembled files with consistent checksums but inconsistent metadata.
class BadMetadata : public Corruption {
 protected:
  std::vector<std::vector<uint8_t>> tinySegments() const {
    std::vector<std::vector<uint8_t>> segs;
    const fb::Artifact* m = goodMeta();
    for (uint32_t i = 0; i < m->segments()->size(); ++i) {
      const auto* s = m->segments()->Get(i);
      segs.emplace_back(good_.begin() + s->offset(), good_.begin() + s->offset() + s->size());
    }
    return segs;
  }
};

TEST_F(BadMetadata, AssemblerMatchesWriter) {
  const auto segs = tinySegments();
  const auto md = testing::tinyMetadata(testing::assembledSegments(segs));
  EXPECT_EQ(testing::assemble(segs, md), good_);
}

TEST_F(BadMetadata, SegmentOutsideDataRegion) {
  const auto segs = tinySegments();
  auto infos = testing::assembledSegments(segs);
  infos[5].offset += 1ull << 33;  // 8 GiB past: beyond the file, must not wrap
  expectError(openBytes(testing::assemble(segs, testing::tinyMetadata(infos))), DS_DATA_LOSS,
              "segment 5 [" + std::to_string(infos[5].offset));
  infos = testing::assembledSegments(segs);
  infos[1].offset += 8;
  expectError(openBytes(testing::assemble(segs, testing::tinyMetadata(infos))), DS_DATA_LOSS,
              "segment 1");
  infos = testing::assembledSegments(segs);
  infos[0].offset = 0;  // over the header
  expectError(openBytes(testing::assemble(segs, testing::tinyMetadata(infos))), DS_DATA_LOSS,
              "segment 0");
}

TEST_F(BadMetadata, OverlappingSegments) {
  const auto segs = tinySegments();
  auto infos = testing::assembledSegments(segs);
  infos[2].offset = infos[1].offset;
  expectError(openBytes(testing::assemble(segs, testing::tinyMetadata(infos))), DS_DATA_LOSS,
              "overlap");
}

TEST_F(BadMetadata, TensorLargerThanItsSegment) {
  auto segs = tinySegments();
  segs[0].resize(segs[0].size() / 2);
  expectError(openBytes(testing::assemble(segs, testing::tinyMetadata(
                                                    testing::assembledSegments(segs)))),
              DS_DATA_LOSS, "tensors[0] 'embed' nbytes");
}

TEST_F(BadMetadata, DanglingReferences) {
  const auto segs = tinySegments();
  std::vector<std::vector<uint8_t>> fewer(segs.begin(), segs.end() - 1);
  expectError(openBytes(testing::assemble(
                  fewer, testing::tinyMetadata(testing::assembledSegments(fewer)))),
              DS_DATA_LOSS, "tensors[5] 'lm_head' refers to segment 5 of 5");
}

// I6 codes are exactly the symmetric Int6Group encoding (the host's 6-bit output layer): an I6
// tensor without it, Int6Group on another dtype, or I6 with zero points is refused by name.
// lm_head is [16, 8]: 16 rows of 6 bytes in I6; tensor 3 (an f32 [1, 1]) stands in for scales.
TEST_F(BadMetadata, Int6TensorsAreExactlyTheSymmetricInt6GroupEncoding) {
  const auto segs = tinySegments();
  const auto infos = testing::assembledSegments(segs);
  auto open = [&](const testing::TinyTensorEdit& e) {
    return openBytes(testing::assemble(segs, testing::tinyMetadata(infos, kSchemaVersion, nullptr, e)));
  };
  const char* rule = "I6 codes are exactly the symmetric Int6Group encoding";
  expectError(open([](size_t i, testing::TinyTensorFields& f) {
                if (i == 5) f.dtype = fb::DType_I6, f.nbytes = 16 * 6;
              }),
              DS_DATA_LOSS, "tensors[5] 'lm_head' has dtype I6 and quantization None");
  expectError(open([](size_t i, testing::TinyTensorFields& f) {
                if (i == 5) f.quant = fb::QuantKind_Int6Group, f.group_size = 8, f.qscale = 3;
              }),
              DS_DATA_LOSS, rule);
  expectError(open([](size_t i, testing::TinyTensorFields& f) {
                if (i == 5)
                  f.dtype = fb::DType_I6, f.nbytes = 16 * 6, f.quant = fb::QuantKind_Int6Group,
                  f.group_size = 8, f.qscale = 3, f.qzero = 3;
              }),
              DS_DATA_LOSS, "with zero points");
  expectError(open([](size_t i, testing::TinyTensorFields& f) {
                if (i == 5)
                  f.dtype = fb::DType_I6, f.nbytes = 16 * 6, f.quant = fb::QuantKind_Int6Group,
                  f.group_size = 0, f.qscale = 3;
              }),
              DS_DATA_LOSS, "Int6Group group size 0");
}

TEST_F(BadMetadata, SchemaVersionDisagreesWithHeader) {
  const auto segs = tinySegments();
  expectError(openBytes(testing::assemble(
                  segs, testing::tinyMetadata(testing::assembledSegments(segs), 7))),
              DS_DATA_LOSS, "schema_version 7");
}

}  // namespace
}  // namespace ds::artifact
