// The GPU check's synthetic-weight stage: ds_synthetic_fill for every dtype against the host
// fill's bytes. The host side is the shared element function (artifact/synthetic_element.h)
// that the host fill itself runs (a unit test, SyntheticElement.*, proves fillSyntheticRange
// equals it byte for byte), so equal bytes here mean the device fill equals the host fill.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "artifact/synthetic_element.h"
#include "ds_cuda_kernels.h"

namespace {

bool ok(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  std::printf("FAIL synthetic_fill: %s: %s\n", what, cudaGetErrorString(e));
  return false;
}

// The host's bytes of elements (I4: bytes) [first, first + count).
std::vector<uint8_t> hostBytes(const ds_cuda_synthetic_fill_params& p) {
  namespace s = ds::synth;
  const int unit = ds_cuda_synthetic_unit_bytes(p.dtype);
  std::vector<uint8_t> out(p.count * unit);
  for (uint64_t i = 0; i < p.count; ++i) {
    uint8_t* d = out.data() + i * unit;
    const float v = s::value(p.key, p.first + i, p.mean, p.std);
    switch (p.dtype) {
      case DS_CUDA_SYNTH_F32: std::memcpy(d, &v, 4); break;
      case DS_CUDA_SYNTH_F16: { const uint16_t h = s::toF16(v); std::memcpy(d, &h, 2); break; }
      case DS_CUDA_SYNTH_BF16: { const uint16_t h = s::toBF16(v); std::memcpy(d, &h, 2); break; }
      case DS_CUDA_SYNTH_F8_E4M3: *d = s::toF8E4M3(s::clampTo(v, -448.0f, 448.0f)); break;
      case DS_CUDA_SYNTH_I8: *d = s::toI8(v); break;
      case DS_CUDA_SYNTH_I32: { const int32_t x = s::toI32(v); std::memcpy(d, &x, 4); break; }
      case DS_CUDA_SYNTH_I4: *d = s::i4Byte(p.key, p.mean, p.std, static_cast<uint64_t>(p.cols), p.first + i); break;
    }
  }
  return out;
}

}  // namespace

// Fills each dtype on the device for several specs and offsets and compares the bytes; one line
// per case. Returns the number of failed cases.
int checkSyntheticFill(cudaLibrary_t lib, int sm_count) {
  cudaKernel_t kernel;
  if (!ok(cudaLibraryGetKernel(&kernel, lib, "ds_synthetic_fill"), "ds_synthetic_fill not in the library"))
    return 1;
  ds_cuda_device_limits dev = {sm_count, 48 << 10};
  const char* names[] = {"f32", "f16", "bf16", "f8_e4m3", "i8", "i32", "i4"};
  const float specs[][2] = {{0.0f, 0.02f}, {1.0f, 0.0f}, {7.5f, 4.0f}, {0.0f, 300.0f}, {-3.0f, 60.0f}};
  int failed = 0;
  for (int dt = DS_CUDA_SYNTH_F32; dt <= DS_CUDA_SYNTH_I4; ++dt)
    for (const auto& ms : specs)
      for (uint64_t first : {uint64_t{0}, uint64_t{777}, uint64_t{1} << 33}) {
        ds_cuda_synthetic_fill_params p = {};
        p.key = ds::synth::streamKey(1234 + first, 17 + dt);
        p.first = dt == DS_CUDA_SYNTH_I4 ? first % 4096 : first;
        p.count = 3000017;  // odd: every thread of the last block is tested
        p.cols = 999;
        p.mean = ms[0];
        p.std = ms[1];
        p.dtype = dt;
        const size_t bytes = p.count * ds_cuda_synthetic_unit_bytes(dt);
        void* d = nullptr;
        if (!ok(cudaMalloc(&d, bytes), "cudaMalloc")) return failed + 1;
        ok(cudaMemset(d, 0xAB, bytes), "cudaMemset");
        p.dst = reinterpret_cast<ds_cuda_ptr>(d);
        ds_cuda_plan plan;
        if (const char* e = ds_cuda_plan_synthetic_fill(&p, &dev, &plan)) {
          std::printf("FAIL synthetic_fill plan: %s\n", e);
          cudaFree(d);
          return failed + 1;
        }
        void* args[] = {&p};
        const ds_cuda_launch& l = plan.launches[0];
        bool ran = ok(cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(l.grid[0]),
                                       dim3(l.block[0]), args, 0, 0), "launch") &&
                   ok(cudaDeviceSynchronize(), "synchronize");
        std::vector<uint8_t> got(bytes);
        ran = ran && ok(cudaMemcpy(got.data(), d, bytes, cudaMemcpyDeviceToHost), "copy back");
        cudaFree(d);
        const std::vector<uint8_t> want = hostBytes(p);
        size_t diff = 0, first_diff = bytes;
        for (size_t i = 0; ran && i < bytes; ++i)
          if (got[i] != want[i]) {
            if (!diff) first_diff = i;
            ++diff;
          }
        const bool pass = ran && diff == 0;
        failed += !pass;
        std::printf("%-4s synthetic_fill %-8s mean %g std %g first %llu: %zu bytes, %zu differ%s\n",
                    pass ? "ok" : "FAIL", names[dt], ms[0], ms[1],
                    static_cast<unsigned long long>(p.first), bytes, diff,
                    diff ? (" (first at byte " + std::to_string(first_diff) + ")").c_str() : "");
      }
  return failed;
}
