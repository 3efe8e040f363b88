#!/usr/bin/env bash
# The GPU acceptance of the CUDA target as one command, on the device machine (docs/cuda.md).
# Needs gpu_bundle/ from scripts/gpu/prepare.sh (carried). Each stage prints PASS, FAIL or SKIP
# with its reason; the last lines are one table. Budget: under 8 minutes; each stage has a timeout.
#   device run: bash scripts/gpu_check.sh      carry: ["gpu_bundle"]      timeout_s: 540
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bundle="$root/gpu_bundle"
out="${OUT:-/tmp/gpu_check}"; mkdir -p "$out"
start=$(date +%s)
deadline=$((start + 450))  # 7.5 minutes for everything, whatever the stages' own limits
# A stage's timeout: its own limit, or what is left of the whole budget when that is less.
limit() { local left=$((deadline - $(date +%s))); [ "$left" -lt 5 ] && left=5; [ "$1" -lt "$left" ] && echo "$1" || echo "$left"; }
# Which kernel library an artifact runs: its own when it embeds one, else the bundle's fatbin
# (prepare.sh compiles most with --cuda-kernels none to stay under 64 MiB). Empty: its own.
lib_for() { "$bundle/bin/ds-inspect" "$1" 2>/dev/null | grep -q "cuda kernel library:" || echo "$bundle/kernels/ds_cuda_kernels.fatbin"; }
declare -a table
row() { table+=("$(printf '%-34s %-5s %s' "$1" "$2" "$3")"); echo "[$(($(date +%s) - start))s] $1: $2 $3"; }

[ -d "$bundle" ] || { echo "gpu_bundle/ missing: run scripts/gpu/prepare.sh on the development machine and carry it"; exit 1; }
cat "$bundle/MANIFEST.txt"
# Our binaries' libraries, unpacked where bin/ wrappers look (DS_GPU_LIB).
export DS_GPU_LIB=/tmp/ds_gpu_lib
rm -rf "$DS_GPU_LIB" && mkdir -p "$DS_GPU_LIB" && tar -C "$DS_GPU_LIB" --strip-components=1 -xJf "$bundle/lib.tar.xz"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$out/gpu.txt" \
  || row "device" FAIL "nvidia-smi failed"

