"""Fixtures for the engine tests: a tiny random Qwen2 model, saved as safetensors and as GGUF.

The model has the real Qwen2.5 tokenizer (from the shared fixtures, so the GGUF converter
recognises its pre-tokenizer) and random weights: hidden 64, 2 layers, 4 heads, 2 KV heads,
intermediate 128, tied embeddings (about 10 M parameters, nearly all vocabulary).

GGUF conversion is harness.backends.gguf_convert (llama.cpp's own convert_hf_to_gguf.py from the
installed llama-cpp-python's sdist, cached under ~/.cache/cnllm-harness), shared with
benchmarks/llamacpp_direct.py. Import the fixtures into a test module: `from engine_fixtures import tiny_gguf`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.backends.gguf_convert import convert_to_gguf, llama_cpp_converter  # noqa: F401  (re-exported for tests)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARNESS_SHARED", REPO.parent / "shared")).resolve()
QWEN_TOKENIZER = SHARED / "fixtures" / "qwen2.5-tokenizer"

requires_shared = pytest.mark.skipif(not QWEN_TOKENIZER.is_dir(), reason=f"shared fixtures absent: {QWEN_TOKENIZER}")


def build_tiny_qwen(out: Path, seed: int = 0, eager_eos: bool = False) -> Path:
    """Save a random tiny Qwen2 with the real Qwen2.5 tokenizer to `out` (safetensors).

    The weights are drawn with std 0.5 (not transformers' 0.02): at 0.02 the tied embeddings
    dominate the residual stream and greedy decoding repeats the last prompt token forever,
    which would make any parity check trivial; at 0.5 the output varies and the top-2 logit
    margins stay far above float32 noise.

    eager_eos=True (drawn at 0.02) makes <|im_end|> the greedy choice at every step: every token's embedding
    gets a large constant in dimension 0, which dominates the residual stream, so the final
    hidden state points along dimension 0; the (tied) output row of <|im_end|> has twice that
    constant there, so its logit is about twice any other's. Random weights never end on their own.
    """
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(QWEN_TOKENIZER)
    config = Qwen2Config(
        vocab_size=151936,  # Qwen2.5's padded vocabulary, as in the released checkpoints
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=4096,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        initializer_range=0.02 if eager_eos else 0.5,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).to(torch.float32).eval()
    if eager_eos:
        with torch.no_grad():
            embeddings = model.get_input_embeddings().weight
            embeddings[:, 0] = 10.0
            embeddings[config.eos_token_id, 0] = 20.0
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


@dataclass(frozen=True)
class TinyModels:
    qwen_dir: Path  # random weights, safetensors + tokenizer
    gguf: Path  # the same model as f32 GGUF
    eager_eos_dir: Path  # a variant that ends at once unless held back (see build_tiny_qwen)
    eager_eos_gguf: Path


_built: dict[str, TinyModels] = {}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> TinyModels:
    # Each test module that imports this fixture gets its own session-scoped copy of it, so the
    # models are memoised here: they are built once per session, whichever module asks first.
    if not QWEN_TOKENIZER.is_dir():
        pytest.skip(f"shared fixtures absent: {QWEN_TOKENIZER}")
    if "models" not in _built:
        root = tmp_path_factory.mktemp("tiny-models")
        plain = build_tiny_qwen(root / "tiny-qwen")
        eager = build_tiny_qwen(root / "eager-eos-qwen", eager_eos=True)
        ggufs = convert_to_gguf([(plain, root / "tiny-qwen-f32.gguf"), (eager, root / "eager-eos-f32.gguf")])
        _built["models"] = TinyModels(plain, ggufs[0], eager, ggufs[1])
    return _built["models"]


@pytest.fixture(scope="session")
def tiny_qwen_dir(tiny_models) -> Path:
    return tiny_models.qwen_dir


@pytest.fixture(scope="session")
def tiny_gguf(tiny_models) -> Path:
    return tiny_models.gguf


@pytest.fixture(scope="session")
def eager_eos_qwen_dir(tiny_models) -> Path:
    return tiny_models.eager_eos_dir


@pytest.fixture(scope="session")
def eager_eos_gguf(tiny_models) -> Path:
    return tiny_models.eager_eos_gguf
