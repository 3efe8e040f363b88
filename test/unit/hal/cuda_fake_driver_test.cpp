// The CUDA device's driver-facing code over the fake driver (fake_cuda/, docs/cuda.md "Fake
// driver"): discovery, the allocator and its budget, the weight upload, module loading and
// kernel resolution, graph capture and replay. No kernel runs: these check the host side only.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "artifact/artifact_reader.h"
#include "artifact/format.h"
#include "artifact/layout.h"
#include "fake_cuda_client.h"
#include "hal/cuda/cuda_device.h"
#include "hal/cuda/cuda_executable.h"

namespace ds::test {
namespace {

const bool kFakeDriver = pointRuntimeAtFakeDriver();

using hal::cuda::CudaDevice;
using hal::cuda::CudaExecutable;
using hal::cuda::CudaWeights;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string artifactPath(const std::string& name) {
  return std::string(DS_FAKE_CUDA_ARTIFACTS) + "/" + name + ".dsa";
}
bool haveFile(const std::string& path) { return std::ifstream(path).good(); }

// Re-reads the FAKE_CUDA_* environment (the fake's cuInit does, on every load of its path).
void reconfigure() {
  auto d = hal::cuda::loadCudaDriver(DS_FAKE_CUDA_LIBRARY);
  (void)d;
}

struct ScopedEnv {
  std::string name;
  ScopedEnv(const char* n, const char* v) : name(n) {
    ::setenv(n, v, 1);
    reconfigure();
  }
  ~ScopedEnv() {
    ::unsetenv(name.c_str());
    reconfigure();
  }
};

std::unique_ptr<CudaDevice> makeDevice(double fraction = 0.9) {
  hal::DeviceOptions o;
  o.gpu_memory_fraction = fraction;
  auto d = CudaDevice::create("sm_90a", o);
  EXPECT_TRUE(d.isOk()) << d.status().toString();
  return d.isOk() ? std::move(d).value() : nullptr;
}

TEST(FakeCudaDevice, Discovery) {
  ASSERT_TRUE(kFakeDriver);
  const FakeLive before = FakeLive::now();
  {
    auto dev = makeDevice();
    ASSERT_NE(dev, nullptr);
    EXPECT_EQ(dev->props().name, "Fake GPU");
    EXPECT_EQ(dev->props().major, 9);
    EXPECT_EQ(dev->props().minor, 0);
    EXPECT_EQ(dev->props().sm_count, 132);
    EXPECT_EQ(dev->props().total_bytes, 80ull << 30);
    EXPECT_EQ(dev->info().name, "cuda:0 (Fake GPU, sm_90)");
    EXPECT_EQ(dev->budgetBytes(), static_cast<uint64_t>(0.9 * (80ull << 30)));
    EXPECT_EQ(dev->driver().version, 13000);
    EXPECT_EQ(FakeCuda::get().primary_ctx_refs(0), before.ctx_refs + 1);
    EXPECT_EQ(FakeCuda::get().live("stream"), before.streams + 1);
  }
  EXPECT_TRUE(FakeLive::now() == before) << FakeLive::now().text();
}

TEST(FakeCudaDevice, Configured) {
  ScopedEnv cc("FAKE_CUDA_CC", "8.6");
  ScopedEnv sm("FAKE_CUDA_SM_COUNT", "84");
  ScopedEnv bytes("FAKE_CUDA_TOTAL_BYTES", "25769803776");
  auto dev = makeDevice();
  ASSERT_NE(dev, nullptr);
  EXPECT_EQ(dev->info().name, "cuda:0 (Fake GPU, sm_86)");
  EXPECT_EQ(dev->props().sm_count, 84);
  EXPECT_EQ(dev->props().total_bytes, 24ull << 30);
}

TEST(FakeCudaDevice, Refusals) {
  hal::DeviceOptions o;
  o.device_ordinal = 1;
  auto d = hal::createCudaDevice("sm_90a", o);
  ASSERT_FALSE(d.isOk());
  EXPECT_EQ(d.status().message(), "GPU 1 was asked for but the driver sees 1 GPU(s) (ordinals 0..0)");
  {
    ScopedEnv none("FAKE_CUDA_DEVICES", "0");
    o = {};
    o.cuda_driver_library = DS_FAKE_CUDA_LIBRARY;  // loads again: cuInit says there is no GPU
    d = hal::createCudaDevice("sm_90a", o);
    ASSERT_FALSE(d.isOk());
    EXPECT_EQ(d.status().code(), DS_UNAVAILABLE);
    EXPECT_EQ(d.status().message(),
              "the artifact is for sm_90a and needs an NVIDIA GPU with its driver (cuInit: "
              "CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected))");
  }
  // A failing call during discovery is named and leaks nothing.
  const FakeLive before = FakeLive::now();
  FakeCuda::get().fail("cuStreamCreate", 1, 999);
  d = hal::createCudaDevice("sm_90a", {});
  ASSERT_FALSE(d.isOk());
  EXPECT_EQ(d.status().message(), "cuStreamCreate: CUDA_ERROR_UNKNOWN (unknown error)");
  EXPECT_TRUE(FakeLive::now() == before) << FakeLive::now().text();
}

TEST(FakeCudaAllocator, BudgetAndDriverErrors) {
  const FakeLive before = FakeLive::now();
  {
    auto dev = makeDevice(1e-6);  // 85899 bytes of 80 GiB
    ASSERT_NE(dev, nullptr);
    hal::Allocator& a = dev->allocator();
    auto big = a.allocate(1 << 20, hal::MemoryKind::Weights);
    ASSERT_FALSE(big.isOk());
    EXPECT_EQ(big.status().code(), DS_OUT_OF_MEMORY);
    EXPECT_TRUE(contains(big.status().message(), "cannot allocate 1048576 bytes (0.00 GiB) of "))
        << big.status().message();
    EXPECT_TRUE(contains(big.status().message(), "budget of 85899 bytes")) << big.status().message();
    auto x = a.allocate(1000, hal::MemoryKind::Activations);
    ASSERT_TRUE(x.isOk()) << x.status().toString();
    EXPECT_EQ(x->bytes, 1024u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(x->data) % 256, 0u);
    EXPECT_EQ(a.bytesInUse(hal::MemoryKind::Activations), 1024u);
    // Activations start zeroed (the fake's device memory is host memory: read it in place).
    const auto* bytes = static_cast<const uint8_t*>(x->data);
    for (int i = 0; i < 1024; ++i) ASSERT_EQ(bytes[i], 0) << i;
    // The driver's own out-of-memory becomes DS_OUT_OF_MEMORY naming the call; nothing leaks.
    FakeCuda::get().fail("cuMemAlloc_v2", 1, 2);
    auto oom = a.allocate(4096, hal::MemoryKind::KVCache);
    ASSERT_FALSE(oom.isOk());
    EXPECT_EQ(oom.status().code(), DS_OUT_OF_MEMORY);
    EXPECT_EQ(oom.status().message(),
              "cuMemAlloc_v2(4096 bytes of KV cache): CUDA_ERROR_OUT_OF_MEMORY (out of memory)");
    // A failed zeroing frees the allocation it made.
    const size_t live = FakeCuda::get().live_allocations();
    FakeCuda::get().fail("cuMemsetD8Async", 1, 999);
    EXPECT_FALSE(a.allocate(4096, hal::MemoryKind::Activations).isOk());
    EXPECT_EQ(FakeCuda::get().live_allocations(), live);
    EXPECT_EQ(a.bytesInUse(hal::MemoryKind::KVCache), 0u);
    a.release(*x);
    EXPECT_EQ(a.bytesInUse(hal::MemoryKind::Activations), 0u);
  }
  EXPECT_TRUE(FakeLive::now() == before) << FakeLive::now().text();
}

TEST(FakeCudaAllocator, CopiesAndStreamsAreChecked) {
  auto dev = makeDevice();
  ASSERT_NE(dev, nullptr);
  hal::DeviceBuffer buf;
  ASSERT_TRUE(buf.reserve(dev->allocator(), 512, hal::MemoryKind::Staging).isOk());
  std::vector<uint8_t> in(512), out(512);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<uint8_t>(i * 7);
  ASSERT_TRUE(dev->stream().copyToDevice(buf.data(), in.data(), in.size()).isOk());
  ASSERT_TRUE(dev->stream().copyToHost(out.data(), buf.data(), out.size()).isOk());
  auto ev = dev->stream().record();
  ASSERT_TRUE(ev.isOk());
  EXPECT_TRUE((*ev)->complete());
  EXPECT_TRUE((*ev)->wait().isOk());
  EXPECT_EQ(in, out);
  // Past the allocation: the driver refuses (the real one does too), named.
  Status st = dev->stream().copyToDevice(static_cast<uint8_t*>(buf.data()) + 256, in.data(), 512);
  EXPECT_EQ(st.code(), DS_INTERNAL);
  EXPECT_EQ(st.message(), "cuMemcpyHtoDAsync_v2(512 bytes): CUDA_ERROR_INVALID_VALUE (invalid argument)");
}

TEST(FakeCudaAllocator, PlanMemoryReadsFreeMemory) {
  const std::string path = artifactPath("tiny-llama.sm_90a");
  if (!haveFile(path)) GTEST_SKIP() << path << " was not built";
  auto art = artifact::Artifact::open(path);
  ASSERT_TRUE(art.isOk());
  auto plan = hal::StepPlan::decode(**art);
  ASSERT_TRUE(plan.isOk());
  auto dev = makeDevice();
  ASSERT_NE(dev, nullptr);
  auto b = dev->planMemory(*plan, 1 << 20, 256, 1 << 20, 4);
  ASSERT_TRUE(b.isOk()) << b.status().toString();
  EXPECT_GT(b->kv_blocks, 0);
  // Another process holds most of the GPU: the budget is above what is free.
  ScopedEnv free_bytes("FAKE_CUDA_FREE_BYTES", "1073741824");
  b = dev->planMemory(*plan, 1 << 20, 256, 1 << 20, 4);
  ASSERT_FALSE(b.isOk());
  EXPECT_TRUE(contains(b.status().message(), "cuda:0 (Fake GPU, sm_90): ")) << b.status().message();
  EXPECT_TRUE(contains(b.status().message(), "1073741824")) << b.status().message();
}

TEST(FakeCudaWeights, UploadPlacesEveryTensor) {
  for (const char* name : {"tiny-llama.sm_90a", "tiny-qwen2.sm_90a.f32", "stories260K.sm_90a",
                           "tiny-llama.sm_90a.w4g64", "tiny-llama.sm_90a.w4g128a"}) {
    SCOPED_TRACE(name);
    const std::string path = artifactPath(name);
    if (!haveFile(path)) GTEST_SKIP() << path << " was not built";
    auto art = artifact::Artifact::open(path);
    ASSERT_TRUE(art.isOk());
    auto plan = hal::StepPlan::decode(**art);
    ASSERT_TRUE(plan.isOk());
    const FakeLive before = FakeLive::now();
    {
      auto dev = makeDevice();
      ASSERT_NE(dev, nullptr);
      uint64_t last = 0, total = 0;
      int progress_calls = 0;
      dev->setUploadProgress([&](uint64_t done, uint64_t all) {
        EXPECT_GT(done, last);
        last = done, total = all, ++progress_calls;
      });
      FakeCuda::get().reset();
      auto w = dev->loadWeights(**art, *plan, 0);
      ASSERT_TRUE(w.isOk()) << w.status().toString();
      const auto& cw = static_cast<const CudaWeights&>(**w);
      EXPECT_EQ(last, total);
      EXPECT_EQ(cw.bytes(), (total + 255) / 256 * 256);
      // One chunk per 64 MiB staging buffer (these models fit in one), all of it copied.
      EXPECT_EQ(FakeCuda::get().call_count("cuMemcpyHtoDAsync_v2"),
                static_cast<size_t>((total + CudaDevice::kStagingBytes - 1) / CudaDevice::kStagingBytes));
      EXPECT_EQ(static_cast<size_t>(progress_calls), FakeCuda::get().call_count("cuMemcpyHtoDAsync_v2"));
      EXPECT_EQ(FakeCuda::get().htod_bytes(), total);
      const auto* tensors = (*art)->meta()->tensors();
      int int4 = 0;
      for (uint32_t i = 0; i < tensors->size(); ++i) {
        const fb::Tensor* t = tensors->Get(i);
        const hal::cuda::CUdeviceptr p = cw.at(static_cast<int32_t>(i));
        ASSERT_EQ(p % 256, 0u) << t->name()->str();
        ASSERT_TRUE(FakeCuda::get().is_device_range(p, std::max<uint64_t>(t->nbytes(), 1))) << t->name()->str();
        // int4 rows arrive in the GPU storage (ds_cuda_layout.h), everything else as stored.
        std::vector<uint8_t> want((*art)->tensorData(*t), (*art)->tensorData(*t) + t->nbytes());
        if (t->quant() == fb::QuantKind_Int4Group) {
          ds_cuda_i4_to_gpu(want.data(), want.size(), t->qzero() < 0);
          const CudaWeights::QuantScales q = cw.quantAt(static_cast<int32_t>(i));
          EXPECT_EQ(q.scale, cw.address(t->qscale())) << t->name()->str();
          EXPECT_EQ(q.zero, t->qzero() >= 0 ? cw.address(t->qzero()) : 0) << t->name()->str();
          EXPECT_EQ(q.group_size, t->group_size()) << t->name()->str();
          ++int4;
        }
        ASSERT_EQ(std::memcmp(reinterpret_cast<const void*>(p), want.data(), t->nbytes()), 0)
            << t->name()->str() << " differs from the artifact";
      }
      if (std::string(name).find(".w4") != std::string::npos) {
        EXPECT_GE(int4, 7) << "int4 GEMM weights";
      }
      // Pinned staging buffers and their events are gone once the upload returns.
      EXPECT_EQ(FakeCuda::get().live("host"), before.host);
      EXPECT_EQ(FakeCuda::get().live("event"), before.events);
    }
    EXPECT_TRUE(FakeLive::now() == before) << FakeLive::now().text();
  }
}

// An artifact whose int4 weight claims groups finer than its scale tensor holds (checksums
// recomputed, as a careless tool would write it) is refused by name before any upload: the GPU
// kernels would read the scales past their end.
TEST(FakeCudaWeights, ShortQuantizationScalesAreRefused) {
  const std::string path = artifactPath("tiny-llama.sm_90a.w4g64");
  if (!haveFile(path)) GTEST_SKIP() << path << " was not built";
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  artifact::FileHeader h;
  std::memcpy(&h, file.data(), sizeof h);
  uint8_t* md = file.data() + h.metadata_offset;
  const fb::Artifact* meta = fb::GetArtifact(md);
  std::string victim;
  for (const fb::Tensor* t : *meta->tensors()) {
    if (t->quant() != fb::QuantKind_Int4Group) continue;
    // The generated table keeps flatbuffers::Table private: the same object viewed as one.
    const uint8_t* at = reinterpret_cast<const flatbuffers::Table*>(t)->GetAddressOf(fb::Tensor::VT_GROUP_SIZE);
    ASSERT_NE(at, nullptr);
    const int64_t finer = t->group_size() / 2;  // twice the groups the scales cover
    std::memcpy(md + (at - md), &finer, sizeof finer);
    victim = t->name()->str();
    break;
  }
  ASSERT_FALSE(victim.empty()) << "no int4 tensor in " << path;
  h.metadata_xxh64 = artifact::checksum(md, h.metadata_size);
  h.header_xxh64 = artifact::headerChecksum(h);
  std::memcpy(file.data(), &h, sizeof h);
  const std::string bad = ::testing::TempDir() + "/short_scales.dsa";
  std::ofstream(bad, std::ios::binary).write(reinterpret_cast<const char*>(file.data()),
                                             static_cast<std::streamsize>(file.size()));
  auto art = artifact::Artifact::open(bad);
  ASSERT_TRUE(art.isOk()) << art.status().toString();
  auto plan = hal::StepPlan::decode(**art);
  ASSERT_TRUE(plan.isOk());
  const FakeLive before = FakeLive::now();
  {
    auto dev = makeDevice();
    ASSERT_NE(dev, nullptr);
    FakeCuda::get().reset();
    auto w = dev->loadWeights(**art, *plan, 0);
    ASSERT_FALSE(w.isOk());
    EXPECT_EQ(w.status().code(), DS_DATA_LOSS) << w.status().toString();
    EXPECT_NE(w.status().message().find("'" + victim + "' has scales of"), std::string::npos)
        << w.status().message();
    EXPECT_EQ(FakeCuda::get().htod_bytes(), 0u) << "refused before any upload";
  }
  EXPECT_TRUE(FakeLive::now() == before) << FakeLive::now().text();
}

TEST(FakeCudaWeights, FailedCopyLeaksNothing) {
  const std::string path = artifactPath("tiny-llama.sm_90a");
  if (!haveFile(path)) GTEST_SKIP() << path << " was not built";
  auto art = artifact::Artifact::open(path);
  ASSERT_TRUE(art.isOk());
  auto plan = hal::StepPlan::decode(**art);
  ASSERT_TRUE(plan.isOk());
  const FakeLive before = FakeLive::now();
  {
    auto dev = makeDevice();
    ASSERT_NE(dev, nullptr);
    FakeCuda::get().fail("cuMemcpyHtoDAsync_v2", 1, 999);
    auto w = dev->loadWeights(**art, *plan, 0);
    ASSERT_FALSE(w.isOk());
    EXPECT_TRUE(contains(w.status().message(), "cuMemcpyHtoDAsync_v2(weights, ")) << w.status().message();
  }
  EXPECT_TRUE(FakeLive::now() == before) << FakeLive::now().text();
}

}  // namespace
}  // namespace ds::test
