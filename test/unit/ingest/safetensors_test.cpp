// SafetensorsFile validation (one test per malformed class) and writer -> reader round trips.
#include "ingest/safetensors.h"

#include <cstring>
#include <filesystem>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ingest/safetensors_writer.h"
#include "model_test_util.h"

namespace ds {
namespace {

using testing::safetensorsBytes;
using testing::TempDir;
using testing::writeBytes;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Writes `bytes` to a temp file, expects open() to fail with `code`; returns the message.
std::string openError(const std::string& bytes, ds_status_code_t code) {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  writeBytes(path, bytes);
  auto file = SafetensorsFile::open(path);
  EXPECT_FALSE(file.isOk());
  if (file.isOk()) return "";
  EXPECT_EQ(file.status().code(), code) << file.status().toString();
  const std::string& msg = file.status().message();
  EXPECT_TRUE(contains(msg, path)) << "message must name the file: " << msg;
  EXPECT_FALSE(contains(msg, "\n")) << "message must be one line: " << msg;
  return msg;
}

TEST(SafetensorsMalformedTest, FileShorterThan8Bytes) {
  EXPECT_TRUE(contains(openError("abc", DS_DATA_LOSS), "shorter than the 8-byte"));
  EXPECT_TRUE(contains(openError("", DS_DATA_LOSS), "0 bytes"));
}

TEST(SafetensorsMalformedTest, HeaderLengthBeyondFile) {
  EXPECT_TRUE(contains(openError(safetensorsBytes("{}", 0, 3), DS_DATA_LOSS), "runs past the end"));
  // A length where 8 + N wraps around 64 bits must not slip through.
  EXPECT_TRUE(contains(openError(safetensorsBytes("{}", 0, ~0ull - 4), DS_DATA_LOSS), "runs past the end"));
}

TEST(SafetensorsMalformedTest, BadJsonHeader) {
  EXPECT_TRUE(contains(openError(safetensorsBytes("{\"a\": ", 0), DS_DATA_LOSS), "malformed JSON"));
  EXPECT_TRUE(contains(openError(safetensorsBytes("{\"a\": 1} trailing", 0), DS_DATA_LOSS), "malformed JSON"));
}

TEST(SafetensorsMalformedTest, HeaderNotAnObject) {
  EXPECT_TRUE(contains(openError(safetensorsBytes("[1, 2]", 0), DS_DATA_LOSS), "expected an object"));
  EXPECT_TRUE(contains(openError(safetensorsBytes("{\"t\": [1]}", 0), DS_DATA_LOSS), "tensor 't'"));
}

TEST(SafetensorsMalformedTest, UnknownDtype) {
  const std::string msg =
      openError(safetensorsBytes(R"({"w": {"dtype": "F12", "shape": [1], "data_offsets": [0, 4]}})", 4),
                DS_UNSUPPORTED);
  EXPECT_TRUE(contains(msg, "tensor 'w'"));
  EXPECT_TRUE(contains(msg, "unknown dtype 'F12'"));
  openError(safetensorsBytes(R"({"w": {"dtype": 4, "shape": [1], "data_offsets": [0, 4]}})", 4), DS_DATA_LOSS);
}

TEST(SafetensorsMalformedTest, ShapeNotListOfNonNegativeInts) {
  for (const char* shape : {"5", "[-1]", "[1.5]", "[\"2\"]", "[[2]]", "null"}) {
    const std::string header =
        std::string(R"({"w": {"dtype": "F32", "shape": )") + shape + R"(, "data_offsets": [0, 8]}})";
    const std::string msg = openError(safetensorsBytes(header, 8), DS_DATA_LOSS);
    EXPECT_TRUE(contains(msg, "tensor 'w'")) << shape;
    EXPECT_TRUE(contains(msg, "shape")) << shape;
  }
}

TEST(SafetensorsMalformedTest, DataOffsetsNotBeginEnd) {
  for (const char* offsets : {"[4]", "[0, 4, 8]", "[8, 4]", "\"0-4\"", "[-1, 3]", "[0.5, 4]"}) {
    const std::string header =
        std::string(R"({"w": {"dtype": "U8", "shape": [4], "data_offsets": )") + offsets + "}}";
    const std::string msg = openError(safetensorsBytes(header, 8), DS_DATA_LOSS);
    EXPECT_TRUE(contains(msg, "tensor 'w'") && contains(msg, "data_offsets")) << offsets << ": " << msg;
  }
  openError(safetensorsBytes(R"({"w": {"dtype": "U8", "shape": [4]}})", 4), DS_DATA_LOSS);
}

TEST(SafetensorsMalformedTest, OffsetsOutOfDataArea) {
  const std::string msg = openError(
      safetensorsBytes(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})", 20), DS_DATA_LOSS);
  EXPECT_TRUE(contains(msg, "tensor 'w'"));
  EXPECT_TRUE(contains(msg, "run past the data area of 20 bytes"));
}

TEST(SafetensorsMalformedTest, OverlappingTensors) {
  const std::string msg = openError(safetensorsBytes(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                                         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                                                     12),
                                    DS_DATA_LOSS);
  EXPECT_TRUE(contains(msg, "'b' overlaps tensor 'a'"));
  // Touching ranges, and an empty tensor inside another's range, are fine.
  TempDir dir;
  writeBytes(dir.file("ok.safetensors"),
             safetensorsBytes(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                  "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]},
                                  "e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [4, 4]}})",
                              12));
  auto ok = SafetensorsFile::open(dir.file("ok.safetensors"));
  ASSERT_TRUE(ok.isOk()) << ok.status().toString();
  EXPECT_EQ(ok.value()->tensors().size(), 3u);
}

TEST(SafetensorsMalformedTest, ByteCountDoesNotMatchDtypeTimesShape) {
  const std::string msg = openError(
      safetensorsBytes(R"({"w": {"dtype": "BF16", "shape": [3, 2], "data_offsets": [0, 8]}})", 8), DS_DATA_LOSS);
  EXPECT_TRUE(contains(msg, "tensor 'w'"));
  EXPECT_TRUE(contains(msg, "holds 8 bytes but BF16 [3,2] needs 12"));
}

TEST(SafetensorsMalformedTest, ShapeProductOverflowIsCaught) {
  // 2^32 * 2^32 wraps to 0 in 64 bits, which would "match" an empty range without overflow checks.
  const std::string msg = openError(
      safetensorsBytes(R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})", 0),
      DS_DATA_LOSS);
  EXPECT_TRUE(contains(msg, "overflows"));
  // The element count fits, the byte count (x8) wraps to 0.
  EXPECT_TRUE(contains(
      openError(safetensorsBytes(R"({"w": {"dtype": "F64", "shape": [2305843009213693952], "data_offsets": [0, 0]}})", 0),
                DS_DATA_LOSS),
      "overflows"));
}

TEST(SafetensorsMalformedTest, DuplicateTensorNames) {
  const std::string msg = openError(safetensorsBytes(R"({"w": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                                                         "w": {"dtype": "U8", "shape": [4], "data_offsets": [4, 8]}})",
                                                     8),
                                    DS_DATA_LOSS);
  EXPECT_TRUE(contains(msg, "duplicate JSON key 'w'"));
}

TEST(SafetensorsMalformedTest, MetadataMustBeStringMap) {
  EXPECT_TRUE(contains(openError(safetensorsBytes(R"({"__metadata__": {"format": 1}})", 0), DS_DATA_LOSS),
                       "__metadata__ value 'format'"));
  openError(safetensorsBytes(R"({"__metadata__": [1]})", 0), DS_DATA_LOSS);
}

TEST(SafetensorsMalformedTest, MissingFileIsNotFound) {
  TempDir dir;
  auto file = SafetensorsFile::open(dir.file("absent.safetensors"));
  ASSERT_FALSE(file.isOk());
  EXPECT_EQ(file.status().code(), DS_NOT_FOUND);
  EXPECT_TRUE(contains(file.status().message(), "absent.safetensors"));
}

// Deterministic bytes; every byte position differs so misplaced ranges would show.
std::vector<uint8_t> patternBytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed * 31 + i * 7);
  return v;
}

