#!/usr/bin/env bash
# Builds ds_cuda_kernels.fatbin (cubins for every arch + PTX), per-arch cubins, the ptxas log and
# the resource report. Called by kernels/CMakeLists.txt:
#   build_fatbin.sh <nvcc> <source.cu> <include dirs (,-list)> <out_dir> <archs (,-list)> <ptx arch> <python>
set -euo pipefail
nvcc="$1" src="$2" incs="$3" out="$4" archs="$5" ptx="$6" python="$7"
here="$(cd "$(dirname "$0")" && pwd)"
keep="$out/keep"
mkdir -p "$keep"
args=(-fatbin -O3 -std=c++17 --resource-usage -Werror all-warnings -Xcompiler -Wall,-Wextra
      --keep --keep-dir "$keep")
IFS=',' read -ra inc_list <<< "$incs"
for i in "${inc_list[@]}"; do args+=("-I$i"); done
IFS=',' read -ra arch_list <<< "$archs"
for a in "${arch_list[@]}"; do args+=(-gencode "arch=compute_$a,code=sm_$a"); done
args+=(-gencode "arch=compute_$ptx,code=compute_$ptx")
log="$out/ds_cuda_kernels.ptxas.txt"
if ! "$nvcc" "${args[@]}" -o "$out/ds_cuda_kernels.fatbin" "$src" > "$log" 2>&1; then
  grep -v "^ptxas info\|^    [0-9]* bytes stack" "$log" >&2 || true
  exit 1
fi
for a in "${arch_list[@]}"; do
  cp "$keep/ds_cuda_kernels.compute_$a.cubin" "$out/ds_cuda_kernels.sm_$a.cubin"
done
cp "$keep/ds_cuda_kernels.compute_$ptx.ptx" "$out/ds_cuda_kernels.compute_$ptx.ptx"
rm -rf "$keep"
"$python" "$here/resource_report.py" "$log" --json "$out/ds_cuda_kernels.resources.json" \
  --text "$out/ds_cuda_kernels.resources.txt"
