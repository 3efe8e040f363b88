#!/usr/bin/env python3
"""Batch invariance and CUDA graphs on the GPU: greedy ids of every golden prompt run alone, all
prompts as one batch (decode steps replay CUDA graphs of the batch's bucket), and the same batch
with --enforce-eager must be equal (docs/cuda.md "CUDA graphs"; the sampler's contract: a
request's tokens never depend on the batch).

usage: batch_invariance.py <ds-run> <artifact.dsa> <golden.json>
"""
import json
import subprocess
import sys

ds_run, artifact, golden_path = sys.argv[1:4]
golden = json.load(open(golden_path))
prompts = [p["prompt_ids"] for p in golden["prompts"]]
n = max(len(p["generated_ids"]) for p in golden["prompts"])


def run(groups, *extra):
    cmd = [ds_run, artifact, "-n", str(n), "--ids", "--ignore-eos", *extra]
    for g in groups:
        cmd += ["--prompt-ids", ",".join(map(str, g))]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        print(f"ds-run {' '.join(extra)} exit {r.returncode}: {r.stderr.strip()[:300]}")
        sys.exit(1)
    return [[int(t) for t in line.split()] for line in r.stdout.strip().splitlines()]


alone = [run([p])[0] for p in prompts]
batch = run(prompts)
eager = run(prompts, "--enforce-eager")
bad = 0
for i in range(len(prompts)):
    for name, got in (("batch (graphs)", batch[i]), ("batch (eager)", eager[i])):
        if got != alone[i]:
            k = next((j for j, (a, b) in enumerate(zip(got, alone[i])) if a != b), 0)
            print(f"prompt {i}: {name} differs from the prompt alone at token {k}")
            bad += 1
print(f"{len(prompts)} prompts x {n} tokens: alone = batch with graphs = batch eager"
      if not bad else f"{bad} mismatches")
sys.exit(1 if bad else 0)
