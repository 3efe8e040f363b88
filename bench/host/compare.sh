#!/usr/bin/env bash
# Host speed side by side with llama.cpp (issue 13 item 7; docs/cpu_kernels.md): one command that
#   1. builds llama.cpp's llama-bench and llama-quantize from the llama-cpp-python source package
#      on PyPI (it vendors llama.cpp; CPU build, AMX off: its ldtilecfg faults on some VMs),
#   2. writes a Hugging Face folder of a real shape with random bf16 weights (every byte written),
#   3. converts it to GGUF (bench/host/hf_to_gguf.py: llama.cpp's converter needs torch) and
#      quantizes Q8_0, Q4_0, Q4_K_M; compiles our bf16, w8 and w4g128 builds of the same folder,
#   4. runs decode (tg) and prefill-512 (pp) of both, interleaved, median of R runs (and the median
#      of the R per-run ratios, "paired": each run measures both sides back to back), and decode
#      after a long prompt (--depth D tokens already in the cache, default 2048; 0 skips it:
#      llama-bench's "tg @ dD", our ds-bench --context D),
#   5. prints one table with the ratios and each side's fraction of the read roofline (weight
#      bytes per token / this machine's read bandwidth, measured by ds-bench's sweep),
#   6. with --torch CMD (a command that runs a python with torch and transformers), PyTorch eager
#      bf16 prefill-512 of the same folder (bench/host/torch_prefill.py), interleaved with the rest.
# Not part of the test suite (minutes, and needs PyPI for the first build).
#
# usage: bench/host/compare.sh [--config CONFIG.json] [--threads N] [--runs R] [--work DIR]
#                              [--formats "bf16 bf16a w8 w4g128"] [--build BUILD_DIR]
#                              [--torch "python3"] [--depth 2048]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
config="$root/../shared/data/configs/deepseek-r1-distill-qwen-1.5b.json"
threads=2 runs=3 work=/tmp/ds_host_compare formats="bf16 bf16a w8 w4g128" build="$root/build" torch="" depth=2048
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --formats) formats="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --torch) torch="$2"; shift 2 ;;
    --depth) depth="$2"; shift 2 ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
mkdir -p "$work"
log() { echo "[compare $(date +%T)] $*" >&2; }

# 1. llama.cpp
llama="${LLAMA_CPP_DIR:-$work/llama.cpp}"
if [ ! -x "$llama/build/bin/llama-bench" ] || [ ! -x "$llama/build/bin/llama-quantize" ]; then
  if [ ! -f "$llama/CMakeLists.txt" ]; then
    log "downloading llama-cpp-python's source package (PyPI) for its vendored llama.cpp"
    pip download --no-binary :all: --no-deps llama-cpp-python -d "$work/sdist" >&2
    tar -C "$work/sdist" -xzf "$(ls "$work"/sdist/llama_cpp_python-*.tar.gz | head -1)"
    rm -rf "$llama" && mv "$(ls -d "$work"/sdist/llama_cpp_python-*/vendor/llama.cpp | head -1)" "$llama"
  fi
  log "building llama-bench and llama-quantize (minutes)"
  noamx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  cmake -S "$llama" -B "$llama/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
    -DGGML_NATIVE=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
    -DCMAKE_C_FLAGS="$noamx" -DCMAKE_CXX_FLAGS="$noamx" -DLLAMA_BUILD_TESTS=OFF >&2
  ninja -C "$llama/build" llama-bench llama-quantize >&2
fi
llama_version="$(ls "$work"/sdist 2>/dev/null | grep -o 'llama_cpp_python-[0-9.]*' | head -1 || true)"

# 2.-3. the model in both formats
shape="$(basename "$config" .json)"
hf="$work/$shape"
[ -f "$hf/model.safetensors" ] || { log "random bf16 weights of $shape"; python3 "$root/bench/host/make_random_hf.py" "$config" "$hf" >&2; }
gg="$work/$shape.bf16.gguf"
[ -f "$gg" ] || { log "GGUF"; python3 "$root/bench/host/hf_to_gguf.py" "$hf" "$gg" --gguf-py "$llama/gguf-py" >&2; }
# bf16: our bf16 build with f32 activations (--quant-act none); bf16a: with bf16 activations,
# ds-compile's default for --dtype bf16 host builds, as llama.cpp's BF16 computes;
# w8 / w4g128 are ds-compile's defaults (int8 activations; int8 / 6-bit lm_head, docs/quantization.md).
declare -A theirs=([bf16]=BF16 [bf16a]=BF16 [w8]=Q8_0 [w4g128]=Q4_0)
for f in $formats; do
  q="${theirs[$f]:-}"; [ -n "$q" ] || { echo "no llama.cpp format for '$f'" >&2; exit 2; }
  [ "$q" = BF16 ] || [ -f "$work/$shape.$q.gguf" ] || "$llama/build/bin/llama-quantize" "$gg" "$work/$shape.$q.gguf" "$q" >&2
  a="$work/$shape.$f.dsa"
  if [ ! -f "$a" ]; then
    log "ds-compile $f"
    if [ "$f" = bf16 ]; then "$build/bin/ds-compile" "$hf" -o "$a" --dtype bf16 --quant-act none --quiet
    elif [ "$f" = bf16a ]; then "$build/bin/ds-compile" "$hf" -o "$a" --dtype bf16 --quant-act bf16 --quiet
    else "$build/bin/ds-compile" "$hf" -o "$a" --dtype bf16 --quant "$f" --quiet; fi
  fi
