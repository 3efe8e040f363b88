// Key files for artifact signing: round trip, and a clear error naming the file for each bad one.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "artifact/signing_keys.h"
#include "artifact_test_util.h"

namespace ds::artifact {
namespace {

class KeyFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::freshDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    StatusOr<KeyPair> k = generateKeyPair();
    ASSERT_TRUE(k.isOk()) << k.status().toString();
    keys_ = k.value();
    prefix_ = dir_ + "/signer";
  }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  template <typename T>
  void expectError(const StatusOr<T>& r, ds_status_code_t code, const std::string& path,
                   const std::string& text) {
    ASSERT_FALSE(r.isOk()) << text;
    EXPECT_EQ(r.status().code(), code) << r.status().toString();
    EXPECT_EQ(r.status().message().rfind(path + ": ", 0), 0u) << r.status().message();
    EXPECT_NE(r.status().message().find(text), std::string::npos) << r.status().message();
  }

  std::string dir_, prefix_;
  KeyPair keys_;
};

TEST_F(KeyFiles, RoundTrip) {
  ASSERT_TRUE(writeKeyFiles(prefix_, keys_).isOk());
  auto pub = readPublicKeyFile(prefix_ + ".pub");
  auto sec = readSecretKeyFile(prefix_ + ".key");
  ASSERT_TRUE(pub.isOk()) << pub.status().toString();
  ASSERT_TRUE(sec.isOk()) << sec.status().toString();
  EXPECT_TRUE(pub.value() == keys_.public_key);
  EXPECT_EQ(sec->bytes, keys_.secret_key.bytes);
  EXPECT_TRUE(sec->publicKey() == keys_.public_key);
  struct stat st;
  ASSERT_EQ(::stat((prefix_ + ".key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "the secret key must not be readable by others";
  EXPECT_EQ(keyId(keys_.public_key).size(), 16u);
  EXPECT_EQ(keyId(keys_.public_key), toHex(keys_.public_key.bytes.data(), 8));
}

TEST_F(KeyFiles, ExistingFilesAreNeverReplaced) {
  ASSERT_TRUE(writeKeyFiles(prefix_, keys_).isOk());
  const std::vector<uint8_t> before = testing::readFile(prefix_ + ".key");
  Status s = writeKeyFiles(prefix_, keys_);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("already exists"), std::string::npos) << s.message();
  EXPECT_EQ(testing::readFile(prefix_ + ".key"), before);
}

TEST_F(KeyFiles, MissingFileIsNotFound) {
  const std::string path = dir_ + "/none.pub";
  expectError(readPublicKeyFile(path), DS_NOT_FOUND, path, "cannot open the key file");
}

TEST_F(KeyFiles, SwappedHalvesAreNamed) {
  ASSERT_TRUE(writeKeyFiles(prefix_, keys_).isOk());
  expectError(readPublicKeyFile(prefix_ + ".key"), DS_INVALID_ARGUMENT, prefix_ + ".key",
              "is a secret key file; a public key file (PREFIX.pub) is needed here");
  expectError(readSecretKeyFile(prefix_ + ".pub"), DS_INVALID_ARGUMENT, prefix_ + ".pub",
              "is a public key file; a secret key file (PREFIX.key) is needed here");
}

TEST_F(KeyFiles, MalformedFilesAreRefused) {
  const std::string hex64(64, 'a');
  const std::string no_header = write("a.pub", hex64 + "\n");
  expectError(readPublicKeyFile(no_header), DS_INVALID_ARGUMENT, no_header,
              "not a public key file");
  const std::string short_key = write("b.pub", "ds-ed25519-public-key\nabcd\n");
  expectError(readPublicKeyFile(short_key), DS_INVALID_ARGUMENT, short_key,
              "is not 64 hex digits (4 characters)");
  const std::string not_hex =
      write("c.pub", "ds-ed25519-public-key\n" + std::string(63, 'a') + "z\n");
  expectError(readPublicKeyFile(not_hex), DS_INVALID_ARGUMENT, not_hex, "is not 64 hex digits");
  const std::string extra = write("d.pub", "ds-ed25519-public-key\n" + hex64 + "\n" + hex64 + "\n");
  expectError(readPublicKeyFile(extra), DS_INVALID_ARGUMENT, extra, "not a public key file");
  const std::string empty = write("e.pub", "");
  expectError(readPublicKeyFile(empty), DS_INVALID_ARGUMENT, empty, "not a public key file");
  expectError(readPublicKeyFile(dir_), DS_INVALID_ARGUMENT, dir_, "not a regular file");
  const std::string big = write("f.pub", std::string(5000, 'x'));
  expectError(readPublicKeyFile(big), DS_INVALID_ARGUMENT, big, "key files are under");
}

TEST_F(KeyFiles, WhitespaceAroundLinesIsAccepted) {
  const std::string hex = toHex(keys_.public_key.bytes.data(), 32);
  const std::string path = write("ws.pub", "\n  ds-ed25519-public-key \r\n\t" + hex + "  \r\n\n");
  auto pub = readPublicKeyFile(path);
  ASSERT_TRUE(pub.isOk()) << pub.status().toString();
  EXPECT_TRUE(pub.value() == keys_.public_key);
}

TEST_F(KeyFiles, SecretKeyWhoseHalvesDisagreeIsRefused) {
  SecretKey damaged = keys_.secret_key;
  damaged.bytes[63] ^= 0x01;  // the stored public half
  const std::string path =
      write("damaged.key", "ds-ed25519-secret-key\n" + toHex(damaged.bytes.data(), 64) + "\n");
  expectError(readSecretKeyFile(path), DS_INVALID_ARGUMENT, path,
              "its public half does not match its seed");
}

TEST(PublicKeyBytes, WrongLengthIsRefused) {
  const uint8_t bytes[33] = {};
  EXPECT_TRUE(publicKeyFromBytes(bytes, 32).isOk());
  auto r = publicKeyFromBytes(bytes, 33);
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("32 bytes"), std::string::npos) << r.status().message();
  EXPECT_FALSE(publicKeyFromBytes(nullptr, 32).isOk());
}

}  // namespace
}  // namespace ds::artifact
