// Artifact tampering for tests: edits bytes, then recomputes the XXH3 checksums as an attacker would.
#include "artifact_tamper.h"

#include <cstring>
#include <fstream>
#include <iterator>

#include "artifact/format.h"
#include "artifact/layout.h"
#include "artifact_generated.h"

namespace ds::test {
namespace {

bool readHeader(const std::vector<uint8_t>& file, artifact::FileHeader* h) {
  if (file.size() < sizeof(*h)) return false;
  std::memcpy(h, file.data(), sizeof(*h));
  return h->metadata_offset + h->metadata_size <= file.size();
}

void writeHeader(std::vector<uint8_t>* file, artifact::FileHeader h) {
  h.header_xxh64 = artifact::headerChecksum(h);
  std::memcpy(file->data(), &h, sizeof(h));
}

}  // namespace

std::string flipCodeByte(std::vector<uint8_t>* file, uint64_t at) {
  artifact::FileHeader h;
  if (!readHeader(*file, &h)) return "not an artifact";
  uint8_t* md = file->data() + h.metadata_offset;
  const fb::Artifact* meta = fb::GetArtifact(md);
  if (!meta->code() || meta->code()->size() == 0) return "the artifact has no code object";
  const uint32_t index = meta->code()->Get(0)->segment();
  const fb::Segment* seg = meta->segments()->Get(index);
  if (at >= seg->size()) return "byte " + std::to_string(at) + " is outside the code segment";
  const uint64_t old_sum = seg->xxh64();
  (*file)[seg->offset() + at] ^= 0x01;
  const uint64_t new_sum = artifact::checksum(file->data() + seg->offset(), seg->size());
  // The flatbuffer has no mutators: the old checksum's 8 bytes occur once in the metadata.
  uint8_t* found = nullptr;
  for (uint64_t i = 0; i + 8 <= h.metadata_size; ++i) {
    if (std::memcmp(md + i, &old_sum, 8) != 0) continue;
    if (found) return "the code segment's checksum occurs twice in the metadata";
    found = md + i;
  }
  if (!found) return "the code segment's checksum is not in the metadata";
  std::memcpy(found, &new_sum, 8);
  h.metadata_xxh64 = artifact::checksum(md, h.metadata_size);
  writeHeader(file, h);
  return "";
}

std::string stripSignature(std::vector<uint8_t>* file) {
  artifact::FileHeader h;
  if (!readHeader(*file, &h)) return "not an artifact";
  const uint64_t end = h.metadata_offset + h.metadata_size;
  if (h.file_size == end) return "the artifact is not signed";
  file->resize(end);
  h.file_size = end;
  writeHeader(file, h);
  return "";
}

std::vector<uint8_t> readFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

bool writeFileBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

}  // namespace ds::test
