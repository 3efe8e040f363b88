// Writer -> reader round trips, writer atomicity and writer error handling.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "artifact/artifact_info.h"
#include "artifact/artifact_reader.h"
#include "artifact/artifact_writer.h"
#include "artifact_test_util.h"

namespace ds::artifact {
namespace {

using testing::freshDir;
using testing::listDir;
using testing::TinyModel;

TEST(ArtifactRoundTrip, TinyModelReadsBackExactly) {
  const std::string dir = freshDir("roundtrip");
  const std::string path = dir + "/tiny.dsa";
  ASSERT_TRUE(testing::writeTiny(path).isOk());
  EXPECT_EQ(listDir(dir), std::vector<std::string>{"tiny.dsa"});

  StatusOr<std::unique_ptr<Artifact>> a = Artifact::open(path);
  ASSERT_TRUE(a.isOk()) << a.status().toString();
  const fb::Artifact* m = (*a)->meta();
  EXPECT_EQ(m->schema_version(), kSchemaVersion);
  EXPECT_EQ(m->model()->model_type()->str(), "llama");
  EXPECT_EQ(m->model()->num_key_value_heads(), TinyModel::kKvHeads);
  EXPECT_EQ(m->chat_template()->str(), TinyModel::chatTemplate());
  ASSERT_EQ(m->tokenizer_files()->size(), TinyModel::tokenizerFiles().size());
  const auto* blob = m->tokenizer_files()->Get(0);
  EXPECT_EQ(blob->name()->str(), TinyModel::tokenizerFiles()[0].first);
  EXPECT_EQ(std::string(blob->data()->begin(), blob->data()->end()),
            TinyModel::tokenizerFiles()[0].second);
  EXPECT_EQ((*a)->fileSize(), (*a)->header().file_size);
  EXPECT_EQ((*a)->path(), path);

  const auto specs = TinyModel::tensors();
  ASSERT_EQ(m->tensors()->size(), specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    const fb::Tensor* t = (*a)->findTensor(specs[i].name);
    ASSERT_NE(t, nullptr) << specs[i].name;
    const std::vector<uint8_t> want = TinyModel::bytes(i, t->nbytes());
    const uint8_t* got = (*a)->tensorData(*t);
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(got) % kAlignment, 0u) << "segment not 64-byte aligned";
    EXPECT_EQ(std::memcmp(got, want.data(), want.size()), 0) << specs[i].name;
  }
  EXPECT_EQ((*a)->findTensor("no.such.tensor"), nullptr);
  EXPECT_EQ((*a)->segmentData(static_cast<uint32_t>(specs.size())), nullptr);
}

TEST(ArtifactRoundTrip, WriterLaysSegmentsOutAlignedAndInOrder) {
  const std::string path = freshDir("layout") + "/a.dsa";
  auto w = ArtifactWriter::create(path);
  ASSERT_TRUE(w.isOk());
  for (uint64_t size : {1ull, 63ull, 64ull, 0ull, 130ull}) {
    std::vector<uint8_t> data(size, 0x5a);
    ASSERT_TRUE((*w)->addSegmentFromMemory(data.data(), size).isOk());
  }
  const auto& segs = (*w)->segments();
  ASSERT_EQ(segs.size(), 5u);
  EXPECT_EQ(segs[0].offset, sizeof(FileHeader));
  for (size_t i = 1; i < segs.size(); ++i) {
    EXPECT_EQ(segs[i].offset % kAlignment, 0u);
    EXPECT_GE(segs[i].offset, segs[i - 1].offset + segs[i - 1].size);
    EXPECT_LT(segs[i].offset, segs[i - 1].offset + segs[i - 1].size + kAlignment);
  }
}

// A segment bigger than one chunk: fill sees consecutive chunks, the checksum covers them all.
TEST(ArtifactRoundTrip, MultiChunkSegment) {
  const std::string path = freshDir("chunks") + "/big.dsa";
  const uint64_t size = 2 * ArtifactWriter::kChunkSize + 4097;
  auto w = ArtifactWriter::create(path);
  ASSERT_TRUE(w.isOk());
  uint64_t expected_offset = 0;
  int calls = 0;
  auto idx = (*w)->addSegment(size, [&](uint8_t* dst, uint64_t offset, uint64_t n) {
    EXPECT_EQ(offset, expected_offset);
    EXPECT_LE(n, ArtifactWriter::kChunkSize);
    for (uint64_t j = 0; j < n; ++j) dst[j] = static_cast<uint8_t>((offset + j) * 7 / 5);
    expected_offset += n;
    ++calls;
    return Status::ok();
  });
  ASSERT_TRUE(idx.isOk()) << idx.status().toString();
  EXPECT_EQ(expected_offset, size);
  EXPECT_EQ(calls, 3);

  // Metadata with one F8 tensor covering the whole segment.
  flatbuffers::FlatBufferBuilder b;
  const std::vector<int64_t> shape = {static_cast<int64_t>(size)};
  std::vector<flatbuffers::Offset<fb::Tensor>> tensors = {
      fb::CreateTensorDirect(b, "w", nullptr, fb::DType_F8_E4M3, &shape, 0, size)};
  const auto& s = (*w)->segments()[0];
  std::vector<flatbuffers::Offset<fb::Segment>> segs = {fb::CreateSegment(b, s.offset, s.size, s.xxh64)};
  fb::FinishArtifactBuffer(b, fb::CreateArtifactDirect(b, kSchemaVersion, "t", "", 0, 0, &tensors, &segs));
  ASSERT_TRUE((*w)->finish(b.GetBufferPointer(), b.GetSize()).isOk());

  auto a = Artifact::open(path);
  ASSERT_TRUE(a.isOk()) << a.status().toString();
  const uint8_t* data = (*a)->tensorData(*(*a)->findTensor("w"));
  for (uint64_t j : {uint64_t{0}, ArtifactWriter::kChunkSize - 1, ArtifactWriter::kChunkSize,
                     size - 1}) {
    EXPECT_EQ(data[j], static_cast<uint8_t>(j * 7 / 5)) << j;
  }
  EXPECT_EQ(weightBytes(*(*a)->meta()), size);
}

TEST(ArtifactWriterAtomicity, DestroyedBeforeFinishLeavesNothing) {
  const std::string dir = freshDir("abandon");
  {
    auto w = ArtifactWriter::create(dir + "/a.dsa");
    ASSERT_TRUE(w.isOk());
    uint8_t bytes[100] = {};
    ASSERT_TRUE((*w)->addSegmentFromMemory(bytes, sizeof(bytes)).isOk());
    // O_TMPFILE: no name at all while writing; without it, only the named temp file.
    const std::vector<std::string> during = listDir(dir);
    EXPECT_TRUE(during.empty() ||
                during == std::vector<std::string>{"a.dsa.tmp." + std::to_string(::getpid())});
  }
  EXPECT_TRUE(listDir(dir).empty());
}

TEST(ArtifactWriterAtomicity, ExistingArtifactSurvivesFailedWrites) {
  const std::string dir = freshDir("survive");
  const std::string path = dir + "/a.dsa";
  ASSERT_TRUE(testing::writeTiny(path).isOk());
  const std::vector<uint8_t> before = testing::readFile(path);
  {  // abandoned
    auto w = ArtifactWriter::create(path);
    ASSERT_TRUE(w.isOk());
    uint8_t bytes[10] = {1};
    ASSERT_TRUE((*w)->addSegmentFromMemory(bytes, sizeof(bytes)).isOk());
  }
  {  // finish() refuses metadata whose segment table does not match what was written
    auto w = ArtifactWriter::create(path);
    ASSERT_TRUE(w.isOk());
    uint8_t bytes[10] = {1};
    ASSERT_TRUE((*w)->addSegmentFromMemory(bytes, sizeof(bytes)).isOk());
    const std::vector<uint8_t> md = testing::tinyMetadata({});
    Status s = (*w)->finish(md.data(), md.size());
    EXPECT_EQ(s.code(), DS_INVALID_ARGUMENT);
    EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("segments"), std::string::npos) << s.message();
  }
  EXPECT_EQ(testing::readFile(path), before);
  EXPECT_EQ(listDir(dir), std::vector<std::string>{"a.dsa"});
  EXPECT_TRUE(Artifact::open(path).isOk());
}

