// The fake CUDA driver's second half: modules (images parsed by fake_cuda_image.cpp), kernel
// resolution, launches (validated and recorded, never run), stream capture and graphs, and the
// test accessors of fake_cuda.h.
#include <cstring>
#include <string_view>

#include "fake_cuda.h"
#include "fake_cuda_state.h"

using namespace fake_cuda;

namespace {

CUresult loadModule(const char* symbol, CUmodule* m, const void* image, bool fatbin_only) {
  if (CUresult r = needContext(symbol)) return r;
  auto mod = std::make_unique<Module>();
  std::string why;
  if (!image || !parseImage(image, &mod->image, &why))
    return fail(kInvalidImage, std::string(symbol) + ": " + (image ? why : "null image"));
  if (fatbin_only && mod->image.kind != ImageKind::Fatbin)
    return fail(kInvalidImage, std::string(symbol) + ": not a fatbin");
  const Config& c = state().cfg;
  mod->entry = chooseEntry(mod->image, c.major, c.minor);
  if (mod->entry < 0)
    return fail(kNoBinary, std::string(symbol) + ": no code object for compute capability " +
                               std::to_string(c.major) + "." + std::to_string(c.minor));
  Module* raw = mod.release();
  state().modules.insert(raw);
  *m = reinterpret_cast<CUmodule>(raw);
  return CUDA_SUCCESS;
}

Function* liveFunction(CUfunction f) {
  auto* fn = reinterpret_cast<Function*>(f);
  return state().functions.count(fn) ? fn : nullptr;
}

}  // namespace

