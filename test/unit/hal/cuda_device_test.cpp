// The CUDA device without a GPU: the driver symbol table's errors (missing library, missing
// symbol), discovery's status, and ModelRunner's one-line refusal of a GPU artifact here.
#include <gtest/gtest.h>

#include <dlfcn.h>

#include "hal/cuda/cuda_device.h"
#include "hal/cuda/cuda_driver.h"

namespace ds::hal {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

bool driverPresent() {
  void* h = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (h) ::dlclose(h);
  return h != nullptr;
}

TEST(CudaDriver, MissingLibraryIsUnavailable) {
  auto d = cuda::loadCudaDriver("/nonexistent/libcuda.so.1");
  ASSERT_FALSE(d.isOk());
  EXPECT_EQ(d.status().code(), DS_UNAVAILABLE);
  EXPECT_EQ(d.status().message(), "/nonexistent/libcuda.so.1 not found");
}

TEST(CudaDriver, MissingSymbolIsNamed) {
  // libc loads but defines no driver entry point: the first symbol of the table is named.
  auto d = cuda::loadCudaDriver("libc.so.6");
  ASSERT_FALSE(d.isOk());
  EXPECT_EQ(d.status().code(), DS_UNAVAILABLE);
  EXPECT_TRUE(contains(d.status().message(), "libc.so.6 has no symbol cuInit")) << d.status().message();
}

TEST(CudaDevice, NoDriverIsAClearStatus) {
  DeviceOptions o;
  o.cuda_driver_library = "/nonexistent/libcuda.so.1";
  auto d = createCudaDevice("sm_90a", o);
  ASSERT_FALSE(d.isOk());
  EXPECT_EQ(d.status().code(), DS_UNAVAILABLE);
  EXPECT_EQ(d.status().message(),
            "the artifact is for sm_90a and needs an NVIDIA GPU with its driver "
            "(/nonexistent/libcuda.so.1 not found)");
}

TEST(CudaDevice, ThisMachine) {
  if (driverPresent()) GTEST_SKIP() << "libcuda.so.1 is present: the GPU checks are docs/cuda.md's";
  auto d = createCudaDevice("sm_80", {});
  ASSERT_FALSE(d.isOk());
  EXPECT_EQ(d.status().message(),
            "the artifact is for sm_80 and needs an NVIDIA GPU with its driver (libcuda.so.1 not found)");
  // The result is cached for the process: a second try says the same.
  auto again = cuda::loadCudaDriver();
  ASSERT_FALSE(again.isOk());
  EXPECT_EQ(again.status().message(), "libcuda.so.1 not found");
}

}  // namespace
}  // namespace ds::hal
