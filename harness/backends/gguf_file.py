"""A GGUF file's header, read without llama.cpp or torch: metadata, tensor shapes and the bytes
the tensors take, so `harness plan` can tell what each engine reads per decoded token.

llama.cpp decodes straight from the file's (possibly quantized) tensors, so a token reads their
bytes; transformers dequantizes a GGUF to the run's dtype, so a token reads parameters x the
dtype's width. Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md (versions 2
and 3; version 1, with 32-bit counts, predates every file llama.cpp still loads).
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from math import prod
from pathlib import Path

# value type -> struct format of a scalar (8: string, 9: array, handled apart)
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_U64 = struct.Struct("<Q")
DEFAULT_ALIGNMENT = 32


@dataclass
class GgufHeader:
    path: str
    file_bytes: int
    data_offset: int  # where the tensor data starts
    metadata: dict = field(default_factory=dict)  # arrays are kept as their length only
    tensors: list[tuple[str, tuple[int, ...], int]] = field(default_factory=list)  # name, shape, ggml type

    @property
    def parameters(self) -> int:
        return sum(prod(shape) for _, shape, _ in self.tensors)

    @property
    def tensor_bytes(self) -> int:
        """The bytes of every tensor as stored: what llama.cpp reads for one decoded token."""
        return self.file_bytes - self.data_offset

    def _int(self, key: str) -> int | None:
        value = self.metadata.get(f"{self.metadata.get('general.architecture')}.{key}")
        return int(value) if isinstance(value, int) and not isinstance(value, bool) else None

    def kv_bytes_per_token(self, bytes_per_value: int) -> int | None:
        """K and V x layers x KV heads x head width, at `bytes_per_value` (llama.cpp's cache is f16)."""
        layers, heads, embd = self._int("block_count"), self._int("attention.head_count"), self._int("embedding_length")
        kv_heads = self._int("attention.head_count_kv") or heads
        key = self._int("attention.key_length") or (embd // heads if embd and heads else None)
        value = self._int("attention.value_length") or key
        if not (layers and kv_heads and key and value):
            return None
        return layers * kv_heads * (key + value) * bytes_per_value


class _Cursor:
    def __init__(self, buf):
        self.buf, self.at = buf, 0

    def take(self, fmt: str):
        (value,) = struct.unpack_from("<" + fmt, self.buf, self.at)
        self.at += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        n = self.take("Q")
        text = bytes(self.buf[self.at:self.at + n]).decode("utf-8", errors="replace")
        self.at += n
        return text

    def value(self, kind: int):
        if kind in _SCALARS:
            return self.take(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item, n = self.take("I"), self.take("Q")
            if item in _SCALARS:
                self.at += n * struct.calcsize(_SCALARS[item])
            elif item == _STRING:  # a vocabulary: 150k strings, skipped in a tight loop
                at, length = self.at, _U64.unpack_from
                for _ in range(n):
                    at += 8 + length(self.buf, at)[0]
                self.at = at
            else:
                for _ in range(n):
                    self.value(item)
            return n
        raise ValueError(f"unknown GGUF value type {kind}")


def read_header(path: str | Path) -> GgufHeader:
    """The header of the GGUF at `path`; ValueError when it is not a complete GGUF v2/v3 file."""
    path = Path(path)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        try:
            return _parse(buf, str(path), len(buf))
        except (struct.error, IndexError, OverflowError, MemoryError) as e:
            raise ValueError(f"{path} is not a complete GGUF file ({e})") from None


def _parse(buf, path: str, size: int) -> GgufHeader:
    c = _Cursor(buf)
    if bytes(buf[:4]) != b"GGUF":
        raise ValueError(f"{path} is not a GGUF file (no GGUF magic)")
    c.at = 4
    version = c.take("I")
    if version not in (2, 3):
        raise ValueError(f"{path}: GGUF version {version} is not supported (2 and 3 are)")
    n_tensors, n_kv = c.take("Q"), c.take("Q")
    header = GgufHeader(path, size, 0)
    for _ in range(n_kv):
        key = c.string()
        header.metadata[key] = c.value(c.take("I"))
    for _ in range(n_tensors):
        name = c.string()
        dims = tuple(c.take("Q") for _ in range(c.take("I")))
        header.tensors.append((name, dims, c.take("I")))
        c.take("Q")  # offset within the data section
    align = int(header.metadata.get("general.alignment") or DEFAULT_ALIGNMENT)
    header.data_offset = -(-c.at // align) * align
    if header.data_offset > size:
        raise ValueError(f"{path} is not a complete GGUF file (header runs past the end)")
    return header


__all__ = ["GgufHeader", "read_header"]
