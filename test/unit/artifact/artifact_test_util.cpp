// Test artifact builders: the tiny model's metadata, a writer run, and an independent assembler.
#include "artifact_test_util.h"

#include "artifact/layout.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

namespace ds::artifact::testing {
namespace {

// Removes every freshDir() when the test binary ends, so runs leave nothing in TMPDIR.
class TempDirs : public ::testing::Environment {
 public:
  static std::vector<std::string>& dirs() {
    static std::vector<std::string> d;
    return d;
  }
  void TearDown() override {
    for (const std::string& d : dirs()) {
      std::error_code ec;
      std::filesystem::remove_all(d, ec);
    }
  }
};
[[maybe_unused]] ::testing::Environment* const kTempDirs =
    ::testing::AddGlobalTestEnvironment(new TempDirs());

uint64_t alignTo64(uint64_t v) { return (v + 63) & ~uint64_t{63}; }

uint64_t nbytesOf(const TinyModel::TensorSpec& t) {
  uint64_t n = t.dtype == fb::DType_F32 ? 4 : t.dtype == fb::DType_F8_E4M3 ? 1 : 2;
  for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
  return n;
}

}  // namespace

std::vector<TinyModel::TensorSpec> TinyModel::tensors() {
  const int64_t qkv_rows = (kHeads + 2 * kKvHeads) * kHeadDim;
  return {{"embed", fb::DType_F32, {kVocab, kHidden}, -1},
          {"layers.0.input_norm", fb::DType_BF16, {kHidden}, -1},
          {"layers.0.qkv", fb::DType_F8_E4M3, {qkv_rows, kHidden}, 3},
          {"layers.0.qkv.scale", fb::DType_F32, {1, 1}, -1},
          {"layers.0.o_proj", fb::DType_BF16, {kHidden, kHidden}, -1},
          {"lm_head", fb::DType_BF16, {kVocab, kHidden}, -1}};
}

std::vector<uint8_t> TinyModel::bytes(size_t i, uint64_t nbytes) {
  std::vector<uint8_t> out(nbytes);
  for (uint64_t j = 0; j < nbytes; ++j) out[j] = static_cast<uint8_t>(j * 131 + i * 17 + 1);
  return out;
}

std::vector<uint8_t> tinyMetadata(const std::vector<ArtifactWriter::SegmentInfo>& segments,
                                  uint32_t schema_version, const TinyPlanEdit& edit,
                                  const TinyTensorEdit& tensor_edit) {
  using TM = TinyModel;
  flatbuffers::FlatBufferBuilder b;
  const auto specs = TM::tensors();
  std::vector<flatbuffers::Offset<fb::Tensor>> tensors;
  int64_t params = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto& t = specs[i];
    const std::vector<int64_t> block = {128, 128};
    TinyTensorFields f{t.dtype, nbytesOf(t)};
    if (tensor_edit) tensor_edit(i, f);
    tensors.push_back(fb::CreateTensorDirect(b, t.name.c_str(), t.name.c_str(), f.dtype, &t.shape,
                                             static_cast<uint32_t>(i), f.nbytes, t.scale,
                                             t.scale >= 0 ? &block : nullptr, 0, 0, f.quant,
                                             f.group_size, f.qscale, f.qzero));
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    if (t.name.find(".scale") == std::string::npos) params += n;  // scales are not parameters
  }
  std::vector<flatbuffers::Offset<fb::Segment>> segs;
  for (const auto& s : segments) segs.push_back(fb::CreateSegment(b, s.offset, s.size, s.xxh64));

  const std::vector<int32_t> eos = {2};
  auto model = fb::CreateModelInfoDirect(b, "llama", TM::kVocab, TM::kHidden, TM::kLayers,
                                         TM::kHeads, TM::kKvHeads, TM::kHeadDim, TM::kMaxPos, 1,
                                         &eos, params);
  const std::vector<flatbuffers::Offset<flatbuffers::String>> features = {b.CreateString("avx2")};
  auto target = fb::CreateTarget(b, b.CreateString("host"), b.CreateVector(features));

  // Buffers: ids, positions, x, h, q, k, v, attn, o, logit_rows, logits: a plan the launch ABI
  // check accepts (operand kinds, shapes against the weights and the KV cache).
  std::vector<flatbuffers::Offset<fb::Buffer>> buffers;
  auto buf = [&](fb::RowSpace rows, std::vector<int64_t> cols, fb::DType dt) {
    buffers.push_back(fb::CreateBufferDirect(b, rows, 0, &cols, dt));
  };
  const auto Tok = fb::RowSpace_Tokens;
  buf(Tok, {}, fb::DType_I32);
  buf(Tok, {}, fb::DType_I32);
  buf(Tok, {TM::kHidden}, fb::DType_BF16);
  buf(Tok, {TM::kHidden}, fb::DType_BF16);
  buf(Tok, {TM::kHeads, TM::kHeadDim}, fb::DType_BF16);
  buf(Tok, {TM::kKvHeads, TM::kHeadDim}, fb::DType_BF16);
  buf(Tok, {TM::kKvHeads, TM::kHeadDim}, fb::DType_BF16);
  buf(Tok, {TM::kHeads, TM::kHeadDim}, fb::DType_BF16);
  buf(Tok, {TM::kHidden}, fb::DType_BF16);
  buf(fb::RowSpace_LogitRows, {}, fb::DType_I32);
  buf(fb::RowSpace_LogitRows, {TM::kVocab}, fb::DType_F32);

