"""Model FLOPs of training a decoder-only transformer, from its config dims.

The approximation (PaLM, arXiv 2204.02311, Appendix B; the convention behind published MFU):
    training FLOPs per token = 6 * N + 6 * L * H * (d_qk + d_v) * T
- N: the matmul weights one token passes through (attention projections, the dense MLP or the
  routed experts it is sent to plus shared experts and the router, the output head). Embedding
  lookups and norms do no matmul and are left out. Each weight costs 2 FLOPs forward (multiply and
  add) and 4 backward (gradients of the input and of the weight): 6 per token.
- The second term: attention scores (Q K^T) and their weighted sum of values (A V) over a context
  of T tokens, for each of H query heads in L layers, forward and backward, counting the whole
  T x T block as PaLM does (a causal kernel can skip about half). For d_qk = d_v = Q it is PaLM's
  12 L H Q T.
Optimizer updates, softmax, norms and activation recomputation are not model FLOPs.

Dims use config.json key names, so a transformers config dict, its object, or a card's `arch`
block all work. Dense (Llama/Qwen2/Qwen3), DeepSeek MoE with MLA (DeepSeek-V2/V3) and Qwen MoE
configs are understood; anything else raises ValueError naming the missing key.
"""

from __future__ import annotations

from collections.abc import Mapping


def _get(cfg, key: str, default=None):
    v = cfg.get(key, default) if isinstance(cfg, Mapping) else getattr(cfg, key, default)
    return default if v is None else v


def _need(cfg, key: str) -> int:
    v = _get(cfg, key)
    if v is None:
        raise ValueError(f"the config lacks {key!r}, which the FLOPs count needs")
    return int(v)


def head_dims(cfg) -> tuple[int, int, int]:
    """(query heads, d_qk, d_v) of the attention."""
    heads = _need(cfg, "num_attention_heads")
    if _get(cfg, "kv_lora_rank") is not None:  # MLA
        return heads, _need(cfg, "qk_nope_head_dim") + _need(cfg, "qk_rope_head_dim"), _need(cfg, "v_head_dim")
    hd = int(_get(cfg, "head_dim") or _need(cfg, "hidden_size") // heads)
    return heads, hd, hd


def attention_params(cfg) -> int:
    """Matmul weights of one attention block (q, k, v, o projections; MLA's low-rank factors)."""
    h = _need(cfg, "hidden_size")
    heads, dqk, dv = head_dims(cfg)
    if _get(cfg, "kv_lora_rank") is not None:
        qr = _get(cfg, "q_lora_rank")
        q = h * heads * dqk if qr is None else h * int(qr) + int(qr) * heads * dqk
        kvr, rope = _need(cfg, "kv_lora_rank"), _need(cfg, "qk_rope_head_dim")
        kv = h * (kvr + rope) + kvr * heads * (_need(cfg, "qk_nope_head_dim") + dv)
        return q + kv + heads * dv * h
    kv_heads = int(_get(cfg, "num_key_value_heads") or heads)
    return h * heads * dqk + 2 * h * kv_heads * dqk + heads * dv * h


def _is_moe_layer(cfg, i: int) -> bool:
    if _get(cfg, "n_routed_experts"):  # DeepSeek
        return i >= int(_get(cfg, "first_k_dense_replace", 0)) and i % int(_get(cfg, "moe_layer_freq", 1)) == 0
    if _get(cfg, "num_experts"):  # Qwen MoE
        return i not in (_get(cfg, "mlp_only_layers") or []) and (i + 1) % int(_get(cfg, "decoder_sparse_step", 1)) == 0
    return False


def mlp_params(cfg, i: int, *, active: bool = True) -> int:
    """Matmul weights of layer i's MLP a token passes through (active) or all of them (active=False).

    Gated MLPs (SwiGLU: gate, up, down) of width intermediate_size; an MoE layer has a router,
    routed experts (top-k of them when active) and shared experts."""
    h = _need(cfg, "hidden_size")
    if not _is_moe_layer(cfg, i):
        return 3 * h * _need(cfg, "intermediate_size")
    e = _need(cfg, "moe_intermediate_size")
    if _get(cfg, "n_routed_experts"):
        routed, shared = _need(cfg, "n_routed_experts"), 3 * h * e * int(_get(cfg, "n_shared_experts", 0))
    else:
        routed, shared_w = _need(cfg, "num_experts"), int(_get(cfg, "shared_expert_intermediate_size", 0))
        shared = 3 * h * shared_w + (h if shared_w else 0)  # Qwen's shared expert has a 1-wide gate
    used = _need(cfg, "num_experts_per_tok") if active else routed
    return h * routed + used * 3 * h * e + shared


def matmul_params(cfg, *, active: bool = True, layers: int | None = None) -> dict:
    """{"attention", "mlp", "head", "total"}: matmul weights per token (active) or in the model."""
    n_layers = layers if layers is not None else _need(cfg, "num_hidden_layers")
    attn = n_layers * attention_params(cfg)
    mlp = sum(mlp_params(cfg, i, active=active) for i in range(n_layers))
    head = _need(cfg, "hidden_size") * _need(cfg, "vocab_size")  # the output head is a matmul even when tied
    return {"attention": attn, "mlp": mlp, "head": head, "total": attn + mlp + head}


def attention_flops_per_token(cfg, seq_len: int, *, layers: int | None = None) -> float:
    """Forward + backward FLOPs of Q K^T and A V per token at context seq_len: 6 L H (d_qk + d_v) T."""
    n_layers = layers if layers is not None else _need(cfg, "num_hidden_layers")
    heads, dqk, dv = head_dims(cfg)
    return 6.0 * n_layers * heads * (dqk + dv) * seq_len


def train_flops_per_token(cfg, seq_len: int) -> dict:
    """Training FLOPs per token of a config at seq_len: 6 N (active matmul weights) + attention."""
    n = matmul_params(cfg)["total"]
    attn = attention_flops_per_token(cfg, seq_len)
    return {"n_active_matmul": n, "dense_flops": 6.0 * n, "attention_flops": attn, "total": 6.0 * n + attn}
