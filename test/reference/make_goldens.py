#!/usr/bin/env python3
# Runs Hugging Face transformers on the tiny models and stories260K; writes test/golden/<model>/{golden.json,logits.safetensors}.
"""Usage: /work/venv-ref/bin/python test/reference/make_goldens.py [--only NAME ...]

Not part of the normal test run (needs torch + transformers, see README.md). For each model: 3 prompts
(BOS alone, a short text, a 40-token text), greedy decoding of 32 new tokens ignoring EOS, and the f32 logits of
a teacher-forced forward pass over prompt + generated tokens.
"""
import argparse
import datetime
import json
import os
import platform
import re
import sys
import tempfile

import numpy as np
import safetensors
import tokenizers
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.path.abspath(os.path.join(REPO, "..", "shared", "data"))
NEW_TOKENS = 32
LONG_PROMPT_LEN = 40  # spans 3 KV blocks of 16
MIN_DISTINCT = 8  # a random model stuck on one token would test little
# A runtime's f32 logits differ from torch's by ~1e-5; a closer top-2 race would make its greedy ids flaky.
MIN_MARGIN = 1e-3

STORY_TEXTS = ["Once upon a time, there was a little girl",
               "Lily and Ben went to the park with their mom. They saw a big tree with red apples and a small "
               "dog that was sleeping under it. Lily wanted to climb the tree, but Ben said it was too high."]
CHAT_TEXTS = ["The capital of France is",
              "<｜User｜>Can you help me with my homework? What is 12 + 34?<｜Assistant｜><think>\n"
              "First, we compute the sum step by step. Then we check the answer."]

# name -> (folder base, folder relative to it, texts)
MODELS = {
    "tiny-llama": ("repo", "test/models/tiny-llama", STORY_TEXTS),
    "tiny-qwen2": ("repo", "test/models/tiny-qwen2", CHAT_TEXTS),
    "tiny-deepseek-v3": ("repo", "test/models/tiny-deepseek-v3", CHAT_TEXTS),
    "tiny-deepseek-v2": ("repo", "test/models/tiny-deepseek-v2", CHAT_TEXTS),
    "tiny-deepseek-v3-fp8": ("repo", "test/models/tiny-deepseek-v3-fp8", CHAT_TEXTS),
    "stories260K": ("shared_data", "models/stories260K", STORY_TEXTS),
}


def model_path(base, rel):
    return os.path.join(REPO if base == "repo" else SHARED, rel)


def weight_files(folder):
    return sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))


