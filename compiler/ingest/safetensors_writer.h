// Builds a safetensors file: tensors are added (copied or borrowed) and written atomically (temp + rename).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "format/dtype.h"

namespace ds {

class SafetensorsWriter {
 public:
  // Copies the bytes. INVALID_ARGUMENT for a duplicate or empty name, the reserved name
  // "__metadata__", negative dims or a byte count that does not match dtype x shape.
  Status add(const std::string& name, DType dtype, const std::vector<int64_t>& shape, const void* data,
             size_t nbytes);
  // Same checks, but keeps only the pointer: the caller keeps `data` alive until write() returns
  // (lets tools stream multi-GB weights without a second copy).
  Status addBorrowed(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                     const void* data, size_t nbytes);
  void setMetadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  // Writes tensors in insertion order, contiguously, after a header padded so the data area
  // starts 8-byte aligned. Goes through `<path>.tmp.<pid>` and rename(), so `path` is either the
  // old file or the complete new one, never a half-written file.
  Status write(const std::string& path) const;

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    const uint8_t* data;  // borrowed bytes, or nullptr when `owned` holds them
    size_t nbytes;
    std::vector<uint8_t> owned;
    const uint8_t* bytes() const { return data ? data : owned.data(); }
  };
  Status check(const std::string& name, DType dtype, const std::vector<int64_t>& shape, size_t nbytes) const;
  std::string buildHeader() const;

  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace ds
