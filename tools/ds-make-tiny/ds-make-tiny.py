#!/usr/bin/env python3
# Writes the tiny random test models (Hugging Face layout) into test/models, or checks the committed ones.
"""Usage:
  ds-make-tiny.py [--out DIR] [--only NAME ...]   write the models (default DIR: <repo>/test/models)
  ds-make-tiny.py --check                          regenerate into a temp dir, compare byte for byte

Needs Python 3.11 and numpy only. Deterministic: fixed seeds, numpy PCG64. The committed files are the
reference; --check fails when this numpy's bit stream (or this code) no longer reproduces them.
"""
import argparse
import filecmp
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tiny_bpe  # noqa: E402
import tiny_models  # noqa: E402
from tiny_io import write_json, write_safetensors, write_sharded  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_STORIES = os.path.join(REPO, "..", "shared", "data", "models", "stories260K")
NUM_MERGES = 240

LLAMA_SOURCE = """\
# Tokenizer source

`tokenizer.model` and `tokenizer_config.json` are copied unchanged from
`shared/data/models/stories260K/` (SentencePiece, vocabulary 512, `<unk>`=0, `<s>`=1, `</s>`=2).
They come from llama2.c's `tok512.model` (MIT license, Andrej Karpathy); see that folder's SOURCE.md.
The weights in this folder are random (tools/ds-make-tiny), not trained.
"""


def _write_weights(folder, tensors, shards):
    if shards == 1:
        write_safetensors(os.path.join(folder, "model.safetensors"), tensors)
    else:
        write_sharded(folder, tensors, shards)


def _gen_config(bos, eos, sampling):
    g = {"_from_model_config": True, "bos_token_id": bos, "eos_token_id": eos}
    if sampling:  # what DeepSeek ships; the goldens override it with greedy decoding
        g.update({"do_sample": True, "temperature": 0.6, "top_p": 0.95})
    return g


def make_llama(folder, stories_dir):
    for name in ("tokenizer.model", "tokenizer_config.json"):
        src = os.path.join(stories_dir, name)
        if not os.path.isfile(src):
            sys.exit(f"ds-make-tiny: missing {src} (set --stories-dir)")
        shutil.copyfile(src, os.path.join(folder, name))
    with open(os.path.join(folder, "SOURCE.md"), "w") as f:
        f.write(LLAMA_SOURCE)
    config, tensors = tiny_models.tiny_llama(used_vocab=tiny_models.VOCAB)
    return config, tensors, _gen_config(1, 2, False), 1


def _write_bpe(folder, tok, ids, bos, eos, max_len):
    write_json(os.path.join(folder, "tokenizer.json"), tok)
    write_json(os.path.join(folder, "tokenizer_config.json"), tiny_bpe.tokenizer_config(bos, eos, ids, max_len))
    return max(max(tok["model"]["vocab"].values()), max(ids.values())) + 1


def make_qwen2(folder, merges):
    tok, ids = tiny_bpe.qwen2_tokenizer(merges)
    used = _write_bpe(folder, tok, ids, tiny_bpe.BOS_DS, tiny_bpe.EOS_DS, 131072)
    bos, eos = ids[tiny_bpe.BOS_DS], ids[tiny_bpe.EOS_DS]
    config, tensors = tiny_models.tiny_qwen2(used, bos, eos)
    return config, tensors, _gen_config(bos, eos, True), 1


def _make_deepseek(folder, merges, build, shards):
    tok, ids = tiny_bpe.deepseek_tokenizer(merges)
    used = _write_bpe(folder, tok, ids, tiny_bpe.BOS_DS, tiny_bpe.EOS_DS, 16384)
    config, tensors = build(used)
    return config, tensors, _gen_config(0, 1, True), shards


MODELS = {
    "tiny-llama": lambda d, a, m: make_llama(d, a.stories_dir),
    "tiny-qwen2": lambda d, a, m: make_qwen2(d, m),
    "tiny-deepseek-v3": lambda d, a, m: _make_deepseek(d, m, tiny_models.tiny_deepseek_v3, 2),
    "tiny-deepseek-v2": lambda d, a, m: _make_deepseek(d, m, tiny_models.tiny_deepseek_v2, 1),
    "tiny-deepseek-v3-fp8": lambda d, a, m: _make_deepseek(d, m, tiny_models.tiny_deepseek_v3_fp8, 2),
}


def generate(out_root, names, args):
    merges = tiny_bpe.train_merges(NUM_MERGES)
    if len(merges) != NUM_MERGES:
        sys.exit(f"ds-make-tiny: corpus gave only {len(merges)} merges, need {NUM_MERGES}")
    for name in names:
        folder = os.path.join(out_root, name)
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        os.makedirs(folder)
        config, tensors, gen, shards = MODELS[name](folder, args, merges)
        write_json(os.path.join(folder, "config.json"), config)
        write_json(os.path.join(folder, "generation_config.json"), gen)
        _write_weights(folder, tensors, shards)
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        print(f"{name}: {len(tensors)} tensors, {size / 1e6:.2f} MB")


def _diff_trees(a, b):
    problems = []
    for root, _, files in os.walk(a):
        for f in files:
            pa = os.path.join(root, f)
            rel = os.path.relpath(pa, a)
            pb = os.path.join(b, rel)
            if not os.path.isfile(pb):
                problems.append(f"missing in committed tree: {rel}")
            elif not filecmp.cmp(pa, pb, shallow=False):
                problems.append(f"differs: {rel}")
    for root, _, files in os.walk(b):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), b)
            if not os.path.isfile(os.path.join(a, rel)):
                problems.append(f"not produced by the generator: {rel}")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "test", "models"))
    ap.add_argument("--only", nargs="+", choices=sorted(MODELS), default=sorted(MODELS))
    ap.add_argument("--stories-dir", default=DEFAULT_STORIES)
    ap.add_argument("--check", action="store_true", help="compare a fresh generation with --out")
    args = ap.parse_args()
    if not args.check:
        generate(args.out, args.only, args)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, args.only, args)
        problems = []
        for name in args.only:
            committed = os.path.join(args.out, name)
            if not os.path.isdir(committed):
                problems.append(f"missing model folder {committed}")
                continue
            problems += [f"{name}: {p}" for p in _diff_trees(os.path.join(tmp, name), committed)]
    if problems:
        print("ds-make-tiny --check FAILED:\n  " + "\n  ".join(problems))
        return 1
    print(f"ds-make-tiny --check: {len(args.only)} models reproduce byte-identically")
    return 0


if __name__ == "__main__":
    sys.exit(main())
