"""Bytes a llama.cpp decoding step reads, from a GGUF file's own tensor table.

A GGUF file lists every tensor (name, shape, type, offset into the data block); the bytes of each
are the distance to the next tensor's offset (the last one's to the end of the file), which holds
whatever the quantisation type and block size. From that table `gguf_weight_layout` builds the
roofline's WeightLayout: the token embedding table (a step reads one row per sequence, not the
table), whether the output head is that table (no `output.weight`: tied), and the routed experts
of MoE layers (`blk.N.ffn_{gate,up,down}_exps.weight`, E experts each: a step reads the k it routes
to). Only the header and tensor table are read, never the weights.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from harness.core.architecture import WeightLayout

_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
MAX_TENSORS = 1_000_000  # a corrupt count must not loop for ever


def _read(f: BinaryIO, fmt: str):
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("truncated GGUF header")
    return struct.unpack(fmt, data)[0]


def _string(f: BinaryIO) -> str:
    n = _read(f, "<Q")
    if n > 1 << 24:
        raise ValueError("implausible GGUF string length")
    return f.read(n).decode("utf-8", errors="replace")


def _value(f: BinaryIO, kind: int):
    if kind in _SCALAR:
        return _read(f, _SCALAR[kind])
    if kind == _STRING:
        return _string(f)
    if kind == _ARRAY:
        item, count = _read(f, "<I"), _read(f, "<Q")
        if item in _SCALAR:  # skip fixed-size items in one seek; keep only the count
            f.seek(struct.calcsize(_SCALAR[item]) * count, 1)
            return count
        return [_value(f, item) for _ in range(count)] if item != _STRING else sum(1 for _ in (_string(f) for _ in range(count)))
    raise ValueError(f"unknown GGUF value type {kind}")


def read_tensor_table(path: str | Path) -> tuple[dict, dict[str, tuple[tuple[int, ...], int]]]:
    """(scalar metadata, {tensor name: (shape, bytes)}) of a GGUF file (arrays appear as their length)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        version = _read(f, "<I")
        if version < 2:
            raise ValueError(f"GGUF version {version} is not supported")
        n_tensors, n_kv = _read(f, "<Q"), _read(f, "<Q")
        if n_tensors > MAX_TENSORS or n_kv > MAX_TENSORS:
            raise ValueError("implausible GGUF counts")
        meta = {}
        for _ in range(n_kv):
            key = _string(f)
            meta[key] = _value(f, _read(f, "<I"))
        infos = []
        for _ in range(n_tensors):
            name = _string(f)
            dims = tuple(_read(f, "<Q") for _ in range(_read(f, "<I")))
            _read(f, "<I")  # type: the byte size below comes from the offsets, whatever the type
            infos.append((name, dims, _read(f, "<Q")))
        align = int(meta.get("general.alignment") or 32)
        start = (f.tell() + align - 1) // align * align
    ends = sorted(off for _, _, off in infos)[1:] + [size - start]
    end_of = dict(zip(sorted(off for _, _, off in infos), ends))
    return meta, {name: (dims, end_of[off] - off) for name, dims, off in infos}


def gguf_weight_layout(path: str | Path) -> WeightLayout:
    """The roofline's WeightLayout of a GGUF file (see the module docstring)."""
    meta, tensors = read_tensor_table(path)
    arch = str(meta.get("general.architecture") or "")
    total = sum(b for _, b in tensors.values())
    dims, emb = tensors.get("token_embd.weight", ((), 0))
    vocab = dims[-1] if dims else 0
    expert_bytes, moe_layers, experts = 0, 0, 0
    by_layer: dict[str, int] = {}
    for name, (shape, nbytes) in tensors.items():
        if "_exps." in name and name.startswith("blk."):
            layer = name.split(".")[1]
            by_layer[layer] = by_layer.get(layer, 0) + nbytes
            experts = max(experts, shape[-1] if shape else 0)
    if by_layer and experts:
        moe_layers = len(by_layer)
        expert_bytes = int(sum(by_layer.values()) / moe_layers / experts)
    k = int(meta.get(f"{arch}.expert_used_count") or 0) if moe_layers else 0
    return WeightLayout(total=total, embedding_table=emb, embedding_row=emb // vocab if vocab else 0,
                        tied="output.weight" not in tensors, expert=expert_bytes, moe_layers=moe_layers,
                        experts=experts if moe_layers else 0, experts_per_token=k)
