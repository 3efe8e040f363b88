#!/usr/bin/env python3
"""Checks the CUDA kernel library objects in `ds-inspect --json` output (stdin): their targets,
in order, are the arguments after the folder, and each object's bytes equal its build file's
size in that folder (ds_cuda_kernels.<target>.cubin / .ptx). Prints one line per object."""
import json
import os
import sys

folder, want = sys.argv[1], sys.argv[2:]
code = json.load(sys.stdin)["code"]
lib = [c for c in code if c.get("library")]
got = [c["target"] for c in lib]
if got != want:
    sys.exit("library targets %s, expected %s" % (got, want))
for c in lib:
    ext = "ptx" if c["target"].startswith("compute_") else "cubin"
    size = os.path.getsize(os.path.join(folder, "ds_cuda_kernels.%s.%s" % (c["target"], ext)))
    if c["bytes"] != size:
        sys.exit("library %s has %d bytes, its build %d" % (c["target"], c["bytes"], size))
    print("library %s %s %s bytes, %d kernels" % (c["target"], c["format"],
          "same" if c["bytes"] == size else "other", c["symbols"]))
print("generated %d" % (len(code) - len(lib)))
