// NCCL for tensor-parallel GPU ranks (docs/tensor_parallel.md "Collectives on GPUs"): the library
// as an X-macro table of function pointers loaded with dlopen, like cuda_driver.h and
// cuda_blaslt.h. The runtime never links NCCL (test/runtime/no_cuda_link.test checks ldd) and
// needs no NCCL header: the few types are declared here with nccl.h's layout (static_asserted by
// the fake library's build, which compiles against nccl.h). Only transport is used (all-gather,
// grouped send/receive): the device plans its reductions itself, so they are deterministic and
// batch invariant (cuda_collectives.h).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "base/status.h"
#include "hal/cuda/cuda_driver.h"

namespace ds::hal::cuda {

using ncclResult_t = int;
using ncclComm_t = struct ncclComm*;
constexpr int kNcclUniqueIdBytes = 128;
struct ncclUniqueId {
  char internal[kNcclUniqueIdBytes];
};
constexpr ncclResult_t kNcclSuccess = 0;
constexpr int kNcclUint8 = 1;  // ncclDataType_t: byte counts for every exchange

// Every entry point the device uses: X(name, signature), bound by the same exported name.
#define DS_NCCL_SYMBOLS(X)                                                                        \
  X(ncclGetVersion, ncclResult_t (*)(int*))                                                       \
  X(ncclGetUniqueId, ncclResult_t (*)(ncclUniqueId*))                                             \
  X(ncclCommInitRank, ncclResult_t (*)(ncclComm_t*, int, ncclUniqueId, int))                      \
  X(ncclCommDestroy, ncclResult_t (*)(ncclComm_t))                                                \
  X(ncclCommAbort, ncclResult_t (*)(ncclComm_t))                                                  \
  X(ncclGetErrorString, const char* (*)(ncclResult_t))                                            \
  X(ncclAllGather, ncclResult_t (*)(const void*, void*, size_t, int, ncclComm_t, CUstream))       \
  X(ncclSend, ncclResult_t (*)(const void*, size_t, int, int, ncclComm_t, CUstream))              \
  X(ncclRecv, ncclResult_t (*)(void*, size_t, int, int, ncclComm_t, CUstream))                    \
  X(ncclGroupStart, ncclResult_t (*)())                                                           \
  X(ncclGroupEnd, ncclResult_t (*)())
// Bound when present (a library without it still runs): the last error's detail.
#define DS_NCCL_OPTIONAL_SYMBOLS(X) X(ncclGetLastError, const char* (*)(ncclComm_t))

// The loaded table; loaded once per process and never unloaded (like CudaDriver).
struct NcclLibrary {
#define DS_NCCL_DECLARE_FIELD(name, type) \
  using name##_fn = type;                 \
  name##_fn name = nullptr;
  DS_NCCL_SYMBOLS(DS_NCCL_DECLARE_FIELD)
  DS_NCCL_OPTIONAL_SYMBOLS(DS_NCCL_DECLARE_FIELD)
#undef DS_NCCL_DECLARE_FIELD
  std::string path;  // the name that opened ("libnccl.so.2")
  int version = 0;   // ncclGetVersion: 22803 for 2.28.3

  // "ncclSend(...): unhandled cuda error (run with NCCL_DEBUG=INFO for details)"; OK for
  // ncclSuccess. Every NCCL error is UNAVAILABLE (the group cannot go on) except invalid
  // arguments / usage (INTERNAL: a bug of ours).
  Status check(ncclResult_t result, const std::string& call, ncclComm_t comm = nullptr) const;
};

// The names tried: $DS_NCCL_LIBRARY when set (only it), else libnccl.so.2 then libnccl.so.
std::vector<std::string> defaultNcclLibraries();

// Opens the first of `names` that loads (RTLD_LOCAL) and binds every symbol. UNAVAILABLE naming
// what was tried and what to install ("libnccl.so.2, libnccl.so not found: tensor parallelism on
// GPUs needs NCCL (pip install nvidia-nccl-cu13, or Debian's libnccl2)"). The default list is
// loaded once per process; any other list loads a table of its own each call (tests).
StatusOr<const NcclLibrary*> loadNccl(const std::vector<std::string>& names = {});

}  // namespace ds::hal::cuda
