"""A loaded model's fingerprint: the architecture values that tell one checkpoint family from
another (model type, layers, widths, heads, vocabulary, trained context, tied embeddings, the tokenizer's bos/eos ids), read from a
Hugging Face config or GGUF metadata into one set of names. harness/cards/identity.py compares it
with a card; the engines fill it (ModelInfo.fingerprint)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FIELDS = ("model_type", "num_layers", "hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads",
          "vocab_size", "max_position_embeddings", "tie_word_embeddings", "bos_token_id", "eos_token_id")
_HF = {"model_type": "model_type", "num_layers": "num_hidden_layers", "hidden_size": "hidden_size",
       "intermediate_size": "intermediate_size", "num_attention_heads": "num_attention_heads",
       "num_key_value_heads": "num_key_value_heads", "vocab_size": "vocab_size",
       "max_position_embeddings": "max_position_embeddings", "tie_word_embeddings": "tie_word_embeddings", "bos_token_id": "bos_token_id",
       "eos_token_id": "eos_token_id"}
# GGUF names its architecture by llama.cpp's names; the HF model_type they correspond to.
GGUF_MODEL_TYPES = {"qwen2": "qwen2", "qwen3": "qwen3", "llama": "llama", "deepseek2": "deepseek_v2", "qwen2moe": "qwen2_moe",
                    "qwen3moe": "qwen3_moe", "gemma2": "gemma2", "gemma3": "gemma3", "phi3": "phi3", "mistral": "mistral"}


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (list, tuple)):  # eos_token_id may be a list: its first id is the one a GGUF stores
        return _int(value[0]) if value else None
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def from_hf_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The fingerprint of a Hugging Face config.json (a dict); missing values are left out."""
    text_config = config.get("text_config")
    if isinstance(text_config, Mapping) and "hidden_size" not in config:
        config = {**text_config, "model_type": config.get("model_type")}
    out: dict[str, Any] = {}
    for name, key in _HF.items():
        value = config.get(key)
        if value is None and name == "num_key_value_heads":
            value = config.get("num_attention_heads")
        if name == "model_type" and value is not None:
            out[name] = str(value)
        elif name == "tie_word_embeddings":
            out[name] = value if isinstance(value, bool) else None
        else:
            out[name] = _int(value)
    return {k: v for k, v in out.items() if v is not None}


def from_gguf_metadata(metadata: Mapping[str, Any], n_vocab: int | None = None) -> dict[str, Any]:
    """The fingerprint of a GGUF file's metadata (llama.cpp's key names); `n_vocab` from the loaded vocabulary."""
    arch = str(metadata.get("general.architecture") or "")
    out: dict[str, Any] = {
        "model_type": GGUF_MODEL_TYPES.get(arch, arch) or None,
        "num_layers": _int(metadata.get(f"{arch}.block_count")),
        "hidden_size": _int(metadata.get(f"{arch}.embedding_length")),
        "intermediate_size": _int(metadata.get(f"{arch}.feed_forward_length")),
        "num_attention_heads": _int(metadata.get(f"{arch}.attention.head_count")),
        "num_key_value_heads": _int(metadata.get(f"{arch}.attention.head_count_kv") or metadata.get(f"{arch}.attention.head_count")),
        "vocab_size": n_vocab,
        "max_position_embeddings": _int(metadata.get(f"{arch}.context_length")),
        "bos_token_id": _int(metadata.get("tokenizer.ggml.bos_token_id")),
        "eos_token_id": _int(metadata.get("tokenizer.ggml.eos_token_id")),
    }
    return {k: v for k, v in out.items() if v is not None}
