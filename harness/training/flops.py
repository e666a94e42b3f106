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

Dims use config.json key names (harness/core/architecture.py counts the weights), so a transformers config dict, its object, or a card's `arch`
block all work. Dense (Llama/Qwen2/Qwen3), DeepSeek MoE with MLA (DeepSeek-V2/V3) and Qwen MoE
configs are understood; anything else raises ValueError naming the missing key.
"""

from __future__ import annotations

from harness.core.architecture import head_dims, matmul_params, need  # noqa: F401  (matmul_params re-exported: the N of 6N)


def attention_flops_per_token(cfg, seq_len: int, *, layers: int | None = None) -> float:
    """Forward + backward FLOPs of Q K^T and A V per token at context seq_len: 6 L H (d_qk + d_v) T."""
    n_layers = layers if layers is not None else need(cfg, "num_hidden_layers")
    heads, dqk, dv = head_dims(cfg)
    return 6.0 * n_layers * heads * (dqk + dv) * seq_len


def train_flops_per_token(cfg, seq_len: int) -> dict:
    """Training FLOPs per token of a config at seq_len: 6 N (active matmul weights) + attention."""
    n = matmul_params(cfg)["total"]
    attn = attention_flops_per_token(cfg, seq_len)
    return {"n_active_matmul": n, "dense_flops": 6.0 * n, "attention_flops": attn, "total": 6.0 * n + attn}