TEST(ArtifactWriterErrors, FillErrorFailsTheWriter) {
  const std::string dir = freshDir("fillerr");
  auto w = ArtifactWriter::create(dir + "/a.dsa");
  ASSERT_TRUE(w.isOk());
  auto r = (*w)->addSegment(100, [](uint8_t*, uint64_t, uint64_t) {
    return dataLoss("checkpoint shard 3 is short");
  });
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), DS_DATA_LOSS);
  EXPECT_NE(r.status().message().find("checkpoint shard 3 is short"), std::string::npos);
  EXPECT_NE(r.status().message().find(dir + "/a.dsa"), std::string::npos);
  // Sticky: the writer will not produce an artifact with a hole in it.
  const std::vector<uint8_t> md = testing::tinyMetadata({});
  EXPECT_EQ((*w)->finish(md.data(), md.size()).code(), DS_DATA_LOSS);
  w.value().reset();
  EXPECT_TRUE(listDir(dir).empty());
}

TEST(ArtifactWriterErrors, FillExceptionBecomesStatus) {
  auto w = ArtifactWriter::create(freshDir("throw") + "/a.dsa");
  ASSERT_TRUE(w.isOk());
  auto r = (*w)->addSegment(10, [](uint8_t*, uint64_t, uint64_t) -> Status {
    throw std::runtime_error("boom");
  });
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), DS_INTERNAL);
  EXPECT_NE(r.status().message().find("boom"), std::string::npos);
}

