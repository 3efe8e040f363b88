// The CUDA driver API as a table of function pointers loaded from libcuda.so.1 with dlopen (in
// the spirit of IREE's cuda_dynamic_symbol_table.h): the runtime never links libcuda or cudart,
// so it builds, links and runs every CPU test on a machine without a GPU or driver. The few
// driver types are declared here (same layout as cuda.h) so no CUDA header is needed either.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace ds::hal::cuda {

// Driver API types (cuda.h): opaque handles and integers of the same size.
using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;  // NOLINT: the driver's own type
using CUcontext = struct CUctx_st*;
using CUmodule = struct CUmod_st*;
using CUfunction = struct CUfunc_st*;
using CUstream = struct CUstream_st*;
using CUevent = struct CUevent_st*;
using CUgraph = struct CUgraph_st*;
using CUgraphExec = struct CUgraphExec_st*;

// The enum values this runtime passes or tests (cuda.h, CUDA 12/13).
constexpr CUresult CUDA_SUCCESS = 0;
constexpr CUresult CUDA_ERROR_OUT_OF_MEMORY = 2;
constexpr CUresult CUDA_ERROR_NO_DEVICE = 100;
constexpr CUresult CUDA_ERROR_NO_BINARY_FOR_GPU = 209;
constexpr CUresult CUDA_ERROR_NOT_FOUND = 500;
constexpr CUresult CUDA_ERROR_NOT_READY = 600;
constexpr int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
constexpr unsigned CU_STREAM_NON_BLOCKING = 0x1;
constexpr unsigned CU_EVENT_DISABLE_TIMING = 0x2;
constexpr unsigned CU_MEMHOSTALLOC_PORTABLE = 0x1;
constexpr int CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1;

// Every driver entry point the device uses: X(name, exported symbol, signature). The exported
// symbol is the versioned one cuda.h's #defines select (cuMemAlloc -> cuMemAlloc_v2), so the
// table binds exactly what a program compiled against cuda.h would call.
#define DS_CUDA_DRIVER_SYMBOLS(X)                                                                  \
  X(cuInit, "cuInit", CUresult (*)(unsigned))                                                      \
  X(cuDriverGetVersion, "cuDriverGetVersion", CUresult (*)(int*))                                  \
  X(cuGetErrorName, "cuGetErrorName", CUresult (*)(CUresult, const char**))                        \
  X(cuGetErrorString, "cuGetErrorString", CUresult (*)(CUresult, const char**))                    \
  X(cuDeviceGetCount, "cuDeviceGetCount", CUresult (*)(int*))                                      \
  X(cuDeviceGet, "cuDeviceGet", CUresult (*)(CUdevice*, int))                                      \
  X(cuDeviceGetName, "cuDeviceGetName", CUresult (*)(char*, int, CUdevice))                        \
  X(cuDeviceGetAttribute, "cuDeviceGetAttribute", CUresult (*)(int*, int, CUdevice))               \
  X(cuDeviceTotalMem, "cuDeviceTotalMem_v2", CUresult (*)(size_t*, CUdevice))                      \
  X(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", CUresult (*)(CUcontext*, CUdevice))      \
  X(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", CUresult (*)(CUdevice))             \
  X(cuCtxSetCurrent, "cuCtxSetCurrent", CUresult (*)(CUcontext))                                   \
  X(cuMemGetInfo, "cuMemGetInfo_v2", CUresult (*)(size_t*, size_t*))                               \
  X(cuMemAlloc, "cuMemAlloc_v2", CUresult (*)(CUdeviceptr*, size_t))                               \
  X(cuMemFree, "cuMemFree_v2", CUresult (*)(CUdeviceptr))                                          \
  X(cuMemHostAlloc, "cuMemHostAlloc", CUresult (*)(void**, size_t, unsigned))                      \
  X(cuMemFreeHost, "cuMemFreeHost", CUresult (*)(void*))                                           \
  X(cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2",                                                     \
    CUresult (*)(CUdeviceptr, const void*, size_t, CUstream))                                      \
  X(cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2", CUresult (*)(void*, CUdeviceptr, size_t, CUstream)) \
  X(cuMemsetD8Async, "cuMemsetD8Async", CUresult (*)(CUdeviceptr, unsigned char, size_t, CUstream)) \
  X(cuStreamCreate, "cuStreamCreate", CUresult (*)(CUstream*, unsigned))                           \
  X(cuStreamDestroy, "cuStreamDestroy_v2", CUresult (*)(CUstream))                                 \
  X(cuStreamSynchronize, "cuStreamSynchronize", CUresult (*)(CUstream))                            \
  X(cuEventCreate, "cuEventCreate", CUresult (*)(CUevent*, unsigned))                              \
  X(cuEventDestroy, "cuEventDestroy_v2", CUresult (*)(CUevent))                                    \
  X(cuEventRecord, "cuEventRecord", CUresult (*)(CUevent, CUstream))                               \
  X(cuEventQuery, "cuEventQuery", CUresult (*)(CUevent))                                           \
  X(cuEventSynchronize, "cuEventSynchronize", CUresult (*)(CUevent))                               \
  X(cuModuleLoadData, "cuModuleLoadData", CUresult (*)(CUmodule*, const void*))                    \
  X(cuModuleLoadFatBinary, "cuModuleLoadFatBinary", CUresult (*)(CUmodule*, const void*))          \
  X(cuModuleUnload, "cuModuleUnload", CUresult (*)(CUmodule))                                      \
  X(cuModuleGetFunction, "cuModuleGetFunction", CUresult (*)(CUfunction*, CUmodule, const char*))  \
  X(cuFuncGetAttribute, "cuFuncGetAttribute", CUresult (*)(int*, int, CUfunction))                 \
  X(cuLaunchKernel, "cuLaunchKernel",                                                              \
    CUresult (*)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,           \
                 unsigned, CUstream, void**, void**))                                              \
  X(cuStreamBeginCapture, "cuStreamBeginCapture_v2", CUresult (*)(CUstream, int))                  \
  X(cuStreamEndCapture, "cuStreamEndCapture", CUresult (*)(CUstream, CUgraph*))                    \
  X(cuGraphInstantiate, "cuGraphInstantiateWithFlags",                                             \
    CUresult (*)(CUgraphExec*, CUgraph, unsigned long long))                                       \
  X(cuGraphLaunch, "cuGraphLaunch", CUresult (*)(CUgraphExec, CUstream))                           \
  X(cuGraphExecDestroy, "cuGraphExecDestroy", CUresult (*)(CUgraphExec))                           \
  X(cuGraphDestroy, "cuGraphDestroy", CUresult (*)(CUgraph))

