// Opens a .dsa artifact: mmaps it, verifies header, metadata and (optionally) weight checksums.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "artifact/format.h"
#include "artifact/signing_keys.h"
#include "artifact_generated.h"
#include "base/status.h"

namespace ds {
class MappedFile;
}

namespace ds::artifact {

class Artifact {
 public:
  struct Options {
    // Hashes every weight segment at open (reads all weights once). Off: only header and
    // metadata are checked, and the weights are paged in lazily when used.
    bool verify_weights = true;
    // Not empty: the artifact must carry a signature (artifact/signature.h) by one of these
    // keys that verifies, else open() fails. Implies verify_weights: the signature covers the
    // weights through their checksums.
    std::vector<PublicKey> trusted_keys;
  };

  // mmaps the file and checks, in this order, with one message each naming the file:
  // shorter than the header (DATA_LOSS "truncated"), wrong magic (INVALID_ARGUMENT "not a ds
  // artifact"), schema version != kSchemaVersion (FAILED_PRECONDITION, says to rebuild with
  // ds-compile), header checksum, header_size, file_size vs the real size ("truncated" /
  // "trailing bytes"), metadata range, metadata checksum, flatbuffers Verifier + file
  // identifier, segment ranges (inside the file, 64-byte aligned, disjoint), tensor/plan
  // references, the signature trailer's layout, the signature when options.trusted_keys is not
  // empty (unsigned or signed by another key: FAILED_PRECONDITION; not verifying: DATA_LOSS),
  // and each segment's checksum unless !options.verify_weights (hashed on up to 8
  // threads; a mismatch names one bad segment). All other corruption
  // is DATA_LOSS; a missing file NOT_FOUND; a directory INVALID_ARGUMENT.
  static StatusOr<std::unique_ptr<Artifact>> open(const std::string& path);
  static StatusOr<std::unique_ptr<Artifact>> open(const std::string& path, const Options& options);
  ~Artifact();
  Artifact(const Artifact&) = delete;
  Artifact& operator=(const Artifact&) = delete;

  const fb::Artifact* meta() const { return meta_; }  // the verified flatbuffer root
  const FileHeader& header() const { return header_; }
  // Start of segment `index` in the mapping (64-byte aligned); nullptr if out of range.
  const uint8_t* segmentData(uint32_t index) const;
  // The first tensor named `name` (shards of one weight share a name), or nullptr.
  const fb::Tensor* findTensor(std::string_view name) const;
  // A tensor's bytes (t.nbytes() of them): a pointer into the mapping, never a copy.
  const uint8_t* tensorData(const fb::Tensor& t) const { return segmentData(t.segment()); }
  uint64_t fileSize() const;
  // Lets go of the mapped pages of bytes the caller has copied (MappedFile::dropPages).
  void dropPages(const void* p, size_t n) const;
  // The signature trailer (format.h), or nullptr for an unsigned artifact. Verified at open
  // only when Options::trusted_keys was given.
  const SignatureTrailer* signature() const { return signature_; }
  // Whether the signature verifies under the public key it names (false when unsigned). Says
  // the file is unchanged since signing, not who signed it: compare the key (ds-inspect).
  bool signatureVerifies() const;
  // After open() verified the signature under a trusted key: code object `index`'s hash that was
  // signed (artifact/signature.h), so its loader can check the bytes it copies out of the
  // mapping (the file may change after open). Null when no signature was verified.
  const std::array<uint8_t, 32>* verifiedCodeHash(size_t index) const {
    return index < verified_code_hashes_.size() ? &verified_code_hashes_[index] : nullptr;
  }
  // Whether the artifact carries native code (Artifact.code): generated kernels that the CPU
  // device loads into the process unless native code is refused.
  bool hasNativeCode() const { return meta_->code() && meta_->code()->size() > 0; }
  const std::string& path() const;

 private:
  Artifact() = default;
  Status verify(const Options& options);
  Status checkTrusted(const std::vector<PublicKey>& trusted);

  std::unique_ptr<MappedFile> file_;
  FileHeader header_{};
  const fb::Artifact* meta_ = nullptr;
  const SignatureTrailer* signature_ = nullptr;
  std::vector<std::array<uint8_t, 32>> verified_code_hashes_;
  std::unordered_map<std::string_view, const fb::Tensor*> by_name_;
};

}  // namespace ds::artifact