  using FBB = flatbuffers::FlatBufferBuilder;
  auto norm = [](FBB& f) { return fb::CreateNormParams(f, 1e-5f).Union(); };
  std::vector<TinyLaunch> specs_l = {
      {fb::Kernel_Embed, {0}, {2}, {0}},
      {fb::Kernel_RmsNorm, {2}, {3}, {1}, fb::Params_NormParams, norm},
      {fb::Kernel_QKVRope, {3, 1}, {4, 5, 6}, {2, 2, 2}, fb::Params_RopeParams,
       [](FBB& f) { return fb::CreateRopeParams(f, 10000.0, TM::kHeadDim).Union(); }},
      {fb::Kernel_Attention, {4, 5, 6, 1}, {7}, {}, fb::Params_AttentionParams,
       [](FBB& f) { return fb::CreateAttentionParams(f, 0, 0.5f, 0).Union(); }},
      {fb::Kernel_Linear, {7}, {8}, {4}},
      {fb::Kernel_Add, {2, 8}, {2}, {}},
      {fb::Kernel_RmsNorm, {2}, {3}, {1}, fb::Params_NormParams, norm},
      {fb::Kernel_Logits, {3, 9}, {10}, {5}},
  };
  if (edit) edit(specs_l);
  std::vector<flatbuffers::Offset<fb::Launch>> launches;
  for (const TinyLaunch& l : specs_l)
    launches.push_back(fb::CreateLaunchDirect(b, l.kernel, &l.in, &l.out, &l.weights,
                                              l.params_type, l.params ? l.params(b) : 0));
  auto kv = fb::CreateKVCacheSpec(b, fb::KVKind_GQA, TM::kLayers, TM::kBlockSize, TM::kKvHeads,
                                  TM::kHeadDim, TM::kHeadDim, 0, 0, fb::DType_BF16);
  auto plan = fb::CreatePlanDirect(b, &buffers, &launches, 0, 1, 9, 10, kv);

  std::vector<flatbuffers::Offset<fb::Blob>> blobs;
  for (const auto& [name, text] : TM::tokenizerFiles()) {
    const std::vector<uint8_t> data(text.begin(), text.end());
    blobs.push_back(fb::CreateBlobDirect(b, name.c_str(), &data));
  }
  auto root = fb::CreateArtifactDirect(b, schema_version, "ds-compile 0.1.0 (test)",
                                       "/models/tiny-llama", model, target, &tensors, &segs, plan,
                                       &blobs, TM::chatTemplate());
  fb::FinishArtifactBuffer(b, root);
  return std::vector<uint8_t>(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
}

Status writeTiny(const std::string& path, const SecretKey* signing_key) {
  StatusOr<std::unique_ptr<ArtifactWriter>> w = ArtifactWriter::create(path);
  if (!w.isOk()) return w.status();
  if (signing_key) (*w)->signWith(*signing_key);
  const auto specs = TinyModel::tensors();
  for (size_t i = 0; i < specs.size(); ++i) {
    const std::vector<uint8_t> data = TinyModel::bytes(i, nbytesOf(specs[i]));
    StatusOr<uint32_t> idx = (*w)->addSegmentFromMemory(data.data(), data.size());
    if (!idx.isOk()) return idx.status();
  }
  const std::vector<uint8_t> md = tinyMetadata((*w)->segments());
  return (*w)->finish(md.data(), md.size());
}

std::vector<ArtifactWriter::SegmentInfo> assembledSegments(
    const std::vector<std::vector<uint8_t>>& segments) {
  std::vector<ArtifactWriter::SegmentInfo> out;
  uint64_t end = sizeof(FileHeader);
  for (const auto& s : segments) {
    const uint64_t off = alignTo64(end);
    out.push_back({off, s.size(), checksum(s.data(), s.size())});
    end = off + s.size();
  }
  return out;
}

std::vector<uint8_t> assemble(const std::vector<std::vector<uint8_t>>& segments,
                              const std::vector<uint8_t>& metadata) {
  const auto infos = assembledSegments(segments);
  std::vector<uint8_t> file(sizeof(FileHeader), 0);
  for (size_t i = 0; i < segments.size(); ++i) {
    file.resize(infos[i].offset, 0);
    file.insert(file.end(), segments[i].begin(), segments[i].end());
  }
  FileHeader h{};
  std::memcpy(h.magic, kMagic, sizeof(kMagic));
  h.schema_version = kSchemaVersion;
  h.header_size = sizeof(FileHeader);
  h.metadata_offset = alignTo64(file.size());
  h.metadata_size = metadata.size();
  h.metadata_xxh64 = checksum(metadata.data(), metadata.size());
  h.data_offset = sizeof(FileHeader);
  file.resize(h.metadata_offset, 0);
  file.insert(file.end(), metadata.begin(), metadata.end());
  h.file_size = file.size();
  putHeader(&file, h);
  return file;
}

std::vector<uint8_t> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void writeFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

FileHeader headerOf(const std::vector<uint8_t>& file) {
  FileHeader h{};
  std::memcpy(&h, file.data(), sizeof(h));
  return h;
}

void putHeader(std::vector<uint8_t>* file, FileHeader h) {
  h.header_xxh64 = headerChecksum(h);
  std::memcpy(file->data(), &h, sizeof(h));
}

void replaceMetadata(std::vector<uint8_t>* file, const std::vector<uint8_t>& metadata) {
  FileHeader h = headerOf(*file);
  ASSERT_EQ(metadata.size(), h.metadata_size);
  std::memcpy(file->data() + h.metadata_offset, metadata.data(), metadata.size());
  h.metadata_xxh64 = checksum(metadata.data(), metadata.size());
  putHeader(file, h);
}

std::string freshDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "ds_artifact_" + std::to_string(::getpid()) +
                          "_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  TempDirs::dirs().push_back(dir);
  return dir;
}

std::vector<std::string> listDir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
  }
  return names;
}

}  // namespace ds::artifact::testing
