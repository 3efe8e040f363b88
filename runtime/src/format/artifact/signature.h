// Artifact signatures (docs/artifact.md): an Ed25519 signature (libsodium) in a trailer after
// the metadata, over a digest of everything that decides what the artifact does.
//
// The digest (v1) is BLAKE2b-512 of, in order:
//   "ds-artifact-signature-v1"     24 bytes of domain separation
//   the FileHeader as stored       64 bytes: layout, the metadata's checksum, its own checksum
//   the trailer's first 64 bytes   magic, algorithm, size, the signer's public key, reserved
//   the metadata                   every byte: plan, tensors, tokenizer, chat template, code
//                                  table and the segment table with each segment's XXH3 checksum
//   per code object (Artifact.code order): BLAKE2b-256 of its whole segment
//
// Weight segments are covered through their XXH3 checksums, which Artifact::open verifies
// anyway, so a signed artifact costs one BLAKE2b pass over the metadata and the code (kilobytes
// to a few megabytes) and one Ed25519 verification more than an unsigned one. XXH3 is not a
// cryptographic hash: native code is therefore bound by BLAKE2b, not by its checksum.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "artifact/format.h"
#include "artifact/signing_keys.h"
#include "artifact_generated.h"
#include "base/status.h"

namespace ds::artifact {

using SignatureDigest = std::array<uint8_t, 64>;
using CodeHash = std::array<uint8_t, 32>;

// BLAKE2b-256 of a code segment, as the digest includes it.
CodeHash codeHash(const uint8_t* data, size_t size);

// The trailer of a mapped artifact whose header passed its checks (metadata range inside the
// file): nullptr when the file is unsigned (it ends with the metadata); DATA_LOSS naming `path`
// when the bytes after the metadata are not one well-formed trailer; UNSUPPORTED for a trailer of
// an algorithm this runtime does not know.
StatusOr<const SignatureTrailer*> findSignatureTrailer(const std::string& path,
                                                       const uint8_t* base, uint64_t size,
                                                       const FileHeader& header);

// Whether `trailer`'s signature verifies under its own public key over the mapped file's digest.
// `meta` is the verified metadata root (its code objects' segments lie inside the file). When it
// does and `code_hashes` is not null, *code_hashes holds each code object's hash that was signed.
bool signatureVerifies(const uint8_t* base, const FileHeader& header, const fb::Artifact& meta,
                       const SignatureTrailer& trailer,
                       std::vector<CodeHash>* code_hashes = nullptr);

// Signs the complete, unsigned artifact open read-write at `fd` (its header and checksums
// final): appends the trailer at the first 64-byte aligned offset after the metadata and
// rewrites the header's file_size and checksum. `what` names the file in errors.
Status signArtifactFile(int fd, const std::string& what, const SecretKey& key);

}  // namespace ds::artifact
