// Code-object selection per compute capability (NVIDIA's cubin/PTX compatibility rules).
#include "hal/cuda/cuda_code_select.h"

#include <cctype>

namespace ds::hal::cuda {

namespace {

// The GPU targets of ds-compile (compiler/target/TargetTable.cpp), newest first: what a device
// is told to compile for. The only list of architectures in the runtime.
const char* const kCompileTargets[] = {"sm_100a", "sm_90a", "sm_89", "sm_86", "sm_80"};

// Higher is better: exact cubin > compatible cubin > PTX; then version; then 'a' > 'f' > plain.
long score(const CudaArch& a, CodeMatch m) {
  const long cls = m == CodeMatch::ExactCubin ? 3 : m == CodeMatch::CompatibleCubin ? 2 : 1;
  const long variant = a.variant == 'a' ? 2 : a.variant == 'f' ? 1 : 0;
  return cls * 1000000 + a.version() * 10 + variant;
}

}  // namespace

std::optional<CudaArch> parseCudaArch(const std::string& name) {
  CudaArch a;
  size_t i = 0;
  if (name.rfind("sm_", 0) == 0) {
    i = 3;
  } else if (name.rfind("compute_", 0) == 0) {
    i = 8;
    a.ptx = true;
  } else {
    return std::nullopt;
  }
  size_t digits = i;
  while (digits < name.size() && std::isdigit(static_cast<unsigned char>(name[digits]))) ++digits;
  // Two or three digits: major then one minor digit (sm_80, sm_100); no leading zero.
  if (digits - i < 2 || digits - i > 3 || name[i] == '0') return std::nullopt;
  const int v = std::stoi(name.substr(i, digits - i));
  a.major = v / 10;
  a.minor = v % 10;
  if (digits + 1 == name.size() && (name[digits] == 'a' || name[digits] == 'f'))
    a.variant = name[digits];
  else if (digits != name.size())
    return std::nullopt;
  return a;
}

std::string cudaArchName(const CudaArch& a) {
  std::string s = (a.ptx ? "compute_" : "sm_") + std::to_string(a.version());
  if (a.variant) s += a.variant;
  return s;
}

bool isCudaTarget(const std::string& target) {
  std::optional<CudaArch> a = parseCudaArch(target);
  return a && !a->ptx;
}

bool runsOn(const CudaArch& code, int major, int minor) {
  if (code.variant == 'a') return code.major == major && code.minor == minor;
  if (!code.ptx || code.variant == 'f') return code.major == major && minor >= code.minor;
  return major * 10 + minor >= code.version();
}

const char* codeMatchName(CodeMatch m) {
  switch (m) {
    case CodeMatch::ExactCubin: return "exact cubin";
    case CodeMatch::CompatibleCubin: return "compatible cubin";
    case CodeMatch::PtxJit: return "PTX compiled by the driver at load";
  }
  return "?";
}

std::string compileTargetFor(int major, int minor) {
  for (const char* t : kCompileTargets)
    if (runsOn(*parseCudaArch(t), major, minor)) return t;
  return "";
}

StatusOr<CodeChoice> selectCode(const std::vector<std::string>& targets, int major, int minor,
                                const std::string& device_name) {
  CodeChoice best;
  long best_score = -1;
  std::string have;
  for (size_t i = 0; i < targets.size(); ++i) {
    have += (have.empty() ? "" : ", ") + targets[i];
    std::optional<CudaArch> a = parseCudaArch(targets[i]);
    if (!a || !runsOn(*a, major, minor)) continue;
    const CodeMatch m = a->ptx ? CodeMatch::PtxJit
                        : a->major == major && a->minor == minor ? CodeMatch::ExactCubin
                                                                 : CodeMatch::CompatibleCubin;
    if (score(*a, m) > best_score) {
      best_score = score(*a, m);
      best.index = static_cast<int>(i);
      best.match = m;
    }
  }
  if (best.index >= 0) return best;
  const std::string device = "sm_" + std::to_string(major * 10 + minor);
  std::string msg = "no code in the artifact runs on this GPU: the artifact has " +
                    (have.empty() ? std::string("no GPU code") : have) + "; the device is " +
                    device + " (" + device_name + ")";
  for (const std::string& t : targets)
    if (std::optional<CudaArch> a = parseCudaArch(t); a && a->variant == 'a') {
      msg += ". '" + t + "' runs only on exactly that architecture";
      break;
    }
  const std::string want = compileTargetFor(major, minor);
  if (want.empty() && major * 10 + minor < 80)
    msg += ". The GPU is older than every target ds-compile supports (sm_80 and newer)";
  else if (want.empty())
    msg += ". ds-compile has no target for " + device + " yet";
  else
    msg += ". Compile with --target " + want + " (or add it to a fat --target list)";
  return Status(DS_UNAVAILABLE, msg);
}

StatusOr<CodeChoice> selectLibraryCode(const std::vector<std::string>& targets,
                                       const std::string& target) {
  std::optional<CudaArch> t = parseCudaArch(target);
  if (!t || t->ptx)
    return Status(DS_INVALID_ARGUMENT, "'" + target + "' is not a GPU target (sm_XY[a|f])");
  // Candidates that run on every device the target's code runs on: an 'a' cubin only for an
  // 'a' target (exactly its architecture), anything else by selectCode's rules.
  std::vector<std::string> usable;
  std::vector<int> index;
  for (size_t i = 0; i < targets.size(); ++i) {
    std::optional<CudaArch> a = parseCudaArch(targets[i]);
    if (a && a->variant == 'a' && t->variant != 'a') continue;
    usable.push_back(targets[i]);
    index.push_back(static_cast<int>(i));
  }
  StatusOr<CodeChoice> c = selectCode(usable, t->major, t->minor, "ds-compile --target " + target);
  if (!c.isOk()) return c.status();
  CodeChoice out = *c;
  out.index = index[static_cast<size_t>(c->index)];
  return out;
}

}  // namespace ds::hal::cuda
