// The artifact file format: fixed header, 64-byte aligned weight segments, flatbuffer metadata.
//
//   [0, 64)                FileHeader (little-endian)
//   [data_offset, ...)     segment 0, segment 1, ... each 64-byte aligned (weights; offsets,
//                          sizes and xxh64 listed in the metadata), zero padding between them
//   [metadata_offset, end) metadata: a ds.fb.Artifact flatbuffer (file_identifier "DSA1"),
//                          64-byte aligned, the last thing in the file
//
// The metadata comes last because it records every segment's checksum, known only after the
// segment is written; the header (written last, at offset 0) is the entry point that locates it.
// Checksums are XXH3_64bits (xxhash, seed 0; the fields keep the name *xxh64 = "64-bit xxhash"):
// the header checksums itself and the metadata; the metadata checksums every segment. Weights are mmapped at load, never copied, so tensors over
// 2 GB work (no flatbuffer size limit applies to segments). See docs/artifact.md.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ds::artifact {

constexpr char kMagic[8] = {'D', 'S', 'A', 'R', 'T', 'F', 'C', 'T'};
// Bump on any incompatible change of this header or of runtime/schema/artifact.fbs.
// 2: Launch.weights are the launch ABI's slots (-1: an absent optional slot).
constexpr uint32_t kSchemaVersion = 2;
constexpr uint64_t kAlignment = 64;

struct FileHeader {
  char magic[8];
  uint32_t schema_version;
  uint32_t header_size;        // sizeof(FileHeader)
  uint64_t metadata_offset;    // after the last segment, 64-byte aligned
  uint64_t metadata_size;
  uint64_t metadata_xxh64;
  uint64_t data_offset;        // first segment (64, right after the header)
  uint64_t file_size;          // total, to detect truncation before reading anything else
  uint64_t header_xxh64;       // of the 56 bytes above
};
static_assert(sizeof(FileHeader) == 64, "the header is 64 bytes");
static_assert(offsetof(FileHeader, header_xxh64) == 56, "the header checksum covers 56 bytes");

}  // namespace ds::artifact
