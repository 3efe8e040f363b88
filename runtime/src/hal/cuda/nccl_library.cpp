// loadNccl: dlopen + dlsym of the NCCL symbol table (nccl_library.h). Not yet run on a GPU.
#include "hal/cuda/nccl_library.h"

#include <dlfcn.h>

#include "hal/cuda/open_library.h"

#include <cstdlib>
#include <memory>
#include <mutex>

namespace ds::hal::cuda {

namespace {

constexpr ncclResult_t kNcclInvalidArgument = 4, kNcclInvalidUsage = 5;

StatusOr<const NcclLibrary*> loadFrom(const std::vector<std::string>& names) {
  StatusOr<OpenedLibrary> found = openFirstLibrary(names);
  if (!found.isOk())
    return Status(DS_UNAVAILABLE, found.status().message() +
                                      ": tensor parallelism on GPUs needs NCCL 2.19 or newer (pip install "
                                      "nvidia-nccl-cu13, or Debian's libnccl2; DS_NCCL_LIBRARY names a file)");
  void* handle = found->handle;
  const std::string opened = found->name;
  auto owned = std::make_unique<NcclLibrary>();
  NcclLibrary* lib = owned.get();
  lib->path = opened;
#define DS_NCCL_BIND(name, type)                                                                  \
  lib->name = reinterpret_cast<type>(::dlsym(handle, #name));                                     \
  if (!lib->name) {                                                                               \
    ::dlclose(handle);                                                                            \
    return Status(DS_UNAVAILABLE, opened + " has no symbol " #name ": NCCL is too old for this runtime"); \
  }
  DS_NCCL_SYMBOLS(DS_NCCL_BIND)
#undef DS_NCCL_BIND
#define DS_NCCL_BIND_OPTIONAL(name, type) lib->name = reinterpret_cast<type>(::dlsym(handle, #name));
  DS_NCCL_OPTIONAL_SYMBOLS(DS_NCCL_BIND_OPTIONAL)
#undef DS_NCCL_BIND_OPTIONAL
  if (ncclResult_t r = lib->ncclGetVersion(&lib->version); r != kNcclSuccess) {
    ::dlclose(handle);
    return Status(DS_UNAVAILABLE, opened + ": ncclGetVersion failed (" + std::to_string(r) + ")");
  }
  // Grouped point-to-point inside CUDA graphs and send/receive to self: 2.19 is the oldest we
  // accept (versions are MAJOR * 10000 + MINOR * 100 + PATCH since 2.9).
  if (lib->version < 21900) {
    const int v = lib->version;
    ::dlclose(handle);
    return Status(DS_UNAVAILABLE, opened + " is NCCL " + std::to_string(v) +
                                      ": tensor parallelism on GPUs needs NCCL 2.19 or newer");
  }
  return static_cast<const NcclLibrary*>(owned.release());  // never freed, like CudaDriver
}

}  // namespace

std::vector<std::string> defaultNcclLibraries() {
  if (const char* env = std::getenv("DS_NCCL_LIBRARY"); env && *env) return {env};
  return {"libnccl.so.2", "libnccl.so"};
}

StatusOr<const NcclLibrary*> loadNccl(const std::vector<std::string>& names) {
  if (!names.empty()) return loadFrom(names);
  static std::once_flag once;
  static StatusOr<const NcclLibrary*>* result = nullptr;
  std::call_once(once, [] { result = new StatusOr<const NcclLibrary*>(loadFrom(defaultNcclLibraries())); });
  return *result;
}

Status NcclLibrary::check(ncclResult_t result, const std::string& call, ncclComm_t comm) const {
  if (result == kNcclSuccess) return Status::ok();
  std::string text = ncclGetErrorString ? ncclGetErrorString(result) : "";
  if (text.empty()) text = "NCCL error " + std::to_string(result);
  if (ncclGetLastError)
    if (const char* last = ncclGetLastError(comm); last && *last) text += ": " + std::string(last);
  const ds_status_code_t code =
      result == kNcclInvalidArgument || result == kNcclInvalidUsage ? DS_INTERNAL : DS_UNAVAILABLE;
  return Status(code, call + ": " + text + " (NCCL_DEBUG=INFO says more)");
}

}  // namespace ds::hal::cuda
