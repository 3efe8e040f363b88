// Loads an artifact's generated host kernels: CPU feature checks, a shared object from memory, dlsym.
#include "hal/cpu/generated_kernels.h"

#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "abi/launch_abi.h"
#include "artifact/artifact_reader.h"
#include "artifact/signature.h"
#include "hal/cpu/host_code_choice.h"

namespace ds {

namespace fbs = ::ds::fb;

bool hostHasCpuFeature(const std::string& name) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // __builtin_cpu_supports takes literals only, hence one row per name.
#define DS_CPU_FEATURE(n) {n, [] { return __builtin_cpu_supports(n) != 0; }}
  static const struct {
    const char* name;
    bool (*has)();
  } kFeatures[] = {
      DS_CPU_FEATURE("sse2"),   DS_CPU_FEATURE("sse3"), DS_CPU_FEATURE("ssse3"),
      DS_CPU_FEATURE("sse4.1"), DS_CPU_FEATURE("sse4.2"), DS_CPU_FEATURE("popcnt"),
      DS_CPU_FEATURE("avx"),    DS_CPU_FEATURE("avx2"), DS_CPU_FEATURE("fma"),
      DS_CPU_FEATURE("bmi"),    DS_CPU_FEATURE("bmi2"), DS_CPU_FEATURE("avx512f"),
      DS_CPU_FEATURE("avx512cd"), DS_CPU_FEATURE("avx512bw"), DS_CPU_FEATURE("avx512dq"),
      DS_CPU_FEATURE("avx512vl"), DS_CPU_FEATURE("avx512vnni"), DS_CPU_FEATURE("avx512bf16"),
      DS_CPU_FEATURE("avx512vbmi"), DS_CPU_FEATURE("avx512vbmi2"), DS_CPU_FEATURE("avx512ifma"),
      DS_CPU_FEATURE("avx512bitalg"), DS_CPU_FEATURE("avx512vpopcntdq"),
  };
#undef DS_CPU_FEATURE
  for (const auto& f : kFeatures)
    if (name == f.name) return f.has();
#endif
  (void)name;
  return false;
}

// One loaded shared object; the memfd stays open while the library is loaded so that no other
// object can be loaded under the same /proc/self/fd path (dlopen matches by name first).
struct GeneratedKernels::Library {
  void* handle = nullptr;
  int fd = -1;
  ~Library() {
    if (handle) dlclose(handle);
    if (fd >= 0) close(fd);
  }
};

