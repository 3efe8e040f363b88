// The target table (data, not `if (sm == 90)`): codegen levels and cost-model figures per chip.
#include "compiler/target/TargetTable.h"

#include <map>
#include <memory>
#include <mutex>

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/TargetParser/Host.h"

namespace mlir::ds {

namespace {

using Features = std::vector<std::string>;
Features concat(Features a, const Features& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
// x86 feature groups as LLVM names them (the runtime checks each by that name).
const Features kBelowV3 = {"sse3", "ssse3", "sse4.1"};
const Features kV3 = {"sse4.2", "popcnt", "avx", "avx2", "fma", "bmi", "bmi2"};
const Features kV4 = {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"};
const Features kIceLake = {"avx512vnni", "avx512bf16", "avx512vbmi", "avx512vbmi2",
                           "avx512ifma", "avx512bitalg", "avx512vpopcntdq"};

}  // namespace

const std::vector<TargetDesc>& targetTable() {
  // Devices: vendor datasheet peaks, dense tensor-core rates. Links: NVLink 5 (B200, 900 GB/s
  // per direction), NVLink 4 (H100/H200 SXM, 450), NVLink 3 (A100 SXM, 300), PCIe 4.0 x16 (A10,
  // L40S, RTX 4090: ~25 usable); latencies are typical NCCL small-message all-reduce times
  // within one node. GPU levels: the SM's features and 128-bit (4 x f32) vector accesses.
  static const std::vector<TargetDesc> table = {
      {"sm_100a", TargetBackend::nvptx, "nvptx64-nvidia-cuda",
       {{"sm_100a", "sm_100a", {"tcgen05", "tma", "fp8", "fp4", "cp.async"}, 128}},
       {{"b200", 8000, 2250, 4500, 148, 180, 900, 8}}},
      {"sm_90a", TargetBackend::nvptx, "nvptx64-nvidia-cuda",
       {{"sm_90a", "sm_90a", {"wgmma", "tma", "fp8", "cp.async"}, 128}},
       {{"h200", 4800, 989, 1979, 132, 141, 450, 8}, {"h100", 3350, 989, 1979, 132, 80, 450, 8}}},
      {"sm_80", TargetBackend::nvptx, "nvptx64-nvidia-cuda",
       {{"sm_80", "sm_80", {"mma.sync", "cp.async"}, 128}},
       {{"a100", 2039, 312, 0, 108, 80, 300, 10}}},
      {"sm_86", TargetBackend::nvptx, "nvptx64-nvidia-cuda",
       {{"sm_86", "sm_86", {"mma.sync", "cp.async"}, 128}},
       {{"a10", 600, 125, 0, 72, 24, 25, 20}}},
      {"sm_89", TargetBackend::nvptx, "nvptx64-nvidia-cuda",
       {{"sm_89", "sm_89", {"mma.sync", "fp8", "cp.async"}, 128}},
       {{"l40s", 864, 362, 733, 142, 48, 25, 20}, {"rtx4090", 1008, 165, 330, 128, 24, 25, 20}}},
      {"host", TargetBackend::host, "x86_64-unknown-linux-gnu",
       {// x86-64-v3 without the extensions the kernels never need (f16c, movbe, lzcnt), so the
        // runtime check asks no more of the machine than the code uses.
        {"x86-64-v3", "x86-64", kV3, 256},
        // AVX-512 (x86-64-v4: F, CD, BW, DQ, VL): kernels tiled for 16 x f32 (zmm registers).
        {"x86-64-v4", "x86-64", concat(kV3, kV4), 512},
        // Named CPUs: a level's exact features, scheduled for the chip (tune-cpu). No AMX or
        // AVX512-FP16: the f32 kernels never use them, and the check asks only what they use.
        {"sapphirerapids", "x86-64", concat(concat(kV3, kV4), kIceLake), 512, "sapphirerapids"},
        {"znver4", "x86-64", concat(concat(kV3, kV4), kIceLake), 512, "znver4"},
        // The compiling machine (resolveDetectedLevel): its CPU name and the features below it has.
        {"native", "x86-64", concat(concat(concat(kBelowV3, kV3), kV4), kIceLake), 0, "", true},
        // Baseline: SSE2 only, for machines without AVX2.
        {"x86-64", "x86-64", {}, 128}},
       // A 2-core AVX2 server slice like the CI machines (ranks are threads sharing memory).
       {{"host", 20, 0.1, 0, 0, 24, 10, 5}}},
  };
  return table;
}

const TargetDesc* findTarget(llvm::StringRef name) {
  for (const TargetDesc& t : targetTable())
    if (t.name == name) return &t;
  for (const TargetDesc& t : targetTable())
    for (const DeviceSpec& d : t.devices)
      if (d.name == name) return &t;
  return nullptr;
}

const CodegenLevel* findLevel(const TargetDesc& target, llvm::StringRef name) {
  if (name.empty()) return &target.levels.front();
  for (const CodegenLevel& l : target.levels)
    if (l.name == name && !l.detect_host) return &l;
  for (const CodegenLevel& l : target.levels) {
    if (!l.detect_host) continue;
    const CodegenLevel& here = resolveDetectedLevel(target, l);
    if (l.name == name || here.name == name) return &here;
  }
  return nullptr;
}

const CodegenLevel& resolveDetectedLevel(const TargetDesc& target, const CodegenLevel& row) {
  // One resolution per row for the process: the machine does not change under it.
  static std::mutex mutex;
  static std::map<const CodegenLevel*, std::unique_ptr<CodegenLevel>> resolved;
  std::lock_guard<std::mutex> lock(mutex);
  std::unique_ptr<CodegenLevel>& level = resolved[&row];
  if (level) return *level;
  level = std::make_unique<CodegenLevel>(row);
  level->detect_host = false;
  level->name = llvm::sys::getHostCPUName().str();
  level->tune_cpu = level->name;
  const llvm::StringMap<bool> host = llvm::sys::getHostCPUFeatures();
  level->features.clear();
  for (const std::string& f : row.features)
    if (host.lookup(f)) level->features.push_back(f);
  // The vector width of the fixed level with the most features that this CPU covers.
  const llvm::StringSet<> have(llvm::from_range, level->features);
  size_t best = 0;
  level->vector_bits = 128;
  for (const CodegenLevel& l : target.levels) {
    if (l.detect_host || (best && l.features.size() <= best)) continue;
    if (llvm::all_of(l.features, [&](const std::string& f) { return have.contains(f); })) {
      best = std::max<size_t>(l.features.size(), 1);
      level->vector_bits = l.vector_bits;
    }
  }
  return *level;
}

std::string targetNames() {
  std::vector<std::string> names;
  for (const TargetDesc& t : targetTable()) names.push_back(t.name);
  return llvm::join(names, ", ");
}

std::string deviceNames() {
  std::vector<std::string> names;
  for (const CostDevice& d : costModelDevices())
    if (d.device->name != d.target->name) names.push_back(d.device->name);
  return llvm::join(names, ", ");
}

std::string levelNames(const TargetDesc& target) {
  std::vector<std::string> names;
  for (const CodegenLevel& l : target.levels) names.push_back(l.name);
  return llvm::join(names, ", ");
}

std::vector<CostDevice> costModelDevices() {
  std::vector<CostDevice> devices;
  for (const TargetDesc& t : targetTable())
    for (const DeviceSpec& d : t.devices) devices.push_back({&t, &d});
  return devices;
}

TargetAttr buildTargetAttr(MLIRContext* context, const TargetDesc& target,
                           const CodegenLevel& level) {
  Builder b(context);
  SmallVector<Attribute> features;
  for (const std::string& f : level.features) features.push_back(b.getStringAttr(f));
  return TargetAttr::get(context, b.getStringAttr(target.name), target.backend,
                         b.getStringAttr(target.triple), b.getStringAttr(level.name),
                         b.getArrayAttr(features), level.vector_bits);
}

}  // namespace mlir::ds
