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

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from harness.measure.bandwidth import (  # noqa: F401  (re-exported: the roofline's inputs)
    bandwidth_record,
    cache_path,
    cached_bandwidth,
    measure_bandwidth,
    published_peak,
    sync_device,
)

_DTYPE_BYTES = {"float32": 4, "float": 4, "float16": 2, "half": 2, "bfloat16": 2, "float8_e4m3fn": 1, "int8": 1}


@dataclass(frozen=True)
class WeightLayout:
    """Parameter bytes by how a decoding step reads them."""

    total: int  # every parameter once (a tied embedding/head table counted once)
    embedding_table: int = 0  # input embedding table (vocab x hidden x bytes)
    embedding_row: int = 0  # one row of it
    tied: bool = False  # the output head is the embedding table
    expert: int = 0  # one routed expert of one MoE layer
    moe_layers: int = 0
    experts: int = 0  # routed experts per MoE layer (E)
    experts_per_token: int = 0  # k

    def experts_read(self, batch: int) -> float:
        """Expected distinct routed experts per MoE layer a step of `batch` tokens reads (uniform routing)."""
        if not self.experts:
            return 0.0
        if batch <= 1:
            return float(self.experts_per_token)
        return self.experts * (1 - (1 - self.experts_per_token / self.experts) ** batch)

    def read_per_step(self, batch: int = 1) -> float:
        """Weight bytes one decoding step of `batch` sequences reads."""
        b = max(1, batch)
        out = self.total - self.embedding_table + min(b * self.embedding_row, self.embedding_table)
        if self.tied:
            out += self.embedding_table  # the logits read the whole (shared) table
        out -= self.moe_layers * (self.experts - self.experts_read(b)) * self.expert
        return float(out)


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


def dtype_bytes(dtype) -> int:
    """Bytes per element of a dtype name ("bfloat16", "torch.float32", ...); 2 when unknown."""
    return _DTYPE_BYTES.get(str(dtype).replace("torch.", ""), 2)


def _get(config, key: str):
    return config.get(key) if isinstance(config, Mapping) else getattr(config, key, None)


def kv_bytes_per_token(config, dtype_bytes: int | None = None, *, mla_compressed: bool = False) -> int:
    """KV-cache bytes per token of context: 2 (K and V) x layers x KV heads x head dim x bytes.

    `config` is a transformers config object or its dict. head_dim defaults to
    hidden_size / num_attention_heads when the config lacks it (Qwen2) and is read when present
    (Qwen3, whose head_dim differs from that ratio). dtype_bytes defaults to the config's dtype
    (2 when absent). MLA models (DeepSeek-V2): transformers caches decompressed K and V per head;
    `mla_compressed=True` gives the latent cache engines such as vLLM keep instead.
    """
    text = _get(config, "text_config")
    if text is not None and _get(config, "num_hidden_layers") is None:
        config = text  # multimodal wrappers keep the language model's shape in text_config
    if dtype_bytes is None:
        dtype = _get(config, "torch_dtype") or _get(config, "dtype")
        dtype_bytes = _DTYPE_BYTES.get(str(dtype).replace("torch.", ""), 2)
    layers = int(_get(config, "num_hidden_layers"))
    heads = int(_get(config, "num_attention_heads"))
    if _get(config, "kv_lora_rank") is not None:
        rope = int(_get(config, "qk_rope_head_dim"))
        if mla_compressed:
            return layers * (int(_get(config, "kv_lora_rank")) + rope) * dtype_bytes
        k_dim = int(_get(config, "qk_nope_head_dim")) + rope
        return layers * heads * (k_dim + int(_get(config, "v_head_dim"))) * dtype_bytes
    kv_heads = int(_get(config, "num_key_value_heads") or heads)
    head_dim = _get(config, "head_dim") or int(_get(config, "hidden_size")) // heads
    return 2 * layers * kv_heads * int(head_dim) * dtype_bytes


def kv_bytes_or_none(config, dtype_bytes: int | None = None, *, mla_compressed: bool = False) -> int | None:
    """`kv_bytes_per_token`, or None when the config lacks a field it needs (backends report
    an unknown KV size rather than fail a run over the roofline)."""
    try:
        return kv_bytes_per_token(config, dtype_bytes, mla_compressed=mla_compressed)
    except (TypeError, ValueError, ZeroDivisionError):
        return None


