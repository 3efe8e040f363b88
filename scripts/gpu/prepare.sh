#!/usr/bin/env bash
# On the development machine: builds what the GPU check needs and puts it in gpu_bundle/
# (git-ignored, under 64 MiB) for `device run ... carry=["gpu_bundle"]`. The GPU machine has
# nvcc, CMake, torch and transformers but none of our Debian libraries and no LLVM/MLIR, so the
# runtime binaries travel with the shared libraries they need (x86-64 on both sides).
# Usage: scripts/gpu/prepare.sh [build-dir]      (docs/cuda.md: the whole procedure)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-${DS_BUILD_DIR:-$root/build}}"
out="$root/gpu_bundle"
rm -rf "$out" && mkdir -p "$out/bin/real" "$out/lib" "$out/artifacts" "$out/kernels"
ninja -C "$build" >/dev/null
manifest="$out/MANIFEST.txt"
echo "gpu_bundle prepared $(date -u +%FT%TZ) from commit $(git -C "$root" rev-parse --short HEAD)" > "$manifest"

# Runtime binaries and the libraries the GPU image lacks (glibc and the loader are there).
for tool in ds-run ds-bench ds-inspect ds_cuda_kernel_check; do
  f="$(find "$build" -type f -name "$tool" -perm -u+x | head -1)"
  [ -n "$f" ] || { echo "skip $tool: not built here" >> "$manifest"; continue; }
  cp "$f" "$out/bin/real/"
  # A wrapper sets the library path for our binaries only (python and torch there keep theirs).
  # It no longer exports DS_CUDA_KERNELS: the GPU artifacts below embed the kernel library
  # (docs/cuda.md "Kernel library"), and DS_CUDA_KERNELS would override it; a caller who sets it
  # (to $bundle/kernels/ds_cuda_kernels.fatbin) still can, for artifacts compiled without one.
  printf '#!/bin/sh\nd="$(cd "$(dirname "$0")" && pwd)"\nLD_LIBRARY_PATH="${DS_GPU_LIB:-/tmp/ds_gpu_lib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$d/real/%s" "$@"\n' \
    "$tool" > "$out/bin/$tool"
  chmod +x "$out/bin/$tool"
  ldd "$f" | awk '/=> \//{print $3}' | while read -r lib; do
    case "$(basename "$lib")" in
      # glibc, the loader and GCC's runtime are on the GPU image (newer, compatible).
      libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*|libstdc++*|libgcc_s*) ;;
      *) cp -n "$lib" "$out/lib/" ;;
    esac
  done
done
# Compressed: ICU's data and OpenBLAS alone are 67 MiB; gpu_check.sh unpacks to /tmp/ds_gpu_lib.
tar -C "$out" -cJf "$out/lib.tar.xz" lib && rm -rf "$out/lib"
# The CUDA kernel library (fatbins / cubins built by nvcc here).
cp "$build"/kernels/cuda/ds_cuda_kernels.fatbin "$out/kernels/" 2>/dev/null || echo "skip kernels: no fatbin (nvcc absent?)" >> "$manifest"

# Artifacts: each tiny model for the host (reference) and for sm_90a (f32 and bf16), plus a
# synthetic-weight Llama-3-8B shape when the compiler can write one.
compile() {  # name, then ds-compile arguments
  local name="$1"; shift
  if "$build/bin/ds-compile" "$@" -o "$out/artifacts/$name.dsa" --quiet 2> "$out/artifacts/$name.err"; then
    rm -f "$out/artifacts/$name.err"; echo "artifact $name" >> "$manifest"
  else
    echo "skip artifact $name: $(head -1 "$out/artifacts/$name.err")" >> "$manifest"; rm -f "$out/artifacts/$name.err"
  fi
}
# GPU artifacts embed no kernel library (--cuda-kernels none: about 2.5 MiB less each, or the
# bundle would not fit in 64 MiB) except tiny-llama's bf16 one, which checks the embedded path;
# gpu_check.sh points the others at the bundle's fatbin (DS_CUDA_KERNELS).
for m in stories260K tiny-llama tiny-qwen2; do
  compile "$m.host" "$root/test/models/$m"
  compile "$m.sm_90a.f32" "$root/test/models/$m" --target sm_90a --dtype f32 --cuda-kernels none
  lib=(--cuda-kernels none); [ "$m" = tiny-llama ] && lib=()
  compile "$m.sm_90a.bf16" "$root/test/models/$m" --target sm_90a --dtype bf16 "${lib[@]}"
done
# DeepSeek (MLA + MoE) on the GPU: bf16 activations (the expert GEMVs take bf16 or FP8 weights,
# not f32); the -fp8 model keeps its 128 x 128 block-scaled FP8 weights in FP8.
for m in tiny-deepseek-v2 tiny-deepseek-v3 tiny-deepseek-v3-fp8; do
  compile "$m.host" "$root/test/models/$m"
  compile "$m.sm_90a.bf16" "$root/test/models/$m" --target sm_90a --dtype bf16 --cuda-kernels none
done
# Quantized weights and KV caches on the GPU against the same quantization on the host (weights
# only: no int8 activations, lm_head unquantized), by perplexity (gpu_check.sh stage 2c). These
# embed no kernel library (--cuda-kernels none: 1.5-2 MiB less each); the stage sets
# DS_CUDA_KERNELS to the bundle's fatbin.
for q in w8 fp8 w4g64 w4g128a kvint8 kvfp8; do
  case $q in
    kv*) qargs=(--kv-cache "${q#kv}") ;;
    *) qargs=(--quant "$q" --quant-act none --quant-lm-head none) ;;
  esac
  compile "tiny-llama.hostq.$q" "$root/test/models/tiny-llama" "${qargs[@]}"
  compile "tiny-llama.gpuq.$q" "$root/test/models/tiny-llama" --target sm_90a "${qargs[@]}" --cuda-kernels none
done
cfg="$root/../shared/data/configs/deepseek-r1-distill-llama-8b.json"
[ -f "$cfg" ] && compile "llama8b.sm_90a.synthetic" "$cfg" --target sm_90a --weights random --dtype bf16 --cuda-kernels none
[ -f "$cfg" ] && compile "llama8b.host.synthetic" "$cfg" --weights random --dtype bf16

size=$(du -sm "$out" | cut -f1)
echo "bundle size ${size} MiB" >> "$manifest"
cat "$manifest"
[ "$size" -lt 60 ] || { echo "gpu_bundle is ${size} MiB: over the 64 MiB a device call carries" >&2; exit 1; }
