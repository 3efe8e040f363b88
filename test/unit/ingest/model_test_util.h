// Helpers for model tests: a self-deleting temp directory and raw safetensors byte building.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace ds::testing {

class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "ds_model_test_XXXXXX").string();
    path_ = ::mkdtemp(templ.data()) ? templ : std::string();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void writeBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// 8-byte little-endian header length, the header text, then `data_bytes` bytes of payload.
inline std::string safetensorsBytes(const std::string& header, size_t data_bytes, uint64_t declared_len = ~0ull) {
  const uint64_t len = declared_len == ~0ull ? header.size() : declared_len;
  std::string bytes(reinterpret_cast<const char*>(&len), 8);
  bytes += header;
  bytes.append(data_bytes, '\x5a');
  return bytes;
}

}  // namespace ds::testing
