// The target table: every target ds-compile knows, as data. One row per chip (host, sm_80, ...)
// holds its code-generation levels (triple, LLVM CPU, exact features, vector width) and the
// cost-model figures of the devices built on it. Code reads rows; it never tests `sm == 90`.
#pragma once

#include <string>
#include <vector>

#include "dialects/ds/DsDialect.h"
#include "llvm/ADT/StringRef.h"

namespace mlir::ds {

// Cost-model figures of one device: vendor peaks (dense, no sparsity; the cost model derates
// them) and its tensor-parallel interconnect.
struct DeviceSpec {
  std::string name;               // "h100"; --target accepts it as an alias of its chip
  double memory_bandwidth_gbs;
  double bf16_tflops;
  double fp8_tflops;              // 0: no FP8 tensor cores
  int sm_count;
  double memory_gib;
  // Per-direction bandwidth of one device's links (NVLink, PCIe, or memory for host threads)
  // and the latency of one small collective.
  double link_gbs;
  double collective_latency_us;
};

// What generated code may use on a chip: host CPU levels (--codegen-cpu), or a GPU's SM.
struct CodegenLevel {
  std::string name;                   // "x86-64-v3", "x86-64", "sm_90a"; recorded in artifacts
  std::string llvm_cpu;               // LLVM CPU of the code (a generic one: features not implied)
  // Exactly the instruction-set extensions the code may use: passed to LLVM as +feature and
  // recorded in the artifact, where the runtime checks each one.
  std::vector<std::string> features;
  int vector_bits;                    // width of the vectors the kernels are tiled for
  std::string tune_cpu;               // LLVM CPU it is scheduled for ("tune-cpu"); empty: llvm_cpu
  // A level resolved on the compiling machine (--codegen-cpu=native): its name, tuning and
  // features come from the CPU found there (resolveDetectedLevel); `features` then lists the
  // extensions it may record (those the runtime can check), the rest of the row is unused.
  bool detect_host = false;
};

struct TargetDesc {
  std::string name;                   // --target value: "host", "sm_90a"
  TargetBackend backend;
  std::string triple;
  std::vector<CodegenLevel> levels;   // the first is the default
  std::vector<DeviceSpec> devices;    // cost-model figures, in report order
};

const std::vector<TargetDesc>& targetTable();

// The row named `name`, or the row of the device named `name` ("h100" -> sm_90a); null if none.
const TargetDesc* findTarget(llvm::StringRef name);
// The level of `target` named `name` (empty: the default); null if none. A detecting level
// ("native") resolves to the compiling machine's CPU, which is then found under its own name too.
const CodegenLevel* findLevel(const TargetDesc& target, llvm::StringRef name);
// The concrete level a detecting row stands for here: LLVM's host CPU name, and the row's
// recordable features this CPU has; the vector width of the widest fixed level it covers.
const CodegenLevel& resolveDetectedLevel(const TargetDesc& target, const CodegenLevel& row);
// "host, sm_80, ..." and "h200, h100, ..." for error messages.
std::string targetNames();
std::string deviceNames();
std::string levelNames(const TargetDesc& target);

// One device of the cost model with the row it belongs to.
struct CostDevice {
  const TargetDesc* target;
  const DeviceSpec* device;
};
// Every device of the table, row by row.
std::vector<CostDevice> costModelDevices();

// The #ds.target attribute of a row and one of its levels.
TargetAttr buildTargetAttr(MLIRContext* context, const TargetDesc& target,
                           const CodegenLevel& level);

}  // namespace mlir::ds
