#!/usr/bin/env bash
# Installs, idempotently, everything the build and tests need; a second run takes seconds.
# Usage: scripts/setup.sh            (needs root for apt-get; CI and dev machines run as root)
set -euo pipefail

# Debian packages (LLVM/MLIR 22 and the runtime's libraries). Append, one per line.
DS_APT_PACKAGES=(
  cmake ninja-build ccache pkg-config python3-pip
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools clang-22
  libgtest-dev libgmock-dev
  flatbuffers-compiler libflatbuffers-dev
  libsentencepiece-dev
  libpcre2-dev
  libxxhash-dev
  nlohmann-json3-dev
  libcpp-httplib-dev
  libopenblas-dev
  libicu-dev
  lld
  libsodium-dev
  libclang-rt-22-dev
  curl
  openmpi-bin  # mpirun: the multi-process tensor-parallel test (docs/tensor_parallel.md "Multi-node")
)

# Python packages the tests need (lit comes with llvm-22-tools; torch is NOT here: see test/reference).
DS_PIP_PACKAGES=(
  numpy
  openai  # ds-serve's end-to-end test drives the server with the official client
)

log() { printf '[setup] %s\n' "$*"; }

missing=()
for pkg in "${DS_APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages: all ${#DS_APT_PACKAGES[@]} present"
fi

pip_missing=()
for pkg in "${DS_PIP_PACKAGES[@]}"; do
  python3 -c "import importlib.util,sys; sys.exit(0 if importlib.util.find_spec('${pkg//-/_}') else 1)" 2>/dev/null \
    || pip_missing+=("$pkg")
done
if ((${#pip_missing[@]})); then
  log "installing Python packages: ${pip_missing[*]}"
  python3 -m pip install -q --disable-pip-version-check "${pip_missing[@]}"
else
  log "Python packages: all ${#DS_PIP_PACKAGES[@]} present"
fi

for tool in /usr/lib/llvm-22/bin/FileCheck /usr/lib/llvm-22/bin/lit /usr/lib/llvm-22/bin/mlir-tblgen; do
  [ -x "$tool" ] || { echo "[setup] error: $tool missing after install" >&2; exit 1; }
done

if [ -x /usr/local/cuda/bin/nvcc ]; then
  log "CUDA toolkit: $(/usr/local/cuda/bin/nvcc --version | tail -1)"
  for h in cublasLt.h nccl.h nvrtc.h; do
    [ -e "/usr/local/cuda/include/$h" ] || find /usr/include /usr/local/cuda -name "$h" -print -quit 2>/dev/null | grep -q . \
      || log "warning: CUDA header $h not found (CUDA backend features that need it will be disabled)"
  done
else
  log "CUDA toolkit not found at /usr/local/cuda: CUDA kernels will not be compiled (the host target still works)"
fi
log "done"
