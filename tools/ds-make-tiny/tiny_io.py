# Byte-exact writers for the tiny models: safetensors (single file or sharded), BF16 and FP8-E4M3 encoders.
import json
import os

import numpy as np

# safetensors dtype name -> (numpy storage dtype, bytes per element)
_DTYPES = {"F32": (np.float32, 4), "BF16": (np.uint16, 2), "F8_E4M3": (np.uint8, 1)}


class Tensor:
    """One named tensor in its on-disk dtype; `data` already holds the storage bits."""

    def __init__(self, dtype, data):
        storage, _ = _DTYPES[dtype]
        self.dtype = dtype
        self.data = np.ascontiguousarray(data, dtype=storage)

    @property
    def nbytes(self):
        return self.data.nbytes


def f32(arr):
    return Tensor("F32", np.asarray(arr, dtype=np.float32))


def to_bf16_bits(arr):
    """Round-to-nearest-even f32 -> bf16, as torch's .to(torch.bfloat16) does for finite values."""
    u = np.ascontiguousarray(arr, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def bf16(arr):
    return Tensor("BF16", to_bf16_bits(arr))


def bf16_bits_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _e4m3fn_table():
    """Values of the 127 non-negative finite E4M3FN codes 0x00..0x7E (0x7F is NaN), increasing with the code."""
    codes = np.arange(127, dtype=np.int64)
    exp = codes >> 3
    man = codes & 7
    sub = man / 8.0 * 2.0**-6
    nrm = (1.0 + man / 8.0) * np.power(2.0, exp - 7)
    return np.where(exp == 0, sub, nrm)


_E4M3_VALUES = _e4m3fn_table()


def to_e4m3fn_bits(arr):
    """f32 -> FP8 E4M3FN codes with round-to-nearest-even and saturation at +-448 (torch's cast, no NaN input)."""
    x = np.asarray(arr, dtype=np.float64)
    a = np.minimum(np.abs(x), 448.0)
    hi = np.clip(np.searchsorted(_E4M3_VALUES, a, side="left"), 0, 126)
    lo = np.clip(hi - 1, 0, 126)
    d_lo = a - _E4M3_VALUES[lo]
    d_hi = _E4M3_VALUES[hi] - a
    pick_hi = (d_hi < d_lo) | ((d_hi == d_lo) & (hi % 2 == 0))
    code = np.where(pick_hi, hi, lo).astype(np.uint8)
    return np.where(np.signbit(x), code | 0x80, code).astype(np.uint8)


def e4m3fn_bits_to_f32(bits):
    mag = _E4M3_VALUES[np.minimum(bits & 0x7F, 126)]
    return np.where(bits & 0x80, -mag, mag).astype(np.float32)


def quantize_fp8_blockwise(w, block=128):
    """DeepSeek-V3 weight quantization: per 128x128 block scale = amax/448, stored as `weight_scale_inv` so that
    dequantized = fp8 * scale_inv. Edge blocks are partial. Returns (fp8 Tensor, F32 scale_inv Tensor)."""
    out_dim, in_dim = w.shape
    nb_o = -(-out_dim // block)
    nb_i = -(-in_dim // block)
    scale = np.zeros((nb_o, nb_i), dtype=np.float32)
    for i in range(nb_o):
        for j in range(nb_i):
            blk = w[i * block:(i + 1) * block, j * block:(j + 1) * block]
            scale[i, j] = np.float32(np.abs(blk).max()) / np.float32(448.0)
    full = np.repeat(np.repeat(scale, block, axis=0), block, axis=1)[:out_dim, :in_dim]
    q = to_e4m3fn_bits(w.astype(np.float32) / full)
    return Tensor("F8_E4M3", q), Tensor("F32", scale)


def _file_bytes(tensors):
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        header[name] = {"dtype": t.dtype, "shape": list(t.data.shape),
                        "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)  # the format pads the header so the data starts 8-aligned
    parts = [len(text).to_bytes(8, "little"), text]
    parts += [tensors[name].data.tobytes() for name in sorted(tensors)]
    return b"".join(parts)


def write_safetensors(path, tensors):
    with open(path, "wb") as f:
        f.write(_file_bytes(tensors))


def write_sharded(folder, tensors, num_shards):
    """Splits tensors (name order) into num_shards files of roughly equal size, like save_pretrained's
    max_shard_size does; a layer may straddle two files, as in the real DeepSeek-V3 checkpoint."""
    names = sorted(tensors)
    total = sum(tensors[n].nbytes for n in names)
    target = total / num_shards
    shards = [[] for _ in range(num_shards)]
    acc = 0
    for n in names:
        idx = min(int(acc // target), num_shards - 1)
        shards[idx].append(n)
        acc += tensors[n].nbytes
    weight_map = {}
    for i, shard in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{num_shards:05d}.safetensors"
        write_safetensors(os.path.join(folder, fname), {n: tensors[n] for n in shard})
        for n in shard:
            weight_map[n] = fname
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    write_json(os.path.join(folder, "model.safetensors.index.json"), index)


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
