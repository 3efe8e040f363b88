# lit configuration for the ds suite: .mlir files under test/ run through ds-opt / ds-compile + FileCheck.
import os
import lit.formats
from lit.llvm import llvm_config

config.name = "ds"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "unit", "models", "golden", "reference", "e2e", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.ds_obj_root, "test")

llvm_config.with_system_environment(["HOME", "TMP", "TEMP"])
llvm_config.use_default_substitutions()
config.substitutions.append(("%inputs", os.path.join(config.test_source_root, "Inputs")))
config.substitutions.append(("%shared_data", config.shared_data_dir))
config.substitutions.append(("%models", os.path.join(config.test_source_root, "models")))
config.substitutions.append(("%python", "python3"))
config.substitutions.append(("%ds_tools_dir", config.ds_tools_dir))
config.substitutions.append(("%ds_src_root", config.ds_src_root))

tool_dirs = [config.ds_tools_dir, config.llvm_tools_dir]
tools = ["ds-opt", "ds-compile", "ds-inspect", "ds-run", "ds-tokenize", "ds-bench", "ds-keygen",
         "ds-tamper", "ds-serve"]
# Runtime tools are looked up even when not built yet, so a missing tool fails loudly.
llvm_config.add_tool_substitutions(
    [t for t in tools if os.path.exists(os.path.join(config.ds_tools_dir, t))], tool_dirs)
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.ds_tools_dir, append_path=True)

# GPU tests: "no-cuda-driver" where libcuda.so.1 cannot be loaded (this machine, CI), "cuda-driver"
# where it can (docs/cuda.md).
import ctypes
try:
    ctypes.CDLL("libcuda.so.1")
    config.available_features.add("cuda-driver")
except OSError:
    config.available_features.add("no-cuda-driver")

# NVPTX codegen: PTX needs the CUDA toolkit's libdevice (the kernels call its math functions);
# ptxas turns PTX into cubins. Found here as ds-compile finds them (NVPTXTargetInfo.cpp); tests
# needing them say REQUIRES: cuda-libdevice / ptxas and are reported UNSUPPORTED without them.
import shutil
def _cuda_root():
    for var in ("CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"):
        if os.environ.get(var):
            return os.environ[var]
    ptxas = shutil.which("ptxas")
    return os.path.dirname(os.path.dirname(ptxas)) if ptxas else "/usr/local/cuda"
_ptxas = shutil.which("ptxas") or (
    "/usr/local/cuda/bin/ptxas" if os.access("/usr/local/cuda/bin/ptxas", os.X_OK) else None)
if os.path.exists(os.path.join(_cuda_root(), "nvvm", "libdevice", "libdevice.10.bc")):
    config.available_features.add("cuda-libdevice")
else:
    lit_config.note("no CUDA libdevice (CUDA_HOME, /usr/local/cuda): the PTX tests are skipped")
if _ptxas:
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", _ptxas))
else:
    lit_config.note("ptxas not found (PATH, /usr/local/cuda/bin): the ptxas tests are skipped")

# The CUDA kernel library's builds (kernels/cuda, built when nvcc exists): GPU artifacts embed
# them (docs/cuda.md "Kernel library"); tests that check the embedded objects say
# REQUIRES: cuda-kernels and compare sizes with the files in %cuda_kernels.
_cuda_kernels = os.path.join(config.ds_obj_root, "kernels", "cuda")
config.substitutions.append(("%cuda_kernels", _cuda_kernels))
if os.path.exists(os.path.join(_cuda_kernels, "ds_cuda_kernels.sm_90a.cubin")):
    config.available_features.add("cuda-kernels")
else:
    lit_config.note("no CUDA kernel library in %s (nvcc absent): the embedding tests are skipped" % _cuda_kernels)