# 0. The carried binaries on this machine's CPU (host artifacts): proves the bundle runs here.
for a in "$bundle"/artifacts/*.host.dsa; do
  [ -e "$a" ] || break
  name="$(basename "$a" .dsa)"; model="${name%%.*}"
  [ -f "$root/test/golden/$model/golden.json" ] || continue
  if timeout "$(limit 60)" python3 "$root/scripts/gpu/compare_goldens.py" "$bundle/bin/ds-run" "$a" \
       "$root/test/golden/$model/golden.json" > "$out/$name.txt" 2>&1; then
    row "$name (CPU)" PASS "$(tail -1 "$out/$name.txt")"
  else
    row "$name (CPU)" FAIL "$(tail -1 "$out/$name.txt")"
  fi
done

# 1. Kernel library against CPU references (kernels/cuda/tests/kernel_check.cu).
if [ -x "$bundle/bin/ds_cuda_kernel_check" ]; then
  if timeout "$(limit 150)" "$bundle/bin/ds_cuda_kernel_check" "$bundle/kernels/ds_cuda_kernels.fatbin" > "$out/kernel_check.txt" 2>&1; then
    row "kernel library vs CPU reference" PASS "$(tail -1 "$out/kernel_check.txt")"
  else
    row "kernel library vs CPU reference" FAIL "$(tail -1 "$out/kernel_check.txt")"
  fi
else
  row "kernel library vs CPU reference" SKIP "ds_cuda_kernel_check not in the bundle (nvcc absent where it was prepared)"
fi

# 2. Models on the GPU against the Hugging Face goldens (greedy ids; f32 exact, bf16 near-ties).
for a in "$bundle"/artifacts/*.sm_90a.*.dsa; do
  [ -e "$a" ] || { row "models vs goldens" SKIP "no sm_90a model artifacts in the bundle (see MANIFEST)"; break; }
  name="$(basename "$a" .dsa)"; model="${name%%.*}"
  [ -f "$root/test/golden/$model/golden.json" ] || continue  # synthetic shapes have no golden
  if DS_CUDA_KERNELS="$(lib_for "$a")" timeout "$(limit 90)" python3 "$root/scripts/gpu/compare_goldens.py" "$bundle/bin/ds-run" "$a" \
       "$root/test/golden/$model/golden.json" > "$out/$name.txt" 2>&1; then
    row "$name" PASS "$(tail -1 "$out/$name.txt")"
  else
    row "$name" FAIL "$(tail -1 "$out/$name.txt")"
  fi
done

# 2b. Batch invariance on the GPU, and CUDA graphs (batched decode replays) = --enforce-eager.
for a in "$bundle"/artifacts/*.sm_90a.bf16.dsa; do
  [ -e "$a" ] || break
  name="$(basename "$a" .dsa)"; model="${name%%.*}"
  [ -f "$root/test/golden/$model/golden.json" ] || continue
  if DS_CUDA_KERNELS="$(lib_for "$a")" timeout "$(limit 90)" python3 "$root/scripts/gpu/batch_invariance.py" "$bundle/bin/ds-run" "$a" \
       "$root/test/golden/$model/golden.json" > "$out/$name.batch.txt" 2>&1; then
    row "$name batch/graphs" PASS "$(tail -1 "$out/$name.batch.txt")"
  else
    row "$name batch/graphs" FAIL "$(tail -1 "$out/$name.batch.txt")"
  fi
done

# 2c. Quantized builds (int8 / FP8 / int4 weights, int8 / fp8 KV caches) on the GPU against the
# same quantization on the host: teacher-forced perplexity over 256 stories260K ids in 64-token
# chunks (so the prefill GEMMs ds_gemm_q run), within 2% (bf16 activations and bf16-rounded
# weights in the GEMMs against the host's f32).
ids="$root/test/models/stories260K/expected/greedy_from_bos.ids"
for a in "$bundle"/artifacts/tiny-llama.gpuq.*.dsa; do
  [ -e "$a" ] || { row "quantized GPU vs host" SKIP "no quantized GPU artifacts in the bundle"; break; }
  q="${a##*.gpuq.}"; q="${q%.dsa}"; h="$bundle/artifacts/tiny-llama.hostq.$q.dsa"
  ph=$(timeout "$(limit 60)" "$bundle/bin/ds-bench" "$h" --perplexity "$ids" 2> "$out/q.$q.host.err" | awk '/^perplexity/{print $2}')
  pg=$(DS_CUDA_KERNELS="$bundle/kernels/ds_cuda_kernels.fatbin" timeout "$(limit 60)" "$bundle/bin/ds-bench" "$a" \
         --perplexity "$ids" 2> "$out/q.$q.gpu.err" | awk '/^perplexity/{print $2}')
  if [ -z "$ph" ] || [ -z "$pg" ]; then
    row "quantized $q GPU vs host" FAIL "no perplexity: $(tail -1 "$out/q.$q.gpu.err") $(tail -1 "$out/q.$q.host.err")"
  elif python3 -c "import sys; g, h = float('$pg'), float('$ph'); sys.exit(0 if abs(g / h - 1) <= 0.02 else 1)"; then
    row "quantized $q GPU vs host" PASS "perplexity $pg (GPU) vs $ph (host)"
  else
    row "quantized $q GPU vs host" FAIL "perplexity $pg (GPU) vs $ph (host): over 2%"
  fi
done

# 3. Speed: ds-bench on the synthetic Llama-3-8B shape.
a="$bundle/artifacts/llama8b.sm_90a.synthetic.dsa"
if [ -e "$a" ]; then
  if DS_CUDA_KERNELS="$(lib_for "$a")" timeout "$(limit 240)" "$bundle/bin/ds-bench" "$a" --sweep > "$out/bench.txt" 2>&1; then
    cat "$out/bench.txt"
    row "ds-bench llama8b bf16" PASS "$(grep -m1 '^decode ' "$out/bench.txt")"
  else
    row "ds-bench llama8b bf16" FAIL "$(tail -1 "$out/bench.txt")"
  fi
else
  row "ds-bench llama8b bf16" SKIP "no synthetic 8B sm_90a artifact in the bundle (see MANIFEST)"
fi

echo; echo "== gpu_check: $(($(date +%s) - start)) s =="
printf '%s\n' "${table[@]}" | tee "$out/table.txt"
! printf '%s\n' "${table[@]}" | grep -q " FAIL "
