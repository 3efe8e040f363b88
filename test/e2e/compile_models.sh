#!/usr/bin/env bash
# CTest fixture: compiles every test model (tiny models + stories260K) into <out-dir>/<name>.dsa.
set -euo pipefail
ds_compile="$1"; models="$2"; out="$3"
mkdir -p "$out"
for dir in "$models"/*/; do
  name=$(basename "$dir")
  [ -f "$dir/config.json" ] || continue
  "$ds_compile" "$dir" -o "$out/$name.dsa" --quiet
  echo "compiled $name"
done
