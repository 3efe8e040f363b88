#!/usr/bin/env python3
"""Writes a copy of an artifact whose Target.name is another target (e.g. sm_90a), with valid
checksums, by round-tripping its metadata through `flatc --json` (craft_artifacts.py's helpers).
ds-compile cannot emit GPU artifacts yet; this gives the runtime's GPU paths a real-looking input.

usage: retarget_artifact.py --flatc F --schema S --artifact A.dsa --target sm_90a -o OUT.dsa
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from craft_artifacts import assemble, split, to_binary, to_json  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flatc", required=True)
    ap.add_argument("--schema", required=True)
    ap.add_argument("--artifact", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("-o", dest="out", required=True)
    args = ap.parse_args()
    original, header = split(args.artifact)
    moff, msize = header[3], header[4]
    with tempfile.TemporaryDirectory() as work:
        meta = to_json(args.flatc, args.schema, original[moff:moff + msize], work)
        meta["target"]["name"] = args.target
        data = assemble(original, header, to_binary(args.flatc, args.schema, meta, work))
    open(args.out, "wb").write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
