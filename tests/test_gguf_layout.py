"""The llama.cpp roofline reads bytes as a step reads them: harness/measure/gguf_layout.py on a
synthetic GGUF (embedding table, tied head, routed experts) and, where present, the real test models."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from harness.measure.gguf_layout import gguf_weight_layout, read_tensor_table

MODELS = Path.home() / ".cache" / "cnllm-test-models"


def _s(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _gguf(path: Path, tensors: list[tuple[str, tuple[int, ...], int]], meta: dict[str, int | str], tokens: int = 3) -> None:
    """A minimal GGUF v3 file: uint32 and string metadata, a string array, and tensors of the given byte sizes."""
    kv = b"".join(_s(k) + (struct.pack("<I", 8) + _s(v) if isinstance(v, str) else struct.pack("<I", 4) + struct.pack("<I", v))
                  for k, v in meta.items())
    kv += _s("tokenizer.ggml.tokens") + struct.pack("<I", 9) + struct.pack("<I", 8) + struct.pack("<Q", tokens)
    kv += b"".join(_s(f"t{i}") for i in range(tokens))
    infos, offset = b"", 0
    for name, dims, nbytes in tensors:
        infos += _s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<I", 0)
        infos += struct.pack("<Q", offset)
        offset += nbytes
    head = b"GGUF" + struct.pack("<I", 3) + struct.pack("<Q", len(tensors)) + struct.pack("<Q", len(meta) + 1) + kv + infos
    pad = (-len(head)) % 32
    path.write_bytes(head + b"\0" * pad + b"\1" * offset)


def test_embedding_rows_and_active_experts_only(tmp_path):
    f = tmp_path / "moe.gguf"
    tensors = [("token_embd.weight", (64, 1000), 64_000), ("blk.0.attn_q.weight", (64, 64), 4_096),
               ("blk.0.ffn_gate_exps.weight", (64, 32, 8), 16_384), ("blk.0.ffn_up_exps.weight", (64, 32, 8), 16_384),
               ("blk.0.ffn_down_exps.weight", (32, 64, 8), 16_384), ("output_norm.weight", (64,), 256)]
    _gguf(f, tensors, {"general.architecture": "qwen2moe", "qwen2moe.expert_used_count": 2})
    meta, table = read_tensor_table(f)
    assert table["blk.0.ffn_up_exps.weight"] == ((64, 32, 8), 16_384) and meta["tokenizer.ggml.tokens"] == 3
    layout = gguf_weight_layout(f)
    assert layout.total == sum(t[2] for t in tensors) and layout.embedding_table == 64_000 and layout.embedding_row == 64
    assert layout.tied and layout.moe_layers == 1 and layout.experts == 8 and layout.expert == 3 * 16_384 // 8
    # one sequence reads: everything but the embedding table and 6 of the 8 experts, plus one row, plus the tied head
    per_step = layout.total - 64_000 + 64 + 64_000 - 6 * layout.expert
    assert layout.experts_per_token == 2 and layout.read_per_step(1) == per_step


@pytest.mark.parametrize("name", ["smollm2-135m-instruct-q4_1.gguf", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"])
def test_real_files_sum_to_their_data_block(name):
    path = MODELS / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (bash ../shared/models/get.sh fetches it)")
    layout = gguf_weight_layout(path)
    assert 0.9 * path.stat().st_size < layout.total < path.stat().st_size
    assert layout.embedding_row * 1000 < layout.embedding_table  # a row is a tiny part of the table
    assert layout.read_per_step(1) < layout.total or layout.tied
