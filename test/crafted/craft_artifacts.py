#!/usr/bin/env python3
"""Crafted bad artifacts (issue #10): each case edits the metadata of a real artifact in a way
a careless tool or an attacker could, writes it back with valid checksums, and checks that
ds-run and ds-inspect both refuse it with a clear error naming the problem and an exit code in
1..127 (never a crash, a hang, or a run on inconsistent metadata).

The metadata round-trips through `flatc --json` (the schema is runtime/schema/artifact.fbs), so
every case is a readable edit of the JSON, and nothing opaque is committed.

usage: craft_artifacts.py --flatc F --schema S --artifact A.dsa --out DIR --bin BIN_DIR
"""
import argparse
import copy
import ctypes
import ctypes.util
import json
import os
import struct
import subprocess
import sys

HEADER = struct.Struct("<8sIIQQQQQQ")  # runtime/src/format/artifact/format.h FileHeader


def xxh3(data: bytes) -> int:
    lib = ctypes.CDLL(ctypes.util.find_library("xxhash") or "libxxhash.so.0")
    lib.XXH3_64bits.restype = ctypes.c_uint64
    lib.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    return lib.XXH3_64bits(data, len(data))


def split(path):
    data = open(path, "rb").read()
    magic, ver, hsize, moff, msize, mx, doff, fsize, hx = HEADER.unpack(data[:64])
    return data, (magic, ver, hsize, moff, msize, doff)


def to_json(flatc, schema, metadata, work):
    binp = os.path.join(work, "meta.bin")
    open(binp, "wb").write(metadata)
    subprocess.run([flatc, "--json", "--raw-binary", "--strict-json", "--defaults-json", "-o", work,
                    schema, "--", binp], check=True)
    return json.load(open(os.path.join(work, "meta.json")))


def to_binary(flatc, schema, meta, work):
    jp = os.path.join(work, "edited.json")
    json.dump(meta, open(jp, "w"))
    subprocess.run([flatc, "--binary", "-o", work, schema, jp], check=True)
    return open(os.path.join(work, "edited.dsa"), "rb").read()  # the schema's file_extension


def assemble(original, header, metadata):
    magic, ver, hsize, moff, msize, doff = header
    body = bytearray(original[:moff]) + metadata
    mx = xxh3(bytes(metadata))
    head = HEADER.pack(magic, ver, hsize, moff, len(metadata), mx, doff, len(body), 0)
    hx = xxh3(head[:56])
    body[:64] = HEADER.pack(magic, ver, hsize, moff, len(metadata), mx, doff, len(body), hx)
    return bytes(body)


def launch(m, kernel, nth=0):
    found = [l for l in m["plan"]["launches"] if l["kernel"] == kernel]
    return found[nth]


def arena_buffer(m):
    return next(b for b in m["plan"]["buffers"] if b["arena_offset"] >= 0 and b["rows"] == "Tokens")


def alias_buffer(m):
    return next(i for i, b in enumerate(m["plan"]["buffers"]) if b["alias_of"] >= 0)


def set_(obj, key, value):
    obj[key] = value


