#!/usr/bin/env bash
# CTest fixture: compiles every test model (tiny models + stories260K) into <out-dir>/<name>.dsa,
# plus the variants the fusion and quantization tests compare against.
set -euo pipefail
ds_compile="$1"; models="$2"; out="$3"
mkdir -p "$out"
for dir in "$models"/*/; do
  name=$(basename "$dir")
  [ -f "$dir/config.json" ] || continue
  "$ds_compile" "$dir" -o "$out/$name.dsa" --quiet
  echo "compiled $name"
done
for name in stories260K tiny-llama tiny-deepseek-v3; do
  "$ds_compile" "$models/$name" -o "$out/$name.unfused.dsa" --quiet --fuse=false --plan-memory=false
done
# Library kernels only: what the generated kernels (the default) are compared against.
for name in stories260K tiny-llama tiny-deepseek-v3; do
  "$ds_compile" "$models/$name" -o "$out/$name.nocodegen.dsa" --quiet --codegen=none
done
for name in tiny-llama tiny-deepseek-v3; do
  "$ds_compile" "$models/$name" -o "$out/$name.unfused.nocodegen.dsa" --quiet --fuse=false \
    --plan-memory=false --codegen=none
done
# x86-64-v4 (AVX-512, 16-lane tiles) builds of the generated kernels: compared with the library
# kernels like the default level's (codegen_test.cpp; skipped on CPUs without AVX-512).
for v in stories260K tiny-llama tiny-deepseek-v3 tiny-llama.unfused tiny-deepseek-v3.unfused; do
  flags=""; [ "${v#*.}" = unfused ] && flags="--fuse=false --plan-memory=false"
  "$ds_compile" "$models/${v%%.*}" -o "$out/$v.v4.dsa" --quiet --codegen-cpu x86-64-v4 $flags
done
# Fat artifacts (host code + sm_90a code, one plan): their host part must run exactly like the
# host build. Needs the CUDA toolkit's libdevice; without it the e2e test skips with the reason.
for name in stories260K tiny-llama tiny-qwen2 tiny-deepseek-v3; do
  "$ds_compile" "$models/$name" -o "$out/$name.fat.dsa" --quiet --target host,sm_90a 2> "$out/$name.fat.err" \
    && rm -f "$out/$name.fat.err" || echo "no fat $name: $(head -1 "$out/$name.fat.err")"
done
# GPU artifacts (bf16 by default, f32 for exactness): the CUDA launch builder must plan every
# launch (cuda_plan_test.cpp; no GPU needed).
for name in stories260K tiny-llama tiny-qwen2; do
  for v in sm_90a:bf16 sm_90a.f32:f32; do
    "$ds_compile" "$models/$name" -o "$out/$name.${v%%:*}.dsa" --quiet --target sm_90a --dtype "${v##*:}" \
      2> "$out/$name.${v%%:*}.err" && rm -f "$out/$name.${v%%:*}.err" || echo "no $name.${v%%:*}: $(head -1 "$out/$name.${v%%:*}.err")"
  done
done
# DeepSeek on the GPU (bf16: MLA decode kernels, MoE router / experts).
for name in tiny-deepseek-v2 tiny-deepseek-v3 tiny-deepseek-v3-fp8; do
  "$ds_compile" "$models/$name" -o "$out/$name.sm_90a.dsa" --quiet --target sm_90a
done
# The host's int8 / fp8 latent caches on the GPU.
"$ds_compile" "$models/tiny-deepseek-v2" -o "$out/tiny-deepseek-v2.sm_90a.kvint8.dsa" --quiet --target sm_90a --kv-cache int8
for name in tiny-deepseek-v2 tiny-deepseek-v3; do
  "$ds_compile" "$models/$name" -o "$out/$name.sm_90a.kvfp8.dsa" --quiet --target sm_90a --kv-cache fp8
done
# Tensor parallelism on GPUs (NCCL exchanges + the rank-ordered sum; the fake NCCL in CI).
for name in tiny-llama tiny-deepseek-v3; do
  "$ds_compile" "$models/$name" -o "$out/$name.sm_90a.tp2.dsa" --quiet --target sm_90a --tp 2
done
# The host's int8 / fp8 GQA caches on the GPU (quantized on write, read by the attention kernels).
for kv in int8 fp8; do
  "$ds_compile" "$models/tiny-llama" -o "$out/tiny-llama.sm_90a.kv$kv.dsa" --quiet --target sm_90a --kv-cache $kv
done
# int4 weights on the GPU (uploaded into the GPU int4 storage, ds_gemv_wi4 kernels).
for q in w4g64 w4g128a w8 fp8; do
  "$ds_compile" "$models/tiny-llama" -o "$out/tiny-llama.sm_90a.$q.dsa" --quiet --target sm_90a --quant $q
done
# A GPU-only fat artifact (code and kernel library per target; the device picks).
"$ds_compile" "$models/tiny-llama" -o "$out/tiny-llama.sm_80_90a.dsa" --quiet --target sm_80,sm_90a \
  2> "$out/tiny-llama.sm_80_90a.err" && rm -f "$out/tiny-llama.sm_80_90a.err" || echo "no tiny-llama.sm_80_90a"
# GEMM weights only (the output projection stays f32, activations f32); the .lmhead and .a8
# variants below add those (what ds-compile's defaults do for host builds).
for q in w8 fp8 w4g128 w4g128a; do
  "$ds_compile" "$models/stories260K" -o "$out/stories260K.$q.dsa" --quiet --quant $q --quant-lm-head none --quant-act none
done
"$ds_compile" "$models/stories260K" -o "$out/stories260K.w8.a8.dsa" --quiet --quant w8
"$ds_compile" "$models/stories260K" -o "$out/stories260K.bf16.dsa" --quiet --dtype bf16 --quant-act none
"$ds_compile" "$models/stories260K" -o "$out/stories260K.bf16.a16.dsa" --quiet --dtype bf16 --quant-act bf16
"$ds_compile" "$models/stories260K" -o "$out/stories260K.w4g128.calib.a8.dsa" --quiet --quant w4g128 \
  --quant-calib "$models/../../compiler/quant/calibration.txt" 
# int4 with GPTQ on the committed calibration text (never the evaluation continuation).
for q in w4g128 w4g128a; do
  "$ds_compile" "$models/stories260K" -o "$out/stories260K.$q.calib.dsa" --quiet --quant $q \
    --quant-calib "$models/../../compiler/quant/calibration.txt"
done
# int8 output projection (tied: the embedding table too) on top of w8 and GPTQ int4.
"$ds_compile" "$models/stories260K" -o "$out/stories260K.w8.lmhead.dsa" --quiet --quant w8 --quant-lm-head w8 --quant-act none
"$ds_compile" "$models/stories260K" -o "$out/stories260K.w4g128.calib.lmhead.dsa" --quiet --quant w4g128 \
  --quant-calib "$models/../../compiler/quant/calibration.txt" --quant-lm-head w8 --quant-embed w8 --quant-act none
# 4-bit output projection / embedding (opt-in, host only) on the default GPTQ int4 build with
# int8 activations (the logits GEMM then runs the int4 int8-activation kernel too).
"$ds_compile" "$models/stories260K" -o "$out/stories260K.w4g128.calib.lmhead4.dsa" --quiet --quant w4g128 \
  --quant-calib "$models/../../compiler/quant/calibration.txt" --quant-lm-head w4g64 --quant-embed w4g64
# (.calib.a8 above is ds-compile's default int4 host build: 6-bit output projection, tied here so
# the embedding too.) The int8 output projection on it, and 6-bit groups of 64 asked for
# explicitly on the embedding (the same groups here: a row of this model is 64 wide).
"$ds_compile" "$models/stories260K" -o "$out/stories260K.w4g128.calib.lmhead8.dsa" --quiet --quant w4g128 \
  --quant-calib "$models/../../compiler/quant/calibration.txt" --quant-lm-head w8
"$ds_compile" "$models/stories260K" -o "$out/stories260K.w4g128.calib.lmhead6.dsa" --quiet --quant w4g128 \
  --quant-calib "$models/../../compiler/quant/calibration.txt" --quant-lm-head none --quant-embed w6g64
for kv in int8 fp8; do
  "$ds_compile" "$models/stories260K" -o "$out/stories260K.kv$kv.dsa" --quiet --kv-cache $kv
done
"$ds_compile" "$models/tiny-deepseek-v3" -o "$out/tiny-deepseek-v3.w4g64.dsa" --quiet --quant w4g64 --kv-cache fp8 --quant-act none
"$ds_compile" "$models/tiny-deepseek-v2" -o "$out/tiny-deepseek-v2.w8.dsa" --quiet --quant w8 --kv-cache int8 --quant-act none
# Tensor parallelism: 2 and 4 ranks of every model (compared with the single-rank build).
for dir in "$models"/*/; do
  [ -f "$dir/config.json" ] || continue
  for tp in 2 4; do
    "$ds_compile" "$dir" -o "$out/$(basename "$dir").tp$tp.dsa" --quiet --tp $tp
  done