TEST(SafetensorsRoundTripTest, EveryDtype) {
  TempDir dir;
  SafetensorsWriter writer;
  const DType all[] = {DType::kF64, DType::kF32, DType::kF16, DType::kBF16, DType::kF8_E4M3,
                       DType::kF8_E5M2, DType::kI64, DType::kI32, DType::kI16, DType::kI8,
                       DType::kU64, DType::kU32, DType::kU16, DType::kU8, DType::kBool};
  std::vector<std::vector<uint8_t>> payloads;
  for (DType d : all) {
    payloads.push_back(patternBytes(15 * dtypeSize(d), static_cast<uint8_t>(d)));
    ASSERT_TRUE(writer.add(std::string("t.") + dtypeName(d), d, {3, 5}, payloads.back().data(),
                           payloads.back().size()).isOk());
  }
  ASSERT_TRUE(writer.add("empty", DType::kF32, {0, 7}, nullptr, 0).isOk());
  const float scalar = 2.5f;
  ASSERT_TRUE(writer.add("scalar", DType::kF32, {}, &scalar, 4).isOk());
  writer.setMetadata("format", "pt");
  const std::string path = dir.file("all.safetensors");
  ASSERT_TRUE(writer.write(path).isOk());

  auto opened = SafetensorsFile::open(path);
  ASSERT_TRUE(opened.isOk()) << opened.status().toString();
  const SafetensorsFile& file = *opened.value();
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.tensors().size(), std::size(all) + 2);
  EXPECT_EQ((8 + file.headerSize()) % 8, 0u) << "data area must start 8-byte aligned";
  for (size_t i = 0; i < std::size(all); ++i) {
    const TensorInfo* t = file.find(std::string("t.") + dtypeName(all[i]));
    ASSERT_NE(t, nullptr) << dtypeName(all[i]);
    EXPECT_EQ(t->dtype, all[i]);
    EXPECT_EQ(t->shape, (std::vector<int64_t>{3, 5}));
    EXPECT_EQ(t->numel, 15u);
    ASSERT_EQ(t->nbytes, payloads[i].size());
    EXPECT_EQ(std::memcmp(file.data(*t), payloads[i].data(), t->nbytes), 0) << dtypeName(all[i]);
  }
  const TensorInfo* s = file.find("scalar");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->shape.empty());
  float read_scalar;
  std::memcpy(&read_scalar, file.data(*s), 4);
  EXPECT_EQ(read_scalar, 2.5f);
  EXPECT_EQ(file.find("empty")->nbytes, 0u);
  EXPECT_EQ(file.find("nope"), nullptr);
  // Sorted by name, and the tensors tile the data area with no gap (what other readers require).
  uint64_t covered = 0;
  for (size_t i = 0; i < file.tensors().size(); ++i) {
    if (i > 0) {
      EXPECT_LT(file.tensors()[i - 1].name, file.tensors()[i].name);
    }
    covered += file.tensors()[i].nbytes;
  }
  EXPECT_EQ(covered, file.fileSize() - 8 - file.headerSize());
}

