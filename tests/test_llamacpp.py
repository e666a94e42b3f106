"""The llama.cpp backend on tiny random GGUF models: greedy parity with transformers, finish
reasons, stop strings, minimum lengths, seeds, and the model record."""

from __future__ import annotations

import sys

import pytest

from harness.core.types import Request, Sampling
from harness.errors import ModelLoadError

try:
    from engine_fixtures import eager_eos_gguf, eager_eos_qwen_dir, tiny_gguf, tiny_models, tiny_qwen_dir  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.engine_fixtures import eager_eos_gguf, eager_eos_qwen_dir, tiny_gguf, tiny_models, tiny_qwen_dir  # noqa: F401

PROMPTS = ["What is 2 + 2?", "Write a haiku about rain.", "用一句话介绍你自己。", "List three prime numbers."]


def _req(content: str, key: str = "t/0/0", seed: int = 0, **sampling) -> Request:
    return Request(key, ({"role": "user", "content": content},), Sampling(**sampling), seed=seed)


@pytest.fixture(scope="module")
def backend(tiny_gguf):
    pytest.importorskip("llama_cpp")
    from harness.backends.llamacpp import LlamaCppBackend

    b = LlamaCppBackend.from_options(str(tiny_gguf), n_ctx=1024, revision=None, dtype="float32")
    yield b
    b.close()


@pytest.fixture(scope="module")
def hf(tiny_qwen_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_qwen_dir).eval(), AutoTokenizer.from_pretrained(tiny_qwen_dir)


def _hf_greedy(model, tokenizer, text: str, eos: list[int], max_new: int, min_new: int = 0) -> tuple[list[int], float]:
    """Greedy tokens from plain `model.generate`, and the smallest top-2 logit margin on the way."""
    import torch

    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=max_new,
                             min_new_tokens=min_new, eos_token_id=eos, pad_token_id=eos[0],
                             output_logits=True, return_dict_in_generate=True)
    margins = [float(top[0] - top[1]) for top in (step[0].topk(2).values for step in out.logits)]
    return out.sequences[0, ids.shape[1]:].tolist(), min(margins)


