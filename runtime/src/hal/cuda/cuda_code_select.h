// Which of an artifact's GPU code objects a device runs: NVIDIA's compatibility rules as plain
// data and functions, testable without a GPU (docs/cuda.md "Module selection").
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace ds::hal::cuda {

// An architecture name: "sm_90a" (cubin, arch-specific), "sm_86" (cubin), "compute_80" (PTX).
// The sm_/compute_ prefix is nvcc's convention (-gencode arch=compute_80,code=sm_80): a code
// object whose target is compute_XY carries PTX for the driver to JIT, sm_XY a cubin.
struct CudaArch {
  int major = 0, minor = 0;
  char variant = 0;  // 0, 'a' (runs on exactly major.minor) or 'f' (the major's family, >= minor)
  bool ptx = false;
  int version() const { return major * 10 + minor; }
};

// nullopt for anything else ("host", "sm_9", "sm_90b", "compute_").
std::optional<CudaArch> parseCudaArch(const std::string& name);
std::string cudaArchName(const CudaArch& arch);
// True for an artifact target the CUDA device serves (sm_80, sm_86, sm_89, sm_90a, sm_100a, and
// any other well-formed sm_XY[a|f]): ModelRunner routes these to hal::createCudaDevice.
bool isCudaTarget(const std::string& target);

// Whether `code` runs on a device of compute capability major.minor:
//  - cubin sm_XY: same major, device minor >= Y (binary compatibility within a major);
//  - cubin sm_XYa: exactly X.Y (wgmma, setmaxnreg, tcgen05 are arch-specific);
//  - cubin sm_XYf: same major, device minor >= Y (the family-portable subset);
//  - PTX compute_XY: any device >= X.Y (the driver JIT-compiles it); compute_XYa exactly X.Y.
bool runsOn(const CudaArch& code, int major, int minor);

enum class CodeMatch { ExactCubin, CompatibleCubin, PtxJit };
const char* codeMatchName(CodeMatch match);

struct CodeChoice {
  int index = -1;  // into the candidates
  CodeMatch match = CodeMatch::ExactCubin;
};

// Picks the best of `targets` (the code objects' target names, in artifact order) for a device
// of compute capability major.minor: an exact cubin (an 'a' variant before a plain one), else the
// compatible cubin of the highest minor, else the PTX of the highest version (JIT at load). When
// nothing runs: UNAVAILABLE naming both sides and what to do, e.g. "the artifact has sm_80,
// sm_90a; the device is sm_86 (NVIDIA RTX A6000): ... compile with --target sm_86".
StatusOr<CodeChoice> selectCode(const std::vector<std::string>& targets, int major, int minor,
                                const std::string& device_name);

// The kernel-library code for an artifact compiled for GPU target `target` ("sm_86"), among
// the library's builds `targets` ("sm_80", "sm_89", "sm_90a", "compute_90"): what a device of
// the target's compute capability would load (selectCode), except that an arch-specific 'a'
// cubin serves only an 'a' target of its own architecture (a plain target's code runs on later
// minors, where the 'a' cubin does not). sm_86 -> sm_80 cubin, sm_90a -> sm_90a, sm_100a ->
// compute_90 PTX. INVALID_ARGUMENT for a target that is not sm_XY[a|f]; selectCode's
// UNAVAILABLE when nothing fits.
StatusOr<CodeChoice> selectLibraryCode(const std::vector<std::string>& targets,
                                       const std::string& target);

// The ds-compile target for a device (the newest table target that runs on it: sm_90a for 9.0,
// sm_86 for 8.7), or "" when the device is older than every target.
std::string compileTargetFor(int major, int minor);

}  // namespace ds::hal::cuda