// The loaded table. Loaded once per process and never unloaded (modules and contexts may outlive
// any one device object; unloading libcuda under live handles is undefined).
struct CudaDriver {
#define DS_CUDA_DECLARE_FIELD(name, symbol, type) \
  using name##_fn = type;                         \
  name##_fn name = nullptr;
  DS_CUDA_DRIVER_SYMBOLS(DS_CUDA_DECLARE_FIELD)
#undef DS_CUDA_DECLARE_FIELD
  int version = 0;  // cuDriverGetVersion: 13000 for CUDA 13.0

  // Turns a driver result into a status naming the call ("cuMemAlloc_v2(1048576 bytes):
  // CUDA_ERROR_OUT_OF_MEMORY (out of memory)"); OK for CUDA_SUCCESS. Out of memory maps to
  // DS_OUT_OF_MEMORY, a missing device or binary to DS_UNAVAILABLE, the rest to DS_INTERNAL.
  Status check(CUresult result, const std::string& call) const;
};

// The default library name (the driver's SONAME; libcuda.so without .1 is the toolkit's stub).
constexpr const char* kCudaDriverLibrary = "libcuda.so.1";

// Loads `library` (tests pass other paths) and binds every symbol, then calls cuInit(0).
// UNAVAILABLE when the library cannot be opened ("libcuda.so.1 not found: ...") or lacks a
// symbol (named, with the driver it came from); cuInit's error otherwise (named). The default
// library is loaded once per process and the result (table or error) cached; $DS_CUDA_DRIVER,
// when set at that first load, replaces libcuda.so.1 there (tests: the fake driver). Another
// path loads a table of its own each call (never unloaded).
StatusOr<const CudaDriver*> loadCudaDriver(const std::string& library = kCudaDriverLibrary);

// The message of a driver result: "CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)",
// or the number when the driver does not know it.
std::string cudaErrorText(const CudaDriver& driver, CUresult result);

}  // namespace ds::hal::cuda
