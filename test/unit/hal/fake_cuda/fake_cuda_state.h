// The fake CUDA driver's state, shared by its two halves (fake_cuda.cpp: devices, memory,
// streams, events; fake_cuda_modules.cpp: modules, launches, graphs, the test accessors).
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "fake_cuda_image.h"
#include "hal/cuda/cuda_driver.h"

namespace fake_cuda {

using namespace ds::hal::cuda;  // the driver's types as the runtime declares them

constexpr CUresult kInvalidValue = 1, kOutOfMemory = 2, kNotInitialized = 3, kNoDevice = 100,
                   kInvalidDevice = 101, kInvalidImage = 200, kInvalidContext = 201,
                   kNoBinary = 209, kInvalidHandle = 400, kIllegalState = 401, kNotFound = 500,
                   kNotSupported = 801, kCaptureUnsupported = 900, kCaptureInvalidated = 901,
                   kCaptureWrongThread = 908;
constexpr uint64_t kAlign = 256;
constexpr uint32_t kSharedWithoutOptIn = 48 << 10;
constexpr int kMaxDevices = 16;

struct Config {
  int devices = 1, major = 9, minor = 0, sm_count = 132;
  uint64_t total = 80ull << 30;
  long long free = -1;  // -1: total - allocated
  std::string name = "Fake GPU";
  bool trace = false;  // FAKE_CUDA_TRACE=1: every launch on stderr
};

struct Context {
  int device = 0;
  int refs = 0;
};

struct Module;
struct Function {
  Module* module = nullptr;
  std::string name;
  KernelInfo info;
};
struct Module {
  Image image;
  int entry = -1;
  std::map<std::string, std::unique_ptr<Function>> functions;
};

struct LaunchRecord {
  std::string name;
  uint32_t grid[3] = {}, block[3] = {}, shared = 0;
  int from_graph = 0, num_params = -1;
  std::vector<uint8_t> params;
  uint64_t stream = 0;
};

// A captured operation: a launch, or a copy / memset replayed when the graph launches.
struct Node {
  // Host: a function another fake library queued (the fake NCCL's exchanges), run in stream order
  // without the driver's lock held (it may wait for a peer rank's thread).
  enum Kind { Launch, HtoD, DtoH, Memset, Host } kind = Launch;
  void (*host_fn)(void*) = nullptr;
  void* host_arg = nullptr;
  LaunchRecord launch;
  uint64_t device = 0;
  const void* src = nullptr;
  void* dst = nullptr;
  size_t bytes = 0;
  unsigned char value = 0;
};
struct Graph {
  std::vector<Node> nodes;
};
struct Stream {
  Graph* capture = nullptr;  // non-null while capturing
  bool invalidated = false;
  std::thread::id thread;    // the thread that began the capture
};

struct State {
  std::mutex mu;
  bool initialized = false;
  Config cfg;
  Context contexts[kMaxDevices];
  std::map<uint64_t, size_t> allocations;  // device
  uint64_t allocated = 0;
  std::map<void*, size_t> host;
  std::set<Stream*> streams;
  std::set<void*> events;
  std::set<Module*> modules;
  std::set<Function*> functions;
  std::set<Graph*> graphs, execs;
  std::deque<LaunchRecord> log;  // deque: records never move (tests hold name/params pointers)
  std::map<std::string, size_t> calls;
  std::map<std::string, std::pair<size_t, CUresult>> failures;  // symbol -> (at call #, result)
  uint64_t htod_bytes = 0;
  std::string last_error;
};

State& state();
extern thread_local Context* current;
extern thread_local int captures_on_thread;

// Records `why` (fake_cuda_last_error) and returns r.
CUresult fail(CUresult r, const std::string& why);
// Counts the call, fires an armed failure, and refuses calls before cuInit.
CUresult enter(const char* symbol);
CUresult needContext(const char* symbol);
// Calls the real driver refuses while this thread captures a stream (global and thread-local
// capture modes); the capture is invalidated too.
CUresult refuseDuringCapture(const char* symbol);
// The stream behind a handle (null: the legacy stream); *ok false for an unknown handle.
Stream* streamOf(CUstream s, bool* ok);
// Whether [p, p + bytes) lies inside one live allocation.
bool inAllocation(uint64_t p, uint64_t bytes);
std::string hex(uint64_t v);
// Replays a graph's nodes on `stream` (launches into the log, marked from_graph). `lock` (the
// driver's, held) is released around host nodes.
void runNodes(const Graph& g, CUstream stream, std::unique_lock<std::mutex>* lock = nullptr);
// Queues node n on st: into its graph while it captures, else done now.
CUresult queue(Stream* st, Node n, CUstream handle);

}  // namespace fake_cuda