TEST(SafetensorsWriterTest, RejectsBadInput) {
  SafetensorsWriter writer;
  const uint8_t bytes[8] = {};
  EXPECT_EQ(writer.add("a", DType::kF32, {3}, bytes, 8).code(), DS_INVALID_ARGUMENT);  // 12 needed
  EXPECT_EQ(writer.add("a", DType::kF32, {-2}, bytes, 8).code(), DS_INVALID_ARGUMENT);
  EXPECT_EQ(writer.add("__metadata__", DType::kU8, {8}, bytes, 8).code(), DS_INVALID_ARGUMENT);
  ASSERT_TRUE(writer.add("a", DType::kF32, {2}, bytes, 8).isOk());
  EXPECT_EQ(writer.add("a", DType::kF32, {2}, bytes, 8).code(), DS_INVALID_ARGUMENT);
  EXPECT_EQ(writer.size(), 1u);
}

TEST(SafetensorsWriterTest, WriteIsAtomic) {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  writeBytes(path, "old contents");
  SafetensorsWriter writer;
  const std::vector<float> data = {1, 2, 3};
  ASSERT_TRUE(writer.addBorrowed("x", DType::kF32, {3}, data.data(), 12).isOk());
  ASSERT_TRUE(writer.write(path).isOk());
  auto opened = SafetensorsFile::open(path);
  ASSERT_TRUE(opened.isOk()) << opened.status().toString();
  EXPECT_EQ(opened.value()->find("x")->nbytes, 12u);
  // A failed write (directory missing) reports the path and leaves nothing behind.
  Status failed = writer.write(dir.file("missing/dir/w.safetensors"));
  EXPECT_FALSE(failed.isOk());
  EXPECT_TRUE(contains(failed.message(), "missing/dir"));
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    ++entries;
    EXPECT_EQ(e.path().filename(), "w.safetensors") << "stray temp file";
  }
  EXPECT_EQ(entries, 1u);
}

}  // namespace
}  // namespace ds
