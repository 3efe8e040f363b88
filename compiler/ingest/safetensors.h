// One safetensors file, mmapped read-only: validated tensor table and zero-copy access to tensor bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "format/dtype.h"
#include "format/mapped_file.h"

namespace ds {

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t numel = 1;
  // Byte range inside the file (already shifted past the 8-byte length and the header).
  uint64_t file_offset = 0;
  uint64_t nbytes = 0;
};

class SafetensorsFile {
 public:
  // Maps the file and validates its header: every malformed case gives one line naming the
  // file (and tensor where there is one); DATA_LOSS for corrupt content, UNSUPPORTED for an
  // unknown dtype, NOT_FOUND for a missing file. Tensor bytes are not touched.
  static StatusOr<std::unique_ptr<SafetensorsFile>> open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  // Tensors sorted by name.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // nullptr if absent.
  const TensorInfo* find(const std::string& name) const;
  // Start of the tensor's bytes inside the mapping; alignment is whatever the file gives
  // (our writer aligns the data area to 8 bytes; other writers need not).
  const uint8_t* data(const TensorInfo& tensor) const { return file_->data() + tensor.file_offset; }
  // The optional "__metadata__" string map.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  uint64_t headerSize() const { return header_size_; }
  uint64_t fileSize() const { return file_->size(); }

 private:
  SafetensorsFile() = default;
  Status parseHeader();

  std::unique_ptr<MappedFile> file_;
  uint64_t header_size_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Overflow-safe product of a shape and an element size; false on overflow or negative dims.
bool shapeByteSize(const std::vector<int64_t>& shape, size_t element_size, uint64_t* numel,
                   uint64_t* nbytes);

}  // namespace ds
