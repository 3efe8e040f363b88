// Overflow-safe 64-bit offset arithmetic and checksums shared by the artifact writer and reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "artifact/format.h"
#include "base/status.h"

struct XXH3_state_s;

namespace ds::artifact {

// `value` rounded up to a multiple of `alignment` (a power of two); false on 64-bit overflow.
bool alignUp(uint64_t value, uint64_t alignment, uint64_t* out);

// Where a segment of `size` bytes goes when the file currently ends at `end`, and where the file
// ends after it. INVALID_ARGUMENT if the layout would pass 2^64 bytes.
struct SegmentPlacement {
  uint64_t offset;
  uint64_t end;
};
StatusOr<SegmentPlacement> placeSegment(uint64_t end, uint64_t size);

// True if [offset, offset + size) lies inside [begin, limit), without overflowing.
bool rangeInside(uint64_t offset, uint64_t size, uint64_t begin, uint64_t limit);

// The format's one checksum: XXH3_64bits with seed 0, stored in the fields named *xxh64
// (64-bit xxhash). XXH3 rather than XXH64: twice the throughput, and every weight byte is hashed
// at load.
uint64_t checksum(const void* data, size_t size);

// checksum() over bytes that arrive in pieces (the writer streams segments).
class StreamingChecksum {
 public:
  StreamingChecksum();
  ~StreamingChecksum();
  StreamingChecksum(const StreamingChecksum&) = delete;
  StreamingChecksum& operator=(const StreamingChecksum&) = delete;
  void update(const void* data, size_t size);
  uint64_t digest() const;

 private:
  XXH3_state_s* state_;
};

// The header checksum: checksum() of the bytes before `header_xxh64`.
uint64_t headerChecksum(const FileHeader& header);

}  // namespace ds::artifact
