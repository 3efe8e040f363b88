// The kernel library's source: $DS_CUDA_KERNELS, the artifact's embedded objects, the build tree.
#include "hal/cuda/cuda_library.h"

#include <cstring>

#include "artifact/artifact_reader.h"

namespace ds::hal::cuda {

namespace {
// A fatbin (cudafe's container of cubins + PTX) starts with this little-endian magic.
constexpr uint32_t kFatbinMagic = 0xBA55ED50u;
}  // namespace

StatusOr<CUmodule> loadCudaModule(const CudaDriver& d, const uint8_t* data, uint64_t size,
                                  const std::string& what) {
  CUmodule m = nullptr;
  uint32_t magic = 0;
  if (size >= 4) std::memcpy(&magic, data, 4);
  if (magic == kFatbinMagic) {
    DS_RETURN_IF_ERROR(d.check(d.cuModuleLoadFatBinary(&m, data), "cuModuleLoadFatBinary(" + what + ")"));
  } else if (size >= 4 && std::memcmp(data, "\x7f" "ELF", 4) == 0) {
    DS_RETURN_IF_ERROR(d.check(d.cuModuleLoadData(&m, data), "cuModuleLoadData(" + what + ")"));
  } else {
    // PTX text: the driver wants it NUL-terminated, the artifact stores it without.
    std::string ptx(reinterpret_cast<const char*>(data), size);
    DS_RETURN_IF_ERROR(d.check(d.cuModuleLoadData(&m, ptx.c_str()), "cuModuleLoadData(" + what + ", PTX JIT)"));
  }
  return m;
}

std::vector<LibraryObject> libraryObjects(const artifact::Artifact& artifact) {
  std::vector<LibraryObject> out;
  if (const auto* code = artifact.meta()->code())
    for (uint32_t c = 0; c < code->size(); ++c)
      if (code->Get(c)->library())
        out.push_back({static_cast<int>(c), code->Get(c)->target() ? code->Get(c)->target()->str() : ""});
  return out;
}

std::string LibrarySource::describe() const {
  switch (kind) {
    case Kind::Environment: return "$DS_CUDA_KERNELS (" + path + ")";
    case Kind::Artifact:
      return "the artifact's code[" + std::to_string(code_object) + "] (" + target + ", " +
             codeMatchName(match) + ")";
    case Kind::BuildTree: return "the build tree's " + path;
  }
  return "?";
}

StatusOr<LibrarySource> chooseLibrarySource(const std::vector<LibraryObject>& objects,
                                            const char* env, const std::string& build_tree_path,
                                            int major, int minor, const std::string& device_name) {
  LibrarySource s;
  if (env && *env) {
    s.kind = LibrarySource::Kind::Environment;
    s.path = env;
    return s;
  }
  if (!objects.empty()) {
    std::vector<std::string> targets;
    for (const LibraryObject& o : objects) targets.push_back(o.target);
    StatusOr<CodeChoice> c = selectCode(targets, major, minor, device_name);
    if (!c.isOk())
      return Status(c.status().code(), "the CUDA kernel library embedded in the artifact: " +
                                           c.status().message());
    const LibraryObject& o = objects[static_cast<size_t>(c->index)];
    s.kind = LibrarySource::Kind::Artifact;
    s.code_object = o.code_object;
    s.target = o.target;
    s.match = c->match;
    return s;
  }
  const std::string tried = "$DS_CUDA_KERNELS is unset and the artifact embeds no kernel library "
                            "(ds-compile found none when it wrote it)";
  if (build_tree_path.empty())
    return Status(DS_UNAVAILABLE, tried + ", and this runtime was built without one (no nvcc); "
                                  "set DS_CUDA_KERNELS to ds_cuda_kernels.fatbin or recompile the "
                                  "artifact with ds-compile --cuda-kernels DIR");
  s.kind = LibrarySource::Kind::BuildTree;
  s.path = build_tree_path;
  s.tried = tried;
  return s;
}

std::string buildTreeLibraryPath() {
#ifdef DS_CUDA_KERNELS_DEFAULT
  return DS_CUDA_KERNELS_DEFAULT;
#else
  return "";
#endif
}

}  // namespace ds::hal::cuda
