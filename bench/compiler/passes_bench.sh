#!/usr/bin/env bash
# Reproduces the compiler-pass numbers of docs/tensor_parallel.md and docs/quantization.md:
# launches and activation memory per model (--cost-report), stories260K perplexity per quantization,
# decode/prefill tokens/s at --tp 1/2/4, and a real-shape (synthetic) model at tp 1 vs 2.
#   bench/compiler/passes_bench.sh [build-dir] [--real]   (--real: R1-Distill-Qwen-1.5B shapes, 3.6 GB)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build}"
bin="$build/bin"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
models="$root/test/models"

echo "== launches and activation memory (ds-compile --cost-report)"
for m in stories260K tiny-llama tiny-qwen2 tiny-deepseek-v2 tiny-deepseek-v3 tiny-deepseek-v3-fp8; do
  printf '%-22s' "$m"
  "$bin/ds-compile" "$models/$m" --cost-report | grep -E "^(launches|activations)" | sed 's/  */ /g' | tr '\n' ' '
  echo
done

echo "== stories260K perplexity over its 255-token continuation"
tr ' ' '\n' < "$models/stories260K/expected/greedy_from_bos.ids" | grep -v '^$' > "$out/ids.txt"
for q in "--quant none" "--quant w8" "--quant fp8" "--quant w4g128" "--quant w4g128a" \
         "--quant w4g128 --quant-calib=$root/compiler/quant/calibration.txt" \
         "--kv-cache int8" "--kv-cache fp8"; do
  # shellcheck disable=SC2086
  "$bin/ds-compile" "$models/stories260K" $q -o "$out/p.dsa" --quiet
  printf '%-40s %s\n' "${q/$root\//}" "$("$bin/ds-bench" "$out/p.dsa" --perplexity "$out/ids.txt" | tail -1)"
done

echo "== tensor parallelism on the host (ranks are threads)"
for m in stories260K tiny-deepseek-v3; do
  for tp in 1 2 4; do
    "$bin/ds-compile" "$models/$m" --tp "$tp" -o "$out/tp.dsa" --quiet
    printf '%-18s tp %s  %s\n' "$m" "$tp" "$("$bin/ds-bench" "$out/tp.dsa" --decode 128 --prefill 64 | tr '\n' ' ')"
  done
done

if [ "${2:-}" = "--real" ]; then
  echo "== DeepSeek-R1-Distill-Qwen-1.5B shapes (synthetic weights, bf16)"
  python3 "$root/tools/ds-make-synthetic/ds-make-synthetic.py" \
    "$root/../shared/data/configs/deepseek-r1-distill-qwen-1.5b.json" "$out/qwen" | tail -1
  for tp in 1 2; do
    start=$(date +%s.%N)
    "$bin/ds-compile" "$out/qwen" --dtype bf16 --tp "$tp" -o "$out/qwen.dsa" --quiet
    printf 'tp %s  compile %.1f s  %s\n' "$tp" "$(python3 -c "print($(date +%s.%N) - $start)")" \
      "$("$bin/ds-bench" "$out/qwen.dsa" --decode 8 --prefill 16 | tr '\n' ' ')"
  done
fi
