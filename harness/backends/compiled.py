"""Compiled decoding for the transformers engine on CUDA: a static KV cache, so the decode step has
fixed shapes that transformers' generate auto-compiles (torch.compile, mode reduce-overhead: CUDA
graphs), which takes the per-token host overhead out of batch-1 decoding.

Recompilation is avoided by bucketing: prompts are left-padded to a multiple of BUCKET tokens and
the cache is sized to a power-of-two bucket (transformers keeps the largest size seen), so batches
of the same size reuse one graph. A new batch shape is compiled by a short untimed generation
before the timed one (its seconds are recorded). Where compilation is unavailable (not CUDA, no
Triton, a model split over devices) decoding stays eager with the reason recorded; if a compiled
generation fails, the backend falls back to eager for the rest of the run and records why.
"""

from __future__ import annotations

import importlib.util

from harness.errors import ConfigError

BUCKET = 64
MODES = ("auto", "on", "off")


def decide(requested: str, device_type: str, model=None) -> tuple[bool, str]:
    """(compile?, reason). `on` where it cannot work is an error; `auto` falls back to eager."""
    if requested not in MODES:
        raise ConfigError(f"unknown compile mode {requested!r}", f"use one of {', '.join(MODES)}")
    if requested == "off":
        return False, "requested off: eager decoding"
    problem = why_not(device_type, model)
    if problem:
        if requested == "on":
            raise ConfigError(f"--compile on is not possible here: {problem}", "use --compile auto (eager where compile cannot run)")
        return False, f"auto: {problem}; eager decoding"
    return True, ("requested" if requested == "on" else "auto") + \
        ": static KV cache with torch.compile (CUDA graphs) for the decode step, prompts bucketed to multiples of " + str(BUCKET)


def why_not(device_type: str, model=None) -> str | None:
    if device_type != "cuda":
        return f"compiled decoding is set up for CUDA only ({device_type} here)"
    import torch

    if not hasattr(torch, "compile"):
        return "this torch has no torch.compile"
    if importlib.util.find_spec("triton") is None:
        return "Triton is not installed (torch.compile's GPU code generator)"
    device_map = getattr(model, "hf_device_map", None) or {}
    if len(set(device_map.values())) > 1:
        return "the model is split over devices (--device-map)"
    if getattr(model, "hf_quantizer", None) is not None and not getattr(model.hf_quantizer, "is_compileable", False):
        return "the model's quantization cannot be compiled"
    return None


def cache_bucket(tokens: int) -> int:
    """The static cache length for `tokens`: the next power of two, at least BUCKET."""
    n = BUCKET
    while n < tokens:
        n *= 2
    return n


def generation_kwargs(prompt_width: int, max_new_tokens: int) -> dict:
    return {"cache_implementation": "static", "max_cache_len": cache_bucket(prompt_width + max_new_tokens)}
