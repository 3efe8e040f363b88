// Safetensors header validation: the file is trusted for nothing until every offset and size checks out.
#include "ingest/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string_view>
#include <utility>

#include "ingest/input_files.h"
#include "ingest/json_util.h"

namespace ds {
namespace {

using nlohmann::json;

bool asUint64(const json& v, uint64_t* out) {
  if (!v.is_number_unsigned()) {
    // A non-negative value that nlohmann stored as signed is still fine.
    if (v.is_number_integer() && v.get<int64_t>() >= 0) {
      *out = static_cast<uint64_t>(v.get<int64_t>());
      return true;
    }
    return false;
  }
  *out = v.get<uint64_t>();
  return true;
}

}  // namespace

bool shapeByteSize(const std::vector<int64_t>& shape, size_t element_size, uint64_t* numel,
                   uint64_t* nbytes) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
  }
  uint64_t bytes;
  if (__builtin_mul_overflow(n, static_cast<uint64_t>(element_size), &bytes)) return false;
  *numel = n;
  *nbytes = bytes;
  return true;
}

StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  // Checked before opening: a blocking open of a FIFO would hang.
  DS_RETURN_IF_ERROR(requireRegularFile(path));
  StatusOr<std::unique_ptr<MappedFile>> mapped = MappedFile::open(path);
  if (!mapped.isOk()) return mapped.status();
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->file_ = std::move(mapped.value());
  DS_RETURN_IF_ERROR(file->parseHeader());
  return StatusOr<std::unique_ptr<SafetensorsFile>>(std::move(file));
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const TensorInfo& t, const std::string& n) { return t.name < n; });
  if (it == tensors_.end() || it->name != name) return nullptr;
  return &*it;
}

Status SafetensorsFile::parseHeader() {
  const std::string& file_name = file_->path();
  const uint64_t file_size = file_->size();
  if (file_size < 8) {
    return dataLoss(file_name + ": not a safetensors file: " + std::to_string(file_size) +
                    " bytes, shorter than the 8-byte header length");
  }
  uint64_t header_size;
  std::memcpy(&header_size, file_->data(), 8);  // little-endian u64, as the format specifies
  if (header_size > file_size - 8) {
    return dataLoss(file_name + ": header length " + std::to_string(header_size) +
                    " runs past the end of the file (" + std::to_string(file_size) + " bytes)");
  }
  header_size_ = header_size;
  const uint64_t data_start = 8 + header_size;
  const uint64_t data_size = file_size - data_start;

  json header;
  std::string_view text(reinterpret_cast<const char*>(file_->data()) + 8, header_size);
  DS_RETURN_IF_ERROR(parseJsonStrict(text, file_name + ": header", &header));
  if (!header.is_object()) {
    return dataLoss(file_name + ": header is a JSON " + jsonTypeName(header) + ", expected an object");
  }

  tensors_.reserve(header.size());
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) return dataLoss(file_name + ": __metadata__ is not an object");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) {
          return dataLoss(file_name + ": __metadata__ value '" + m.key() + "' is not a string");
        }
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = file_name + ": tensor '" + name + "': ";
    if (!entry.is_object()) return dataLoss(where + "entry is a JSON " + jsonTypeName(entry) + ", expected an object");
    auto dtype_it = entry.find("dtype");
    auto shape_it = entry.find("shape");
    auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || shape_it == entry.end() || offsets_it == entry.end()) {
      return dataLoss(where + "entry needs 'dtype', 'shape' and 'data_offsets'");
    }
    TensorInfo info;
    info.name = name;
    if (!dtype_it->is_string()) return dataLoss(where + "dtype is not a string");
    const std::string dtype_name = dtype_it->get<std::string>();
    if (!parseDType(dtype_name, &info.dtype)) return unsupported(where + "unknown dtype '" + dtype_name + "'");

    if (!shape_it->is_array()) return dataLoss(where + "shape is not a list of non-negative integers");
    for (const json& d : *shape_it) {
      uint64_t dim;
      if (!asUint64(d, &dim) || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return dataLoss(where + "shape is not a list of non-negative integers (element " + d.dump() + ")");
      }
      info.shape.push_back(static_cast<int64_t>(dim));
    }

    uint64_t begin, end;
    if (!offsets_it->is_array() || offsets_it->size() != 2 || !asUint64((*offsets_it)[0], &begin) ||
        !asUint64((*offsets_it)[1], &end) || begin > end) {
      return dataLoss(where + "data_offsets must be [begin, end] with 0 <= begin <= end, got " +
                      offsets_it->dump());
    }
    if (end > data_size) {
      return dataLoss(where + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                      "] run past the data area of " + std::to_string(data_size) + " bytes");
    }
    uint64_t expected;
    if (!shapeByteSize(info.shape, dtypeSize(info.dtype), &info.numel, &expected)) {
      return dataLoss(where + "shape " + shape_it->dump() + " overflows 64-bit byte count");
    }
    if (expected != end - begin) {
      return dataLoss(where + "holds " + std::to_string(end - begin) + " bytes but " + dtype_name + " " +
                      shape_it->dump() + " needs " + std::to_string(expected));
    }
    info.file_offset = data_start + begin;
    info.nbytes = end - begin;
    tensors_.push_back(std::move(info));
  }

  // Overlap check on byte ranges; empty tensors occupy nothing and may sit anywhere.
  std::vector<const TensorInfo*> by_offset;
  for (const TensorInfo& t : tensors_) {
    if (t.nbytes > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->file_offset != b->file_offset ? a->file_offset < b->file_offset : a->name < b->name;
  });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo* prev = by_offset[i - 1];
    const TensorInfo* cur = by_offset[i];
    if (cur->file_offset < prev->file_offset + prev->nbytes) {
      return dataLoss(file_name + ": tensor '" + cur->name + "' overlaps tensor '" + prev->name + "'");
    }
  }
  std::sort(tensors_.begin(), tensors_.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
  return Status::ok();
}

}  // namespace ds
