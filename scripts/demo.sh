#!/usr/bin/env bash
# README command 1: set up, build, and run the main job.
# Today the main job parses, verifies and prints a sample ds module with ds-opt; it grows into
# "compile the bundled stories260K and generate text" as the runtime lands.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
build="${DS_BUILD_DIR:-$root/build}"
echo "== ds-opt: verify and print a Llama-style decoder layer =="
"$build/bin/ds-opt" "$root/test/dialects/ds/sample_llama_layer.mlir"
