// The artifact file format: fixed header, 64-byte aligned weight segments, flatbuffer metadata.
//
//   [0, 64)                FileHeader (little-endian)
//   [data_offset, ...)     segment 0, segment 1, ... each 64-byte aligned (weights; offsets,
//                          sizes and xxh64 listed in the metadata), zero padding between them
//   [metadata_offset, ...) metadata: a ds.fb.Artifact flatbuffer (file_identifier "DSA1"),
//                          64-byte aligned; the last thing in an unsigned file
//   [sig_offset, end)      signed files only: a SignatureTrailer, at the first 64-byte aligned
//                          offset after the metadata (docs/artifact.md)
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

// The optional Ed25519 signature (artifact/signature.h, docs/artifact.md): the last 128 bytes of
// a signed file. No header field marks it: a file is signed exactly when file_size exceeds the
// metadata's end, so runtimes that predate signing read signed artifacts unchanged (they ignore
// the trailer), and no schema version bump was needed.
constexpr char kSignatureMagic[8] = {'D', 'S', 'A', 'S', 'I', 'G', 'N', '1'};
constexpr uint32_t kSignatureEd25519 = 1;
struct SignatureTrailer {
  char magic[8];
  uint32_t algorithm;       // kSignatureEd25519
  uint32_t trailer_size;    // sizeof(SignatureTrailer)
  uint8_t public_key[32];   // the signer's Ed25519 public key
  uint8_t reserved[16];     // zero
  uint8_t signature[64];    // Ed25519 over the digest described in artifact/signature.h
};
static_assert(sizeof(SignatureTrailer) == 128, "the signature trailer is 128 bytes");
static_assert(offsetof(SignatureTrailer, signature) == 64, "the signed prefix is 64 bytes");

}  // namespace ds::artifact