def _dims(config) -> dict:
    text = _get(config, "text_config")
    if text is not None and _get(config, "num_hidden_layers") is None:
        config = text
    g = lambda k, d=None: _get(config, k) if _get(config, k) is not None else d  # noqa: E731
    return {"g": g, "h": int(g("hidden_size")), "L": int(g("num_hidden_layers")), "V": int(g("vocab_size")),
            "heads": int(g("num_attention_heads")), "mt": str(g("model_type", ""))}


def parameter_counts(config) -> dict:
    """Parameters by role from a transformers config (dense/GQA: Llama, Qwen2, Qwen3, Mistral;
    MLA + MoE: DeepSeek-V2/V3): {"total", "embedding", "tied", "expert", "moe_layers", "experts",
    "experts_per_token"}. "total" counts a tied table once. The formula is the one model_cards/
    use for parameters.exact (tests/test_roofline.py checks it against every card)."""
    d = _dims(config)
    g, h, L, V, heads = d["g"], d["h"], d["L"], d["V"], d["heads"]
    tied = bool(g("tie_word_embeddings", False))
    per_layer, moe_layers, experts, k, expert = 2 * h, 0, 0, 0, 0  # two RMSNorms per layer
    if g("kv_lora_rank") is not None:  # MLA (DeepSeek-V2/V3)
        nope, rope, vdim, kvr, qr = int(g("qk_nope_head_dim")), int(g("qk_rope_head_dim")), int(g("v_head_dim")), int(g("kv_lora_rank")), g("q_lora_rank")
        qdim = heads * (nope + rope)
        attn = (h * qr + qr + qr * qdim) if qr else h * qdim
        attn += h * (kvr + rope) + kvr + kvr * heads * (nope + vdim) + heads * vdim * h
    else:
        kvh = int(g("num_key_value_heads", heads))
        hd = int(g("head_dim") or h // heads)
        attn = h * heads * hd + 2 * h * kvh * hd + heads * hd * h
        if d["mt"] == "qwen2" or g("attention_bias", False):
            attn += heads * hd + 2 * kvh * hd + (0 if d["mt"] == "qwen2" else h)  # Llama's attention_bias covers o_proj too
        if d["mt"] == "qwen3":
            attn += 2 * hd  # q_norm, k_norm
    dense_mlp = 3 * h * int(g("intermediate_size"))
    total = 0
    n_routed = g("n_routed_experts") or g("num_experts")
    if n_routed:
        experts, k = int(n_routed), int(g("num_experts_per_tok"))
        moe_i = int(g("moe_intermediate_size"))
        expert = 3 * h * moe_i
        first_dense = int(g("first_k_dense_replace", 0))
        moe_layers = L - first_dense
        shared = 3 * h * moe_i * int(g("n_shared_experts", 0) or 0)
        gate = experts * h + (experts if g("topk_method") == "noaux_tc" else 0)
        total += first_dense * (per_layer + attn + dense_mlp) + moe_layers * (per_layer + attn + experts * expert + shared + gate)
    else:
        total += L * (per_layer + attn + dense_mlp)
    total += h + V * h * (1 if tied else 2)  # final norm, embedding (+ untied head)
    return {"total": total, "embedding": V * h, "embedding_row": h, "tied": tied, "expert": expert,
            "moe_layers": moe_layers, "experts": experts, "experts_per_token": k}


def weight_layout(config, dtype_bytes: int = 2) -> WeightLayout:
    """WeightLayout in bytes from a config (see parameter_counts)."""
    c = parameter_counts(config)
    return WeightLayout(total=c["total"] * dtype_bytes, embedding_table=c["embedding"] * dtype_bytes,
                        embedding_row=c["embedding_row"] * dtype_bytes, tied=c["tied"], expert=c["expert"] * dtype_bytes,
                        moe_layers=c["moe_layers"], experts=c["experts"], experts_per_token=c["experts_per_token"])


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
        return bool(_get(config, "n_routed_experts") or _get(config, "num_experts")) and _get(config, "num_experts_per_tok") is not None
    except Exception:
        return False


def layout_or_total(config, weight_bytes: int | None, dtype_bytes: int | None) -> WeightLayout | None:
    """A config's WeightLayout, or every weight read once (no split known) when the config cannot be counted."""
    try:
        return weight_layout(config, dtype_bytes or 2)
    except (TypeError, ValueError, KeyError):
        return WeightLayout(total=int(weight_bytes)) if weight_bytes else None
