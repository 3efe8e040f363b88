// Tests' side of the fake CUDA driver: the runtime is pointed at libds_fake_cuda.so before its
// first driver load (DS_CUDA_DRIVER, set by a static initializer of the test binary), and the
// accessors of fake_cuda.h are read from the same object with dlopen + dlsym.
#pragma once

#include <dlfcn.h>

#include <cstdlib>
#include <string>

#include "fake_cuda.h"

namespace ds::test {

struct FakeCuda {
  decltype(&fake_cuda_reset) reset = nullptr;
  decltype(&fake_cuda_launch_count) launch_count = nullptr;
  decltype(&fake_cuda_launch) launch = nullptr;
  decltype(&fake_cuda_allocated_bytes) allocated_bytes = nullptr;
  decltype(&fake_cuda_live_allocations) live_allocations = nullptr;
  decltype(&fake_cuda_is_device_range) is_device_range = nullptr;
  decltype(&fake_cuda_live) live = nullptr;
  decltype(&fake_cuda_primary_ctx_refs) primary_ctx_refs = nullptr;
  decltype(&fake_cuda_call_count) call_count = nullptr;
  decltype(&fake_cuda_fail) fail = nullptr;
  decltype(&fake_cuda_htod_bytes) htod_bytes = nullptr;
  decltype(&fake_cuda_last_error) last_error = nullptr;

  // The accessors, from the library the runtime loaded (dlopen of the same path: same object).
  static const FakeCuda& get() {
    static const FakeCuda f = [] {
      FakeCuda c;
      void* h = ::dlopen(DS_FAKE_CUDA_LIBRARY, RTLD_NOW | RTLD_LOCAL);
      if (!h) std::abort();
#define DS_FAKE_BIND(field) c.field = reinterpret_cast<decltype(c.field)>(::dlsym(h, "fake_cuda_" #field))
      DS_FAKE_BIND(reset);
      DS_FAKE_BIND(launch_count);
      DS_FAKE_BIND(launch);
      DS_FAKE_BIND(allocated_bytes);
      DS_FAKE_BIND(live_allocations);
      DS_FAKE_BIND(is_device_range);
      DS_FAKE_BIND(live);
      DS_FAKE_BIND(primary_ctx_refs);
      DS_FAKE_BIND(call_count);
      DS_FAKE_BIND(fail);
      DS_FAKE_BIND(htod_bytes);
      DS_FAKE_BIND(last_error);
#undef DS_FAKE_BIND
      return c;
    }();
    return f;
  }
};

// Every handle kind the fake tracks, for leak checks around a scope.
struct FakeLive {
  size_t allocations = 0;
  long host = 0, streams = 0, events = 0, modules = 0, graphs = 0, execs = 0;
  int ctx_refs = 0;
  static FakeLive now() {
    const FakeCuda& f = FakeCuda::get();
    return {f.live_allocations(), f.live("host"),  f.live("stream"),     f.live("event"),
            f.live("module"),     f.live("graph"), f.live("graph_exec"), f.primary_ctx_refs(0)};
  }
  bool operator==(const FakeLive& o) const {
    return allocations == o.allocations && host == o.host && streams == o.streams &&
           events == o.events && modules == o.modules && graphs == o.graphs && execs == o.execs &&
           ctx_refs == o.ctx_refs;
  }
  std::string text() const {
    return "allocations " + std::to_string(allocations) + ", pinned " + std::to_string(host) +
           ", streams " + std::to_string(streams) + ", events " + std::to_string(events) +
           ", modules " + std::to_string(modules) + ", graphs " + std::to_string(graphs) + "/" +
           std::to_string(execs) + ", primary context refs " + std::to_string(ctx_refs);
  }
};

// Before anything loads the driver: the default library is the fake, cuBLASLt off (the real
// libcublasLt would look for the real libcuda).
inline bool pointRuntimeAtFakeDriver() {
  ::setenv("DS_CUDA_DRIVER", DS_FAKE_CUDA_LIBRARY, 1);
  ::setenv("DS_CUDA_BLASLT", "0", 1);
  return true;
}

}  // namespace ds::test
