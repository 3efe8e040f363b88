// cuBLASLt for the CUDA device's prefill and large-batch GEMMs (docs/cuda.md "cuBLASLt"): the
// library as an X-macro table of function pointers loaded with dlopen, like cuda_driver.h does
// for libcuda. The runtime never links cuBLASLt (test/runtime/no_cuda_link.test checks ldd) and
// needs no CUDA header: the few types are declared here with cublasLt.h's layout. Without the
// library the device keeps every GEMM on the GEMV kernels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "hal/cuda/cuda_blaslt_plan.h"
#include "hal/cuda/cuda_driver.h"
#include "hal/device.h"

namespace ds::hal::cuda {

// cublasLt.h's types: opaque handles, ints for the enums (passed by value as int), and the two
// semi-opaque structs the API fills (same layout; static_asserted where the header exists).
using cublasStatus_t = int;
using cublasLtHandle_t = struct cublasLtContext*;
using cublasLtMatmulDesc_t = struct cublasLtMatmulDescOpaque*;
using cublasLtMatrixLayout_t = struct cublasLtMatrixLayoutOpaque*;
using cublasLtMatmulPreference_t = struct cublasLtMatmulPreferenceOpaque*;
struct cublasLtMatmulAlgo_t {
  uint64_t data[8];
};
struct cublasLtMatmulHeuristicResult_t {
  cublasLtMatmulAlgo_t algo;
  size_t workspaceSize;
  cublasStatus_t state;
  float wavesCount;
  int reserved[4];
};

// Every entry point the device uses: X(name, signature), bound by the same exported name.
#define DS_BLASLT_SYMBOLS(X)                                                                       \
  X(cublasLtGetVersion, size_t (*)())                                                              \
  X(cublasLtCreate, cublasStatus_t (*)(cublasLtHandle_t*))                                         \
  X(cublasLtDestroy, cublasStatus_t (*)(cublasLtHandle_t))                                         \
  X(cublasLtMatmulDescCreate, cublasStatus_t (*)(cublasLtMatmulDesc_t*, int, int))                 \
  X(cublasLtMatmulDescSetAttribute, cublasStatus_t (*)(cublasLtMatmulDesc_t, int, const void*, size_t)) \
  X(cublasLtMatmulDescDestroy, cublasStatus_t (*)(cublasLtMatmulDesc_t))                           \
  X(cublasLtMatrixLayoutCreate,                                                                    \
    cublasStatus_t (*)(cublasLtMatrixLayout_t*, int, uint64_t, uint64_t, int64_t))                 \
  X(cublasLtMatrixLayoutSetAttribute,                                                              \
    cublasStatus_t (*)(cublasLtMatrixLayout_t, int, const void*, size_t))                          \
  X(cublasLtMatrixLayoutDestroy, cublasStatus_t (*)(cublasLtMatrixLayout_t))                       \
  X(cublasLtMatmulPreferenceCreate, cublasStatus_t (*)(cublasLtMatmulPreference_t*))               \
  X(cublasLtMatmulPreferenceSetAttribute,                                                          \
    cublasStatus_t (*)(cublasLtMatmulPreference_t, int, const void*, size_t))                      \
  X(cublasLtMatmulPreferenceDestroy, cublasStatus_t (*)(cublasLtMatmulPreference_t))               \
  X(cublasLtMatmulAlgoGetHeuristic,                                                                \
    cublasStatus_t (*)(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t,             \
                       cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,     \
                       cublasLtMatmulPreference_t, int, cublasLtMatmulHeuristicResult_t*, int*))   \
  X(cublasLtMatmul,                                                                                \
    cublasStatus_t (*)(cublasLtHandle_t, cublasLtMatmulDesc_t, const void*, const void*,           \
                       cublasLtMatrixLayout_t, const void*, cublasLtMatrixLayout_t, const void*,   \
                       const void*, cublasLtMatrixLayout_t, void*, cublasLtMatrixLayout_t,         \
                       const cublasLtMatmulAlgo_t*, void*, size_t, CUstream))
// Bound when present (error texts; a library without them still runs).
#define DS_BLASLT_OPTIONAL_SYMBOLS(X)                          \
  X(cublasLtGetStatusName, const char* (*)(cublasStatus_t))    \
  X(cublasLtGetStatusString, const char* (*)(cublasStatus_t))

// The loaded table; loaded once per process and never unloaded (like CudaDriver).
struct BlasLtLibrary {
#define DS_BLASLT_DECLARE_FIELD(name, type) \
  using name##_fn = type;                   \
  name##_fn name = nullptr;
  DS_BLASLT_SYMBOLS(DS_BLASLT_DECLARE_FIELD)
  DS_BLASLT_OPTIONAL_SYMBOLS(DS_BLASLT_DECLARE_FIELD)
#undef DS_BLASLT_DECLARE_FIELD
  std::string path;    // the name that opened ("libcublasLt.so.13")
  size_t version = 0;  // cublasLtGetVersion: 130000-ish for CUDA 13

