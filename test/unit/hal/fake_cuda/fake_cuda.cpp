// A fake CUDA driver (docs/cuda.md "Fake driver (tests)"): every entry point of
// DS_CUDA_DRIVER_SYMBOLS under its exported name, emulated on the host so the CUDA device's
// driver-facing code runs in CI. Memory is host memory (a CUdeviceptr is the host address),
// copies happen at once, events are always complete, modules are parsed for their kernels'
// names and parameter layouts, and launches are recorded, never executed. Where the real driver
// refuses a call (no current context, a range outside any allocation, a block over .maxntid,
// more than 48 KiB of shared memory without opt-in, an unsafe call during stream capture) the
// fake refuses it with the same code. Test-only: nothing in runtime/ links it.
#include "fake_cuda.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "fake_cuda_state.h"

using namespace fake_cuda;

namespace fake_cuda {

State& state() {
  static State* s = new State();  // never destroyed: runtime objects may outlive static teardown
  return *s;
}
thread_local Context* current = nullptr;
thread_local int captures_on_thread = 0;

CUresult fail(CUresult r, const std::string& why) {
  state().last_error = why;
  return r;
}

CUresult enter(const char* symbol) {
  State& s = state();
  const size_t n = ++s.calls[symbol];
  auto f = s.failures.find(symbol);
  if (f != s.failures.end() && f->second.first == n) {
    const CUresult r = f->second.second;
    s.failures.erase(f);
    return fail(r, std::string(symbol) + ": failure injected by fake_cuda_fail");
  }
  if (!s.initialized) return fail(kNotInitialized, std::string(symbol) + " before cuInit");
  return CUDA_SUCCESS;
}

CUresult needContext(const char* symbol) {
  if (!current || current->refs <= 0)
    return fail(kInvalidContext, std::string(symbol) + ": no current context on this thread");
  return CUDA_SUCCESS;
}

CUresult refuseDuringCapture(const char* symbol) {
  if (!captures_on_thread) return CUDA_SUCCESS;
  for (Stream* st : state().streams)
    if (st->capture && st->thread == std::this_thread::get_id()) st->invalidated = true;
  return fail(kCaptureUnsupported, std::string(symbol) + " during stream capture");
}

Stream* streamOf(CUstream s, bool* ok) {
  *ok = true;
  if (!s) return nullptr;  // the legacy default stream
  auto* st = reinterpret_cast<Stream*>(s);
  *ok = state().streams.count(st) != 0;
  return st;
}

bool inAllocation(uint64_t p, uint64_t bytes) {
  const auto& a = state().allocations;
  auto it = a.upper_bound(p);
  if (it == a.begin()) return false;
  --it;
  return p >= it->first && p + bytes <= it->first + it->second && bytes <= it->second;
}

std::string hex(uint64_t v) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

void readConfig(Config* c) {
  *c = Config{};
  if (const char* v = std::getenv("FAKE_CUDA_DEVICES")) c->devices = std::atoi(v);
  if (const char* v = std::getenv("FAKE_CUDA_CC")) std::sscanf(v, "%d.%d", &c->major, &c->minor);
  if (const char* v = std::getenv("FAKE_CUDA_TOTAL_BYTES")) c->total = std::strtoull(v, nullptr, 10);
  if (const char* v = std::getenv("FAKE_CUDA_FREE_BYTES")) c->free = std::strtoll(v, nullptr, 10);
  if (const char* v = std::getenv("FAKE_CUDA_SM_COUNT")) c->sm_count = std::atoi(v);
  if (const char* v = std::getenv("FAKE_CUDA_NAME")) c->name = v;
  if (const char* v = std::getenv("FAKE_CUDA_TRACE")) c->trace = std::string(v) == "1";
  if (c->devices > kMaxDevices) c->devices = kMaxDevices;
}

void record(LaunchRecord r) {
  State& s = state();
  if (s.cfg.trace)
    std::fprintf(stderr, "fake_cuda: launch %zu%s %s grid %ux%ux%u block %ux%ux%u shared %u params %d (%zu bytes)\n",
                 s.log.size(), r.from_graph ? " (graph)" : "", r.name.c_str(), r.grid[0], r.grid[1],
                 r.grid[2], r.block[0], r.block[1], r.block[2], r.shared, r.num_params, r.params.size());
  s.log.push_back(std::move(r));
}

void runNodes(const Graph& g, CUstream stream, std::unique_lock<std::mutex>* lock) {
  for (const Node& n : g.nodes) {
    switch (n.kind) {
      case Node::Host:
        if (lock) lock->unlock();
        n.host_fn(n.host_arg);
        if (lock) lock->lock();
        break;
      case Node::Launch: {
        LaunchRecord r = n.launch;
        r.from_graph = 1;
        r.stream = reinterpret_cast<uint64_t>(stream);
        record(std::move(r));
        break;
      }
      case Node::HtoD: std::memcpy(reinterpret_cast<void*>(n.device), n.src, n.bytes); break;
      case Node::DtoH: std::memcpy(n.dst, reinterpret_cast<const void*>(n.device), n.bytes); break;
      case Node::Memset: std::memset(reinterpret_cast<void*>(n.device), n.value, n.bytes); break;
    }
  }
}

CUresult queue(Stream* st, Node n, CUstream handle) {
  if (st && st->capture) {
    st->capture->nodes.push_back(std::move(n));
    return CUDA_SUCCESS;
  }
  if (n.kind == Node::Launch) {
    n.launch.stream = reinterpret_cast<uint64_t>(handle);
    record(std::move(n.launch));
    return CUDA_SUCCESS;
  }
  Graph once;
  once.nodes.push_back(std::move(n));
  runNodes(once, handle);
  return CUDA_SUCCESS;
}

}  // namespace fake_cuda