def dequantized_copy(folder, out):
    """Writes an f32 copy of an FP8 checkpoint: weight = fp8 * weight_scale_inv per 128x128 block (partial edge
    blocks), BF16 -> F32 exactly, quantization_config removed. HF's FineGrainedFP8 path needs a GPU and also
    quantizes activations, which is not the reference we want."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    bo, bi = cfg["quantization_config"]["weight_block_size"]
    del cfg["quantization_config"]
    cfg["torch_dtype"] = "float32"
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    tensors = {}
    for fname in weight_files(folder):
        with safe_open(os.path.join(folder, fname), "pt") as f:
            for k in f.keys():
                tensors[k] = f.get_tensor(k)
    result = {}
    for k, t in tensors.items():
        if k.endswith("_scale_inv"):
            continue
        if t.dtype == torch.float8_e4m3fn:
            s = tensors[k + "_scale_inv"].float()
            full = s.repeat_interleave(bo, 0).repeat_interleave(bi, 1)[: t.shape[0], : t.shape[1]]
            result[k] = (t.float() * full).contiguous()
        else:
            result[k] = t.float().contiguous()
    save_file(result, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    for fname in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        src = os.path.join(folder, fname)
        if os.path.exists(src):
            with open(src, "rb") as a, open(os.path.join(out, fname), "wb") as b:
                b.write(a.read())
    return result


def load_model(folder):
    kw = dict(dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    model, info = AutoModelForCausalLM.from_pretrained(folder, **kw)
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if bad:
        sys.exit(f"{folder}: weights did not load cleanly: {bad}")
    return model.eval()


EXPERT_KEY = re.compile(r"^(.*\.mlp\.experts\.)(\d+)\.(gate|up|down)_proj\.weight$")


def check_weights_loaded(model, folder):
    """from_pretrained may keep init values for buffers it does not map (e.g. e_score_correction_bias) or re-layout
    experts; compare every tensor in the model with the file."""
    sd = model.state_dict()
    checked = 0
    for fname in weight_files(folder):
        with safe_open(os.path.join(folder, fname), "pt") as f:
            for k in f.keys():
                want = f.get_tensor(k).float()
                m = EXPERT_KEY.match(k)
                if m:  # transformers 5 fuses per-expert weights into [E, 2I, H] gate_up_proj and [E, H, I] down_proj
                    prefix, e, kind = m.group(1), int(m.group(2)), m.group(3)
                    if kind == "down":
                        got = sd[prefix + "down_proj"][e]
                    else:
                        gate_up = sd[prefix + "gate_up_proj"][e]
                        half = gate_up.shape[0] // 2
                        got = gate_up[:half] if kind == "gate" else gate_up[half:]
                elif k in sd:
                    got = sd[k]
                else:
                    sys.exit(f"{folder}: {k} has no counterpart in the loaded model")
                if not torch.equal(got.float(), want):
                    sys.exit(f"{folder}: {k} in the model differs from the file")
                checked += 1
    return checked


def tokenize(tok, folder, text):
    ids = tok(text)["input_ids"]
    tj = os.path.join(folder, "tokenizer.json")
    if os.path.exists(tj):  # the raw tokenizers library must agree with transformers' wrapper
        raw = tokenizers.Tokenizer.from_file(tj).encode(text).ids
        if raw != ids:
            sys.exit(f"{folder}: AutoTokenizer {ids} != tokenizers {raw} for {text!r}")
    return ids


@torch.no_grad()
def greedy_nocache(model, prompt, n):
    ids = list(prompt)
    for _ in range(n):
        logits = model(torch.tensor([ids]), use_cache=False).logits[0, -1]
        ids.append(int(torch.argmax(logits)))
    return ids[len(prompt):]


@torch.no_grad()
def greedy_generate(model, prompt, n, pad_id):
    gc = GenerationConfig(do_sample=False, max_new_tokens=n, min_new_tokens=n, eos_token_id=None,
                          pad_token_id=pad_id, repetition_penalty=1.0, num_beams=1)
    out = model.generate(torch.tensor([prompt]), generation_config=gc,
                         attention_mask=torch.ones(1, len(prompt), dtype=torch.long))
    return out[0, len(prompt):].tolist()


def run_prompt(model, prompt, pad_id):
    gen = greedy_generate(model, prompt, NEW_TOKENS, pad_id)
    nocache = greedy_nocache(model, prompt, NEW_TOKENS)
    with torch.no_grad():
        logits = model(torch.tensor([prompt + gen]), use_cache=False).logits[0].float().contiguous()
    rows = logits[len(prompt) - 1: len(prompt) - 1 + NEW_TOKENS]
    top2 = torch.topk(rows, 2, dim=-1).values
    margins = (top2[:, 0] - top2[:, 1]).tolist()
    argmax_ok = torch.argmax(rows, dim=-1).tolist() == gen
    return gen, nocache, logits, margins, argmax_ok


def compact_json(obj):
    """Indented JSON with each list of numbers on one line, so a diff shows which ids changed."""
    text = json.dumps(obj, indent=1, ensure_ascii=False)
    return re.sub(r"\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)


def versions():
    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "safetensors": safetensors.__version__,
            "tokenizers": tokenizers.__version__, "numpy": np.__version__}


def stories_check(model):
    path = os.path.join(SHARED, "models/stories260K/expected/greedy_from_bos.ids")
    with open(path) as f:
        expected = [int(x) for x in f.read().split()]
    got = greedy_generate(model, [1], len(expected), 0)
    first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), None)
    return {"steps": len(expected), "generated_ids": got, "reference_file": "models/stories260K/expected/"
            "greedy_from_bos.ids", "matches_authors_reference": got == expected, "first_mismatch": first}


def make(name, out_root):
    base, rel, texts = MODELS[name]
    folder = model_path(base, rel)
    cfg = AutoConfig.from_pretrained(folder)
    with tempfile.TemporaryDirectory() as tmp:
        load_from = folder
        if getattr(cfg, "quantization_config", None):
            dequantized_copy(folder, tmp)
            load_from = tmp
        model = load_model(load_from)
        checked = check_weights_loaded(model, load_from)
    tok = AutoTokenizer.from_pretrained(folder)
    bos = cfg.bos_token_id
    prompts = [[bos]] + [tokenize(tok, folder, t) for t in texts]
    prompts[2] = prompts[2][:LONG_PROMPT_LEN]
    if len(prompts[2]) != LONG_PROMPT_LEN or any(p[0] != bos for p in prompts):
        sys.exit(f"{name}: prompts must start with BOS and the long one must have {LONG_PROMPT_LEN} tokens")
    pad_id = cfg.eos_token_id if isinstance(cfg.eos_token_id, int) else 0
    records, tensors = [], {}
    for i, prompt in enumerate(prompts):
        gen, nocache, logits, margins, argmax_ok = run_prompt(model, prompt, pad_id)
        distinct = len(set(gen))
        print(f"{name} prompt {i}: len {len(prompt)} -> {gen[:12]}... distinct {distinct}, "
              f"min top2 margin {min(margins):.4g}, no-cache agrees {nocache == gen}, argmax ok {argmax_ok}, "
              f"logit std {logits.std():.3f}")
        if distinct < MIN_DISTINCT or not argmax_ok or nocache != gen:
            sys.exit(f"{name}: degenerate or inconsistent greedy continuation")
        if min(margins) < MIN_MARGIN:
            sys.exit(f"{name}: a greedy step is a near tie (margin {min(margins):.3g}); pick another seed")
        tensors[f"logits.{i}"] = logits
        records.append({"prompt_ids": prompt, "prompt_text": tok.decode(prompt), "generated_ids": gen,
                        "generated_text": tok.decode(gen), "logits_tensor": f"logits.{i}",
                        "logits_shape": list(logits.shape), "min_top2_margin": min(margins),
                        "nocache_greedy_matches": nocache == gen})
    golden = {"model": name, "model_dir": rel, "model_dir_base": base, "architecture": cfg.architectures[0],
              "vocab_size": cfg.vocab_size,
              "dtype": "float32", "attn_implementation": "eager",
              "weights": "FP8 E4M3 x weight_scale_inv (128x128 blocks) dequantized to F32 by make_goldens.py; "
                         "activations not quantized" if "fp8" in name else "as stored (F32)",
              "decoding": {"greedy": True, "new_tokens": NEW_TOKENS, "eos_ignored": True,
                           "repetition_penalty": 1.0, "method": "model.generate (KV cache), cross-checked "
                           "against a no-cache argmax loop"},
              "logits": "teacher-forced forward over prompt_ids + generated_ids, row t predicts token t+1",
              "weights_checked_against_file": checked,
              "versions": versions(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                  timespec="seconds"), "prompts": records}
    if name == "stories260K":
        golden["greedy_from_bos"] = stories_check(model)
        print(f"stories260K 255-token greedy matches authors' reference: "
              f"{golden['greedy_from_bos']['matches_authors_reference']}")
    out = os.path.join(out_root, name)
    os.makedirs(out, exist_ok=True)
    save_file(tensors, os.path.join(out, "logits.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out, "golden.json"), "w", encoding="utf-8") as f:
        f.write(compact_json(golden) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    ap.add_argument("--out", default=os.path.join(REPO, "test", "golden"))
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    for name in args.only:
        make(name, args.out)


if __name__ == "__main__":
    main()
