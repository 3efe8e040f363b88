// loadBlasLt (dlopen + dlsym of the cuBLASLt symbol table) and BlasLt, the device's handle,
// workspace and descriptor/algorithm cache. Not yet run on a GPU (docs/cuda.md).
#include "hal/cuda/cuda_blaslt.h"

#include <dlfcn.h>

#include "hal/cuda/open_library.h"

#include <mutex>

namespace ds::hal::cuda {

namespace {

// cublas_api.h's cublasStatus_t names, for libraries without cublasLtGetStatusName.
const char* knownStatusName(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return nullptr;
  }
}

StatusOr<const BlasLtLibrary*> loadFrom(const std::vector<std::string>& names) {
  StatusOr<OpenedLibrary> found = openFirstLibrary(names);
  if (!found.isOk()) return found.status();
  void* handle = found->handle;
  const std::string opened = found->name;
  auto owned = std::make_unique<BlasLtLibrary>();
  BlasLtLibrary* lib = owned.get();
  lib->path = opened;
#define DS_BLASLT_BIND(name, type)                                                             \
  lib->name = reinterpret_cast<type>(::dlsym(handle, #name));                                  \
  if (!lib->name) {                                                                            \
    ::dlclose(handle);                                                                         \
    return Status(DS_UNAVAILABLE, opened + " has no symbol " #name                             \
                                           ": cuBLASLt is too old for this runtime (it needs " \
                                           "CUDA 12 or newer)");                               \
  }
  DS_BLASLT_SYMBOLS(DS_BLASLT_BIND)
#undef DS_BLASLT_BIND
#define DS_BLASLT_BIND_OPTIONAL(name, type) lib->name = reinterpret_cast<type>(::dlsym(handle, #name));
  DS_BLASLT_OPTIONAL_SYMBOLS(DS_BLASLT_BIND_OPTIONAL)
#undef DS_BLASLT_BIND_OPTIONAL
  lib->version = lib->cublasLtGetVersion();
  return static_cast<const BlasLtLibrary*>(owned.release());  // never freed, like CudaDriver
}

}  // namespace

std::vector<std::string> defaultBlasLtLibraries() {
  return {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"};
}

StatusOr<const BlasLtLibrary*> loadBlasLt(const std::vector<std::string>& names) {
  if (!names.empty()) return loadFrom(names);
  static std::once_flag once;
  static StatusOr<const BlasLtLibrary*>* result = nullptr;
  std::call_once(once, [] { result = new StatusOr<const BlasLtLibrary*>(loadFrom(defaultBlasLtLibraries())); });
  return *result;
}

std::string blasLtStatusText(const BlasLtLibrary& lib, cublasStatus_t status) {
  const char* name = lib.cublasLtGetStatusName ? lib.cublasLtGetStatusName(status) : nullptr;
  if (!name) name = knownStatusName(status);
  const char* text = lib.cublasLtGetStatusString ? lib.cublasLtGetStatusString(status) : nullptr;
  std::string out = name ? name : "cuBLAS status " + std::to_string(status);
  if (text && *text) out += std::string(" (") + text + ")";
  return out;
}

Status BlasLtLibrary::check(cublasStatus_t status, const std::string& call) const {
  if (status == CUBLAS_STATUS_SUCCESS) return Status::ok();
  ds_status_code_t code = DS_INTERNAL;
  if (status == CUBLAS_STATUS_ALLOC_FAILED) code = DS_OUT_OF_MEMORY;
  if (status == CUBLAS_STATUS_NOT_SUPPORTED || status == CUBLAS_STATUS_ARCH_MISMATCH) code = DS_UNSUPPORTED;
  return Status(code, call + ": " + blasLtStatusText(*this, status));
}

std::string gemmText(const GemmDesc& g) {
  return "M=" + std::to_string(g.M) + " N=" + std::to_string(g.N) + " K=" + std::to_string(g.K) +
         (g.act_dtype == DS_CUDA_BF16 ? " bf16" : " f32") + (g.bias ? " +bias" : "");
}

StatusOr<std::unique_ptr<BlasLt>> BlasLt::create(const BlasLtLibrary& lib, Allocator& allocator,
                                                 uint64_t workspace_bytes) {
  std::unique_ptr<BlasLt> b(new BlasLt(lib));
  DS_RETURN_IF_ERROR(lib.check(lib.cublasLtCreate(&b->handle_), "cublasLtCreate (" + lib.path + ")"));
  if (workspace_bytes)
    DS_RETURN_IF_ERROR(b->workspace_.reserve(allocator, workspace_bytes, MemoryKind::Activations));
  return b;
}

void BlasLt::destroy(Entry& e) const {
  if (e.a) lib_.cublasLtMatrixLayoutDestroy(e.a);
  if (e.b) lib_.cublasLtMatrixLayoutDestroy(e.b);
  if (e.d) lib_.cublasLtMatrixLayoutDestroy(e.d);
  if (e.desc) lib_.cublasLtMatmulDescDestroy(e.desc);
  e = Entry{};
}

BlasLt::~BlasLt() {
  for (auto& [key, e] : cache_) destroy(e);
  if (handle_) lib_.cublasLtDestroy(handle_);
  // workspace_ goes back to the allocator with this object (the device drains its stream first).
}

StatusOr<BlasLt::Entry*> BlasLt::entry(const BlasLtMatmulPlan& p) {
  const BlasLtShapeKey key = blasLtShapeKey(p);
  auto it = cache_.find(key);
  if (it != cache_.end()) return &it->second;
  Entry e;
  const BlasLtLibrary& L = lib_;
  // Every descriptor made so far is destroyed on an early return.
  struct Guard {
    const BlasLt* self;
    Entry* e;
    ~Guard() {
      if (e) self->destroy(*e);
    }
  } guard{this, &e};
  const std::string what = " for a GEMM m=" + std::to_string(p.m) + " n=" + std::to_string(p.n) +
                           " k=" + std::to_string(p.k);
  DS_RETURN_IF_ERROR(L.check(L.cublasLtMatmulDescCreate(&e.desc, p.compute_type, p.scale_type),
                             "cublasLtMatmulDescCreate" + what));
  auto setDesc = [&](int attr, const void* value, size_t size, const char* name) {
    return L.check(L.cublasLtMatmulDescSetAttribute(e.desc, attr, value, size),
                   std::string("cublasLtMatmulDescSetAttribute(") + name + ")" + what);
  };
  // Attribute sizes are cublasLt.h's: int32 for the enums, a pointer for the bias.
  const int32_t ta = p.trans_a, tb = p.trans_b, epi = p.epilogue, bias_type = p.bias_type;
  DS_RETURN_IF_ERROR(setDesc(CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta, "TRANSA"));
  DS_RETURN_IF_ERROR(setDesc(CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb, "TRANSB"));
  if (p.epilogue != CUBLASLT_EPILOGUE_DEFAULT) {
    DS_RETURN_IF_ERROR(setDesc(CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi, "EPILOGUE"));
    DS_RETURN_IF_ERROR(setDesc(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof bias_type,
                               "BIAS_DATA_TYPE"));
    // The heuristic reads the bias pointer's alignment from its value: this GEMM's pointer (the
    // key holds its alignment; run() sets each call's own pointer).
    const void* bias = reinterpret_cast<const void*>(static_cast<uintptr_t>(p.bias));
    DS_RETURN_IF_ERROR(setDesc(CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias, "BIAS_POINTER"));
  }
  auto layout = [&](const BlasLtMatrix& m, cublasLtMatrixLayout_t* out, const char* name) {
    return L.check(L.cublasLtMatrixLayoutCreate(out, m.type, m.rows, m.cols, m.ld),
                   std::string("cublasLtMatrixLayoutCreate(") + name + ", " + std::to_string(m.rows) +
                       "x" + std::to_string(m.cols) + ", ld " + std::to_string(m.ld) + ")" + what);
  };
  DS_RETURN_IF_ERROR(layout(p.a, &e.a, "A"));
  DS_RETURN_IF_ERROR(layout(p.b, &e.b, "B"));
  DS_RETURN_IF_ERROR(layout(p.d, &e.d, "D"));

  cublasLtMatmulPreference_t pref = nullptr;
  DS_RETURN_IF_ERROR(L.check(L.cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate"));
  struct PrefGuard {
    const BlasLtLibrary& L;
    cublasLtMatmulPreference_t p;
    ~PrefGuard() { L.cublasLtMatmulPreferenceDestroy(p); }
  } pref_guard{L, pref};
  const uint64_t ws = workspace_.bytes();
  const uint32_t align[4] = {p.a.align, p.b.align, p.d.align, p.d.align};
  DS_RETURN_IF_ERROR(L.check(L.cublasLtMatmulPreferenceSetAttribute(
                                 pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
                             "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)"));
  for (int i = 0; i < 4; ++i)
    DS_RETURN_IF_ERROR(L.check(L.cublasLtMatmulPreferenceSetAttribute(
                                   pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES + i, &align[i],
                                   sizeof align[i]),
                               "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT)"));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t hs = L.cublasLtMatmulAlgoGetHeuristic(handle_, e.desc, e.a, e.b, e.d, e.d, pref, 1,
                                                             &result, &found);
  if (hs == CUBLAS_STATUS_NOT_SUPPORTED || (hs == CUBLAS_STATUS_SUCCESS && found == 0))
    return unsupported("cuBLASLt has no algorithm" + what + " (" + blasLtStatusText(L, hs) + ")");
  DS_RETURN_IF_ERROR(L.check(hs, "cublasLtMatmulAlgoGetHeuristic" + what));
  e.algo = result.algo;
  e.workspace = result.workspaceSize;
  guard.e = nullptr;  // kept
  return &(cache_[key] = e);
}

Status BlasLt::prepare(const GemmDesc& g) {
  BlasLtMatmulPlan p;
  if (const char* err = planBlasLtGemm(g, &p)) return invalidArgument(std::string(err) + " (" + gemmText(g) + ")");
  StatusOr<Entry*> e = entry(p);
  return e.isOk() ? Status::ok() : e.status();
}

Status BlasLt::run(const GemmDesc& g, CUstream stream) {
  BlasLtMatmulPlan p;
  if (const char* err = planBlasLtGemm(g, &p)) return invalidArgument(std::string(err) + " (" + gemmText(g) + ")");
  StatusOr<Entry*> found = entry(p);
  if (!found.isOk()) return found.status();
  Entry& e = **found;
  const BlasLtLibrary& L = lib_;
  auto ptr = [](uint64_t a) { return reinterpret_cast<void*>(static_cast<uintptr_t>(a)); };
  if (p.epilogue != CUBLASLT_EPILOGUE_DEFAULT) {
    // Host-side only: the descriptor is read when cublasLtMatmul queues the kernel.
    const void* bias = ptr(p.bias);
    DS_RETURN_IF_ERROR(L.check(L.cublasLtMatmulDescSetAttribute(e.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                                &bias, sizeof bias),
                               "cublasLtMatmulDescSetAttribute(BIAS_POINTER)"));
  }
  return L.check(L.cublasLtMatmul(handle_, e.desc, &p.alpha, ptr(p.a.ptr), e.a, ptr(p.b.ptr), e.b, &p.beta,
                                  ptr(p.d.ptr), e.d, ptr(p.d.ptr), e.d, &e.algo,
                                  e.workspace ? workspace_.data() : nullptr, e.workspace, stream),
                 "cublasLtMatmul(" + gemmText(g) + ")");
}

}  // namespace ds::hal::cuda