TEST(ArtifactWriterErrors, BadPaths) {
  const std::string dir = freshDir("badpath");
  auto missing = ArtifactWriter::create(dir + "/no/such/dir/a.dsa");
  ASSERT_FALSE(missing.isOk());
  EXPECT_EQ(missing.status().code(), DS_NOT_FOUND);
  EXPECT_NE(missing.status().message().find(dir + "/no/such/dir/a.dsa"), std::string::npos);

  auto is_dir = ArtifactWriter::create(dir);
  ASSERT_FALSE(is_dir.isOk());
  EXPECT_EQ(is_dir.status().code(), DS_INVALID_ARGUMENT);
  EXPECT_NE(is_dir.status().message().find("directory"), std::string::npos);
}

TEST(ArtifactWriterErrors, FinishValidatesMetadata) {
  const std::string dir = freshDir("finishcheck");
  {
    auto w = ArtifactWriter::create(dir + "/a.dsa");
    ASSERT_TRUE(w.isOk());
    const std::vector<uint8_t> garbage(64, 0xee);
    Status s = (*w)->finish(garbage.data(), garbage.size());
    EXPECT_EQ(s.code(), DS_INVALID_ARGUMENT);
    EXPECT_NE(s.message().find("identifier"), std::string::npos) << s.message();
  }
  {
    auto w = ArtifactWriter::create(dir + "/b.dsa");
    ASSERT_TRUE(w.isOk());
    const std::vector<uint8_t> md = testing::tinyMetadata({}, kSchemaVersion + 1);
    Status s = (*w)->finish(md.data(), md.size());
    EXPECT_EQ(s.code(), DS_INVALID_ARGUMENT);
    EXPECT_NE(s.message().find("schema_version"), std::string::npos) << s.message();
  }
  {  // tensors refer to segments that were never written
    auto w = ArtifactWriter::create(dir + "/c.dsa");
    ASSERT_TRUE(w.isOk());
    const std::vector<uint8_t> md = testing::tinyMetadata({});
    Status s = (*w)->finish(md.data(), md.size());
    EXPECT_EQ(s.code(), DS_INVALID_ARGUMENT);
    EXPECT_NE(s.message().find("tensors[0] 'embed'"), std::string::npos) << s.message();
  }
  EXPECT_TRUE(listDir(dir).empty());
}

TEST(ArtifactWriterErrors, FinishTwice) {
  const std::string path = freshDir("twice") + "/a.dsa";
  auto w = ArtifactWriter::create(path);
  ASSERT_TRUE(w.isOk());
  flatbuffers::FlatBufferBuilder b;
  fb::FinishArtifactBuffer(b, fb::CreateArtifactDirect(b, kSchemaVersion, "t"));
  ASSERT_TRUE((*w)->finish(b.GetBufferPointer(), b.GetSize()).isOk());
  EXPECT_EQ((*w)->finish(b.GetBufferPointer(), b.GetSize()).code(), DS_INVALID_ARGUMENT);
  EXPECT_FALSE((*w)->addSegmentFromMemory("x", 1).isOk());
  w.value().reset();
  EXPECT_TRUE(Artifact::open(path).isOk());  // the destructor keeps a finished artifact
}

}  // namespace
}  // namespace ds::artifact