done
case " $formats " in *" w4g128 "*) [ -f "$work/$shape.Q4_K_M.gguf" ] || "$llama/build/bin/llama-quantize" "$gg" "$work/$shape.Q4_K_M.gguf" Q4_K_M >&2 ;; esac

# 4. runs, interleaved; medians
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
ours() {  # artifact -> "decode_tps prefill_tps bandwidth_gbs"
  local out; out="$("$build/bin/ds-bench" "$1" --sweep --batches 1 --prompts 512 --context 128 --decode-steps 64 --threads "$threads" 2>&1)"
  echo "$(echo "$out" | awk '$1=="decode" && $2==1 {print $3}') $(echo "$out" | awk '$1=="prefill" && $2==512 {print $3}') $(echo "$out" | grep -o 'read [0-9.]* GB/s' | awk '{print $2}')"
}
ours_deep() {  # artifact -> decode_tps with $depth tokens in the cache
  "$build/bin/ds-bench" "$1" --sweep --batches 1 --prompts 1 --context "$depth" --decode-steps 32 --threads "$threads" 2>&1 |
    awk '$1=="decode" && $2==1 {print $3}'
}
theirs_deep() {  # gguf -> decode_tps with $depth tokens in the cache
  "$llama/build/bin/llama-bench" -m "$1" -p 0 -n 32 -d "$depth" -t "$threads" -r 1 2>/dev/null |
    awk -F'|' '/ tg32 /{gsub(/ /,"",$8); split($8,a,"±"); print a[1]}'
}
theirs_run() {  # gguf -> "decode_tps prefill_tps"
  local out; out="$("$llama/build/bin/llama-bench" -m "$1" -p 512 -n 64 -t "$threads" -r 1 2>/dev/null)"
  echo "$(echo "$out" | awk -F'|' '/ tg64 /{gsub(/ /,"",$8); split($8,a,"±"); print a[1]}') $(echo "$out" | awk -F'|' '/ pp512 /{gsub(/ /,"",$8); split($8,a,"±"); print a[1]}')"
}
declare -A od op tdd tpp odeep tdeep pd ppr
bw_all=() torch_pp=()
pairs=""
for f in $formats; do pairs="$pairs $f:${theirs[$f]}"; done
case " $formats " in *" w4g128 "*) pairs="$pairs w4g128:Q4_K_M" ;; esac
for r in $(seq "$runs"); do
  for p in $pairs; do
    f="${p%%:*}" q="${p##*:}"
    log "run $r: ours $f, llama.cpp $q"
    read -r d pf bw < <(ours "$work/$shape.$f.dsa"); od[$f]+="$d "; op[$f]+="$pf "; bw_all+=("$bw")
    g="$work/$shape.$q.gguf"; [ "$q" = BF16 ] && g="$gg"
    read -r d2 pf2 < <(theirs_run "$g"); tdd[$q]+="$d2 "; tpp[$q]+="$pf2 "
    # This pair's ratios: both sides measured back to back, so a phase of this VM's memory
    # bandwidth (it moves by up to 2x within minutes) hits both; their median is the robust one.
    pd[$p]+="$(python3 -c "import sys; print(float(sys.argv[1]) / float(sys.argv[2]))" "$d" "$d2") "
    ppr[$p]+="$(python3 -c "import sys; print(float(sys.argv[1]) / float(sys.argv[2]))" "$pf" "$pf2") "
    if [ "$depth" -gt 0 ]; then
      log "run $r: decode at depth $depth, ours $f, llama.cpp $q"
      odeep[$f]+="$(ours_deep "$work/$shape.$f.dsa") "; tdeep[$q]+="$(theirs_deep "$g") "
    fi
  done
  if [ -n "$torch" ]; then
    log "run $r: PyTorch eager bf16 prefill-512"
    torch_pp+=("$($torch "$root/bench/host/torch_prefill.py" "$hf" "$threads" 512 1 2>/dev/null | tail -1)")
  fi
