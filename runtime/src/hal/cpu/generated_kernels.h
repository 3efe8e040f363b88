// Generated kernels of an artifact (docs/codegen.md): its code object loaded from memory, one entry per launch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "abi/launch_abi.h"
#include "base/status.h"

namespace ds {
namespace artifact {
class Artifact;
}

using abi::kGeneratedKernelAbiVersion;

// buffers: the launch's inputs then outputs (f32, [rows x cols] row-major); weights: its weights as
// f32 vectors; rows: the step's rows of the launch's row space (T tokens or R logit rows).
using GeneratedKernelFn = void (*)(void* const* buffers, const float* const* weights, int64_t rows);

// Most buffers / weights a generated launch may take (the runner passes them in fixed arrays).
constexpr size_t kMaxGeneratedBuffers = 8;
constexpr size_t kMaxGeneratedWeights = 4;

class GeneratedKernels {
 public:
  // Loads the artifact's host code object (none: an empty set), checks its format, ABI and CPU
  // features against this machine, and resolves every launch's code_symbol. Errors name the
  // artifact, the code object or launch, and what is wrong. !allow_native_code: an empty set
  // without looking at the code (nothing mapped or dlopen'ed): library kernels serve every launch.
  static StatusOr<std::unique_ptr<GeneratedKernels>> load(const artifact::Artifact& artifact,
                                                          bool allow_native_code = true);
  ~GeneratedKernels();
  GeneratedKernels(const GeneratedKernels&) = delete;
  GeneratedKernels& operator=(const GeneratedKernels&) = delete;

  // The entry serving launch `index`, or null (a library kernel runs it).
  GeneratedKernelFn entry(size_t index) const {
    return index < entries_.size() ? entries_[index] : nullptr;
  }
  // Number of launches of one step served by generated code.
  size_t numServed() const;
  // Generated epilogue k of library launch `index` (Launch.epilogue_symbols), or null.
  GeneratedKernelFn epilogue(size_t index, size_t k) const {
    return index < epilogues_.size() && k < epilogues_[index].size() ? epilogues_[index][k]
                                                                     : nullptr;
  }

  struct Library;  // one dlopen'ed code object

 private:
  GeneratedKernels() = default;
  std::unique_ptr<Library> host_;        // the host code object chosen for this CPU
  std::vector<Library*> libraries_;      // per code object: host_ for host code, else null
  std::vector<GeneratedKernelFn> entries_;
  std::vector<std::vector<GeneratedKernelFn>> epilogues_;
};

// Code objects this process has dlopen'ed so far (tests: zero when native code is refused).
size_t generatedCodeObjectsLoaded();

// Whether this machine has an instruction-set extension, named as LLVM names it ("avx2",
// "fma", ...); false for names this runtime does not know.
bool hostHasCpuFeature(const std::string& name);

// Whether this machine can load code object `index` of the artifact: target host, x86_64,
// an ELF shared object of this kernel ABI (checkHostCodeFormat), CPU features present. Decided
// from the metadata alone; nothing is mapped.
Status checkHostCodeFormat(const artifact::Artifact& artifact, uint32_t index);
Status checkHostCodeObject(const artifact::Artifact& artifact, uint32_t index);

// The host code object this CPU runs (hal/cpu/host_code_choice.h): of the artifact's host code
// objects (one per --codegen-cpu level in a fat host artifact), the one with the most features
// among those whose features are all present; -1 when there is no host code. An error names
// what each one lacks when none runs. ModelRunner::checkRunsHere and ds-inspect use it too.
StatusOr<int> chooseHostCodeObject(const artifact::Artifact& artifact);

}  // namespace ds
