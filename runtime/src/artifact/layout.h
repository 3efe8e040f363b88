// Overflow-safe 64-bit offset arithmetic and checksums shared by the artifact writer and reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "artifact/format.h"
#include "base/status.h"

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

// XXH64 with seed 0 of a byte range (the one checksum the format uses).
uint64_t xxh64(const void* data, size_t size);

// The header checksum: XXH64 of the bytes before `header_xxh64`.
uint64_t headerChecksum(const FileHeader& header);

}  // namespace ds::artifact
