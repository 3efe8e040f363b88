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

Status checkHostCodeObject(const artifact::Artifact& artifact, uint32_t index) {
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
  if (obj->cpu_features())
    for (const auto* f : *obj->cpu_features())
      if (!hostHasCpuFeature(f->str()))
        return unsupported(what + " was compiled for " +
                           (obj->cpu() ? obj->cpu()->str() : std::string("?")) +
                           ", which needs CPU feature '" + f->str() +
                           "' this machine lacks; recompile with --codegen-cpu=x86-64 or "
                           "--codegen=none");
  // Its segment and size were checked when the artifact was opened (metadata_check.cpp).
  return Status::ok();
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
  for (uint32_t c = 0; c < numCode; ++c) {
    const fbs::CodeObject* obj = code->Get(c);
    std::string what = artifact.path() + ": code object " + std::to_string(c);
    std::string target = obj->target() ? obj->target()->str() : "";
    // A fat artifact (--target host,sm_90a) also carries GPU code: not the CPU's. Its slot stays
    // empty, and a launch that names it is refused below.
    // So does the CUDA kernel library a GPU target carries (CodeObject.library, any position).
    if (obj->library() || (target != "host" && target.rfind("sm_", 0) == 0 && c > 0)) {
      gk->libraries_.push_back(nullptr);
      continue;
    }
    DS_RETURN_IF_ERROR(checkHostCodeObject(artifact, c));
    auto lib = std::make_unique<Library>();
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
    DS_RETURN_IF_ERROR(loadFromMemory(bytes, obj->size(), what, lib.get()));
    gk->libraries_.push_back(std::move(lib));
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
      if (eps->size() != expected || gk->libraries_.empty())
        return dataLoss(what + " has " + std::to_string(eps->size()) +
                        " generated epilogues; it takes " + std::to_string(expected) +
                        (gk->libraries_.empty() ? " and the artifact has no code object" : ""));
      for (const auto* name : *eps) {
        void* sym = name ? dlsym(gk->libraries_[0]->handle, name->c_str()) : nullptr;
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
