"""What a decoder-only transformer's config.json implies, in one place: parameter counts (dense, MoE, MLA,
tied embeddings). Pure arithmetic on config dicts; no torch."""

from __future__ import annotations

from collections.abc import Mapping


def _get(config: Mapping, key: str, default=None):
    value = config.get(key)
    return default if value is None else value


def count_parameters(config: Mapping) -> int | None:
    """Parameters of a decoder-only transformer from its config.json values (Qwen2/2.5/3, Llama,
    DeepSeek-V2 MLA + MoE); None when a needed field is missing. Checked against every card's
    published exact count in tests/test_preflight.py."""
    try:
        h, layers, vocab = int(config["hidden_size"]), int(config["num_hidden_layers"]), int(config["vocab_size"])
        heads = int(config["num_attention_heads"])
        kv_heads = int(_get(config, "num_key_value_heads", heads))
        head_dim = int(_get(config, "head_dim", h // heads))
        inter = int(config["intermediate_size"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    model_type = str(config.get("model_type", ""))
    if config.get("kv_lora_rank") is not None:  # multi-head latent attention (DeepSeek-V2)
        nope, rope, v_dim = int(config["qk_nope_head_dim"]), int(config["qk_rope_head_dim"]), int(config["v_head_dim"])
        rank, q_rank = int(config["kv_lora_rank"]), config.get("q_lora_rank")
        q = h * heads * (nope + rope) if q_rank is None else h * q_rank + q_rank + q_rank * heads * (nope + rope)
        attn = q + h * (rank + rope) + rank + rank * heads * (nope + v_dim) + heads * v_dim * h
    else:
        bias = bool(config.get("attention_bias", model_type == "qwen2"))  # Qwen2 carries q/k/v biases
        q_out, kv_out = heads * head_dim, kv_heads * head_dim
        attn = h * q_out + 2 * h * kv_out + q_out * h + (q_out + 2 * kv_out if bias else 0)
        if model_type == "qwen3":
            attn += 2 * head_dim  # q_norm and k_norm
    dense_mlp = 3 * h * inter
    experts = config.get("n_routed_experts")
    if experts:
        moe_inter, shared = int(config["moe_intermediate_size"]), int(_get(config, "n_shared_experts", 0))
        moe_mlp = 3 * h * moe_inter * (int(experts) + shared) + h * int(experts)  # experts + router
        dense_layers = int(_get(config, "first_k_dense_replace", 0))
        mlp_total = dense_layers * dense_mlp + (layers - dense_layers) * moe_mlp
    else:
        mlp_total = layers * dense_mlp
    embeddings = vocab * h * (1 if config.get("tie_word_embeddings") else 2)
    return layers * (attn + 2 * h) + mlp_total + h + embeddings
