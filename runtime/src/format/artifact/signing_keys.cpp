// Ed25519 key pairs (libsodium) and the hex text files that hold them.
#include "artifact/signing_keys.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <vector>

namespace ds::artifact {
namespace {

// Key files are two short lines; anything much larger is not one (and is not read whole).
constexpr size_t kMaxKeyFileBytes = 4096;

Status sodiumReady() {
  if (sodium_init() < 0) return internalError("libsodium failed to initialize");
  return Status::ok();
}

// The whole file, refusing what is not a small regular file; O_NONBLOCK so a FIFO never hangs.
StatusOr<std::string> readSmallFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return Status(err == ENOENT ? DS_NOT_FOUND : DS_INVALID_ARGUMENT,
                  path + ": cannot open the key file: " + std::strerror(err));
  }
  struct stat st;
  std::string text;
  Status status;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    status = invalidArgument(path + ": not a key file (not a regular file)");
  } else if (static_cast<uint64_t>(st.st_size) > kMaxKeyFileBytes) {
    status = invalidArgument(path + ": not a key file (" + std::to_string(st.st_size) +
                             " bytes; key files are under " + std::to_string(kMaxKeyFileBytes) +
                             ")");
  } else {
    char buf[kMaxKeyFileBytes + 1];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof(buf))) != 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        status = invalidArgument(path + ": cannot read the key file: " + std::strerror(errno));
        break;
      }
      text.append(buf, static_cast<size_t>(n));
      if (text.size() > kMaxKeyFileBytes) {
        status = invalidArgument(path + ": not a key file (too large)");
        break;
      }
    }
  }
  ::close(fd);
  if (!status.isOk()) return status;
  return text;
}

std::vector<std::string> nonEmptyLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    size_t b = 0, e = line.size();
    while (b < e && std::isspace(static_cast<unsigned char>(line[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(line[e - 1]))) --e;
    if (e > b) lines.push_back(line.substr(b, e - b));
    start = end + 1;
  }
  return lines;
}

// The key bytes of a key file of kind `header` (`other` is the header of the pair's other half,
// named in the error when the user swapped them).
Status parseKeyFile(const std::string& path, const std::string& text, const char* header,
                    const char* other, uint8_t* out, size_t size) {
  const std::vector<std::string> lines = nonEmptyLines(text);
  const std::string kind = header == std::string(kPublicKeyFileHeader) ? "public" : "secret";
  if (!lines.empty() && lines[0] == other) {
    return invalidArgument(path + ": is a " + (kind == "public" ? "secret" : "public") +
                           " key file; a " + kind + " key file (" +
                           (kind == "public" ? "PREFIX.pub" : "PREFIX.key") + ") is needed here");
  }
  if (lines.size() != 2 || lines[0] != header) {
    return invalidArgument(path + ": not a " + kind + " key file (expected a '" + header +
                           "' line and a line of " + std::to_string(2 * size) +
                           " hex digits, as ds-keygen writes)");
  }
  const std::string& hex = lines[1];
  size_t decoded = 0;
  if (hex.size() != 2 * size ||
      sodium_hex2bin(out, size, hex.data(), hex.size(), nullptr, &decoded, nullptr) != 0 ||
      decoded != size) {
    return invalidArgument(path + ": the " + kind + " key is not " + std::to_string(2 * size) +
                           " hex digits (" + std::to_string(hex.size()) + " characters)");
  }
  return Status::ok();
}

Status writeNewFile(const std::string& path, const std::string& text, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    return invalidArgument(path + ": cannot create the key file: " + std::strerror(errno) +
                           (errno == EEXIST ? " (key files are never replaced)" : ""));
  }
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string err = std::strerror(errno);
      ::close(fd);
      ::unlink(path.c_str());
      return internalError(path + ": cannot write the key file: " + err);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(path.c_str());
    return internalError(path + ": cannot write the key file: " + std::strerror(errno));
  }
  return Status::ok();
}

}  // namespace

SecretKey::~SecretKey() { sodium_memzero(bytes.data(), bytes.size()); }