done
# Quantized builds over ranks: quantized whole, then sliced, so they must match the tp 1 builds.
# (--quant-act none on these: tensor parallelism reassociates the row-parallel sums, and int8
# activation codes turn such 1-ulp differences into whole-code steps (1/127 of a block's range)
# wherever a value sits near a rounding boundary: tiny-deepseek-v3 w4g64 differs between tp 1
# and tp 2 by 2e-3 of the largest logit, presumably that way (same greedy tokens; on the portable
# path, without FMA, it does not). Also int8 activations apply only to GEMMs whose
# columns are a multiple of 32 / 64, which some slices of these tiny shapes are not.)
"$ds_compile" "$models/stories260K" -o "$out/stories260K.w4g128a.tp4.dsa" --quiet --quant w4g128a --tp 4 --quant-lm-head none --quant-act none
"$ds_compile" "$models/stories260K" -o "$out/stories260K.fp8.tp2.dsa" --quiet --quant fp8 --tp 2
# The 6-bit output projection (tied: the embedding too) cut vocab-parallel over 2 ranks.
for tp in 1 2; do
  sfx=""; [ $tp = 1 ] || sfx=".tp$tp"
  "$ds_compile" "$models/stories260K" -o "$out/stories260K.w4g128.h6$sfx.dsa" --quiet --quant w4g128 \
    --quant-lm-head w6g64 --quant-act none --tp $tp
done
"$ds_compile" "$models/tiny-deepseek-v3" -o "$out/tiny-deepseek-v3.w4g64.tp2.dsa" --quiet --quant w4g64 --kv-cache fp8 --tp 2 --quant-act none
"$ds_compile" "$models/tiny-deepseek-v2" -o "$out/tiny-deepseek-v2.w8.tp4.dsa" --quiet --quant w8 --kv-cache int8 --tp 4 --quant-act none
# Expert parallelism: routed experts distributed whole over the ranks (alone, and with --tp);
# FP8 block scales and int4 groups of whole experts, unchanged.
for m in tiny-deepseek-v2 tiny-deepseek-v3 tiny-deepseek-v3-fp8; do
  "$ds_compile" "$models/$m" -o "$out/$m.ep2.dsa" --quiet --ep 2
  "$ds_compile" "$models/$m" -o "$out/$m.tp4ep4.dsa" --quiet --tp 4 --ep 4
done
"$ds_compile" "$models/tiny-deepseek-v3" -o "$out/tiny-deepseek-v3.w4g64.ep2.dsa" --quiet --quant w4g64 --kv-cache fp8 --ep 2 --quant-act none
echo "compiled variants"
