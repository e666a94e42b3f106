"""What a decoder-only transformer's config implies, in one place: parameters by role (dense, GQA, MLA,
MoE with routed and shared experts, tied embeddings), the matmul weights a token passes through, KV-cache
bytes per token, and the weight bytes one decoding step reads. The memory estimate, the plan's time, the
run's roofline and the training FLOPs all read these; tests/test_architecture_formulas.py checks them
against every card's published parameter count and every shipped config, MoE ones included.

`config` is a config.json dict, a transformers config object, or a card's `arch` block (same key names);
multimodal wrappers are read through their `text_config`. Pure arithmetic; no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DTYPE_BYTES = {"float32": 4, "float": 4, "float16": 2, "half": 2, "bfloat16": 2, "float8_e4m3fn": 1, "int8": 1}


def _text(config: Any) -> Any:
    text = get(config, "text_config")
    return text if text is not None and get(config, "num_hidden_layers") is None else config


def get(config: Any, key: str, default: Any = None) -> Any:
    """`config[key]` (a dict) or `config.key` (an object), `default` when absent or None."""
    value = config.get(key) if isinstance(config, Mapping) else getattr(config, key, None)
    return default if value is None else value


def need(config: Any, key: str) -> int:
    """An integer dimension the formulas cannot do without (ValueError naming it otherwise)."""
    value = get(config, key)
    if value is None:
        raise ValueError(f"the config lacks {key!r}")
    return int(value)


def dtype_bytes(dtype: object) -> int:
    """Bytes per element of a dtype name ("bfloat16", "torch.float32", ...); 2 when unknown."""
    return DTYPE_BYTES.get(str(dtype).replace("torch.", ""), 2)


# ---- per layer ---------------------------------------------------------------------------------
def head_dims(config: Any) -> tuple[int, int, int]:
    """(query heads, d_qk, d_v) of the attention."""
    config = _text(config)
    heads = need(config, "num_attention_heads")
    if get(config, "kv_lora_rank") is not None:  # MLA
        return heads, need(config, "qk_nope_head_dim") + need(config, "qk_rope_head_dim"), need(config, "v_head_dim")
    hd = int(get(config, "head_dim") or need(config, "hidden_size") // heads)
    return heads, hd, hd


def attention_matmul_params(config: Any) -> int:
    """Matmul weights of one attention block (q, k, v, o projections; MLA's low-rank factors)."""
    config = _text(config)
    h = need(config, "hidden_size")
    heads, dqk, dv = head_dims(config)
    if get(config, "kv_lora_rank") is not None:
        qr = get(config, "q_lora_rank")
        q = h * heads * dqk if qr is None else h * int(qr) + int(qr) * heads * dqk
        kvr, rope = need(config, "kv_lora_rank"), need(config, "qk_rope_head_dim")
        kv = h * (kvr + rope) + kvr * heads * (need(config, "qk_nope_head_dim") + dv)
        return q + kv + heads * dv * h
    kv_heads = int(get(config, "num_key_value_heads") or heads)
    return h * heads * dqk + 2 * h * kv_heads * dqk + heads * dv * h


def attention_params(config: Any) -> int:
    """All parameters of one attention block: the matmuls plus biases and norms (Qwen2's q/k/v biases,
    Llama's attention_bias, Qwen3's q_norm and k_norm, MLA's latent norms)."""
    config = _text(config)
    out = attention_matmul_params(config)
    heads, dqk, _ = head_dims(config)
    model_type = str(get(config, "model_type", ""))
    if get(config, "kv_lora_rank") is not None:
        return out + need(config, "kv_lora_rank") + (int(get(config, "q_lora_rank") or 0))  # kv_a_layernorm, q_a_layernorm
    kv_heads = int(get(config, "num_key_value_heads") or heads)
    if model_type == "qwen2" or get(config, "attention_bias", False):
        out += heads * dqk + 2 * kv_heads * dqk + (0 if model_type == "qwen2" else need(config, "hidden_size"))
    if model_type.startswith("qwen3"):
        out += 2 * dqk  # q_norm, k_norm
    return out


def is_moe_layer(config: Any, i: int) -> bool:
    """Whether layer i routes to experts (DeepSeek: after first_k_dense_replace, every moe_layer_freq;
    Qwen MoE: every decoder_sparse_step, except mlp_only_layers)."""
    config = _text(config)
    if get(config, "n_routed_experts"):
        return i >= int(get(config, "first_k_dense_replace", 0)) and i % int(get(config, "moe_layer_freq", 1)) == 0
    if get(config, "num_experts") and get(config, "num_experts_per_tok"):
        return i not in (get(config, "mlp_only_layers") or []) and (i + 1) % int(get(config, "decoder_sparse_step", 1)) == 0
    return False


def routed_experts(config: Any) -> int:
    """Routed experts per MoE layer (E); 0 for a dense model."""
    config = _text(config)
    return int(get(config, "n_routed_experts") or (get(config, "num_experts") if get(config, "num_experts_per_tok") else 0) or 0)


def expert_params(config: Any) -> int:
    """One routed expert (a gated MLP of width moe_intermediate_size)."""
    config = _text(config)
    return 3 * need(config, "hidden_size") * need(config, "moe_intermediate_size")


def mlp_params(config: Any, i: int, *, active: bool = True) -> int:
    """Matmul weights of layer i's MLP a token passes through (active) or all of them (active=False):
    a gated MLP of width intermediate_size, or an MoE layer's router, routed experts (top-k when active)
    and shared experts (Qwen's shared expert has a 1-wide gate)."""
    config = _text(config)
    h = need(config, "hidden_size")
    if not is_moe_layer(config, i):
        return 3 * h * need(config, "intermediate_size")
    e = need(config, "moe_intermediate_size")
    routed = routed_experts(config)
    if get(config, "n_routed_experts"):
        shared = 3 * h * e * int(get(config, "n_shared_experts", 0))
    else:
        width = int(get(config, "shared_expert_intermediate_size", 0))
        shared = 3 * h * width + (h if width else 0)
    used = need(config, "num_experts_per_tok") if active else routed
    return h * routed + used * 3 * h * e + shared


def matmul_params(config: Any, *, active: bool = True, layers: int | None = None) -> dict[str, int]:
    """{"attention", "mlp", "head", "total"}: matmul weights per token (active) or in the model."""
    config = _text(config)
    n_layers = layers if layers is not None else need(config, "num_hidden_layers")
    attn = n_layers * attention_matmul_params(config)
    mlp = sum(mlp_params(config, i, active=active) for i in range(n_layers))
    head = need(config, "hidden_size") * need(config, "vocab_size")  # the output head is a matmul even when tied
    return {"attention": attn, "mlp": mlp, "head": head, "total": attn + mlp + head}


# ---- whole model -------------------------------------------------------------------------------
def parameter_counts(config: Any) -> dict[str, Any]:
    """Parameters by role: {"total", "embedding", "embedding_row", "tied", "expert", "moe_layers",
    "experts", "experts_per_token"}. "total" counts a tied table once; the formula is the one model_cards/
    use for parameters.exact."""
    config = _text(config)
    h, layers, vocab = need(config, "hidden_size"), need(config, "num_hidden_layers"), need(config, "vocab_size")
    tied = bool(get(config, "tie_word_embeddings", False))
    experts = routed_experts(config)
    moe = [i for i in range(layers) if is_moe_layer(config, i)]
    bias = experts if get(config, "topk_method") == "noaux_tc" else 0  # DeepSeek-V3's e_score_correction_bias
    per_layer = 2 * h + attention_params(config)  # two RMSNorms per layer
    total = sum(per_layer + mlp_params(config, i, active=False) + (bias if i in moe else 0) for i in range(layers))
    total += h + vocab * h * (1 if tied else 2)  # final norm, embedding (+ untied head)
    return {"total": total, "embedding": vocab * h, "embedding_row": h, "tied": tied,
            "expert": expert_params(config) if moe else 0, "moe_layers": len(moe), "experts": experts if moe else 0,
            "experts_per_token": int(get(config, "num_experts_per_tok", 0)) if moe else 0}


def count_parameters(config: Any) -> int | None:
    """Every parameter of the model (a tied table once); None when a needed field is missing."""
    try:
        return int(parameter_counts(config)["total"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def active_parameters(config: Any) -> int | None:
    """Parameters one token passes through (an MoE's top-k experts, not all of them); None when unknown."""
    try:
        c = parameter_counts(config)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    return int(c["total"] - c["moe_layers"] * (c["experts"] - c["experts_per_token"]) * c["expert"])


def kv_bytes_per_token(config: Any, dtype_bytes: int | None = None, *, mla_compressed: bool = False) -> int:
    """KV-cache bytes per token of context: 2 (K and V) x layers x KV heads x head dim x bytes.

    head_dim defaults to hidden_size / num_attention_heads (Qwen2) and is read when present (Qwen3).
    dtype_bytes defaults to the config's dtype (2 when absent). MLA models (DeepSeek-V2): transformers
    caches decompressed K and V per head; `mla_compressed=True` gives the latent cache engines such as
    vLLM keep instead.
    """
    config = _text(config)
    if dtype_bytes is None:
        dtype_bytes = DTYPE_BYTES.get(str(get(config, "torch_dtype") or get(config, "dtype")).replace("torch.", ""), 2)
    layers, heads = need(config, "num_hidden_layers"), need(config, "num_attention_heads")
    if get(config, "kv_lora_rank") is not None:
        rope = need(config, "qk_rope_head_dim")
        if mla_compressed:
            return layers * (need(config, "kv_lora_rank") + rope) * dtype_bytes
        return layers * heads * (need(config, "qk_nope_head_dim") + rope + need(config, "v_head_dim")) * dtype_bytes
    kv_heads = int(get(config, "num_key_value_heads") or heads)
    head_dim = int(get(config, "head_dim") or need(config, "hidden_size") // heads)
    return 2 * layers * kv_heads * head_dim * dtype_bytes


def kv_bytes_or_none(config: Any, dtype_bytes: int | None = None, *, mla_compressed: bool = False) -> int | None:
    """`kv_bytes_per_token`, or None when the config lacks a field it needs."""
    try:
        return kv_bytes_per_token(config, dtype_bytes, mla_compressed=mla_compressed)
    except (TypeError, ValueError, ZeroDivisionError):
        return None


# ---- bytes one decoding step reads ---------------------------------------------------------------
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
        """Weight bytes one decoding step of `batch` sequences reads: every weight once, except the input
        embedding table (only the looked-up rows; a tied head still reads the whole table as the logits)
        and an MoE layer's experts (only the distinct ones the batch's tokens chose)."""
        b = max(1, batch)
        out = float(self.total - self.embedding_table + min(b * self.embedding_row, self.embedding_table))
        if self.tied:
            out += self.embedding_table
        out -= self.moe_layers * (self.experts - self.experts_read(b)) * self.expert
        return float(out)


def weight_layout(config: Any, dtype_bytes: float = 2) -> WeightLayout:
    """WeightLayout in bytes from a config, at `dtype_bytes` per parameter (fractional for quantised files)."""
    c = parameter_counts(config)
    w = dtype_bytes
    return WeightLayout(total=int(c["total"] * w), embedding_table=int(c["embedding"] * w), embedding_row=int(c["embedding_row"] * w),
                        tied=c["tied"], expert=int(c["expert"] * w), moe_layers=c["moe_layers"], experts=c["experts"],
                        experts_per_token=c["experts_per_token"])


def layout_or_total(config: Any, weight_bytes: int | None, dtype_bytes: float | None) -> WeightLayout | None:
    """A config's WeightLayout, or every weight read once (no split known) when the config cannot be counted."""
    try:
        return weight_layout(config, dtype_bytes or 2)
    except (TypeError, ValueError, KeyError):
        return WeightLayout(total=int(weight_bytes)) if weight_bytes else None


def bytes_per_step(config: Any, dtype_bytes: float, batch: int, context: float) -> float | None:
    """Bytes one decoding step of `batch` sequences at mean `context` tokens reads: the weights it uses
    plus every sequence's KV cache; None when the config cannot be counted."""
    try:
        layout = weight_layout(config, dtype_bytes)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    kv = kv_bytes_or_none(config, max(1, int(round(dtype_bytes)))) or 0
    return layout.read_per_step(batch) + kv * context * max(1, batch)
