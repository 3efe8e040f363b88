// Where the CUDA device gets the kernel library (kernels/cuda) from, decided as data so the
// order and the messages are testable without a GPU (docs/cuda.md "Kernel library").
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "hal/cuda/cuda_code_select.h"
#include "hal/cuda/cuda_driver.h"

namespace ds::artifact {
class Artifact;
}

namespace ds::hal::cuda {

// One library code object of an artifact (CodeObject.library): its index in Artifact.code and
// its target ("sm_90a" cubin, "compute_90" PTX).
struct LibraryObject {
  int code_object = -1;
  std::string target;
};

// The artifact's library objects, in artifact order.
std::vector<LibraryObject> libraryObjects(const artifact::Artifact& artifact);

struct LibrarySource {
  enum class Kind { Environment, Artifact, BuildTree };
  Kind kind = Kind::Artifact;
  std::string path;         // Environment, BuildTree: the file (fatbin, cubin or PTX)
  int code_object = -1;     // Artifact: the chosen object
  std::string target;       // Artifact: its target
  CodeMatch match = CodeMatch::ExactCubin;
  // What was looked at before this source, for the message when it cannot be read.
  std::string tried;
  // "the artifact's code[3] (sm_90a, exact cubin)", "$DS_CUDA_KERNELS (/x/k.fatbin)", ...
  std::string describe() const;
};

// The library for a device of compute capability major.minor, in this order:
//  1. $DS_CUDA_KERNELS (`env`, when non-empty): a developer's override of everything else;
//  2. the artifact's library objects (ds-compile embeds them), chosen by selectCode; when the
//     artifact has some but none runs on the device, selectCode's UNAVAILABLE (no fallback:
//     the artifact's own code would not run there either);
//  3. `build_tree_path` (the fatbin this build tree's kernels/ target wrote), when non-empty.
// UNAVAILABLE naming all three when none applies.
StatusOr<LibrarySource> chooseLibrarySource(const std::vector<LibraryObject>& objects,
                                            const char* env, const std::string& build_tree_path,
                                            int major, int minor, const std::string& device_name);

// Loads GPU code into the current context: a fatbin (by its magic) with cuModuleLoadFatBinary,
// a cubin (ELF) or PTX text (the artifact stores it without the NUL the driver wants) with
// cuModuleLoadData. `what` names the code in the driver's error.
StatusOr<CUmodule> loadCudaModule(const CudaDriver& d, const uint8_t* data, uint64_t size,
                                  const std::string& what);

// The kernel library in a device's context: its module and every ds_cuda_kernel_symbols() entry.
struct CudaLibrary {
  CUmodule module = nullptr;
  std::map<std::string, CUfunction> functions;
  std::vector<std::string> missing;  // symbols of this runtime's table the library lacks (older)
  std::string source;  // LibrarySource::describe()
};

// The build tree's fatbin (DS_CUDA_KERNELS_DEFAULT, compiled in by CMake), or "".
std::string buildTreeLibraryPath();

}  // namespace ds::hal::cuda
