// The device contract's shared pieces: memory kind names and DeviceBuffer.
#include "hal/device.h"

#include <algorithm>

#include "comm/communicator.h"
#include "comm/process_world.h"

namespace ds::hal {

const char* memoryKindName(MemoryKind kind) {
  switch (kind) {
    case MemoryKind::Weights: return "weights";
    case MemoryKind::KVCache: return "KV cache";
    case MemoryKind::Activations: return "activations";
    case MemoryKind::Staging: return "staging";
  }
  return "?";
}

Status DeviceBuffer::reserve(Allocator& allocator, uint64_t bytes, MemoryKind kind) {
  if (mem_.data && mem_.bytes >= bytes) return Status::ok();
  reset();
  StatusOr<Allocation> a = allocator.allocate(std::max<uint64_t>(bytes, 64), kind);
  if (!a.isOk()) return a.status();
  allocator_ = &allocator;
  mem_ = *a;
  return Status::ok();
}

void DeviceBuffer::reset() {
  if (allocator_ && mem_.data) allocator_->release(mem_);
  mem_ = Allocation{};
}

StatusOr<std::unique_ptr<CommGroup>> Device::createCommGroup(const std::vector<Device*>& ranks,
                                                              const CommPlacement& where) {
  if (where.world && where.world->size() > 1) {
    if (ranks.size() != 1 || where.world_ranks != where.world->size())
      return invalidArgument("on the host target every process runs one tensor-parallel rank (" +
                             std::to_string(where.world_ranks) + " ranks over " +
                             std::to_string(where.world->size()) + " processes)");
    return createProcessGroup(*where.world);
  }
  StatusOr<std::unique_ptr<InProcessGroup>> group = InProcessGroup::create(static_cast<int>(ranks.size()));
  if (!group.isOk()) return group.status();
  return std::unique_ptr<CommGroup>(std::move(group).value());
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    allocator_ = o.allocator_;
    mem_ = o.mem_;
    o.mem_ = Allocation{};
  }
  return *this;
}

}  // namespace ds::hal
