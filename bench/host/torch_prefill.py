#!/usr/bin/env python3
"""PyTorch/transformers eager prefill of an HF folder (bench/host/compare.sh --torch).

usage: torch_prefill.py HF_DIR THREADS TOKENS RUNS [--dtype bf16|f32]
Prints tokens/s of one forward over TOKENS random ids (median of RUNS, after a warm-up), the
way an eager PyTorch user would run the prompt: model(ids, logits_to_keep=1), default attention
(sdpa), torch.set_num_threads(THREADS).
"""
import argparse
import time

import torch
from transformers import AutoModelForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("hf")
ap.add_argument("threads", type=int)
ap.add_argument("tokens", type=int)
ap.add_argument("runs", type=int)
ap.add_argument("--dtype", default="bf16", choices=["bf16", "f32"])
a = ap.parse_args()
torch.set_num_threads(a.threads)
model = AutoModelForCausalLM.from_pretrained(a.hf, dtype=torch.bfloat16 if a.dtype == "bf16" else torch.float32)
model.eval()
ids = torch.randint(0, model.config.vocab_size, (1, a.tokens), generator=torch.Generator().manual_seed(0))
times = []
with torch.inference_mode():
    model(ids[:, :16], logits_to_keep=1)
    for _ in range(a.runs):
        t = time.perf_counter()
        model(ids, logits_to_keep=1)
        times.append(time.perf_counter() - t)
times.sort()
print(f"{a.tokens / times[len(times) // 2]:.1f}")
