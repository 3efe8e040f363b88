// loadCudaDriver: dlopen + dlsym of the driver symbol table, cuInit, and driver errors as statuses.
#include "hal/cuda/cuda_driver.h"

#include <dlfcn.h>

#include <cstdlib>
#include <memory>
#include <mutex>

namespace ds::hal::cuda {

namespace {

StatusOr<const CudaDriver*> loadFrom(const std::string& library) {
  // RTLD_LOCAL: the driver's symbols stay out of the global namespace (a later dlopen of cuBLASLt
  // finds its own libcuda through its DT_NEEDED, the same already-loaded object).
  void* handle = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    // "libcuda.so.1 not found" says it all for the usual case; other dlopen failures (a
    // wrong-architecture library, a missing dependency) keep the loader's words.
    const char* why = ::dlerror();
    const std::string text = why ? why : "";
    if (text.empty() || text.find("No such file or directory") != std::string::npos)
      return Status(DS_UNAVAILABLE, library + " not found");
    return Status(DS_UNAVAILABLE, library + " cannot be loaded: " + text);
  }
  auto owned = std::make_unique<CudaDriver>();
  CudaDriver* driver = owned.get();
#define DS_CUDA_BIND(name, symbol, type)                                                   \
  driver->name = reinterpret_cast<type>(::dlsym(handle, symbol));                          \
  if (!driver->name) {                                                                     \
    return Status(DS_UNAVAILABLE, library + " has no symbol " + symbol +                   \
                                      ": the NVIDIA driver is too old for this runtime "   \
                                      "(it needs a CUDA 12 or newer driver)");             \
  }
  DS_CUDA_DRIVER_SYMBOLS(DS_CUDA_BIND)
#undef DS_CUDA_BIND
  DS_RETURN_IF_ERROR(driver->check(driver->cuInit(0), "cuInit"));
  DS_RETURN_IF_ERROR(driver->check(driver->cuDriverGetVersion(&driver->version),
                                   "cuDriverGetVersion"));
  return static_cast<const CudaDriver*>(owned.release());  // never freed: see CudaDriver
}

}  // namespace

std::string cudaErrorText(const CudaDriver& driver, CUresult result) {
  const char* name = nullptr;
  const char* text = nullptr;
  if (driver.cuGetErrorName) driver.cuGetErrorName(result, &name);
  if (driver.cuGetErrorString) driver.cuGetErrorString(result, &text);
  std::string out = name ? name : "CUDA error " + std::to_string(result);
  if (text) out += std::string(" (") + text + ")";
  return out;
}

Status CudaDriver::check(CUresult result, const std::string& call) const {
  if (result == CUDA_SUCCESS) return Status::ok();
  ds_status_code_t code = DS_INTERNAL;
  if (result == CUDA_ERROR_OUT_OF_MEMORY) code = DS_OUT_OF_MEMORY;
  if (result == CUDA_ERROR_NO_DEVICE || result == CUDA_ERROR_NO_BINARY_FOR_GPU) code = DS_UNAVAILABLE;
  return Status(code, call + ": " + cudaErrorText(*this, result));
}

StatusOr<const CudaDriver*> loadCudaDriver(const std::string& library) {
  if (library != kCudaDriverLibrary) return loadFrom(library);
  // The process's driver: loaded once; a missing driver stays missing for the process's life.
  // $DS_CUDA_DRIVER, read at that first load, names another library (the fake driver of the
  // tests, an unusual install).
  static std::once_flag once;
  static StatusOr<const CudaDriver*>* result = nullptr;
  std::call_once(once, [] {
    const char* env = std::getenv("DS_CUDA_DRIVER");
    result = new StatusOr<const CudaDriver*>(loadFrom(env && *env ? env : kCudaDriverLibrary));
  });
  return *result;
}

}  // namespace ds::hal::cuda