def test_llama_missing_package_names_the_extra(monkeypatch, tmp_path):
    from harness.backends.llamacpp import LlamaCppBackend

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` raise ImportError
    with pytest.raises(ModelLoadError, match=r"llama-cpp-python.*\[llamacpp\]"):
        LlamaCppBackend.from_options(str(tmp_path / "m.gguf"))


def test_llama_greedy_parity_with_transformers(backend, hf):
    model, tokenizer = hf
    eog = backend._eog()
    assert {tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")} <= set(eog)
    requests = [_req(p, f"t/{i}/0", max_new_tokens=16) for i, p in enumerate(PROMPTS)]
    completions = backend.generate(requests)
    for request, c in zip(requests, completions):
        text = backend.render(request)
        # The GGUF's embedded template renders exactly what transformers renders.
        assert text == tokenizer.apply_chat_template(list(request.messages), tokenize=False, add_generation_prompt=True)
        assert c.input_tokens == len(tokenizer(text, add_special_tokens=False).input_ids) == backend.count_tokens(text)
        expected, margin = _hf_greedy(model, tokenizer, text, eog, max_new=16)
        # Exact agreement is only owed where no step is a near-tie that float32 rounding could flip.
        assert margin > 1e-3, f"fixture too flat for a parity check: top-2 margin {margin:g}"
        assert len(set(expected)) > 4  # a varied continuation, not one token repeated
        assert c.output_tokens == len(expected)
        assert c.text == tokenizer.decode(expected, skip_special_tokens=True)
        assert c.finish_reason == ("eos" if expected[-1] in eog else "length")
        assert 0 < c.ttft_s <= c.e2e_s <= c.batch_wall_s and c.batch_size == 1 and c.unmeasured == {}


def test_llama_end_of_sequence_and_min_tokens(eager_eos_gguf, eager_eos_qwen_dir, hf):
    pytest.importorskip("llama_cpp")
    from transformers import AutoModelForCausalLM

    from harness.backends.llamacpp import LlamaCppBackend

    b = LlamaCppBackend.from_options(str(eager_eos_gguf), n_ctx=512)
    try:
        at_once, held, fixed = b.generate([
            _req("hi", max_new_tokens=10),
            _req("hi", max_new_tokens=10, min_new_tokens=3),
            _req("hi", max_new_tokens=5, min_new_tokens=5),
        ])
        eog = b._eog()
    finally:
        b.close()
    # This model wants <|im_end|> at every step: it ends at once unless held back.
    assert (at_once.text, at_once.output_tokens, at_once.finish_reason) == ("", 1, "eos")
    assert (held.output_tokens, held.finish_reason) == (4, "eos")  # 3 held tokens, then the end token
    assert (fixed.output_tokens, fixed.finish_reason) == (5, "length")
    model, tokenizer = AutoModelForCausalLM.from_pretrained(eager_eos_qwen_dir), hf[1]  # same tokenizer
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    expected, _ = _hf_greedy(model, tokenizer, text, eog, max_new=10, min_new=3)
    assert len(expected) == 4 and held.text == tokenizer.decode(expected, skip_special_tokens=True)


def test_llama_stop_strings(backend):
    [full] = backend.generate([_req(PROMPTS[0], max_new_tokens=24)])
    assert len(full.text) >= 6, full.text
    stop = full.text[3:6]
    [cut] = backend.generate([_req(PROMPTS[0], max_new_tokens=24, stop=("never-in-output-§", stop))])
    assert cut.finish_reason == "stop" and cut.text == full.text[: full.text.find(stop)]
    assert 1 <= cut.output_tokens < full.output_tokens or full.finish_reason != "length"


def test_llama_seeded_sampling_reproduces_in_any_order(backend):
    a = _req(PROMPTS[1], "t/1/0", seed=5, max_new_tokens=12, temperature=1.0, top_k=40, top_p=0.95)
    b = _req(PROMPTS[1], "t/1/1", seed=6, max_new_tokens=12, temperature=1.0, top_k=40, top_p=0.95)
    first = backend.generate([a, b])
    second = backend.generate([b, a])
    assert [c.text for c in first] == [c.text for c in reversed(second)]
    assert first[0].text != first[1].text  # different seeds, different samples (flat random logits)


def test_llama_prompt_longer_than_context_is_an_error_row(backend):
    [c] = backend.generate([_req("hello " * 1100, max_new_tokens=4)])
    assert c.finish_reason == "error" and c.output_tokens == 0 and "context" in c.unmeasured["ttft_s"]


def test_llama_model_info(backend, hf):
    model, _ = hf
    info = backend.info
    assert (info.backend, info.architecture, info.dtype, info.quantization) == ("llamacpp", "qwen2", "F32", None)
    assert info.num_parameters == model.num_parameters() and info.context_length == 4096
    assert info.kv_bytes_per_token == 2 * 2 * 16 * 2 * 2  # layers, kv heads, head dim, K and V, f16
    assert info.weight_bytes >= 4 * info.num_parameters
    assert any("GGUF's tokenizer.chat_template" in n for n in info.notes)
    assert any("dtype" in n for n in info.notes)  # options meant for other engines are recorded as ignored
    assert backend.max_batch_size() == 1


def test_llama_stop_scanner_across_pieces():
    from harness.backends._sampling import StopScanner

    s = StopScanner(["</answer>", "\n\nQ:"])
    assert not s.feed("The answer is 4</ans", check=True)
    assert not s.feed("wer", check=False)  # held back (minimum length): found on the next check
    assert s.feed("> and more", check=True) and s.text == "The answer is 4" and s.matched == "</answer>"
    early = StopScanner(["bb", "a"])
    assert early.feed("xxbba") and early.text == "xx"  # the earliest match wins, not the first listed


def test_transformers_backend_loads_the_gguf_file_like_the_folder(tiny_gguf, tiny_qwen_dir):
    """Issue 2's third model source: a local GGUF file through the transformers backend
    (dequantised) gives the same greedy text as the safetensors folder it was made from."""
    from harness.backends.hf import TransformersBackend
    from harness.core.types import Request, Sampling
    from harness.runtime.device import resolve

    dev = resolve("cpu", "float32")
    reqs = [Request(key=str(i), messages=({"role": "user", "content": p},), sampling=Sampling(max_new_tokens=12), seed=i)
            for i, p in enumerate(["What is 2 + 3?", "小明有15个苹果。"])]
    from_gguf = TransformersBackend.from_options(str(tiny_gguf), device=dev)
    from_folder = TransformersBackend.from_options(str(tiny_qwen_dir), device=dev)
    assert from_gguf.info.quantization == "gguf (dequantized)"
    assert [c.text for c in from_gguf.generate(reqs)] == [c.text for c in from_folder.generate(reqs)]


def test_threads_default_to_physical_cores_and_can_be_set(backend, tiny_gguf):
    from harness.backends.llamacpp import LlamaCppBackend, physical_cores

    assert backend._llm.n_threads == physical_cores() >= 1  # not llama-cpp-python's cpu_count // 2
    assert f"{physical_cores()} decode threads" in " ".join(backend.info.notes)
    one = LlamaCppBackend.from_options(str(tiny_gguf), n_ctx=256, n_threads=1)
    try:
        assert one._llm.n_threads == 1 and one._llm.n_ctx() == 256
        assert "1 decode threads" in " ".join(one.info.notes)
    finally:
        one.close()


def test_llama_loglikelihood_matches_transformers(backend, tiny_qwen_dir):
    """The same continuations scored by llama.cpp (F32 GGUF) and transformers (the folder it came
    from): the same tokens by lm-eval's rules, and log-likelihoods within float32 kernel noise,
    including a context longer than llama.cpp's 512-token batch (prefilled in chunks)."""
    from harness.backends.hf import TransformersBackend
    from harness.backends.logprobs import ScoreRequest, encode_pair, rolling_windows, score_all
    from harness.runtime.device import resolve

    hf = TransformersBackend.from_options(str(tiny_qwen_dir), device=resolve("cpu", "float32"))
    long_context = "Count with me: " + " ".join(str(i) for i in range(300))
    pairs = [("", "Hello"), ("What is 2 + 2?", " 4"), ("答案是", "四"), ("trailing ", "space"), (long_context, " 301 302")]
    scored = []
    for b in (backend, hf):
        reqs = [ScoreRequest(str(i), tuple(c), tuple(x)) for i, (c, x) in enumerate(encode_pair(b.encode, b.prefix_token_id, *p) for p in pairs)]
        doc = b.encode("A short document that is scored in windows of sixteen tokens, one after another.")
        reqs += [ScoreRequest(f"w{i}", tuple(c), tuple(x)) for i, (c, x) in enumerate(rolling_windows(doc, b.prefix_token_id, 16))]
        scored.append((reqs, score_all(b, reqs, batch_size=2, max_length=1024)))
    (ours_reqs, llama), (hf_reqs, trans) = scored
    assert ours_reqs == hf_reqs and len(ours_reqs[4].context) > 512
    for a, b in zip(llama, trans, strict=True):
        # llama.cpp keeps its KV cache in f16: seen here, up to 5e-4 relative on sums of 5 to 150 tokens
        assert a.logprob == pytest.approx(b.logprob, rel=1e-3) and a.greedy == b.greedy


def test_openai_backend_refuses_loglikelihood_with_the_reason():
    from harness.backends.logprobs import LogprobsUnsupported
    from harness.backends.openai import OpenAIBackend

    b = OpenAIBackend.__new__(OpenAIBackend)
    with pytest.raises(LogprobsUnsupported, match="openai backend cannot score.*chat endpoint.*prompt"):
        b.score([])