  // "cublasLtMatmul(...): CUBLAS_STATUS_NOT_SUPPORTED (the functionality requested is not
  // supported)"; OK for CUBLAS_STATUS_SUCCESS. ALLOC_FAILED -> DS_OUT_OF_MEMORY, NOT_SUPPORTED
  // and ARCH_MISMATCH -> DS_UNSUPPORTED, the rest DS_INTERNAL.
  Status check(cublasStatus_t status, const std::string& call) const;
};

// The names tried in order: the CUDA 13 SONAME, CUDA 12's, then the unversioned link name.
std::vector<std::string> defaultBlasLtLibraries();

// Opens the first of `names` that loads (RTLD_LOCAL) and binds every symbol. UNAVAILABLE naming
// what was tried ("libcublasLt.so.13, libcublasLt.so.12, libcublasLt.so not found") or the
// missing symbol. The default list is loaded once per process and the result cached; any other
// list loads a table of its own each call (tests).
StatusOr<const BlasLtLibrary*> loadBlasLt(const std::vector<std::string>& names = {});

// "CUBLAS_STATUS_NOT_SUPPORTED (...)": the library's own name and text when it has them, else
// the name from cublas_api.h's list, else the number.
std::string blasLtStatusText(const BlasLtLibrary& lib, cublasStatus_t status);

// One device's cuBLASLt state: the handle, a workspace, and per shape key (blasLtShapeKey) the
// matmul descriptor, the layouts and the algorithm the heuristic chose. Only the first GEMM of a
// shape creates descriptors and queries the heuristic (host work); later ones set the pointers
// and queue cublasLtMatmul on the stream - nothing allocated, nothing synchronized, so a warmed
// up step can be captured into a CUDA graph.
class BlasLt {
 public:
  // Creates the handle (the calling thread's current context: bind the device first) and
  // reserves `workspace_bytes` from `allocator` (MemoryKind::Activations).
  static StatusOr<std::unique_ptr<BlasLt>> create(const BlasLtLibrary& lib, Allocator& allocator,
                                                  uint64_t workspace_bytes);
  ~BlasLt();
  BlasLt(const BlasLt&) = delete;
  BlasLt& operator=(const BlasLt&) = delete;

  // Builds (once per shape) the descriptors and the algorithm of `g`. UNSUPPORTED when the
  // heuristic finds no algorithm (the caller may fall back to GEMV), INVALID_ARGUMENT when
  // planBlasLtGemm refuses `g`, cuBLASLt's error otherwise.
  Status prepare(const GemmDesc& g);
  // prepare + cublasLtMatmul on `stream`.
  Status run(const GemmDesc& g, CUstream stream);

  size_t cachedShapes() const { return cache_.size(); }
  uint64_t workspaceBytes() const { return workspace_.bytes(); }

 private:
  struct Entry {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulAlgo_t algo{};
    size_t workspace = 0;  // what the algorithm needs (<= the workspace)
  };
  BlasLt(const BlasLtLibrary& lib) : lib_(lib) {}
  StatusOr<Entry*> entry(const BlasLtMatmulPlan& p);
  void destroy(Entry& e) const;

  const BlasLtLibrary& lib_;
  cublasLtHandle_t handle_ = nullptr;
  DeviceBuffer workspace_;
  std::map<BlasLtShapeKey, Entry> cache_;
};

// "M=64 N=4096 K=4096 bf16" for messages.
std::string gemmText(const GemmDesc& g);

}  // namespace ds::hal::cuda