namespace {

struct ErrorText {
  CUresult code;
  const char* name;
  const char* text;
};
constexpr ErrorText kErrors[] = {
    {0, "CUDA_SUCCESS", "no error"},
    {1, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {101, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {200, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {201, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {209, "CUDA_ERROR_NO_BINARY_FOR_GPU", "no kernel image is available for execution on the device"},
    {400, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {401, "CUDA_ERROR_ILLEGAL_STATE", "the operation cannot be performed in the present state"},
    {500, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {600, "CUDA_ERROR_NOT_READY", "device not ready"},
    {801, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
    {900, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", "operation not permitted when stream is capturing"},
    {901, "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED",
     "operation failed due to a previous error during capture"},
    {908, "CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD",
     "attempt to terminate a thread-local capture sequence from another thread"},
    {999, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

}  // namespace

extern "C" {

CUresult cuInit(unsigned flags) {
  std::lock_guard<std::mutex> lock(state().mu);
  ++state().calls["cuInit"];
  if (flags != 0) return fail(kInvalidValue, "cuInit: flags must be 0");
  readConfig(&state().cfg);  // every cuInit: tests change the environment between loads
  state().initialized = state().cfg.devices > 0;
  if (!state().initialized) return fail(kNoDevice, "cuInit: FAKE_CUDA_DEVICES=0");
  return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int* v) {
  if (!v) return kInvalidValue;
  *v = 13000;
  return CUDA_SUCCESS;
}

CUresult cuGetErrorName(CUresult r, const char** s) {
  for (const ErrorText& e : kErrors)
    if (e.code == r) return *s = e.name, CUDA_SUCCESS;
  *s = nullptr;
  return kInvalidValue;
}

CUresult cuGetErrorString(CUresult r, const char** s) {
  for (const ErrorText& e : kErrors)
    if (e.code == r) return *s = e.text, CUDA_SUCCESS;
  *s = nullptr;
  return kInvalidValue;
}

CUresult cuDeviceGetCount(int* n) {
  FAKE_ENTER("cuDeviceGetCount");
  *n = state().cfg.devices;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice* d, int ordinal) {
  FAKE_ENTER("cuDeviceGet");
  if (ordinal < 0 || ordinal >= state().cfg.devices) return fail(kInvalidDevice, "cuDeviceGet: ordinal");
  *d = ordinal;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char* name, int len, CUdevice d) {
  FAKE_ENTER("cuDeviceGetName");
  if (d < 0 || d >= state().cfg.devices) return kInvalidDevice;
  if (!name || len <= 0) return kInvalidValue;
  std::snprintf(name, static_cast<size_t>(len), "%s", state().cfg.name.c_str());
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int* v, int attr, CUdevice d) {
  FAKE_ENTER("cuDeviceGetAttribute");
  const Config& c = state().cfg;
  if (d < 0 || d >= c.devices) return kInvalidDevice;
  switch (attr) {
    case 1: *v = 1024; break;                       // MAX_THREADS_PER_BLOCK
    case 2: case 3: *v = attr == 2 ? 1024 : 1024; break;  // MAX_BLOCK_DIM_X / Y
    case 4: *v = 64; break;                         // MAX_BLOCK_DIM_Z
    case 5: *v = 2147483647; break;                 // MAX_GRID_DIM_X
    case 6: case 7: *v = 65535; break;              // MAX_GRID_DIM_Y / Z
    case 8: *v = static_cast<int>(kSharedWithoutOptIn); break;  // MAX_SHARED_MEMORY_PER_BLOCK
    case 10: *v = 32; break;                        // WARP_SIZE
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *v = c.sm_count; break;
    case 39: *v = 2048; break;                      // MAX_THREADS_PER_MULTIPROCESSOR
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *v = c.major; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *v = c.minor; break;
    case 97: *v = 227 << 10; break;                 // MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
    default: return fail(kInvalidValue, "cuDeviceGetAttribute: attribute " + std::to_string(attr) +
                                            " is not emulated");
  }
  return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice d) {
  FAKE_ENTER("cuDeviceTotalMem_v2");
  if (d < 0 || d >= state().cfg.devices) return kInvalidDevice;
  *bytes = state().cfg.total;
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext* ctx, CUdevice d) {
  FAKE_ENTER("cuDevicePrimaryCtxRetain");
  if (d < 0 || d >= state().cfg.devices) return kInvalidDevice;
  Context& c = state().contexts[d];
  c.device = d;
  ++c.refs;
  *ctx = reinterpret_cast<CUcontext>(&c);
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d) {
  FAKE_ENTER("cuDevicePrimaryCtxRelease_v2");
  if (d < 0 || d >= state().cfg.devices) return kInvalidDevice;
  Context& c = state().contexts[d];
  if (c.refs <= 0) return fail(kInvalidContext, "cuDevicePrimaryCtxRelease_v2: not retained");
  --c.refs;
  return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext ctx) {
  FAKE_ENTER("cuCtxSetCurrent");
  auto* c = reinterpret_cast<Context*>(ctx);
  if (c && (c < state().contexts || c >= state().contexts + kMaxDevices || c->refs <= 0))
    return fail(kInvalidContext, "cuCtxSetCurrent: not a live context");
  current = c;
  return CUDA_SUCCESS;
}

CUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total) {
  FAKE_ENTER("cuMemGetInfo_v2");
  if (CUresult r = needContext("cuMemGetInfo_v2")) return r;
  const Config& c = state().cfg;
  *total = c.total;
  *free_bytes = c.free >= 0 ? static_cast<size_t>(c.free) : c.total - std::min(c.total, state().allocated);
  return CUDA_SUCCESS;
}

CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes) {
  FAKE_ENTER("cuMemAlloc_v2");
  if (CUresult r = needContext("cuMemAlloc_v2")) return r;
  if (CUresult r = refuseDuringCapture("cuMemAlloc_v2")) return r;
  if (bytes == 0) return fail(kInvalidValue, "cuMemAlloc_v2: 0 bytes");
  State& s = state();
  if (bytes > s.cfg.total - std::min(s.cfg.total, s.allocated))
    return fail(kOutOfMemory, "cuMemAlloc_v2(" + std::to_string(bytes) + "): over the device's memory");
  void* mem = std::aligned_alloc(kAlign, (bytes + kAlign - 1) / kAlign * kAlign);
  if (!mem) return fail(kOutOfMemory, "cuMemAlloc_v2: host allocation failed");
  *p = reinterpret_cast<CUdeviceptr>(mem);
  s.allocations[*p] = bytes;
  s.allocated += bytes;
  return CUDA_SUCCESS;
}

CUresult cuMemFree_v2(CUdeviceptr p) {
  FAKE_ENTER("cuMemFree_v2");
  if (CUresult r = needContext("cuMemFree_v2")) return r;
  if (CUresult r = refuseDuringCapture("cuMemFree_v2")) return r;
  State& s = state();
  auto it = s.allocations.find(p);
  if (it == s.allocations.end()) return fail(kInvalidValue, "cuMemFree_v2(" + hex(p) + "): not an allocation");
  s.allocated -= it->second;
  s.allocations.erase(it);
  std::free(reinterpret_cast<void*>(p));
  return CUDA_SUCCESS;
}

CUresult cuMemHostAlloc(void** p, size_t bytes, unsigned) {
  FAKE_ENTER("cuMemHostAlloc");
  if (CUresult r = needContext("cuMemHostAlloc")) return r;
  if (CUresult r = refuseDuringCapture("cuMemHostAlloc")) return r;
  if (bytes == 0) return fail(kInvalidValue, "cuMemHostAlloc: 0 bytes");
  *p = std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
  if (!*p) return kOutOfMemory;
  state().host[*p] = bytes;
  return CUDA_SUCCESS;
}

CUresult cuMemFreeHost(void* p) {
  FAKE_ENTER("cuMemFreeHost");
  if (CUresult r = needContext("cuMemFreeHost")) return r;
  if (CUresult r = refuseDuringCapture("cuMemFreeHost")) return r;
  if (!state().host.erase(p)) return fail(kInvalidValue, "cuMemFreeHost: not a pinned allocation");
  std::free(p);
  return CUDA_SUCCESS;
}

CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t bytes, CUstream s) {
  FAKE_ENTER("cuMemcpyHtoDAsync_v2");
  if (CUresult r = needContext("cuMemcpyHtoDAsync_v2")) return r;
  bool ok = false;
  Stream* st = streamOf(s, &ok);
  if (!ok) return fail(kInvalidHandle, "cuMemcpyHtoDAsync_v2: stream");
  if (!src || !inAllocation(dst, bytes))
    return fail(kInvalidValue, "cuMemcpyHtoDAsync_v2(" + hex(dst) + ", " + std::to_string(bytes) +
                                   " bytes): outside every allocation");
  state().htod_bytes += bytes;
  Node n;
  n.kind = Node::HtoD;
  n.device = dst;
  n.src = src;
  n.bytes = bytes;
  return queue(st, std::move(n), s);
}

CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t bytes, CUstream s) {
  FAKE_ENTER("cuMemcpyDtoHAsync_v2");
  if (CUresult r = needContext("cuMemcpyDtoHAsync_v2")) return r;
  bool ok = false;
  Stream* st = streamOf(s, &ok);
  if (!ok) return fail(kInvalidHandle, "cuMemcpyDtoHAsync_v2: stream");
  if (!dst || !inAllocation(src, bytes))
    return fail(kInvalidValue, "cuMemcpyDtoHAsync_v2(" + hex(src) + ", " + std::to_string(bytes) +
                                   " bytes): outside every allocation");
  Node n;
  n.kind = Node::DtoH;
  n.device = src;
  n.dst = dst;
  n.bytes = bytes;
  return queue(st, std::move(n), s);
}

CUresult cuMemsetD8Async(CUdeviceptr p, unsigned char value, size_t bytes, CUstream s) {
  FAKE_ENTER("cuMemsetD8Async");
  if (CUresult r = needContext("cuMemsetD8Async")) return r;
  bool ok = false;
  Stream* st = streamOf(s, &ok);
  if (!ok) return fail(kInvalidHandle, "cuMemsetD8Async: stream");
  if (!inAllocation(p, bytes))
    return fail(kInvalidValue, "cuMemsetD8Async(" + hex(p) + ", " + std::to_string(bytes) +
                                   " bytes): outside every allocation");
  Node n;
  n.kind = Node::Memset;
  n.device = p;
  n.bytes = bytes;
  n.value = value;
  return queue(st, std::move(n), s);
}

CUresult cuStreamCreate(CUstream* s, unsigned) {
  FAKE_ENTER("cuStreamCreate");
  if (CUresult r = needContext("cuStreamCreate")) return r;
  auto* st = new Stream();
  state().streams.insert(st);
  *s = reinterpret_cast<CUstream>(st);
  return CUDA_SUCCESS;
}

CUresult cuStreamDestroy_v2(CUstream s) {
  FAKE_ENTER("cuStreamDestroy_v2");
  auto* st = reinterpret_cast<Stream*>(s);
  if (!state().streams.erase(st)) return fail(kInvalidHandle, "cuStreamDestroy_v2: not a stream");
  if (st->capture) {
    delete st->capture;
    --captures_on_thread;
  }
  delete st;
  return CUDA_SUCCESS;
}

CUresult cuStreamSynchronize(CUstream s) {
  FAKE_ENTER("cuStreamSynchronize");
  if (CUresult r = needContext("cuStreamSynchronize")) return r;
  bool ok = false;
  Stream* st = streamOf(s, &ok);
  if (!ok) return fail(kInvalidHandle, "cuStreamSynchronize: stream");
  if (st && st->capture) {
    st->invalidated = true;
    return fail(kCaptureUnsupported, "cuStreamSynchronize of a capturing stream");
  }
  return CUDA_SUCCESS;
}

CUresult cuEventCreate(CUevent* e, unsigned) {
  FAKE_ENTER("cuEventCreate");
  if (CUresult r = needContext("cuEventCreate")) return r;
  void* h = new char(0);
  state().events.insert(h);
  *e = reinterpret_cast<CUevent>(h);
  return CUDA_SUCCESS;
}

CUresult cuEventDestroy_v2(CUevent e) {
  FAKE_ENTER("cuEventDestroy_v2");
  if (!state().events.erase(e)) return fail(kInvalidHandle, "cuEventDestroy_v2: not an event");
  delete reinterpret_cast<char*>(e);
  return CUDA_SUCCESS;
}

CUresult cuEventRecord(CUevent e, CUstream s) {
  FAKE_ENTER("cuEventRecord");
  bool ok = false;
  streamOf(s, &ok);
  if (!ok || !state().events.count(e)) return fail(kInvalidHandle, "cuEventRecord: handle");
  return CUDA_SUCCESS;
}

CUresult cuEventQuery(CUevent e) {
  FAKE_ENTER("cuEventQuery");
  return state().events.count(e) ? CUDA_SUCCESS : fail(kInvalidHandle, "cuEventQuery: not an event");
}

CUresult cuEventSynchronize(CUevent e) {
  FAKE_ENTER("cuEventSynchronize");
  return state().events.count(e) ? CUDA_SUCCESS : fail(kInvalidHandle, "cuEventSynchronize: not an event");
}

}  // extern "C"
