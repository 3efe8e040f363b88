// The CUDA kernel library (kernels/cuda) a GPU artifact carries: for each GPU target, the build
// of the library that target's devices load, so the artifact needs nothing from the build tree
// at run time (docs/cuda.md "Kernel library").
#pragma once

#include <string>
#include <vector>

#include "compiler/target/TargetInfo.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

namespace mlir::ds {

struct CudaLibraryEmbed {
  // One library object per distinct build chosen (sm_80 and sm_86 share the sm_80 cubin), in
  // the order of the targets that first chose them; CodeObject::library is set.
  std::vector<CodeObject> objects;
  std::string dir;  // where the library was found; empty when it was not
  // Per GPU target, "sm_86: sm_80 cubin (compatible cubin)"; or why nothing was embedded.
  std::vector<std::string> notes;
};

// Where ds-compile looks: `flagDir` (--cuda-kernels), else $DS_CUDA_KERNELS_DIR (`envDir`),
// else `defaultDir` (the build tree's kernels/cuda, compiled in by CMake).
struct CudaLibraryLocation {
  std::string dir;
  std::string source;      // "--cuda-kernels", "$DS_CUDA_KERNELS_DIR", "the build tree"
  bool isDefault = false;  // the build tree's: missing is a warning, not an error
};
CudaLibraryLocation locateCudaLibrary(const std::string& flagDir, const char* envDir,
                                      const std::string& defaultDir);

// Reads the library builds in `where.dir` (ds_cuda_kernels.sm_XY[a].cubin,
// ds_cuda_kernels.compute_XY.ptx; ptxas resources from ds_cuda_kernels.resources.json when
// present) and picks one per GPU target with the runtime's rules (selectLibraryCode). A folder
// without any build: an error for an explicit location, for the default one an empty result
// whose note says the runtime will need DS_CUDA_KERNELS. A target no build serves: an error.
llvm::Expected<CudaLibraryEmbed> collectCudaLibrary(llvm::ArrayRef<std::string> gpuTargets,
                                                    const CudaLibraryLocation& where,
                                                    llvm::ArrayRef<std::string> symbols);

}  // namespace mlir::ds