extern "C" {

CUresult cuModuleLoadData(CUmodule* m, const void* image) {
  FAKE_ENTER("cuModuleLoadData");
  return loadModule("cuModuleLoadData", m, image, false);
}

CUresult cuModuleLoadFatBinary(CUmodule* m, const void* image) {
  FAKE_ENTER("cuModuleLoadFatBinary");
  return loadModule("cuModuleLoadFatBinary", m, image, true);
}

CUresult cuModuleUnload(CUmodule m) {
  FAKE_ENTER("cuModuleUnload");
  auto* mod = reinterpret_cast<Module*>(m);
  if (!state().modules.erase(mod)) return fail(kInvalidHandle, "cuModuleUnload: not a module");
  for (auto& [name, fn] : mod->functions) state().functions.erase(fn.get());
  delete mod;
  return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(CUfunction* f, CUmodule m, const char* name) {
  FAKE_ENTER("cuModuleGetFunction");
  auto* mod = reinterpret_cast<Module*>(m);
  if (!state().modules.count(mod)) return fail(kInvalidHandle, "cuModuleGetFunction: not a module");
  if (!name) return kInvalidValue;
  auto it = mod->functions.find(name);
  if (it == mod->functions.end()) {
    auto fn = std::make_unique<Function>();
    fn->module = mod;
    fn->name = name;
    const CodeEntry& entry = mod->image.entries[static_cast<size_t>(mod->entry)];
    // Compressed PTX cannot be searched: any name resolves, with an unknown parameter layout.
    if (entry.readable && !findKernel(entry, name, &fn->info))
      return fail(kNotFound, std::string("cuModuleGetFunction: no kernel '") + name + "' in the module");
    state().functions.insert(fn.get());
    it = mod->functions.emplace(name, std::move(fn)).first;
  }
  *f = reinterpret_cast<CUfunction>(it->second.get());
  return CUDA_SUCCESS;
}

CUresult cuFuncGetAttribute(int* v, int attr, CUfunction f) {
  FAKE_ENTER("cuFuncGetAttribute");
  Function* fn = liveFunction(f);
  if (!fn) return fail(kInvalidHandle, "cuFuncGetAttribute: not a function");
  const KernelInfo& k = fn->info;
  switch (attr) {
    case 0: *v = static_cast<int>(k.max_threads); break;    // MAX_THREADS_PER_BLOCK
    case 1: *v = static_cast<int>(k.static_shared); break;  // SHARED_SIZE_BYTES
    case 2: case 3: *v = 0; break;                          // CONST / LOCAL_SIZE_BYTES
    case 4: *v = 32; break;                                 // NUM_REGS
    case 5: case 6: *v = state().cfg.major * 10 + state().cfg.minor; break;  // PTX / BINARY_VERSION
    case 8: *v = static_cast<int>(kSharedWithoutOptIn - k.static_shared); break;  // MAX_DYNAMIC_SHARED
    default: return fail(kInvalidValue, "cuFuncGetAttribute: attribute " + std::to_string(attr));
  }
  return CUDA_SUCCESS;
}

CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                        unsigned by, unsigned bz, unsigned shared, CUstream s, void** params,
                        void** extra) {
  FAKE_ENTER("cuLaunchKernel");
  if (CUresult r = needContext("cuLaunchKernel")) return r;
  Function* fn = liveFunction(f);
  if (!fn) return fail(kInvalidHandle, "cuLaunchKernel: not a live function (module unloaded?)");
  bool ok = false;
  Stream* st = streamOf(s, &ok);
  if (!ok) return fail(kInvalidHandle, "cuLaunchKernel(" + fn->name + "): stream");
  const std::string what = "cuLaunchKernel(" + fn->name + ")";
  const KernelInfo& k = fn->info;
  const uint64_t threads = uint64_t{bx} * by * bz;
  if (!gx || !gy || !gz || gy > 65535 || gz > 65535 || gx > 2147483647u)
    return fail(kInvalidValue, what + ": grid " + std::to_string(gx) + "x" + std::to_string(gy) + "x" +
                                   std::to_string(gz));
  if (!bx || !by || !bz || bx > 1024 || by > 1024 || bz > 64 || threads > 1024 || threads > k.max_threads)
    return fail(kInvalidValue, what + ": block " + std::to_string(bx) + "x" + std::to_string(by) + "x" +
                                   std::to_string(bz) + " (the kernel allows " +
                                   std::to_string(k.max_threads) + " threads)");
  // Without cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES) - not in the runtime's table - a
  // block gets at most 48 KiB of shared memory, static and dynamic together.
  if (uint64_t{shared} + k.static_shared > kSharedWithoutOptIn)
    return fail(kInvalidValue, what + ": " + std::to_string(shared) + " bytes of dynamic shared memory + " +
                                   std::to_string(k.static_shared) + " static exceed 48 KiB");
  if (extra) return fail(kNotSupported, what + ": the fake takes kernelParams only");
  LaunchRecord r;
  r.name = fn->name;
  r.grid[0] = gx, r.grid[1] = gy, r.grid[2] = gz;
  r.block[0] = bx, r.block[1] = by, r.block[2] = bz;
  r.shared = shared;
  if (k.params_known) {
    r.num_params = static_cast<int>(k.params.size());
    r.params.assign(k.paramBytes(), 0);
    if (!k.params.empty() && !params) return fail(kInvalidValue, what + ": kernelParams is null");
    for (size_t i = 0; i < k.params.size(); ++i) {
      if (!params[i]) return fail(kInvalidValue, what + ": kernelParams[" + std::to_string(i) + "] is null");
      std::memcpy(r.params.data() + k.params[i].offset, params[i], k.params[i].size);
    }
  }
  Node n;
  n.kind = Node::Launch;
  n.launch = std::move(r);
  return queue(st, std::move(n), s);
}

CUresult cuStreamBeginCapture_v2(CUstream s, int mode) {
  FAKE_ENTER("cuStreamBeginCapture_v2");
  if (CUresult r = needContext("cuStreamBeginCapture_v2")) return r;
  bool ok = false;
  Stream* st = streamOf(s, &ok);
  if (!ok) return fail(kInvalidHandle, "cuStreamBeginCapture_v2: stream");
  if (!st) return fail(kCaptureUnsupported, "cuStreamBeginCapture_v2: the legacy stream cannot capture");
  if (st->capture) return fail(kIllegalState, "cuStreamBeginCapture_v2: already capturing");
  if (mode < 0 || mode > 2) return fail(kInvalidValue, "cuStreamBeginCapture_v2: mode");
  st->capture = new Graph();
  st->invalidated = false;
  st->thread = std::this_thread::get_id();
  if (mode != 2) ++captures_on_thread;  // relaxed mode (2) allows the unsafe calls
  return CUDA_SUCCESS;
}

CUresult cuStreamEndCapture(CUstream s, CUgraph* g) {
  FAKE_ENTER("cuStreamEndCapture");
  bool ok = false;
  Stream* st = streamOf(s, &ok);
  if (!ok || !st) return fail(kInvalidHandle, "cuStreamEndCapture: stream");
  if (!st->capture) return fail(kIllegalState, "cuStreamEndCapture: not capturing");
  if (st->thread != std::this_thread::get_id())
    return fail(kCaptureWrongThread, "cuStreamEndCapture from another thread");
  Graph* graph = st->capture;
  st->capture = nullptr;
  --captures_on_thread;
  if (st->invalidated) {
    delete graph;
    *g = nullptr;
    return fail(kCaptureInvalidated, "cuStreamEndCapture: the capture was invalidated");
  }
  state().graphs.insert(graph);
  *g = reinterpret_cast<CUgraph>(graph);
  return CUDA_SUCCESS;
}

CUresult cuGraphInstantiateWithFlags(CUgraphExec* e, CUgraph g, unsigned long long) {
  FAKE_ENTER("cuGraphInstantiateWithFlags");
  auto* graph = reinterpret_cast<Graph*>(g);
  if (!state().graphs.count(graph)) return fail(kInvalidHandle, "cuGraphInstantiateWithFlags: graph");
  auto* exec = new Graph(*graph);
  state().execs.insert(exec);
  *e = reinterpret_cast<CUgraphExec>(exec);
  return CUDA_SUCCESS;
}

CUresult cuGraphLaunch(CUgraphExec e, CUstream s) {
  FAKE_ENTER("cuGraphLaunch");
  if (CUresult r = needContext("cuGraphLaunch")) return r;
  auto* exec = reinterpret_cast<Graph*>(e);
  bool ok = false;
  Stream* st = streamOf(s, &ok);
  if (!ok || !state().execs.count(exec)) return fail(kInvalidHandle, "cuGraphLaunch: handle");
  if (st && st->capture) return fail(kNotSupported, "cuGraphLaunch into a capturing stream");
  runNodes(*exec, s, &lock_);
  return CUDA_SUCCESS;
}

CUresult cuGraphExecDestroy(CUgraphExec e) {
  FAKE_ENTER("cuGraphExecDestroy");
  auto* exec = reinterpret_cast<Graph*>(e);
  if (!state().execs.erase(exec)) return fail(kInvalidHandle, "cuGraphExecDestroy: handle");
  delete exec;
  return CUDA_SUCCESS;
}

CUresult cuGraphDestroy(CUgraph g) {
  FAKE_ENTER("cuGraphDestroy");
  auto* graph = reinterpret_cast<Graph*>(g);
  if (!state().graphs.erase(graph)) return fail(kInvalidHandle, "cuGraphDestroy: handle");
  delete graph;
  return CUDA_SUCCESS;
}

// ---- test accessors (fake_cuda.h) -------------------------------------------------------------

void fake_cuda_reset(void) {
  std::lock_guard<std::mutex> lock(state().mu);
  State& s = state();
  s.log.clear();
  s.calls.clear();
  s.failures.clear();
  s.htod_bytes = 0;
  s.last_error.clear();
}

size_t fake_cuda_launch_count(void) {
  std::lock_guard<std::mutex> lock(state().mu);
  return state().log.size();
}

fake_cuda_launch_t fake_cuda_launch(size_t i) {
  std::lock_guard<std::mutex> lock(state().mu);
  fake_cuda_launch_t out{};
  if (i >= state().log.size()) return out;
  const LaunchRecord& r = state().log[i];
  out.name = r.name.c_str();
  std::memcpy(out.grid, r.grid, sizeof out.grid);
  std::memcpy(out.block, r.block, sizeof out.block);
  out.shared = r.shared;
  out.from_graph = r.from_graph;
  out.num_params = r.num_params;
  out.param_bytes = static_cast<uint32_t>(r.params.size());
  out.params = r.params.empty() ? nullptr : r.params.data();
  out.stream = r.stream;
  return out;
}

uint64_t fake_cuda_allocated_bytes(void) {
  std::lock_guard<std::mutex> lock(state().mu);
  return state().allocated;
}

size_t fake_cuda_live_allocations(void) {
  std::lock_guard<std::mutex> lock(state().mu);
  return state().allocations.size();
}

int fake_cuda_is_device_range(uint64_t ptr, uint64_t bytes) {
  std::lock_guard<std::mutex> lock(state().mu);
  return inAllocation(ptr, bytes) ? 1 : 0;
}

long fake_cuda_live(const char* kind) {
  std::lock_guard<std::mutex> lock(state().mu);
  const State& s = state();
  const std::string k = kind ? kind : "";
  if (k == "host") return static_cast<long>(s.host.size());
  if (k == "stream") return static_cast<long>(s.streams.size());
  if (k == "event") return static_cast<long>(s.events.size());
  if (k == "module") return static_cast<long>(s.modules.size());
  if (k == "graph") return static_cast<long>(s.graphs.size());
  if (k == "graph_exec") return static_cast<long>(s.execs.size());
  return -1;
}

int fake_cuda_primary_ctx_refs(int device) {
  std::lock_guard<std::mutex> lock(state().mu);
  return device >= 0 && device < kMaxDevices ? state().contexts[device].refs : -1;
}

size_t fake_cuda_call_count(const char* symbol) {
  std::lock_guard<std::mutex> lock(state().mu);
  auto it = state().calls.find(symbol ? symbol : "");
  return it == state().calls.end() ? 0 : it->second;
}

void fake_cuda_fail(const char* symbol, int nth, int result) {
  std::lock_guard<std::mutex> lock(state().mu);
  const size_t done = state().calls[symbol];
  state().failures[symbol] = {done + static_cast<size_t>(nth), result};
}

uint64_t fake_cuda_htod_bytes(void) {
  std::lock_guard<std::mutex> lock(state().mu);
  return state().htod_bytes;
}

const char* fake_cuda_last_error(void) {
  std::lock_guard<std::mutex> lock(state().mu);
  return state().last_error.c_str();
}

int fake_cuda_current_device(void) {
  std::lock_guard<std::mutex> lock(state().mu);
  return current && current->refs > 0 ? current->device : -1;
}

int fake_cuda_enqueue_host(uint64_t stream, void (*fn)(void*), void* arg) {
  std::unique_lock<std::mutex> lock(state().mu);
  bool ok = false;
  CUstream handle = reinterpret_cast<CUstream>(stream);
  Stream* st = streamOf(handle, &ok);
  if (!ok) return kInvalidHandle;
  if (st && st->capture) {
    Node n;
    n.kind = Node::Host;
    n.host_fn = fn;
    n.host_arg = arg;
    st->capture->nodes.push_back(std::move(n));
    return 1;
  }
  lock.unlock();
  fn(arg);
  return 0;
}

}  // extern "C"

// The fake's entry points are declared with the runtime's own types (fake_cuda_state.h): a
// definition above with another signature does not compile. Here: the two lists agree, name for
// exported name.
#define FAKE_CHECK_NAME(field, symbol, type) \
  static_assert(std::string_view(fake_symbol_##field) == symbol, "exported name of " #field);
DS_CUDA_DRIVER_SYMBOLS(FAKE_CHECK_NAME)
#undef FAKE_CHECK_NAME
#define FAKE_COUNT(...) +1
static_assert(0 DS_CUDA_DRIVER_SYMBOLS(FAKE_COUNT) == 0 FAKE_CUDA_ENTRY_POINTS(FAKE_COUNT),
              "DS_CUDA_DRIVER_SYMBOLS changed: add the new entry points to the fake driver");
#undef FAKE_COUNT
