#!/usr/bin/env python3
"""Writes one model folder per thing the runtime would trip over into OUT (stdlib only).

Each folder is a tiny test model with one thing broken that only shows when the artifact is
built or run (a NaN weight, rope_theta <= 0, a tokenizer.json that does not load, a chat
template that does not parse, a FIFO where a file should be), so a lit test can check that
ds-compile refuses it with the file and field named. Companion of make_malformed.py, which
breaks the file formats themselves.
Usage: make_invalid_models.py <tiny-llama-dir> <tiny-qwen2-dir> <out-dir>
"""
import json
import os
import shutil
import struct
import sys

llama, qwen2, out = sys.argv[1], sys.argv[2], sys.argv[3]
shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)


def copy_model(src, name):
    d = os.path.join(out, name)
    shutil.copytree(src, d)
    return d


def edit_tensor(d, tensor, index, value=None, dtype=None):
    """Sets element `index` of an F32 tensor to `value`, or relabels its dtype (same bytes)."""
    path = os.path.join(d, "model.safetensors")
    blob = bytearray(open(path, "rb").read())
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen])
    entry = header[tensor]
    assert entry["dtype"] == "F32", entry
    if value is not None:
        at = 8 + hlen + entry["data_offsets"][0] + 4 * index
        blob[at:at + 4] = struct.pack("<f", value)
    if dtype is not None:
        entry["dtype"] = dtype
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (hlen - len(text))  # same header length: the offsets stay valid
        assert len(text) == hlen
        blob[8:8 + hlen] = text
    open(path, "wb").write(bytes(blob))


def edit_config(d, **fields):
    path = os.path.join(d, "config.json")
    cfg = json.load(open(path))
    cfg.update(fields)
    json.dump(cfg, open(path, "w"), indent=2)


def write(d, name, text):
    open(os.path.join(d, name), "w").write(text)


def fifo(d, name):
    os.remove(os.path.join(d, name))
    os.mkfifo(os.path.join(d, name))


# Weights the runtime would compute garbage from.
edit_tensor(copy_model(llama, "nan_weight"), "model.norm.weight", 3, value=float("nan"))
edit_tensor(copy_model(llama, "inf_weight"), "model.layers.1.mlp.down_proj.weight", 77,
            value=float("-inf"))
# Finite in f32, beyond f16's 65504: only --dtype f16 overflows.
edit_tensor(copy_model(llama, "f16_overflow"), "model.layers.0.post_attention_layernorm.weight",
            5, value=1.0e5)
edit_tensor(copy_model(llama, "i32_weight"), "model.norm.weight", 0, dtype="I32")
# Config values out of range.
edit_config(copy_model(llama, "rope_theta_zero"), rope_theta=0.0)
edit_config(copy_model(llama, "rope_theta_negative"), rope_theta=-10000.0)
# Tokenizer and chat template (tiny-qwen2 has a tokenizer.json).
write(copy_model(qwen2, "garbage_tokenizer"), "tokenizer.json", "this is not a tokenizer {")
# Sequence normalizers nested 20,000 deep overflowed the tokenizer builder's stack (issue #10).
deep = copy_model(qwen2, "deep_tokenizer")
tok = json.load(open(os.path.join(deep, "tokenizer.json")))
tok.pop("normalizer", None)
text = json.dumps(tok)
nested = '{"type": "Sequence", "normalizers": [' * 20000 + '{"type": "Lowercase"}' + ']}' * 20000
write(deep, "tokenizer.json", text[:-1] + ', "normalizer": ' + nested + "}")
write(copy_model(qwen2, "unknown_tokenizer_model"), "tokenizer.json",
      json.dumps({"version": "1.0", "model": {"type": "NoSuchModel", "vocab": {}}}))
write(copy_model(qwen2, "template_syntax_error"), "chat_template.jinja",
      "{% for m in messages %}{{ m.content }}{% endfor")
write(copy_model(qwen2, "template_unknown_filter"), "chat_template.jinja",
      "{% for m in messages %}{{ m.content | frobnicate }}{% endfor %}")
write(copy_model(qwen2, "template_raises"), "chat_template.jinja",
      "{{ raise_exception('this template refuses every conversation') }}")
# A FIFO where a file is read: an error, not a hang.
fifo(copy_model(llama, "fifo_safetensors"), "model.safetensors")
fifo(copy_model(llama, "fifo_config"), "config.json")
fifo(copy_model(qwen2, "fifo_tokenizer"), "tokenizer.json")
