#!/usr/bin/env python3
"""Writes one broken model folder per malformed-input class into OUT (stdlib only).

Each folder is the tiny-llama model with one thing broken, so ds-compile's error for it can be
checked by a lit test. Usage: make_malformed.py <tiny-llama-dir> <out-dir>
"""
import json
import os
import shutil
import struct
import sys

src, out = sys.argv[1], sys.argv[2]
shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)

with open(os.path.join(src, "model.safetensors"), "rb") as f:
    blob = f.read()
(hlen,) = struct.unpack("<Q", blob[:8])
header = json.loads(blob[8:8 + hlen])
data = blob[8 + hlen:]


def model(name, config=None, st=None, extra=None):
    d = os.path.join(out, name)
    os.makedirs(d)
    cfg = json.load(open(os.path.join(src, "config.json")))
    if config:
        config(cfg)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    if st is not None:
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(st)
    for fname, content in (extra or {}).items():
        with open(os.path.join(d, fname), "w" if isinstance(content, str) else "wb") as f:
            f.write(content)


def pack(hdr, payload=data, raw=None):
    text = raw if raw is not None else json.dumps(hdr).encode()
    return struct.pack("<Q", len(text)) + text + payload


def edit(fn):
    h = json.loads(json.dumps(header))
    fn(h)
    return h


first = sorted(k for k in header if k != "__metadata__")[0]
second = sorted(k for k in header if k != "__metadata__")[1]

model("header_beyond_file", st=struct.pack("<Q", 1 << 40) + b"{}")
model("short_file", st=b"\x01\x02\x03")
model("bad_json", st=pack(None, raw=b'{"a": [1, 2'))
model("unknown_dtype", st=pack(edit(lambda h: h[first].update(dtype="F7"))))
model("offsets_out_of_range", st=pack(edit(lambda h: h[first].update(
    data_offsets=[len(data) - 4, len(data) + 60]))))
model("overlapping", st=pack(edit(lambda h: h[second].update(data_offsets=h[first]["data_offsets"]))))
model("byte_count_mismatch", st=pack(edit(lambda h: h[first].update(
    shape=[h[first]["shape"][0] + 1] + h[first]["shape"][1:]))))
dup = json.dumps(header)[:-1] + ', "%s": %s}' % (first, json.dumps(header[first]))
model("duplicate_names", st=pack(None, raw=dup.encode()))
# A sharded checkpoint whose index names a tensor its shard does not hold.
index = {"metadata": {}, "weight_map": {k: "model-00001-of-00001.safetensors" for k in header if k != "__metadata__"}}
index["weight_map"]["model.layers.9.mlp.up_proj.weight"] = "model-00001-of-00001.safetensors"
model("index_missing_tensor", extra={"model.safetensors.index.json": json.dumps(index),
                                     "model-00001-of-00001.safetensors": blob})
# Well-formed files, wrong model: a tensor the config implies is absent / has the wrong shape.
model("missing_tensor", st=pack(edit(lambda h: h.pop("model.norm.weight"))))
model("wrong_shape", config=lambda c: c.update(intermediate_size=c["intermediate_size"] + 8), st=blob)
# Config errors.
model("unsupported_arch", config=lambda c: c.update(model_type="gpt2"), st=blob)
model("unsupported_act", config=lambda c: c.update(hidden_act="gelu"), st=blob)
model("bad_config_type", config=lambda c: c.update(num_hidden_layers="two"), st=blob)
model("dynamic_rope", config=lambda c: c.update(rope_scaling={"rope_type": "dynamic", "factor": 2.0}), st=blob)
os.makedirs(os.path.join(out, "no_config"))
