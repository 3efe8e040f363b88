// Artifact signatures: signed files open under their key and no other; every change made after
// signing, even with all checksums recomputed, is refused when a trusted key is required.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "artifact/artifact_reader.h"
#include "artifact/layout.h"
#include "artifact/signature.h"
#include "artifact_test_util.h"

namespace ds::artifact {
namespace {

KeyPair newKeys() {
  StatusOr<KeyPair> k = generateKeyPair();
  EXPECT_TRUE(k.isOk()) << k.status().toString();
  return k.value();
}

class Signature : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::freshDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    keys_ = newKeys();
    signed_path_ = dir_ + "/signed.dsa";
    unsigned_path_ = dir_ + "/unsigned.dsa";
    ASSERT_TRUE(testing::writeTiny(signed_path_, &keys_.secret_key).isOk());
    ASSERT_TRUE(testing::writeTiny(unsigned_path_).isOk());
    signed_ = testing::readFile(signed_path_);
  }

  StatusOr<std::unique_ptr<Artifact>> openTrusting(const std::string& path,
                                                   std::vector<PublicKey> keys,
                                                   bool verify_weights = true) {
    Artifact::Options o;
    o.trusted_keys = std::move(keys);
    o.verify_weights = verify_weights;
    return Artifact::open(path, o);
  }
  StatusOr<std::unique_ptr<Artifact>> openBytesTrusting(const std::vector<uint8_t>& bytes,
                                                        bool verify_weights = true) {
    path_ = dir_ + "/tampered" + std::to_string(n_++) + ".dsa";
    testing::writeFile(path_, bytes);
    return openTrusting(path_, {keys_.public_key}, verify_weights);
  }
  void expectError(const StatusOr<std::unique_ptr<Artifact>>& r, ds_status_code_t code,
                   const std::string& text, const std::string& file) {
    ASSERT_FALSE(r.isOk()) << "opened (" << text << ")";
    EXPECT_EQ(r.status().code(), code) << r.status().toString();
    EXPECT_NE(r.status().message().find(file), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(text), std::string::npos) << r.status().message();
  }
  const fb::Artifact* meta(const std::vector<uint8_t>& file) const {
    return fb::GetArtifact(file.data() + testing::headerOf(file).metadata_offset);
  }

  std::string dir_, signed_path_, unsigned_path_, path_;
  KeyPair keys_;
  std::vector<uint8_t> signed_;
  int n_ = 0;
};

TEST_F(Signature, SignedFileOpensUnderItsKey) {
  auto a = openTrusting(signed_path_, {keys_.public_key});
  ASSERT_TRUE(a.isOk()) << a.status().toString();
  ASSERT_NE((*a)->signature(), nullptr);
  EXPECT_TRUE((*a)->signatureVerifies());
  EXPECT_EQ(std::memcmp((*a)->signature()->public_key, keys_.public_key.bytes.data(), 32), 0);
  // The trailer is 128 bytes at the first 64-byte boundary after the metadata.
  const FileHeader h = testing::headerOf(signed_);
  uint64_t at = 0;
  ASSERT_TRUE(alignUp(h.metadata_offset + h.metadata_size, kAlignment, &at));
  EXPECT_EQ(h.file_size, at + sizeof(SignatureTrailer));
  EXPECT_EQ(std::memcmp(signed_.data() + at, kSignatureMagic, 8), 0);
}

TEST_F(Signature, SignedFileOpensWithoutATrustedKey) {
  auto a = Artifact::open(signed_path_);
  ASSERT_TRUE(a.isOk()) << a.status().toString();
  EXPECT_NE((*a)->signature(), nullptr);
}

TEST_F(Signature, OneOfSeveralTrustedKeysIsEnough) {
  auto a = openTrusting(signed_path_, {newKeys().public_key, keys_.public_key});
  EXPECT_TRUE(a.isOk()) << a.status().toString();
}

TEST_F(Signature, UnsignedFileIsRefused) {
  auto a = Artifact::open(unsigned_path_);
  ASSERT_TRUE(a.isOk());
  EXPECT_EQ((*a)->signature(), nullptr);
  EXPECT_FALSE((*a)->signatureVerifies());
  expectError(openTrusting(unsigned_path_, {keys_.public_key}), DS_FAILED_PRECONDITION,
              "is not signed", unsigned_path_);
}

TEST_F(Signature, OtherKeyIsRefused) {
  const PublicKey other = newKeys().public_key;
  auto r = openTrusting(signed_path_, {other});
  expectError(r, DS_FAILED_PRECONDITION, "signed by key " + keyId(keys_.public_key) +
                                             ", which is not a trusted key (trusted: " +
                                             keyId(other) + ")",
              signed_path_);
}

TEST_F(Signature, MetadataChangedWithChecksumsRecomputedIsRefused) {
  std::vector<uint8_t> bytes = signed_;
  const FileHeader h = testing::headerOf(bytes);
  std::vector<uint8_t> md(bytes.begin() + h.metadata_offset,
                          bytes.begin() + h.metadata_offset + h.metadata_size);
  const std::string from = "messages[0]";
  auto it = std::search(md.begin(), md.end(), from.begin(), from.end());
  ASSERT_NE(it, md.end());
  *(it + 1) = 'a';  // "massages": a different chat template, valid flatbuffer, valid checksums
  testing::replaceMetadata(&bytes, md);
  path_ = dir_ + "/template.dsa";
  testing::writeFile(path_, bytes);
  ASSERT_TRUE(Artifact::open(path_).isOk()) << "the checksums should pass";
  expectError(openTrusting(path_, {keys_.public_key}), DS_DATA_LOSS,
              "does not verify: the artifact was changed after it was signed", path_);
}

