#!/usr/bin/env bash
# README command 1: set up, build, compile the bundled stories260K model and generate text.
# On a machine with an NVIDIA GPU this will target it once the CUDA backend lands; today every
# machine runs the same compiled model on the CPU (--target host).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
DS_TARGETS="ds-compile ds-run ds-inspect" "$root/scripts/build.sh"
build="${DS_BUILD_DIR:-$root/build}"
out="$build/demo"
mkdir -p "$out"
echo "== ds-compile test/models/stories260K --target host -o $out/stories260K.dsa"
"$build/bin/ds-compile" "$root/test/models/stories260K" --target host -o "$out/stories260K.dsa"
echo "== ds-inspect"
"$build/bin/ds-inspect" "$out/stories260K.dsa" | head -20
echo "== ds-run: greedy from BOS, 256 tokens"
"$build/bin/ds-run" "$out/stories260K.dsa" -n 256 --ignore-eos --stats
echo "== ds-run: two prompts in one batch, sampled"
"$build/bin/ds-run" "$out/stories260K.dsa" -p "Once upon a time" -p "The little dog" -n 48 \
  --temperature 0.8 --top-p 0.95 --seed 7 --stats
