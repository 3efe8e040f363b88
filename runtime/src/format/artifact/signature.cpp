// Artifact signatures: the trailer's layout checks, the signed digest, signing and verifying.
#include "artifact/signature.h"

#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <vector>

#include "artifact/layout.h"
#include "artifact/metadata_check.h"

namespace ds::artifact {
namespace {

constexpr char kDomain[] = "ds-artifact-signature-v1";

std::string n2s(uint64_t v) { return std::to_string(v); }

SignatureDigest digestOf(const FileHeader& header, const SignatureTrailer& trailer,
                         const uint8_t* metadata, size_t metadata_size,
                         const std::vector<CodeHash>& code) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, crypto_generichash_BYTES_MAX);
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(kDomain), sizeof(kDomain) - 1);
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(&header), sizeof(header));
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(&trailer),
                            offsetof(SignatureTrailer, signature));
  crypto_generichash_update(&st, metadata, metadata_size);
  for (const CodeHash& h : code) crypto_generichash_update(&st, h.data(), h.size());
  SignatureDigest d;
  crypto_generichash_final(&st, d.data(), d.size());
  return d;
}

// The segment a code object lives in, or null (checkReferences refuses such metadata; the
// digest then simply fails to match).
const fb::Segment* codeSegment(const fb::Artifact& meta, const fb::CodeObject& code) {
  const auto* segs = meta.segments();
  return segs && code.segment() < segs->size() ? segs->Get(code.segment()) : nullptr;
}