done
bw="$(printf '%s\n' "${bw_all[@]}" | median)"

# 5. the table
gbytes() { python3 -c "import os,sys; print(os.path.getsize(sys.argv[1]) / 1e9)" "$1"; }
echo
echo "host compare: $shape, $threads threads, median of $runs, $(date -u +%F), commit $(git -C "$root" rev-parse --short HEAD); llama.cpp ${llama_version:-vendored}"
echo "read roofline: bytes read per token (the file's size less the embedding table, of which a token reads one row) / $bw GB/s (ds-bench's read bandwidth)"
printf '%-8s %-7s %12s %12s %8s %8s %10s %10s %14s %14s %8s %8s' ours theirs "decode ours" "decode them" ratio paired "roof ours" "roof them" "prefill ours" "prefill them" ratio paired
[ "$depth" -gt 0 ] && printf ' %12s %12s %8s' "d$depth ours" "d$depth them" ratio
echo
for p in $pairs; do
  f="${p%%:*}" q="${p##*:}"
  g="$work/$shape.$q.gguf"; [ "$q" = BF16 ] && g="$gg"
  d1="$(echo ${od[$f]} | tr ' ' '\n' | median)" d2="$(echo ${tdd[$q]} | tr ' ' '\n' | median)"
  p1="$(echo ${op[$f]} | tr ' ' '\n' | median)" p2="$(echo ${tpp[$q]} | tr ' ' '\n' | median)"
  b1="$(gbytes "$work/$shape.$f.dsa")" b2="$(gbytes "$g")"
  e1=0 e2=0
  if [ "$depth" -gt 0 ]; then e1="$(echo ${odeep[$f]} | tr ' ' '\n' | median)" e2="$(echo ${tdeep[$q]} | tr ' ' '\n' | median)"; fi
  r1="$(echo ${pd[$p]} | tr ' ' '\n' | median)" r2="$(echo ${ppr[$p]} | tr ' ' '\n' | median)"
  python3 - "$f" "$q" "$d1" "$d2" "$p1" "$p2" "$b1" "$b2" "$bw" "$config" "$e1" "$e2" "$r1" "$r2" <<'EOF'
import json, sys
f, q, d1, d2, p1, p2, b1, b2, bw, config, e1, e2, r1, r2 = sys.argv[1:]
r1, r2 = float(r1), float(r2)
e1, e2 = float(e1), float(e2)
d1, d2, p1, p2, b1, b2, bw = map(float, (d1, d2, p1, p2, b1, b2, bw))
c = json.load(open(config))
embd = c["vocab_size"] * c["hidden_size"] / 1e9  # elements (G)
# Bytes per embedding element: ours keeps it bf16 (quantization is for GEMM weights); GGUF's
# quantized files quantize token_embd too (Q8_0 34/32, Q4_0 18/32, Q4_K_M mostly Q4_K 144/256).
b1 -= 2 * embd
if f.startswith("w4g"):  # group scales: f32 in the file, f16 panel copies read at run time
    h, L, i = c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"]
    kv = h // c["num_attention_heads"] * c.get("num_key_value_heads", c["num_attention_heads"])
    gemm = L * h * (h + 2 * kv + h + 3 * i) + c["vocab_size"] * h
    b1 -= gemm / int(f[3:]) * 2 / 1e9
b2 -= embd * {"BF16": 2, "Q8_0": 34 / 32, "Q4_0": 18 / 32, "Q4_K_M": 144 / 256}[q]
deep = f" {e1:12.2f} {e2:12.2f} {e1 / e2:8.2f}" if e2 > 0 else ""
print(f"{f:<8} {q:<7} {d1:12.2f} {d2:12.2f} {d1 / d2:8.2f} {r1:8.2f} {100 * d1 * b1 / bw:9.0f}% {100 * d2 * b2 / bw:9.0f}% {p1:14.1f} {p2:14.1f} {p1 / p2:8.2f} {r2:8.2f}{deep}")
EOF
done
if [ -n "$torch" ]; then
  t="$(printf '%s\n' "${torch_pp[@]}" | median)"
  echo "PyTorch $($torch -c 'import torch; print(torch.__version__)' 2>/dev/null) eager bf16 prefill-512 (sdpa, $threads threads): $t tok/s (median of $runs)"
  for f in bf16 bf16a; do
    case " $formats " in *" $f "*) p1="$(echo ${op[$f]} | tr ' ' '\n' | median)"
      python3 -c "import sys; print(f'  ours {sys.argv[1]} / PyTorch: {float(sys.argv[2]) / float(sys.argv[3]):.2f}')" "$f" "$p1" "$t" ;; esac
  done
fi
