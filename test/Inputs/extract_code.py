#!/usr/bin/env python3
"""extract_code.py ARTIFACT INSPECT_JSON INDEX OUT: writes code object INDEX of ARTIFACT (as
`ds-inspect --json` describes it) to OUT, for llvm-objdump. Code segments follow the weights in
code order and start with the ELF magic; compile with --weights random so no weight bytes come
before them."""
import json
import sys

data = open(sys.argv[1], "rb").read()
code = json.load(open(sys.argv[2]))["code"]
want = int(sys.argv[3])
pos = 0
for i, c in enumerate(code):
    pos = data.find(b"\x7fELF", pos)
    if pos < 0:
        sys.exit("code object %d: no ELF magic found" % i)
    if i == want:
        open(sys.argv[4], "wb").write(data[pos:pos + c["bytes"]])
        sys.exit(0)
    pos += c["bytes"]
sys.exit("no code object %d" % want)