namespace {

std::atomic<size_t> g_code_objects_loaded{0};

bool writeAll(int fd, const uint8_t* data, size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// dlopen of bytes in memory: an anonymous memfd, or where memfd_create is unavailable a private
// temporary file that is unlinked once loaded.
Status loadFromMemory(const uint8_t* data, size_t size, const std::string& what,
                      GeneratedKernels::Library* lib) {
  std::string path;
  int fd = memfd_create("ds-kernels", MFD_CLOEXEC);
  bool temp = false;
  if (fd >= 0) {
    path = "/proc/self/fd/" + std::to_string(fd);
  } else {
    const char* dir = std::getenv("TMPDIR");
    std::string templ = std::string(dir && *dir ? dir : "/tmp") + "/ds-kernels-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    fd = mkstemp(buf.data());
    if (fd < 0)
      return internalError(what + ": cannot create a file to load the generated kernels from: " +
                           std::strerror(errno));
    path = buf.data();
    temp = true;
  }
  if (!writeAll(fd, data, size)) {
    std::string err = std::strerror(errno);
    if (temp) unlink(path.c_str());
    close(fd);
    return internalError(what + ": cannot write the generated kernels: " + err);
  }
  ++g_code_objects_loaded;
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  const char* err = handle ? nullptr : dlerror();
  if (temp) {
    unlink(path.c_str());
    close(fd);
    fd = -1;
  }
  if (!handle) {
    if (fd >= 0) close(fd);
    return dataLoss(what + ": cannot load the generated kernels (corrupt or incompatible code "
                    "object; recompile, or use --codegen=none): " + (err ? err : "dlopen failed"));
  }
  lib->handle = handle;
  lib->fd = fd;
  return Status::ok();
}

}  // namespace

size_t generatedCodeObjectsLoaded() { return g_code_objects_loaded.load(); }

GeneratedKernels::~GeneratedKernels() = default;

size_t GeneratedKernels::numServed() const {
  size_t n = 0;
  for (GeneratedKernelFn f : entries_) n += f != nullptr;
  return n;
}

Status checkHostCodeFormat(const artifact::Artifact& artifact, uint32_t index) {
  const fbs::CodeObject* obj = artifact.meta()->code()->Get(index);
  const std::string what = artifact.path() + ": code object " + std::to_string(index);
  const std::string target = obj->target() ? obj->target()->str() : "";
  if (target != "host") return unsupported(what + " is for target '" + target + "', not the host");
  const std::string triple = obj->triple() ? obj->triple()->str() : "";
#if defined(__x86_64__)
  if (triple.rfind("x86_64", 0) != 0)
    return unsupported(what + " is for '" + triple + "', this machine is x86_64");
#else
  return unsupported(what + " is for '" + triple + "'; this runtime loads x86_64 code only");
#endif
  if (obj->format() != fbs::CodeFormat_ElfSharedObject)
    return unsupported(what + " has an unknown format");
  if (obj->abi_version() != kGeneratedKernelAbiVersion)
    return unsupported(what + " uses kernel ABI " + std::to_string(obj->abi_version()) +
                       ", this runtime calls ABI " + std::to_string(kGeneratedKernelAbiVersion) +
                       " (recompile the artifact)");
  // Its segment and size were checked when the artifact was opened (metadata_check.cpp).
  return Status::ok();
}

namespace {

// Host code, not the GPU code of a fat artifact (--target host,sm_90a) nor a CUDA kernel library.
bool isHostCandidate(const fbs::CodeObject* obj, uint32_t index) {
  const std::string target = obj->target() ? obj->target()->str() : "";
  return !obj->library() && !(target.rfind("sm_", 0) == 0 && index > 0);
}

HostCodeCandidate candidate(const fbs::CodeObject* obj, uint32_t index) {
  HostCodeCandidate c;
  c.index = index;
  c.cpu = obj->cpu() ? obj->cpu()->str() : std::string("?");
  if (obj->cpu_features())
    for (const auto* f : *obj->cpu_features()) c.features.push_back(f->str());
  return c;
}

Status lacksFeatures(const artifact::Artifact& artifact, size_t candidates,
                     const std::string& missing) {
  return unsupported(artifact.path() + ": " +
                     (candidates > 1 ? "no host code object runs on this CPU: " : "") + missing +
                     " this machine lacks; recompile with --codegen-cpu=x86-64 (or a list of "
                     "levels ending in it) or --codegen=none");
}

}  // namespace

Status checkHostCodeObject(const artifact::Artifact& artifact, uint32_t index) {
  DS_RETURN_IF_ERROR(checkHostCodeFormat(artifact, index));
  HostCodeChoice choice = chooseHostCode({candidate(artifact.meta()->code()->Get(index), index)},
                                         hostHasCpuFeature);
  return choice.index < 0 ? lacksFeatures(artifact, 1, choice.missing) : Status::ok();
}

StatusOr<int> chooseHostCodeObject(const artifact::Artifact& artifact) {
  const auto* code = artifact.meta()->code();
  std::vector<HostCodeCandidate> candidates;
  for (uint32_t c = 0; code && c < code->size(); ++c) {
    if (!isHostCandidate(code->Get(c), c)) continue;
    DS_RETURN_IF_ERROR(checkHostCodeFormat(artifact, c));
    candidates.push_back(candidate(code->Get(c), c));
  }
  if (candidates.empty()) return -1;
  HostCodeChoice choice = chooseHostCode(candidates, hostHasCpuFeature);
  if (choice.index < 0) return lacksFeatures(artifact, candidates.size(), choice.missing);
  return choice.index;
}

StatusOr<std::unique_ptr<GeneratedKernels>> GeneratedKernels::load(
    const artifact::Artifact& artifact, bool allow_native_code) {
  std::unique_ptr<GeneratedKernels> gk(new GeneratedKernels());
  // Refused native code: no entry and no epilogue, so launch() and the composite kernels take
  // their library paths (null entries are how --codegen=none artifacts run).
  if (!allow_native_code) return gk;
  const fbs::Artifact* meta = artifact.meta();
  const fbs::Plan* plan = meta->plan();
  const auto* code = meta->code();
  size_t numCode = code ? code->size() : 0;
  // A fat host artifact has one host code object per CPU level (the same symbols): the best one
  // this CPU runs is loaded, and every launch naming any host object calls into it. GPU code and
  // the CUDA kernel library are not the CPU's: their slots stay empty, and a launch that names
  // one is refused below.
  StatusOr<int> chosen = chooseHostCodeObject(artifact);
  if (!chosen.isOk()) return chosen.status();
  gk->libraries_.assign(numCode, nullptr);
  if (*chosen >= 0) {
    const uint32_t c = static_cast<uint32_t>(*chosen);
    const fbs::CodeObject* obj = code->Get(c);
    std::string what = artifact.path() + ": code object " + std::to_string(c);
    gk->host_ = std::make_unique<Library>();
    const uint8_t* bytes = artifact.segmentData(obj->segment());
    std::vector<uint8_t> copy;
    if (const auto* signed_hash = artifact.verifiedCodeHash(c)) {
      // Signed code: load a private copy whose hash is the one verified at open, so a file
      // changed since then cannot slip other code in (the mapping shows such changes).
      const uint64_t segment_size = meta->segments()->Get(obj->segment())->size();
      copy.assign(bytes, bytes + segment_size);
      if (artifact::codeHash(copy.data(), copy.size()) != *signed_hash)
        return dataLoss(what + " changed after its signature was verified (the file was "
                        "modified while in use); not loading it");
      bytes = copy.data();
    }
    DS_RETURN_IF_ERROR(loadFromMemory(bytes, obj->size(), what, gk->host_.get()));
    for (uint32_t k = 0; k < numCode; ++k)
      if (isHostCandidate(code->Get(k), k)) gk->libraries_[k] = gk->host_.get();
  }

  const auto* launches = plan ? plan->launches() : nullptr;
  if (!launches) return gk;
  gk->entries_.assign(launches->size(), nullptr);
  gk->epilogues_.assign(launches->size(), {});
  const auto* tensors = meta->tensors();
  for (uint32_t i = 0; i < launches->size(); ++i) {
    const fbs::Launch* l = launches->Get(i);
    if (l->code_object() < 0 && !l->code_symbol() && !l->epilogue_symbols()) continue;
    std::string what = artifact.path() + ": launch " + std::to_string(i) + " (" +
                       fbs::EnumNameKernel(l->kernel()) + ")";
    if (const auto* eps = l->epilogue_symbols()) {
      const abi::KernelSignature* sig = abi::signature(static_cast<uint32_t>(l->kernel()));
      size_t expected = sig ? sig->num_epilogues : 0;
      if (eps->size() != expected || !gk->host_)
        return dataLoss(what + " has " + std::to_string(eps->size()) +
                        " generated epilogues; it takes " + std::to_string(expected) +
                        (!gk->host_ ? " and the artifact has no host code object" : ""));
      for (const auto* name : *eps) {
        void* sym = name ? dlsym(gk->host_->handle, name->c_str()) : nullptr;
        if (!sym)
          return dataLoss(what + ": generated epilogue '" + (name ? name->str() : std::string()) +
                          "' is not in code object 0");
        gk->epilogues_[i].push_back(reinterpret_cast<GeneratedKernelFn>(sym));
      }
    }
    if (l->code_object() < 0 && !l->code_symbol()) continue;
    if (!l->code_symbol() || l->code_object() < 0 ||
        static_cast<size_t>(l->code_object()) >= gk->libraries_.size() ||
        !gk->libraries_[l->code_object()])
      return dataLoss(what + " names generated kernel '" +
                      (l->code_symbol() ? l->code_symbol()->str() : std::string()) +
                      "' of code object " + std::to_string(l->code_object()) + " of " +
                      std::to_string(gk->libraries_.size()));
    size_t nbuf = (l->inputs() ? l->inputs()->size() : 0) + (l->outputs() ? l->outputs()->size() : 0);
    size_t nw = l->weights() ? l->weights()->size() : 0;
    if (!l->inputs() || !l->outputs() || l->outputs()->size() == 0 ||
        nbuf > kMaxGeneratedBuffers || nw > kMaxGeneratedWeights)
      return dataLoss(what + " has " + std::to_string(nbuf) + " buffers and " +
                      std::to_string(nw) + " weights; generated kernels take at most " +
                      std::to_string(kMaxGeneratedBuffers) + " and " +
                      std::to_string(kMaxGeneratedWeights));
    for (size_t w = 0; w < nw; ++w) {
      uint32_t t = l->weights()->Get(w);
      if (!tensors || t >= tensors->size() || !tensors->Get(t)->shape() ||
          tensors->Get(t)->shape()->size() != 1)
        return dataLoss(what + ": generated kernels read weights as f32 vectors, weight " +
                        std::to_string(w) + " is not one");
    }
    void* sym = dlsym(gk->libraries_[l->code_object()]->handle, l->code_symbol()->c_str());
    if (!sym)
      return dataLoss(what + ": generated kernel '" + l->code_symbol()->str() +
                      "' is not in code object " + std::to_string(l->code_object()));
    gk->entries_[i] = reinterpret_cast<GeneratedKernelFn>(sym);
  }
  return gk;
}

}  // namespace ds