# (name, edit(meta), text the error must contain). Edits return nothing; they change `m`.
CASES = [
    # Arenas and buffers: a write at arena + 2^40, offsets and sizes that do not cover buffers.
    ("arena_offset_2^40", lambda m: set_(arena_buffer(m), "arena_offset", 1 << 40), "overruns its arena"),
    ("arena_offset_misaligned", lambda m: set_(arena_buffer(m), "arena_offset", arena_buffer(m)["arena_offset"] + 2),
     "not aligned"),
    ("arena_offset_negative", lambda m: set_(arena_buffer(m), "arena_offset", -7), "arena"),
    ("arena_bytes_zero", lambda m: set_(m["plan"], "arena_bytes_per_token", 0), "overruns its arena"),
    ("arena_bytes_negative", lambda m: set_(m["plan"], "arena_bytes_per_token", -4096), "arena"),
    ("arena_too_small", lambda m: set_(m["plan"], "arena_bytes_per_token", m["plan"]["arena_bytes_per_token"] // 2),
     "overruns its arena"),
    ("logit_arena_zero", lambda m: set_(m["plan"], "arena_bytes_per_logit_row", 0), "arena"),
    ("buffer_dim_zero", lambda m: set_(arena_buffer(m), "cols", [0]), "has dimension 0"),
    ("buffer_dim_negative", lambda m: set_(arena_buffer(m), "cols", [-64]), "has dimension -64"),
    ("buffer_dim_huge", lambda m: set_(arena_buffer(m), "cols", [1 << 20, 1 << 20]), "2^31"),
    ("buffer_fixed_rows_huge", lambda m: m["plan"]["buffers"].append(
        {"rows": "Fixed", "fixed_rows": 1 << 40, "cols": [8], "dtype": "F32", "alias_of": -1,
         "arena_offset": -1}), "fixed rows"),
    ("alias_self", lambda m: set_(m["plan"]["buffers"][alias_buffer(m)], "alias_of", alias_buffer(m)), "alias"),
    ("alias_cycle", lambda m: (set_(m["plan"]["buffers"][m["plan"]["buffers"][alias_buffer(m)]["alias_of"]],
                                    "alias_of", alias_buffer(m))), "alias"),
    ("alias_out_of_range", lambda m: set_(m["plan"]["buffers"][alias_buffer(m)], "alias_of", 100000), "aliases buffer"),
    ("alias_other_width", lambda m: set_(m["plan"]["buffers"][alias_buffer(m)], "cols", [32]), "views buffer"),
    # Launches: layers, operands and weights against the launch ABI.
    ("attention_layer_past_kv", lambda m: set_(launch(m, "Attention")["params"], "layer", 7), "KV layer 7"),
    ("attention_layer_negative", lambda m: set_(launch(m, "Attention")["params"], "layer", -1), "KV layer -1"),
    ("launch_input_out_of_range", lambda m: set_(launch(m, "Linear"), "inputs", [99999]), "99999"),
    ("launch_output_negative", lambda m: set_(launch(m, "Linear"), "outputs", [-3]), "-3"),
    ("launch_weight_out_of_range", lambda m: set_(launch(m, "Linear"), "weights", [123456]), "123456"),
    ("launch_missing_input", lambda m: set_(launch(m, "Attention"), "inputs", launch(m, "Attention")["inputs"][:2]),
     "inputs"),
    ("launch_params_missing", lambda m: (set_(launch(m, "RmsNorm"), "params_type", "NONE"),
                                         launch(m, "RmsNorm").pop("params")), "no parameters"),
    ("linear_width_vs_weight", lambda m: set_(m["plan"]["buffers"][launch(m, "Linear")["outputs"][0]], "cols", [48]),
     "weight of"),
    ("embed_width_vs_table", lambda m: set_(m["plan"]["buffers"][launch(m, "Embed")["outputs"][0]], "cols", [32]),
     "Embed"),
    ("rope_dim_odd", lambda m: set_(launch(m, "QKVRope")["params"], "dim", 7), "rotates 7"),
    ("rope_theta_negative", lambda m: set_(launch(m, "QKVRope")["params"], "theta", -10000.0), "theta"),
    ("norm_eps_nan", lambda m: set_(launch(m, "RmsNorm")["params"], "eps", "nan"), "eps"),
    ("attention_scale_inf", lambda m: set_(launch(m, "Attention")["params"], "scale", "inf"), "scale"),
    ("plan_token_ids_out_of_range", lambda m: set_(m["plan"], "token_ids", 5000), "token_ids"),
    ("plan_logits_out_of_range", lambda m: set_(m["plan"], "logits", -9), "logits"),
    # Model info: vocabulary and embedding, context, special ids.
    ("vocab_larger_than_embedding", lambda m: set_(m["model"], "vocab_size", m["model"]["vocab_size"] * 4),
     "vocab_size = 2048"),
    ("vocab_zero", lambda m: set_(m["model"], "vocab_size", 0), "vocab"),
    ("vocab_negative", lambda m: set_(m["model"], "vocab_size", -1), "vocab"),
    ("bos_outside_vocab", lambda m: set_(m["model"], "bos_token_id", 1 << 30), "bos_token_id"),
    ("eos_outside_vocab", lambda m: set_(m["model"], "eos_token_ids", [-5]), "eos_token_ids"),
    ("context_negative", lambda m: set_(m["model"], "max_position_embeddings", -1), "max_position_embeddings"),
    # KV cache spec.
    ("kv_block_size_zero", lambda m: set_(m["plan"]["kv_cache"], "block_size", 0), "block_size 0"),
    ("kv_block_size_huge", lambda m: set_(m["plan"]["kv_cache"], "block_size", 1 << 30), "block_size"),
    ("kv_layers_zero", lambda m: set_(m["plan"]["kv_cache"], "num_layers", 0), "num_layers 0"),
    ("kv_heads_huge", lambda m: set_(m["plan"]["kv_cache"], "kv_heads", 1 << 40), "kv_heads"),
    ("kv_head_dim_vs_attention", lambda m: set_(m["plan"]["kv_cache"], "head_dim", 16), "expected"),
    # Tensors and segments.
    ("tensor_shape_vs_bytes", lambda m: set_(m["tensors"][0], "shape", [m["tensors"][0]["shape"][0] * 2,
                                                                        m["tensors"][0]["shape"][1]]), "tensors[0]"),
    ("tensor_segment_out_of_range", lambda m: set_(m["tensors"][0], "segment", 4096), "segment"),
    ("tensor_negative_dim", lambda m: set_(m["tensors"][1], "shape", [-64]), "tensors[1]"),
    ("segment_past_end", lambda m: set_(m["segments"][1], "offset", 1 << 40), "segment"),
    ("segment_overlaps_header", lambda m: set_(m["segments"][0], "offset", 0), "segment"),
    ("tensor_scale_out_of_range", lambda m: set_(m["tensors"][0], "scale", 777), "scale"),
    # Target and code: a GPU artifact on the CPU, native code with bad references.
    ("target_sm_90a", lambda m: set_(m["target"], "name", "sm_90a"), "the artifact is for sm_90a"),
    ("target_unknown", lambda m: set_(m["target"], "name", "tpu_v9"), "tpu_v9"),
    ("tp_size_zero", lambda m: set_(m["plan"], "tp_size", 0), "tp_size"),
    ("tp_size_huge", lambda m: set_(m["plan"], "tp_size", 100000), "tp_size"),
    ("code_segment_out_of_range", lambda m: set_(m["code"][0], "segment", 999), "code"),
    ("code_object_out_of_range", lambda m: set_(launch(m, "RmsNorm"), "code_object", 5), "code"),
    ("code_symbol_unknown", lambda m: set_(launch(m, "RmsNorm"), "code_symbol", "ds_evil"), "ds_evil"),
    ("code_cpu_feature_unknown", lambda m: m["code"][0]["cpu_features"].append("avx9000"), "avx9000"),
    # The CUDA kernel library (CodeObject.library): GPU code only, and never named by a launch.
    ("library_host_code", lambda m: set_(m["code"][0], "library", True), "kernel library object for target 'host'"),
    ("launch_names_library",
     lambda m: m["code"][0].update(library=True, target="sm_90a", format="Cubin"),
     "names code[0], the CUDA kernel library"),
]


RUNS_ELSEWHERE = {"target_sm_90a", "target_unknown", "code_cpu_feature_unknown"}


def run(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return p.returncode, p.stderr + p.stdout
    except subprocess.TimeoutExpired:
        return "timeout", ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flatc", required=True)
    ap.add_argument("--schema", required=True)
    ap.add_argument("--artifact", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--bin", required=True, help="directory with ds-run and ds-inspect")
    ap.add_argument("--only", help="run one case")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    original, header = split(args.artifact)
    moff, msize = header[3], header[4]
    meta = to_json(args.flatc, args.schema, original[moff:moff + msize], args.out)
    failures, handled = [], 0
    for name, edit, needle in CASES:
        if args.only and name != args.only:
            continue
        m = copy.deepcopy(meta)
        try:
            edit(m)
        except (KeyError, IndexError, StopIteration) as e:
            failures.append(f"{name}: the edit does not apply to {args.artifact} ({e!r})")
            continue
        path = os.path.join(args.out, name + ".dsa")
        open(path, "wb").write(assemble(original, header, to_binary(args.flatc, args.schema, m, args.out)))
        problems = []
        for tool, cmd in (("ds-run", [os.path.join(args.bin, "ds-run"), path, "--prompt-ids", "1,2,3",
                                      "-n", "2", "--ids", "--threads", "1"]),
                          ("ds-inspect", [os.path.join(args.bin, "ds-inspect"), path])):
            rc, out = run(cmd)
            # A consistent artifact this machine cannot run (another target, CPU features it
            # lacks) is still inspectable: ds-inspect says so on its "runs here" line.
            if tool == "ds-inspect" and name in RUNS_ELSEWHERE and rc == 0 and "runs here: no:" in out:
                rc = 1
            if rc == "timeout" or not (1 <= rc <= 127):
                problems.append(f"{tool} exit {rc}")
            elif needle not in out or name + ".dsa" not in out:
                problems.append(f"{tool} error lacks '{needle}' or the file name: {out.strip()[:300]}")
        if problems:
            failures.append(f"{name}: " + "; ".join(problems))
        else:
            handled += 1
            print(f"ok {name}")
    total = 1 if args.only else len(CASES)
    print(f"{handled} of {total} crafted artifacts refused by ds-run and ds-inspect with a clear error")
    for f in failures:
        print("FAIL " + f)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