PublicKey SecretKey::publicKey() const {
  PublicKey p;
  std::memcpy(p.bytes.data(), bytes.data() + kSecretKeyBytes - kPublicKeyBytes, kPublicKeyBytes);
  return p;
}

std::string toHex(const uint8_t* data, size_t size) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(2 * size);
  for (size_t i = 0; i < size; ++i) {
    s += kDigits[data[i] >> 4];
    s += kDigits[data[i] & 15];
  }
  return s;
}

std::string keyId(const PublicKey& key) { return toHex(key.bytes.data(), 8); }

StatusOr<KeyPair> generateKeyPair() {
  DS_RETURN_IF_ERROR(sodiumReady());
  KeyPair k;
  if (crypto_sign_keypair(k.public_key.bytes.data(), k.secret_key.bytes.data()) != 0)
    return internalError("cannot generate an Ed25519 key pair");
  return k;
}

Status writeKeyFiles(const std::string& prefix, const KeyPair& keys) {
  if (prefix.empty()) return invalidArgument("the key file prefix is empty");
  const std::string secret_path = prefix + ".key", public_path = prefix + ".pub";
  struct stat st;
  for (const std::string& p : {secret_path, public_path}) {
    if (::lstat(p.c_str(), &st) == 0)
      return invalidArgument(p + ": already exists (key files are never replaced)");
  }
  std::string secret_text = std::string(kSecretKeyFileHeader) + "\n" +
                            toHex(keys.secret_key.bytes.data(), kSecretKeyBytes) + "\n";
  Status s = writeNewFile(secret_path, secret_text, 0600);
  sodium_memzero(&secret_text[0], secret_text.size());
  DS_RETURN_IF_ERROR(s);
  s = writeNewFile(public_path,
                   std::string(kPublicKeyFileHeader) + "\n" +
                       toHex(keys.public_key.bytes.data(), kPublicKeyBytes) + "\n",
                   0644);
  if (!s.isOk()) ::unlink(secret_path.c_str());
  return s;
}

StatusOr<PublicKey> readPublicKeyFile(const std::string& path) {
  DS_RETURN_IF_ERROR(sodiumReady());
  StatusOr<std::string> text = readSmallFile(path);
  if (!text.isOk()) return text.status();
  PublicKey key;
  DS_RETURN_IF_ERROR(parseKeyFile(path, *text, kPublicKeyFileHeader, kSecretKeyFileHeader,
                                  key.bytes.data(), kPublicKeyBytes));
  return key;
}

StatusOr<SecretKey> readSecretKeyFile(const std::string& path) {
  DS_RETURN_IF_ERROR(sodiumReady());
  StatusOr<std::string> text = readSmallFile(path);
  if (!text.isOk()) return text.status();
  SecretKey key;
  Status s = parseKeyFile(path, *text, kSecretKeyFileHeader, kPublicKeyFileHeader,
                          key.bytes.data(), kSecretKeyBytes);
  sodium_memzero(&(*text)[0], text->size());
  DS_RETURN_IF_ERROR(s);
  // The stored public half must be the one the seed derives: a damaged file would otherwise sign
  // artifacts no holder of the matching .pub can verify.
  PublicKey derived;
  SecretKey rebuilt;
  crypto_sign_seed_keypair(derived.bytes.data(), rebuilt.bytes.data(), key.bytes.data());
  if (!(derived == key.publicKey()))
    return invalidArgument(path + ": not a valid secret key (its public half does not match "
                                  "its seed)");
  return key;
}

StatusOr<PublicKey> publicKeyFromBytes(const uint8_t* data, size_t size) {
  if (!data || size != kPublicKeyBytes)
    return invalidArgument("a trusted public key is " + std::to_string(kPublicKeyBytes) +
                           " bytes (Ed25519), got " + std::to_string(data ? size : 0));
  PublicKey key;
  std::memcpy(key.bytes.data(), data, kPublicKeyBytes);
  return key;
}

}  // namespace ds::artifact
