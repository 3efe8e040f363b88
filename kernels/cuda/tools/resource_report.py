#!/usr/bin/env python3
"""Per-kernel, per-arch resource table of the CUDA kernel library from ptxas -v output.

nvcc --resource-usage prints, for every entry function and architecture:
  ptxas info    : Compiling entry function 'NAME' for 'sm_90a'
  ptxas info    : Function properties for NAME
      S bytes stack frame, SS bytes spill stores, SL bytes spill loads
  ptxas info    : Used R registers, used B barriers, [X bytes smem,] ...
This script turns that log into JSON and a text table, and with --check fails (exit 1) when a hot
kernel (GEMV, attention decode/combine, norms) spills or uses more than --max-registers.
(cuobjdump --dump-resource-usage would give registers and shared memory but not spills, and the
toolkit here does not ship cuobjdump.)
"""
import argparse
import json
import re
import sys

# Hot: kernels every decode step runs (the register budget keeps their occupancy). The prefill
# GEMMs (ds_gemm_q_*, ds_gemm_fp8mma_*, ds_moe_gemm_*) are not: they are only checked for spills.
HOT = re.compile(r"^ds_(gemv_|attn_decode_|attn_combine_|rms_norm_|add_rms_norm_|moe_(?!gemm_)|mla_attend_|comm_|"
                 r"kv_write_i8_|kv_write_fp8_|mla_prefill_|mla_kv_write_fp8_)")


def parse(text):
    rows, cur = [], None
    for line in text.splitlines():
        m = re.search(r"Compiling entry function '([^']+)' for '(sm_\w+)'", line)
        if m:
            cur = {"kernel": m.group(1), "arch": m.group(2), "registers": None,
                   "stack_bytes": 0, "spill_stores": 0, "spill_loads": 0, "smem_bytes": 0}
            rows.append(cur)
            continue
        if cur is None:
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            cur["stack_bytes"], cur["spill_stores"], cur["spill_loads"] = map(int, m.groups())
            continue
        m = re.search(r"Used (\d+) registers", line)
        if m:
            cur["registers"] = int(m.group(1))
            s = re.search(r"(\d+) bytes smem", line)
            cur["smem_bytes"] = int(s.group(1)) if s else 0
    for r in rows:
        r["hot"] = bool(HOT.match(r["kernel"]))
    return sorted(rows, key=lambda r: (r["kernel"], r["arch"]))


def table(rows):
    out = ["%-28s %-7s %4s %6s %6s %6s %7s %s" % ("kernel", "arch", "regs", "stack", "spill_st",
                                                    "spill_ld", "smem", "hot")]
    for r in rows:
        out.append("%-28s %-7s %4d %6d %8d %8d %7d %s" % (
            r["kernel"], r["arch"], r["registers"], r["stack_bytes"], r["spill_stores"],
            r["spill_loads"], r["smem_bytes"], "hot" if r["hot"] else ""))
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log", help="nvcc --resource-usage output")
    ap.add_argument("--json", help="write the table as JSON here")
    ap.add_argument("--text", help="write the table as text here")
    ap.add_argument("--check", action="store_true", help="fail if a hot kernel spills or exceeds the budget")
    ap.add_argument("--max-registers", type=int, default=128,
                    help="register budget of hot kernels (128: two 256-thread blocks per SM)")
    ap.add_argument("--archs", default="", help="comma list the log must cover (e.g. sm_80,sm_89,sm_90a)")
    ap.add_argument("--require", default="",
                    help="comma list of kernel name prefixes each of which must name a hot kernel on every arch")
    a = ap.parse_args()
    with open(a.log) as f:
        rows = parse(f.read())
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    if a.text:
        with open(a.text, "w") as f:
            f.write(table(rows))
    if not a.check:
        return 0
    errors = []
    if not rows:
        errors.append("no kernels in the log (was it built with --resource-usage?)")
    archs = {r["arch"] for r in rows}
    for want in filter(None, a.archs.split(",")):
        if want not in archs:
            errors.append("no kernels for %s" % want)
    hot = [r for r in rows if r["hot"]]
    if rows and not hot:
        errors.append("no hot kernels found")
    for prefix in filter(None, a.require.split(",")):
        for arch in sorted(archs):
            if not any(r["kernel"].startswith(prefix) and r["arch"] == arch for r in hot):
                errors.append("no hot kernel %s* for %s" % (prefix, arch))
    for r in hot:
        where = "%s (%s)" % (r["kernel"], r["arch"])
        if r["registers"] is None:
            errors.append("%s: no register count" % where)
        elif r["registers"] > a.max_registers:
            errors.append("%s: %d registers > budget %d" % (where, r["registers"], a.max_registers))
        if r["spill_stores"] or r["spill_loads"]:
            errors.append("%s: spills (%d bytes stored, %d loaded)" % (where, r["spill_stores"], r["spill_loads"]))
    for e in errors:
        print("FAIL: " + e)
    print("%d kernels x archs, %d hot checked against %d registers and no spills: %s" % (
        len(rows), len(hot), a.max_registers, "FAIL" if errors else "OK"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
