// Finds the CUDA kernel library's builds and picks the one each GPU target embeds.
#include "compiler/artifact/CudaLibrary.h"

#include <map>

#include "hal/cuda/cuda_code_select.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

namespace mlir::ds {

namespace {

constexpr llvm::StringLiteral kPrefix = "ds_cuda_kernels.";

struct Build {
  std::string target;  // "sm_80", "compute_90"
  std::string path;
};

// ds_cuda_kernels.<sm_XY[a]>.cubin and ds_cuda_kernels.<compute_XY>.ptx, sorted by name.
std::vector<Build> listBuilds(const std::string& dir) {
  std::map<std::string, Build> found;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    llvm::StringRef name = llvm::sys::path::filename(it->path());
    if (!name.consume_front(kPrefix)) continue;
    const bool cubin = name.consume_back(".cubin");
    const bool ptx = !cubin && name.consume_back(".ptx");
    if (!cubin && !ptx) continue;
    std::optional<::ds::hal::cuda::CudaArch> arch = ::ds::hal::cuda::parseCudaArch(name.str());
    if (!arch || arch->ptx != ptx) continue;
    found[name.str()] = {name.str(), it->path()};
  }
  std::vector<Build> out;
  for (auto& [name, b] : found) out.push_back(b);
  return out;
}

// ptxas's report per kernel for `arch`, from resource_report.py's JSON (optional: {} when the
// file is missing or unreadable).
std::vector<CodeObject::KernelResources> readResources(const std::string& dir, llvm::StringRef arch) {
  std::vector<CodeObject::KernelResources> out;
  llvm::SmallString<256> path(dir);
  llvm::sys::path::append(path, "ds_cuda_kernels.resources.json");
  auto buf = llvm::MemoryBuffer::getFile(path);
  if (!buf) return out;
  llvm::Expected<llvm::json::Value> v = llvm::json::parse((*buf)->getBuffer());
  if (!v) {
    llvm::consumeError(v.takeError());
    return out;
  }
  const llvm::json::Array* rows = v->getAsArray();
  if (!rows) return out;
  for (const llvm::json::Value& row : *rows) {
    const llvm::json::Object* o = row.getAsObject();
    if (!o || o->getString("arch") != arch) continue;
    CodeObject::KernelResources k;
    k.name = o->getString("kernel").value_or("").str();
    k.registers = static_cast<int>(o->getInteger("registers").value_or(0));
    k.shared_bytes = o->getInteger("smem_bytes").value_or(0);
    k.stack_bytes = o->getInteger("stack_bytes").value_or(0);
    k.spill_store_bytes = o->getInteger("spill_stores").value_or(0);
    k.spill_load_bytes = o->getInteger("spill_loads").value_or(0);
    if (!k.name.empty()) out.push_back(std::move(k));
  }
  return out;
}

}  // namespace

CudaLibraryLocation locateCudaLibrary(const std::string& flagDir, const char* envDir,
                                      const std::string& defaultDir) {
  // "none": embed nothing on purpose (the runtime then needs DS_CUDA_KERNELS); not an error.
  if (flagDir == "none") return {"", "--cuda-kernels none", true};
  if (!flagDir.empty()) return {flagDir, "--cuda-kernels", false};
  if (envDir && *envDir) return {envDir, "$DS_CUDA_KERNELS_DIR", false};
  return {defaultDir, "the build tree", true};
}

llvm::Expected<CudaLibraryEmbed> collectCudaLibrary(llvm::ArrayRef<std::string> gpuTargets,
                                                    const CudaLibraryLocation& where,
                                                    llvm::ArrayRef<std::string> symbols) {
  CudaLibraryEmbed out;
  if (gpuTargets.empty()) return out;
  const std::vector<Build> builds = where.dir.empty() ? std::vector<Build>{} : listBuilds(where.dir);
  if (builds.empty()) {
    const bool asked = where.source == "--cuda-kernels none";
    const std::string what = asked ? std::string("no CUDA kernel library embedded (--cuda-kernels none)")
                                   : "no CUDA kernel library (ds_cuda_kernels.sm_XY.cubin / "
                                     ".compute_XY.ptx) in " + where.source +
                                         (where.dir.empty() ? std::string(" (none: built without nvcc)")
                                                            : " '" + where.dir + "'");
    if (!where.isDefault)
      return llvm::createStringError(what + "; build target ds_cuda_kernels or point "
                                            "--cuda-kernels at its output folder");
    out.notes.push_back(what + ": the library is not embedded, and the runtime will need "
                               "DS_CUDA_KERNELS=<path to ds_cuda_kernels.fatbin>");
    return out;
  }
  out.dir = where.dir;
  std::vector<std::string> available;
  for (const Build& b : builds) available.push_back(b.target);
  std::map<size_t, size_t> objectOf;  // build -> index in out.objects
  for (const std::string& target : gpuTargets) {
    ::ds::StatusOr<::ds::hal::cuda::CodeChoice> c =
        ::ds::hal::cuda::selectLibraryCode(available, target);
    if (!c.isOk())
      return llvm::createStringError("the CUDA kernel library in " + where.dir + " has " +
                                     llvm::join(available, ", ") + ", none of which runs on " +
                                     target + "; rebuild it with that architecture in "
                                     "DS_CUDA_ARCHS (or a PTX arch it can JIT)");
    const size_t b = static_cast<size_t>(c->index);
    out.notes.push_back(target + ": " + builds[b].target + " (" +
                        ::ds::hal::cuda::codeMatchName(c->match) + ")");
    if (objectOf.count(b)) continue;
    auto bytes = llvm::MemoryBuffer::getFile(builds[b].path, /*IsText=*/false,
                                             /*RequiresNullTerminator=*/false);
    if (!bytes)
      return llvm::createStringError("cannot read " + builds[b].path + ": " + bytes.getError().message());
    if ((*bytes)->getBufferSize() == 0) return llvm::createStringError(builds[b].path + " is empty");
    CodeObject obj;
    const bool ptx = llvm::StringRef(builds[b].target).starts_with("compute_");
    obj.target = builds[b].target;
    obj.triple = "nvptx64-nvidia-cuda";
    obj.cpu = builds[b].target;
    obj.format = ptx ? CodeFormat::Ptx : CodeFormat::Cubin;
    obj.library = true;
    obj.symbols.assign(symbols.begin(), symbols.end());
    const auto* data = reinterpret_cast<const uint8_t*>((*bytes)->getBufferStart());
    obj.bytes.assign(data, data + (*bytes)->getBufferSize());
    if (!ptx) obj.kernels = readResources(where.dir, builds[b].target);
    objectOf[b] = out.objects.size();
    out.objects.push_back(std::move(obj));
  }
  return out;
}

}  // namespace mlir::ds
