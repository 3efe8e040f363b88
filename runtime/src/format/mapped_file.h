// A read-only memory mapping of a whole file (RAII), so checkpoints are never copied into memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"

namespace ds {

class MappedFile {
 public:
  // NOT_FOUND if the file cannot be opened; an empty file maps to data()==nullptr, size()==0.
  static StatusOr<std::unique_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Drops the resident pages lying wholly inside [p, p + n) from this process (MADV_DONTNEED:
  // touched again, they read back from the file): for bytes the process keeps a copy of.
  // Ranges outside the mapping are ignored.
  void dropPages(const void* p, size_t n) const;

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ds
