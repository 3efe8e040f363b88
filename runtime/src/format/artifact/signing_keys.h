// Ed25519 keys that sign artifacts (libsodium), and their text files (docs/artifact.md).
//
// PREFIX.pub:  "ds-ed25519-public-key" line, then the 32-byte public key as 64 hex digits.
// PREFIX.key:  "ds-ed25519-secret-key" line, then libsodium's 64-byte secret key (the 32-byte
//              seed followed by the public key) as 128 hex digits. Written with mode 0600.
// Blank lines and surrounding whitespace are ignored; anything else is an error naming the file.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/status.h"

namespace ds::artifact {

constexpr size_t kPublicKeyBytes = 32;
constexpr size_t kSecretKeyBytes = 64;
constexpr size_t kSignatureBytes = 64;
constexpr char kPublicKeyFileHeader[] = "ds-ed25519-public-key";
constexpr char kSecretKeyFileHeader[] = "ds-ed25519-secret-key";

struct PublicKey {
  std::array<uint8_t, kPublicKeyBytes> bytes{};
  bool operator==(const PublicKey& o) const { return bytes == o.bytes; }
};

// Zeroed when destroyed.
struct SecretKey {
  std::array<uint8_t, kSecretKeyBytes> bytes{};
  SecretKey() = default;
  SecretKey(const SecretKey&) = default;
  SecretKey& operator=(const SecretKey&) = default;
  ~SecretKey();
  PublicKey publicKey() const;  // the second half of libsodium's layout
};

struct KeyPair {
  PublicKey public_key;
  SecretKey secret_key;
};

// What tools print to tell keys apart: the first 8 bytes of the public key in hex.
std::string keyId(const PublicKey& key);
std::string toHex(const uint8_t* data, size_t size);

// A fresh key pair from the system's random source.
StatusOr<KeyPair> generateKeyPair();
// Writes PREFIX.key (0600) and PREFIX.pub; refuses to replace an existing file (INVALID_ARGUMENT
// naming it), and leaves neither file behind on failure.
Status writeKeyFiles(const std::string& prefix, const KeyPair& keys);

// Each error names the file: NOT_FOUND, or INVALID_ARGUMENT for a file that is not a key file
// of that kind (wrong header line, wrong length, not hex, not a regular file, the other half of
// a pair, a secret key whose halves disagree).
StatusOr<PublicKey> readPublicKeyFile(const std::string& path);
StatusOr<SecretKey> readSecretKeyFile(const std::string& path);
// A public key given as bytes (the C API): INVALID_ARGUMENT unless `size` is kPublicKeyBytes.
StatusOr<PublicKey> publicKeyFromBytes(const uint8_t* data, size_t size);

}  // namespace ds::artifact
