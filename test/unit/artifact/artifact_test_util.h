// Builders for small test artifacts (writer-made and hand-assembled) and file-patching helpers.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "artifact/artifact_writer.h"
#include "artifact/format.h"
#include "artifact_generated.h"
#include "base/status.h"

namespace ds::artifact::testing {

// The tiny model the tests write: one llama layer, GQA KV cache, five tensors (one FP8 with a
// block scale), a plan, two tokenizer files and a chat template.
struct TinyModel {
  static constexpr int64_t kVocab = 16, kHidden = 8, kLayers = 1, kHeads = 2, kKvHeads = 1,
                           kHeadDim = 4, kMaxPos = 128, kBlockSize = 16;
  struct TensorSpec {
    std::string name;
    fb::DType dtype;
    std::vector<int64_t> shape;
    int32_t scale;
  };
  static std::vector<TensorSpec> tensors();
  // Deterministic contents of tensor `i` (`nbytes` bytes).
  static std::vector<uint8_t> bytes(size_t i, uint64_t nbytes);
  static const char* chatTemplate() { return "{{ messages[0].content }}"; }
  static std::vector<std::pair<std::string, std::string>> tokenizerFiles() {
    return {{"tokenizer.json", "{\"model\": {\"type\": \"BPE\"}}"},
            {"tokenizer_config.json", "{\"bos_token\": \"<s>\"}"}};
  }
};

// One launch of the tiny plan before it is built (tests edit the list to craft bad plans).
// Buffers: 0 ids, 1 positions, 2 x, 3 h, 4 q [2, 4], 5 k [1, 4], 6 v [1, 4], 7 attn [2, 4],
// 8 o, 9 logit rows, 10 logits; tensors as TinyModel::tensors().
struct TinyLaunch {
  fb::Kernel kernel;
  std::vector<int32_t> in, out, weights;
  fb::Params params_type = fb::Params_NONE;
  std::function<flatbuffers::Offset<void>(flatbuffers::FlatBufferBuilder&)> params;
};
using TinyPlanEdit = std::function<void(std::vector<TinyLaunch>&)>;

// A tensor-table entry of the tiny metadata as written (tests edit it to craft bad tables).
struct TinyTensorFields {
  fb::DType dtype;
  uint64_t nbytes;
  fb::QuantKind quant = fb::QuantKind_None;
  int64_t group_size = 0;
  int32_t qscale = -1, qzero = -1;
};
using TinyTensorEdit = std::function<void(size_t index, TinyTensorFields&)>;

// Metadata for TinyModel over `segments` (one per tensor, in order); a wrong `schema_version`
// makes deliberately inconsistent metadata; `edit` changes the launches first, `tensor_edit` the
// tensor entries.
std::vector<uint8_t> tinyMetadata(const std::vector<ArtifactWriter::SegmentInfo>& segments,
                                  uint32_t schema_version = kSchemaVersion,
                                  const TinyPlanEdit& edit = nullptr,
                                  const TinyTensorEdit& tensor_edit = nullptr);

// Writes TinyModel with ArtifactWriter (signed with `signing_key` unless null).
Status writeTiny(const std::string& path, const SecretKey* signing_key = nullptr);

// Lays out header + segments + metadata exactly as docs/artifact.md says, independently of the
// writer, so tests can hand-craft metadata the writer would refuse.
std::vector<uint8_t> assemble(const std::vector<std::vector<uint8_t>>& segments,
                              const std::vector<uint8_t>& metadata);
// SegmentInfo of segments as assemble() places them.
std::vector<ArtifactWriter::SegmentInfo> assembledSegments(
    const std::vector<std::vector<uint8_t>>& segments);

std::vector<uint8_t> readFile(const std::string& path);
void writeFile(const std::string& path, const std::vector<uint8_t>& bytes);
FileHeader headerOf(const std::vector<uint8_t>& file);
// Stores `h` at the start of `file`, recomputing its checksum.
void putHeader(std::vector<uint8_t>* file, FileHeader h);
// Replaces the metadata bytes in place (same size) and fixes both checksums, so only the
// flatbuffer Verifier can notice what changed.
void replaceMetadata(std::vector<uint8_t>* file, const std::vector<uint8_t>& metadata);

// A fresh empty directory for one test.
std::string freshDir(const std::string& name);
std::vector<std::string> listDir(const std::string& dir);

}  // namespace ds::artifact::testing
