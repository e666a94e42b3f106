"""Compiled decoding (static KV cache + torch.compile on CUDA): when it is chosen, that an explicit
request it cannot honour is an error, that the static-cache path gives the eager outputs, and that
a failing compiled generation falls back to eager with the reason recorded. Runs on CPU: there
transformers uses the static cache without compiling, which still exercises the harness's path."""

from __future__ import annotations

import importlib.util

import pytest
from helpers import tiny_model_folder

from harness.backends import compiled
from harness.backends.hf import TransformersBackend
from harness.core.types import Request, Sampling
from harness.errors import ConfigError
from harness.runtime.device import resolve

PROMPTS = ["What is 2 + 3?", "Tom has 5 apples and buys 7 more. How many now?", "hi"]


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    folder = tiny_model_folder(tmp_path_factory.mktemp("tiny-qwen2"))
    return TransformersBackend.from_options(str(folder), device=resolve("cpu", "float32"))


def _reqs():
    return [Request(key=str(i), messages=({"role": "user", "content": p},), sampling=Sampling(max_new_tokens=10), seed=i)
            for i, p in enumerate(PROMPTS)]


def test_where_compiled_decoding_is_chosen(monkeypatch):
    assert compiled.decide("auto", "cpu") == (False, "auto: compiled decoding is set up for CUDA only (cpu here); eager decoding")
    assert compiled.decide("off", "cuda")[0] is False
    with pytest.raises(ConfigError, match="--compile auto"):
        compiled.decide("on", "cpu")
    with pytest.raises(ConfigError):
        compiled.decide("maybe", "cuda")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "triton" else real(name, *a))
    ok, why = compiled.decide("auto", "cuda")
    assert not ok and "Triton" in why
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "triton" else real(name, *a))
    assert compiled.decide("auto", "cuda")[0] is True
    assert compiled.decide("on", "cuda") == (True, compiled.decide("on", "cuda")[1]) and "requested" in compiled.decide("on", "cuda")[1]

    class Split:
        hf_device_map = {"a": 0, "b": 1}

    assert "split" in compiled.decide("auto", "cuda", Split())[1]


def test_cache_buckets_limit_the_shapes():
    assert [compiled.cache_bucket(n) for n in (1, 64, 65, 300, 1024)] == [64, 64, 128, 512, 1024]
    assert compiled.generation_kwargs(64, 100) == {"cache_implementation": "static", "max_cache_len": 256}


def test_eager_is_recorded_on_cpu(backend):
    assert backend.compiled is False
    assert backend.info.engine["compiled"] is False and "CUDA only" in backend.info.engine["compile_reason"]


def test_static_cache_path_keeps_greedy_outputs(backend, monkeypatch):
    eager = backend.generate(_reqs())
    monkeypatch.setattr(backend, "compiled", True)
    monkeypatch.setattr(backend, "info", type(backend.info)(**{**backend.info.__dict__, "engine": {}}))
    static = backend.generate(_reqs())
    assert [c.text for c in static] == [c.text for c in eager]
    assert [c.output_tokens for c in static] == [c.output_tokens for c in eager]
    assert [c.input_tokens for c in static] == [c.input_tokens for c in eager]  # bucket padding is not counted
    assert backend.info.engine["compiled_shapes"] and backend.info.engine["compile_warmup_s"] > 0
    backend.generate(_reqs())
    assert len(backend.info.engine["compiled_shapes"]) == 1  # the same shape is not warmed up again


def test_a_failing_compiled_generation_falls_back_to_eager(backend, monkeypatch):
    eager = backend.generate(_reqs())
    monkeypatch.setattr(backend, "compiled", True)
    monkeypatch.setattr(backend, "info", type(backend.info)(**{**backend.info.__dict__, "engine": {}}))
    real = backend.model.generate

    def broken(*args, generation_config=None, **kwargs):
        if getattr(generation_config, "cache_implementation", None) == "static":
            raise RuntimeError("inductor: something unsupported\nmore")
        return real(*args, generation_config=generation_config, **kwargs)

    monkeypatch.setattr(backend.model, "generate", broken)
    again = backend.generate(_reqs())
    assert [c.text for c in again] == [c.text for c in eager]
    assert backend.compiled is False
    assert backend.info.engine["compiled"] is False and "fell back to eager" in backend.info.engine["compile_reason"]
    assert "something unsupported" in backend.info.engine["compile_reason"] and "more" not in backend.info.engine["compile_reason"]
