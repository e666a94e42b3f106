"""Memory-bandwidth roofline for decoding: how close measured decode speed is to its bound.

One decoding step of a batch of B sequences reads, from device memory:
- the weights it uses: every parameter once, except the input embedding table, of which only the
  B looked-up rows are read (a tied output head still reads the whole table once, as the
  logits), and, in an MoE layer, only the routed experts the B tokens chose (the expected number
  of distinct experts, E (1 - (1 - k/E)^B), with uniform routing; k at B = 1);
- the KV cache of every sequence in the batch at its context length.
It produces B tokens. So
    bound steps/s = bandwidth / (weights read + B x KV bytes per token x mean context),
    bound tokens/s = B x steps/s (aggregate), and steps/s per sequence.
Bandwidth comes from harness/measure/bandwidth.py (measured, cached with its age, beside the
published peak). `weight_layout` counts a transformers config's parameters by role for the dense,
GQA (Llama, Qwen2/3) and MLA + MoE (DeepSeek-V2/V3) families; `weight_layout_from_model` reads
the same from a loaded model's parameters.
"""

from __future__ import annotations

from dataclasses import asdict

from harness.core.architecture import WeightLayout, parameter_counts, routed_experts
from harness.measure.bandwidth import (  # noqa: F401  (re-exported: the roofline's inputs)
    bandwidth_record,
    cache_path,
    cached_bandwidth,
    measure_bandwidth,
    published_peak,
    sync_device,
)


def decode_step(layout: WeightLayout, kv_bytes_per_token: float, batch: int, mean_context: float) -> dict:
    """Bytes one decoding step reads, split into weights and KV, and the bytes per generated token."""
    b = max(1, batch)
    weights = layout.read_per_step(b)
    kv = b * kv_bytes_per_token * mean_context
    return {"weight_bytes_per_step": weights, "kv_bytes_per_step": kv, "bytes_per_step": weights + kv,
            "bytes_per_token": (weights + kv) / b, "tokens_per_step": b}


def roofline(bandwidth: dict, layout: WeightLayout, kv_bytes_per_token: float, *, batch: int, mean_context: float,
             measured_per_sequence: float | None, peak: dict | None = None) -> dict:
    """run.json's `perf.roofline` for a run decoding `batch` sequences at `mean_context` tokens.

    `bandwidth` is a bandwidth_record; `measured_per_sequence` the decode rate of one sequence
    (1 / time per output token). fraction = measured / bound (the same per sequence or in aggregate).
    """
    step = decode_step(layout, kv_bytes_per_token, batch, mean_context)
    gbps = float(bandwidth["gbps"])
    steps = gbps * 1e9 / step["bytes_per_step"] if step["bytes_per_step"] > 0 else None
    b = step["tokens_per_step"]
    peak = peak or {"gbps": None, "source": "device unknown"}
    return {
        "bandwidth_gbps": gbps, "bandwidth_source": bandwidth.get("source"), "bandwidth_measured_utc": bandwidth.get("measured_utc"),
        "bandwidth_method": bandwidth.get("method"), "bandwidth_passes": bandwidth.get("passes"),
        "peak_bandwidth_gbps": peak.get("gbps"), "peak_bandwidth_source": peak.get("source"),
        "batch": b, "mean_context_tokens": mean_context, **step, "weights": asdict(layout),
        "bound_tokens_per_s_per_sequence": steps,
        "bound_tokens_per_s": None if steps is None else steps * b,
        "measured_tokens_per_s_per_sequence": measured_per_sequence,
        "measured_tokens_per_s": None if measured_per_sequence is None else measured_per_sequence * b,
        "fraction": measured_per_sequence / steps if measured_per_sequence is not None and steps else None,
    }


def weight_layout_from_model(model) -> WeightLayout:
    """WeightLayout of a loaded transformers model, from its actual parameters (shared tensors once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel() * p.element_size()
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    tied = head is not None and getattr(head, "weight", None) is not None and head.weight.data_ptr() == emb.data_ptr()
    table = emb.numel() * emb.element_size()
    c = parameter_counts(model.config) if _is_moe(model.config) else None
    size = emb.element_size()
    return WeightLayout(total=total, embedding_table=table, embedding_row=emb.shape[-1] * size, tied=tied,
                        expert=(c["expert"] * size) if c else 0, moe_layers=c["moe_layers"] if c else 0,
                        experts=c["experts"] if c else 0, experts_per_token=c["experts_per_token"] if c else 0)


def _is_moe(config) -> bool:
    try:
        return routed_experts(config) > 0
    except Exception:
        return False


