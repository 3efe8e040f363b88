// The CPU device against the device contract (runtime/src/hal/device.h): allocation accounting
// per memory kind, out-of-memory as a status, DeviceBuffer growth, the synchronous stream.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "artifact/artifact_info.h"
#include "hal/cpu/cpu_device.h"

namespace ds::hal {
namespace {

TEST(CpuDevice, Info) {
  std::unique_ptr<Device> d = createCpuDevice();
  EXPECT_EQ(d->info().name, "cpu");
  EXPECT_EQ(d->info().target, "host");
  EXPECT_TRUE(d->info().host_visible);
}

TEST(CpuDevice, AllocatorAccountsPerKindAnd64ByteAlignment) {
  std::unique_ptr<Device> d = createCpuDevice();
  Allocator& a = d->allocator();
  StatusOr<Allocation> kv = a.allocate(1000, MemoryKind::KVCache);
  StatusOr<Allocation> act = a.allocate(100, MemoryKind::Activations);
  ASSERT_TRUE(kv.isOk() && act.isOk());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(kv->data) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(act->data) % 64, 0u);
  EXPECT_EQ(a.bytesInUse(MemoryKind::KVCache), 1024u);  // rounded to 64 bytes
  EXPECT_EQ(a.bytesInUse(MemoryKind::Activations), 128u);
  EXPECT_EQ(a.bytesInUse(MemoryKind::Weights), 0u);
  // Activations start zeroed.
  std::vector<uint8_t> zero(100, 0);
  EXPECT_EQ(std::memcmp(act->data, zero.data(), zero.size()), 0);
  a.release(*kv);
  a.release(*act);
  EXPECT_EQ(a.bytesInUse(MemoryKind::KVCache), 0u);
  EXPECT_EQ(a.bytesInUse(MemoryKind::Activations), 0u);
}

TEST(CpuDevice, OutOfMemoryIsAStatusNamingTheBytesAndKind) {
  std::unique_ptr<Device> d = createCpuDevice();
  for (uint64_t bytes : {uint64_t{1} << 62, uint64_t{1} << 47}) {
    StatusOr<Allocation> a = d->allocator().allocate(bytes, MemoryKind::KVCache);
    if (a.isOk()) {  // 128 TiB of virtual memory is possible on some kernels: give it back
      d->allocator().release(*a);
      continue;
    }
    EXPECT_EQ(a.status().code(), DS_OUT_OF_MEMORY);
    EXPECT_NE(a.status().message().find("KV cache"), std::string::npos) << a.status().message();
    EXPECT_NE(a.status().message().find("bytes"), std::string::npos);
  }
  EXPECT_EQ(d->allocator().bytesInUse(MemoryKind::KVCache), 0u);
}

TEST(CpuDevice, DeviceBufferGrowsAndReleases) {
  std::unique_ptr<Device> d = createCpuDevice();
  Allocator& a = d->allocator();
  {
    DeviceBuffer b;
    ASSERT_TRUE(b.reserve(a, 100, MemoryKind::Staging).isOk());
    void* first = b.data();
    EXPECT_GE(b.bytes(), 100u);
    ASSERT_TRUE(b.reserve(a, 50, MemoryKind::Staging).isOk());
    EXPECT_EQ(b.data(), first);  // big enough: kept
    ASSERT_TRUE(b.reserve(a, 4096, MemoryKind::Staging).isOk());
    EXPECT_GE(b.bytes(), 4096u);
    EXPECT_EQ(a.bytesInUse(MemoryKind::Staging), b.bytes());  // the old one was released
    DeviceBuffer moved = std::move(b);
    EXPECT_EQ(b.data(), nullptr);
    EXPECT_EQ(a.bytesInUse(MemoryKind::Staging), moved.bytes());
  }
  EXPECT_EQ(a.bytesInUse(MemoryKind::Staging), 0u);
}

TEST(CpuDevice, StreamCopiesInOrderAndEventsComplete) {
  std::unique_ptr<Device> d = createCpuDevice();
  DeviceBuffer b;
  ASSERT_TRUE(b.reserve(d->allocator(), 16, MemoryKind::Staging).isOk());
  const int32_t in[4] = {1, 2, 3, 4};
  int32_t out[4] = {};
  ASSERT_TRUE(d->stream().copyToDevice(b.data(), in, sizeof(in)).isOk());
  StatusOr<std::unique_ptr<Event>> e = d->stream().record();
  ASSERT_TRUE(e.isOk());
  EXPECT_TRUE((*e)->complete());
  EXPECT_TRUE((*e)->wait().isOk());
  ASSERT_TRUE(d->stream().copyToHost(out, b.data(), sizeof(out)).isOk());
  ASSERT_TRUE(d->stream().synchronize().isOk());
  EXPECT_EQ(std::memcmp(in, out, sizeof(in)), 0);
}

}  // namespace
}  // namespace ds::hal

namespace ds::hal {
namespace {

// The CPU kernels' KV block layout takes exactly the bytes of the one KV size formula
// (artifact::kvBytesPerSlot), for every cache dtype: the runtime allocates by the formula and
// the kernels carve the block by their layout.
TEST(CpuDevice, KvBlockLayoutMatchesTheArtifactFormula) {
  const std::pair<fb::DType, cpu::KVType> types[] = {{fb::DType_F32, cpu::KVType::F32},
                                                     {fb::DType_I8, cpu::KVType::I8},
                                                     {fb::DType_F8_E4M3, cpu::KVType::F8E4M3}};
  for (const auto& [dt, kt] : types) {
    flatbuffers::FlatBufferBuilder b;
    b.Finish(fb::CreateKVCacheSpec(b, fb::KVKind_GQA, 3, 16, 4, 128, 96, 0, 0, dt));
    const auto* gqa = flatbuffers::GetRoot<fb::KVCacheSpec>(b.GetBufferPointer());
    EXPECT_EQ(artifact::kvBytesPerSlot(*gqa) * 16,
              static_cast<uint64_t>(cpu::kvBlockBytes(kt, 16, 4, 128, 96)));
    EXPECT_EQ(artifact::kvBytesPerBlock(*gqa), 3 * artifact::kvBytesPerSlot(*gqa) * 16);
    flatbuffers::FlatBufferBuilder m;
    m.Finish(fb::CreateKVCacheSpec(m, fb::KVKind_MLA, 3, 64, 0, 0, 0, 512, 64, dt));
    const auto* mla = flatbuffers::GetRoot<fb::KVCacheSpec>(m.GetBufferPointer());
    EXPECT_EQ(artifact::kvBytesPerSlot(*mla) * 64,
              static_cast<uint64_t>(cpu::mlaBlockBytes(kt, 64, 512, 64)));
  }
}

}  // namespace
}  // namespace ds::hal