TEST_F(Signature, WeightChangedWithChecksumsRecomputedIsRefused) {
  std::vector<uint8_t> bytes = signed_;
  const fb::Segment* s = meta(bytes)->segments()->Get(0);
  const uint64_t old_sum = s->xxh64();
  bytes[s->offset()] ^= 0x80;
  const uint64_t new_sum = checksum(bytes.data() + s->offset(), s->size());
  const FileHeader h = testing::headerOf(bytes);
  std::vector<uint8_t> md(bytes.begin() + h.metadata_offset,
                          bytes.begin() + h.metadata_offset + h.metadata_size);
  auto at = std::search(md.begin(), md.end(), reinterpret_cast<const uint8_t*>(&old_sum),
                        reinterpret_cast<const uint8_t*>(&old_sum) + 8);
  ASSERT_NE(at, md.end());
  std::memcpy(&*at, &new_sum, 8);
  testing::replaceMetadata(&bytes, md);
  expectError(openBytesTrusting(bytes), DS_DATA_LOSS, "does not verify", path_);
}

TEST_F(Signature, TrustedKeyVerifiesWeightChecksumsEvenWhenLazy) {
  std::vector<uint8_t> bytes = signed_;
  bytes[meta(bytes)->segments()->Get(0)->offset()] ^= 0x80;  // checksum left stale
  expectError(openBytesTrusting(bytes, /*verify_weights=*/false), DS_DATA_LOSS,
              "checksum mismatch", path_);
}

TEST_F(Signature, ForgedSignatureBytesAreRefused) {
  std::vector<uint8_t> bytes = signed_;
  bytes[bytes.size() - 1] ^= 0x01;  // the last byte of the signature
  expectError(openBytesTrusting(bytes), DS_DATA_LOSS, "does not verify", path_);
}

TEST_F(Signature, StrippedSignatureIsUnsigned) {
  std::vector<uint8_t> bytes = signed_;
  FileHeader h = testing::headerOf(bytes);
  bytes.resize(h.metadata_offset + h.metadata_size);
  h.file_size = bytes.size();
  testing::putHeader(&bytes, h);
  expectError(openBytesTrusting(bytes), DS_FAILED_PRECONDITION, "is not signed", path_);
}

TEST_F(Signature, BytesAfterTheMetadataMustBeATrailer) {
  // Unsigned file plus junk, header fixed: no longer silently accepted.
  std::vector<uint8_t> bytes = testing::readFile(unsigned_path_);
  FileHeader h = testing::headerOf(bytes);
  bytes.resize(bytes.size() + 10, 0xAB);
  h.file_size = bytes.size();
  testing::putHeader(&bytes, h);
  path_ = dir_ + "/junk.dsa";
  testing::writeFile(path_, bytes);
  expectError(Artifact::open(path_), DS_DATA_LOSS, "10 bytes after the metadata are not a signature trailer", path_);
}

TEST_F(Signature, MalformedTrailerIsCorrupt) {
  std::vector<uint8_t> bytes = signed_;
  bytes[bytes.size() - sizeof(SignatureTrailer)] ^= 0x01;  // magic
  path_ = dir_ + "/magic.dsa";
  testing::writeFile(path_, bytes);
  expectError(Artifact::open(path_), DS_DATA_LOSS, "signature trailer at offset", path_);
}

TEST_F(Signature, UnknownAlgorithmIsUnsupported) {
  std::vector<uint8_t> bytes = signed_;
  const uint32_t algorithm = 7;
  std::memcpy(bytes.data() + bytes.size() - sizeof(SignatureTrailer) +
                  offsetof(SignatureTrailer, algorithm),
              &algorithm, sizeof(algorithm));
  path_ = dir_ + "/algorithm.dsa";
  testing::writeFile(path_, bytes);
  expectError(Artifact::open(path_), DS_UNSUPPORTED, "signed with algorithm 7", path_);
}

TEST_F(Signature, SigningAnExistingFileMatchesTheWriter) {
  // signArtifactFile on the unsigned copy gives a file that verifies under the same key.
  const int fd = ::open(unsigned_path_.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  Status s = signArtifactFile(fd, unsigned_path_, keys_.secret_key);
  ASSERT_TRUE(s.isOk()) << s.toString();
  // A second signature is refused rather than stacked.
  Status again = signArtifactFile(fd, unsigned_path_, keys_.secret_key);
  ::close(fd);
  EXPECT_FALSE(again.isOk());
  EXPECT_NE(again.message().find("already signed"), std::string::npos) << again.message();
  auto a = openTrusting(unsigned_path_, {keys_.public_key});
  EXPECT_TRUE(a.isOk()) << a.status().toString();
}

}  // namespace
}  // namespace ds::artifact
