// Offset arithmetic and XXH3 checksum helpers of the artifact format.
#include "artifact/layout.h"

#define XXH_STATIC_LINKING_ONLY  // the full XXH3_state_t, to allocate it with `new`
#include <xxhash.h>

namespace ds::artifact {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the artifact header is read in place: little-endian hosts only");

bool alignUp(uint64_t value, uint64_t alignment, uint64_t* out) {
  const uint64_t mask = alignment - 1;
  if (value > UINT64_MAX - mask) return false;
  *out = (value + mask) & ~mask;
  return true;
}

StatusOr<SegmentPlacement> placeSegment(uint64_t end, uint64_t size) {
  SegmentPlacement p{};
  if (!alignUp(end, kAlignment, &p.offset) || size > UINT64_MAX - p.offset) {
    return invalidArgument("segment of " + std::to_string(size) + " bytes after offset " +
                           std::to_string(end) + " overflows 64-bit file offsets");
  }
  p.end = p.offset + size;
  return p;
}

bool rangeInside(uint64_t offset, uint64_t size, uint64_t begin, uint64_t limit) {
  return offset >= begin && offset <= limit && size <= limit - offset;
}

uint64_t checksum(const void* data, size_t size) { return XXH3_64bits(data, size); }

StreamingChecksum::StreamingChecksum() : state_(new XXH3_state_t) { XXH3_64bits_reset(state_); }

StreamingChecksum::~StreamingChecksum() { delete state_; }

void StreamingChecksum::update(const void* data, size_t size) {
  XXH3_64bits_update(state_, data, size);
}

uint64_t StreamingChecksum::digest() const { return XXH3_64bits_digest(state_); }

uint64_t headerChecksum(const FileHeader& header) {
  return checksum(&header, offsetof(FileHeader, header_xxh64));
}

}  // namespace ds::artifact