// Every entry point of DS_CUDA_DRIVER_SYMBOLS: (table field, exported name). Each is declared with
// the table's own function type, so a definition of another signature fails to compile.
#define FAKE_CUDA_ENTRY_POINTS(X)                                                         \
  X(cuInit, cuInit) X(cuDriverGetVersion, cuDriverGetVersion)                              \
  X(cuGetErrorName, cuGetErrorName) X(cuGetErrorString, cuGetErrorString)                  \
  X(cuDeviceGetCount, cuDeviceGetCount) X(cuDeviceGet, cuDeviceGet)                        \
  X(cuDeviceGetName, cuDeviceGetName) X(cuDeviceGetAttribute, cuDeviceGetAttribute)        \
  X(cuDeviceTotalMem, cuDeviceTotalMem_v2) X(cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRetain) \
  X(cuDevicePrimaryCtxRelease, cuDevicePrimaryCtxRelease_v2)                               \
  X(cuCtxSetCurrent, cuCtxSetCurrent) X(cuMemGetInfo, cuMemGetInfo_v2)                     \
  X(cuMemAlloc, cuMemAlloc_v2) X(cuMemFree, cuMemFree_v2)                                  \
  X(cuMemHostAlloc, cuMemHostAlloc) X(cuMemFreeHost, cuMemFreeHost)                        \
  X(cuMemcpyHtoDAsync, cuMemcpyHtoDAsync_v2) X(cuMemcpyDtoHAsync, cuMemcpyDtoHAsync_v2)    \
  X(cuMemsetD8Async, cuMemsetD8Async) X(cuStreamCreate, cuStreamCreate)                    \
  X(cuStreamDestroy, cuStreamDestroy_v2) X(cuStreamSynchronize, cuStreamSynchronize)       \
  X(cuEventCreate, cuEventCreate) X(cuEventDestroy, cuEventDestroy_v2)                     \
  X(cuEventRecord, cuEventRecord) X(cuEventQuery, cuEventQuery)                            \
  X(cuEventSynchronize, cuEventSynchronize) X(cuModuleLoadData, cuModuleLoadData)          \
  X(cuModuleLoadFatBinary, cuModuleLoadFatBinary) X(cuModuleUnload, cuModuleUnload)        \
  X(cuModuleGetFunction, cuModuleGetFunction) X(cuFuncGetAttribute, cuFuncGetAttribute)    \
  X(cuLaunchKernel, cuLaunchKernel) X(cuStreamBeginCapture, cuStreamBeginCapture_v2)       \
  X(cuStreamEndCapture, cuStreamEndCapture) X(cuGraphInstantiate, cuGraphInstantiateWithFlags) \
  X(cuGraphLaunch, cuGraphLaunch) X(cuGraphExecDestroy, cuGraphExecDestroy)                \
  X(cuGraphDestroy, cuGraphDestroy)

#define FAKE_DECLARE(field, fn)                                                       \
  extern "C" __attribute__((visibility("default")))                                   \
  std::remove_pointer_t<ds::hal::cuda::CudaDriver::field##_fn> fn;                    \
  constexpr const char* fake_symbol_##field = #fn;
FAKE_CUDA_ENTRY_POINTS(FAKE_DECLARE)
#undef FAKE_DECLARE

#define FAKE_ENTER(symbol)                                          \
  std::unique_lock<std::mutex> lock_(::fake_cuda::state().mu);      \
  if (CUresult r_ = ::fake_cuda::enter(symbol); r_ != CUDA_SUCCESS) \
    return r_;
