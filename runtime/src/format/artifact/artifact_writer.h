// Streams weight segments and the metadata flatbuffer into a .dsa file, atomically.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "artifact/signing_keys.h"
#include "base/status.h"

namespace ds::artifact {

class ArtifactWriter {
 public:
  // Called with consecutive chunks of a segment: fill `size` bytes at `dst`, which hold the
  // segment's bytes [offset, offset + size).
  using FillFn = std::function<Status(uint8_t* dst, uint64_t offset, uint64_t size)>;

  // Starts writing to `path` through a temporary file in the same directory: nothing appears at
  // `path` until finish() succeeds, so a failed compile never destroys an existing artifact.
  // The temp file is unnamed (O_TMPFILE, linked into place by finish()), so even a killed
  // process leaves nothing behind; where the file system lacks O_TMPFILE it is
  // path + ".tmp.<pid>", removed by the destructor and on SIGINT/SIGTERM.
  // Refuses a `path` that is a symbolic link, a directory or any other non-regular file:
  // replacing it would destroy the link or the device node rather than write an artifact.
  enum class TempFile { kUnnamedIfSupported, kNamed };  // kNamed: the fallback, for tests
  static StatusOr<std::unique_ptr<ArtifactWriter>> create(
      const std::string& path, TempFile temp = TempFile::kUnnamedIfSupported);
  ~ArtifactWriter();  // removes the temp file if finish() was not reached
  ArtifactWriter(const ArtifactWriter&) = delete;
  ArtifactWriter& operator=(const ArtifactWriter&) = delete;

  // Appends one 64-byte aligned segment of `size` bytes produced by `fill` in chunks of at most
  // kChunkSize bytes, checksummed (XXH3_64bits, see layout.h) while written. Returns the segment index. After any error
  // the writer is failed: later calls return that error and finish() never renames.
  StatusOr<uint32_t> addSegment(uint64_t size, const FillFn& fill);
  // Convenience: a segment copied from memory.
  StatusOr<uint32_t> addSegmentFromMemory(const void* data, uint64_t size);

  struct SegmentInfo {
    uint64_t offset, size, xxh64;  // xxh64: the format's checksum (XXH3_64bits)
  };
  // What the caller copies into Artifact.segments (same order, same values).
  const std::vector<SegmentInfo>& segments() const { return segments_; }

  // finish() signs the artifact with `key` (artifact/signature.h: a trailer after the metadata).
  void signWith(const SecretKey& key) { signing_key_ = std::make_unique<SecretKey>(key); }

  // Verifies the metadata (flatbuffer Verifier, file identifier, schema_version ==
  // kSchemaVersion, segments table == segments(), tensor/plan references), writes it and the
  // header, signs when signWith() was called, fsyncs and renames into place.
  Status finish(const uint8_t* metadata, size_t metadata_size);

  const std::string& path() const { return path_; }
  // The named temp file, used only where O_TMPFILE is unavailable (or briefly by finish() to
  // replace an existing file).
  const std::string& tempPath() const { return temp_path_; }

  static constexpr uint64_t kChunkSize = 8ull << 20;

 private:
  ArtifactWriter() = default;
  Status writeAll(const void* data, uint64_t size);
  Status padTo(uint64_t offset);
  Status fail(Status status);
  Status linkIntoPlace();  // the O_TMPFILE file at path_ (through temp_path_ if path_ exists)

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  uint64_t end_ = 0;  // bytes written so far
  std::vector<SegmentInfo> segments_;
  std::vector<uint8_t> chunk_;
  Status failed_;
  std::unique_ptr<SecretKey> signing_key_;
  bool finished_ = false;
  bool unnamed_temp_ = false;   // fd_ is an O_TMPFILE file
  bool signal_cleanup_ = false; // temp_path_ is unlinked on SIGINT/SIGTERM
};

}  // namespace ds::artifact
