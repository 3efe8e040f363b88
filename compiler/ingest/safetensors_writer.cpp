// SafetensorsWriter: header construction and the atomic temp-file-then-rename write.
#include "ingest/safetensors_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "ingest/safetensors.h"

namespace ds {
namespace {

// Writes all of `data`, retrying short writes.
bool writeAll(int fd, const void* data, size_t size) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

Status SafetensorsWriter::check(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                                size_t nbytes) const {
  if (name.empty() || name == "__metadata__") {
    return invalidArgument("safetensors writer: invalid tensor name '" + name + "'");
  }
  for (const Entry& e : entries_) {
    if (e.name == name) return invalidArgument("safetensors writer: duplicate tensor '" + name + "'");
  }
  uint64_t numel, expected;
  if (!shapeByteSize(shape, dtypeSize(dtype), &numel, &expected)) {
    return invalidArgument("safetensors writer: tensor '" + name + "': bad shape");
  }
  if (expected != nbytes) {
    return invalidArgument("safetensors writer: tensor '" + name + "': " + std::to_string(nbytes) +
                           " bytes given, dtype x shape needs " + std::to_string(expected));
  }
  return Status::ok();
}

Status SafetensorsWriter::add(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                              const void* data, size_t nbytes) {
  DS_RETURN_IF_ERROR(check(name, dtype, shape, nbytes));
  Entry e{name, dtype, shape, nullptr, nbytes, {}};
  const uint8_t* bytes = static_cast<const uint8_t*>(data);
  e.owned.assign(bytes, bytes + nbytes);
  entries_.push_back(std::move(e));
  return Status::ok();
}

Status SafetensorsWriter::addBorrowed(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                                      const void* data, size_t nbytes) {
  DS_RETURN_IF_ERROR(check(name, dtype, shape, nbytes));
  entries_.push_back(Entry{name, dtype, shape, static_cast<const uint8_t*>(data), nbytes, {}});
  return Status::ok();
}

std::string SafetensorsWriter::buildHeader() const {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& kv : metadata_) meta[kv.first] = kv.second;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const Entry& e : entries_) {
    header[e.name] = {{"dtype", dtypeName(e.dtype)},
                      {"shape", e.shape},
                      {"data_offsets", {offset, offset + e.nbytes}}};
    offset += e.nbytes;
  }
  std::string text = header.dump();
  // Space padding is what the reference implementation uses; it keeps the data area aligned.
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');
  return text;
}

Status SafetensorsWriter::write(const std::string& path) const {
  const std::string header = buildHeader();
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return notFound(tmp + ": cannot create: " + std::strerror(errno));
  const uint64_t header_size = header.size();
  bool ok = writeAll(fd, &header_size, 8) && writeAll(fd, header.data(), header.size());
  for (size_t i = 0; ok && i < entries_.size(); ++i) ok = writeAll(fd, entries_[i].bytes(), entries_[i].nbytes);
  const int write_errno = errno;
  ok = ok && ::fsync(fd) == 0;
  if (::close(fd) != 0) ok = false;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = ok ? errno : write_errno;
    ::unlink(tmp.c_str());
    return Status(DS_UNAVAILABLE, path + ": write failed: " + std::strerror(err));
  }
  return Status::ok();
}

}  // namespace ds