Status preadAll(int fd, void* dst, uint64_t size, uint64_t offset, const std::string& what) {
  auto* p = static_cast<uint8_t*>(dst);
  while (size > 0) {
    const ssize_t n = ::pread(fd, p, static_cast<size_t>(std::min<uint64_t>(size, 1u << 30)),
                              static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return internalError(what + ": read failed at offset " + n2s(offset));
    p += n;
    size -= static_cast<uint64_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status::ok();
}

Status pwriteAll(int fd, const void* src, size_t size, uint64_t offset, const std::string& what) {
  const auto* p = static_cast<const uint8_t*>(src);
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return internalError(what + ": write failed at offset " + n2s(offset) + ": " +
                           std::strerror(errno));
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status::ok();
}

}  // namespace

CodeHash codeHash(const uint8_t* data, size_t size) {
  CodeHash h;
  crypto_generichash(h.data(), h.size(), data, size, nullptr, 0);
  return h;
}

StatusOr<const SignatureTrailer*> findSignatureTrailer(const std::string& path,
                                                       const uint8_t* base, uint64_t size,
                                                       const FileHeader& header) {
  const uint64_t metadata_end = header.metadata_offset + header.metadata_size;
  if (header.file_size == metadata_end) return static_cast<const SignatureTrailer*>(nullptr);
  uint64_t at = 0;
  if (!alignUp(metadata_end, kAlignment, &at) || header.file_size != size ||
      !rangeInside(at, sizeof(SignatureTrailer), metadata_end, header.file_size) ||
      at + sizeof(SignatureTrailer) != header.file_size) {
    return dataLoss(path + ": " + n2s(header.file_size - metadata_end) +
                    " bytes after the metadata are not a signature trailer (expected none, or " +
                    n2s(sizeof(SignatureTrailer)) + " at the next 64-byte boundary)");
  }
  const auto* t = reinterpret_cast<const SignatureTrailer*>(base + at);
  static const uint8_t kZeros[sizeof(t->reserved)] = {};
  if (std::memcmp(t->magic, kSignatureMagic, sizeof(kSignatureMagic)) != 0 ||
      t->trailer_size != sizeof(SignatureTrailer) ||
      std::memcmp(t->reserved, kZeros, sizeof(kZeros)) != 0) {
    return dataLoss(path + ": the signature trailer at offset " + n2s(at) + " is malformed");
  }
  if (t->algorithm != kSignatureEd25519) {
    return unsupported(path + ": signed with algorithm " + n2s(t->algorithm) +
                       ", this runtime verifies Ed25519 (" + n2s(kSignatureEd25519) + ") only");
  }
  return t;
}

bool signatureVerifies(const uint8_t* base, const FileHeader& header, const fb::Artifact& meta,
                       const SignatureTrailer& trailer, std::vector<CodeHash>* code_hashes) {
  if (sodium_init() < 0) return false;
  std::vector<CodeHash> code;
  if (meta.code()) {
    for (const fb::CodeObject* c : *meta.code()) {
      const fb::Segment* s = codeSegment(meta, *c);
      if (!s) return false;
      code.push_back(codeHash(base + s->offset(), static_cast<size_t>(s->size())));
    }
  }
  const SignatureDigest d = digestOf(header, trailer, base + header.metadata_offset,
                                     static_cast<size_t>(header.metadata_size), code);
  if (crypto_sign_verify_detached(trailer.signature, d.data(), d.size(), trailer.public_key) != 0)
    return false;
  if (code_hashes) *code_hashes = std::move(code);
  return true;
}

Status signArtifactFile(int fd, const std::string& what, const SecretKey& key) {
  if (sodium_init() < 0) return internalError("libsodium failed to initialize");
  FileHeader h;
  DS_RETURN_IF_ERROR(preadAll(fd, &h, sizeof(h), 0, what));
  struct stat st;
  if (::fstat(fd, &st) != 0) return internalError(what + ": fstat failed: " + std::strerror(errno));
  if (std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0 || h.schema_version != kSchemaVersion ||
      headerChecksum(h) != h.header_xxh64) {
    return invalidArgument(what + ": not an artifact this runtime writes (magic, schema version "
                                  "or header checksum)");
  }
  if (h.file_size != static_cast<uint64_t>(st.st_size) ||
      h.metadata_offset + h.metadata_size != h.file_size) {
    return invalidArgument(what + ": already signed, or the file does not end with its metadata");
  }
  std::vector<uint8_t> metadata(static_cast<size_t>(h.metadata_size));
  DS_RETURN_IF_ERROR(preadAll(fd, metadata.data(), metadata.size(), h.metadata_offset, what));
  if (checksum(metadata.data(), metadata.size()) != h.metadata_xxh64)
    return invalidArgument(what + ": metadata checksum mismatch");
  const fb::Artifact* meta = nullptr;
  DS_RETURN_IF_ERROR(verifyMetadataBuffer(what, metadata.data(), metadata.size(), &meta));

  std::vector<CodeHash> code;
  if (meta->code()) {
    std::vector<uint8_t> bytes;
    for (const fb::CodeObject* c : *meta->code()) {
      const fb::Segment* s = codeSegment(*meta, *c);
      if (!s || !rangeInside(s->offset(), s->size(), h.data_offset, h.metadata_offset))
        return invalidArgument(what + ": a code object names a segment outside the file");
      bytes.resize(static_cast<size_t>(s->size()));
      DS_RETURN_IF_ERROR(preadAll(fd, bytes.data(), bytes.size(), s->offset(), what));
      code.push_back(codeHash(bytes.data(), bytes.size()));
    }
  }

  uint64_t at = 0;
  if (!alignUp(h.file_size, kAlignment, &at))
    return invalidArgument(what + ": no room for a signature");
  SignatureTrailer t{};
  std::memcpy(t.magic, kSignatureMagic, sizeof(kSignatureMagic));
  t.algorithm = kSignatureEd25519;
  t.trailer_size = sizeof(SignatureTrailer);
  const PublicKey pub = key.publicKey();
  std::memcpy(t.public_key, pub.bytes.data(), sizeof(t.public_key));
  FileHeader signed_header = h;
  signed_header.file_size = at + sizeof(SignatureTrailer);
  signed_header.header_xxh64 = headerChecksum(signed_header);
  const SignatureDigest d = digestOf(signed_header, t, metadata.data(), metadata.size(), code);
  if (crypto_sign_detached(t.signature, nullptr, d.data(), d.size(), key.bytes.data()) != 0)
    return internalError(what + ": signing failed");

  static const uint8_t kZeros[kAlignment] = {};
  DS_RETURN_IF_ERROR(pwriteAll(fd, kZeros, static_cast<size_t>(at - h.file_size), h.file_size, what));
  DS_RETURN_IF_ERROR(pwriteAll(fd, &t, sizeof(t), at, what));
  return pwriteAll(fd, &signed_header, sizeof(signed_header), 0, what);
}

}  // namespace ds::artifact
