"""thinking_tokens + answer_tokens == output_tokens on every engine, with the split taken from the
generated ids (where the closing think tag sits), never from re-tokenised text (issue 12 §3).

Engines that are absent here (vLLM) are driven through their adapter functions with a real
tokenizer; the OpenAI-compatible engine through a scripted server."""

from __future__ import annotations

import json

import pytest

from harness.backends.fake import FakeBackend
from harness.core.types import Completion, ModelInfo, Request, Sampling
from harness.scoring.record import sample_row
from harness.scoring.thinking import CLOSE, split_thinking, token_split
from harness.tasks.base import Item

try:
    from engine_fixtures import tiny_gguf, tiny_models, tiny_qwen_dir  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.engine_fixtures import tiny_gguf, tiny_models, tiny_qwen_dir  # noqa: F401

ITEM = Item(id="1", question="What is 9 + 9?", target="18")
OUTPUTS = [  # (output, the prompt opened the trace)
    ("Let me add: 9 + 9 = 18.\n</think>\n\nThe answer is \\boxed{18}.", True),
    ("<think>\nnine and nine\n</think>\n\n\\boxed{18}", False),
    ("I must not write </think> too early. 9 + 9 = 18\n</think>\n\n\\boxed{18}\n</think>", True),
    ("still thinking about 9 + 9 and never closing", True),
    ("The answer is 18.", False),
    ("<think>\n\n</think>\n\nThe answer is 18.", False),
]


def _row(backend, done: Completion, prompt: str = "Q") -> dict:
    req = Request("gsm8k/1/0", ({"role": "user", "content": "Q"},), Sampling(), seed=0)
    return sample_row(req, done, task="gsm8k", answer_type="number", item=ITEM, sample=0, prompt=prompt, backend=backend)


def _assert_adds_up(row: dict) -> None:
    assert row["thinking_tokens"] is not None and row["answer_tokens"] is not None, row["token_split"]
    assert row["thinking_tokens"] + row["answer_tokens"] == row["output_tokens"]
    assert 0 <= row["thinking_tokens"] <= row["output_tokens"]


def _check_located(backend, text: str, ids: list[int], opened: bool) -> None:
    """The row's thinking count is exactly the ids up to and including the closing tag."""
    done = Completion(text=text, input_tokens=3, output_tokens=len(ids), finish_reason="eos", ttft_s=None, e2e_s=None,
                      token_ids=ids)
    row = _row(backend, done, prompt="<think>\n" if opened else "Q")
    _assert_adds_up(row)
    split = split_thinking(text, prompt_opened=opened)
    if split.close_at >= 0:
        n = row["thinking_tokens"]
        assert row["token_split"] == "ids"
        k = text[:split.close_at].count(CLOSE)
        assert backend.decode(ids[:n]).count(CLOSE) == k + 1 and backend.decode(ids[:n - 1]).count(CLOSE) == k
    else:
        assert row["token_split"] == "exact"
        assert row["thinking_tokens"] == (0 if split.closed else len(ids))


# ---- the split itself ----------------------------------------------------------------------------
def test_token_split_prefers_engine_then_server_then_ids_then_estimate():
    split = split_thinking("abc\n</think>\nxyz", prompt_opened=True)
    words = ["abc", "\n", CLOSE, "\n", "xyz"]
    decode = lambda ids: "".join(words[i] for i in ids)  # noqa: E731
    assert token_split(split, "abc\n</think>\nxyz", 5, ids=[0, 1, 2, 3, 4], decode=decode) == (3, 2, "ids")
    assert token_split(split, "", 5, reasoning_tokens=4).how == "server"
    assert token_split(split, "", 5, engine_thinking=9, reasoning_tokens=1)[:2] == (5, 0)  # clamped, engine first
    est = token_split(split, "abc\n</think>\nxyz", 16)
    assert est.how == "estimated" and est.thinking + est.answer == 16
    assert token_split(split, "abc", None).how == "unmeasured"


def test_more_thinking_than_output_is_impossible_even_estimated():
    """The bug this replaces: re-tokenising decoded text gave 25.5 thinking tokens for 16 output."""
    text = "x" * 400 + "\n</think>\n\n18"
    split = split_thinking(text, prompt_opened=True)
    got = token_split(split, text, 16, count=lambda s: len(s))  # a tokenizer that disagrees wildly
    assert got.thinking == 16 and got.answer == 0


# ---- every engine ---------------------------------------------------------------------------------
@pytest.mark.parametrize("output,opened", OUTPUTS)
def test_fake_engine_counts_from_ids(tmp_path, output, opened):
    script = tmp_path / "s.json"
    script.write_text(json.dumps({"*": output}))
    backend = FakeBackend.from_options(f"fake:{script}")
    for max_new in (1000, 5, 1):  # whole, and cut part-way (truncated traces too)
        req = Request("gsm8k/1/0", ({"role": "user", "content": "Q"},), Sampling(max_new_tokens=max_new), seed=0)
        done = backend.generate([req])[0]
        row = sample_row(req, done, task="gsm8k", answer_type="number", item=ITEM, sample=0,
                         prompt="<think>\n" if opened else "Q", backend=backend)
        _assert_adds_up(row)
        assert row["token_split"] in ("ids", "exact")
    _check_located(backend, output, backend.encode(output), opened)


@pytest.fixture(scope="module")
def hf_backend(tiny_qwen_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.backends.hf import TransformersBackend

    model = AutoModelForCausalLM.from_pretrained(tiny_qwen_dir).eval()
    info = ModelInfo(name_or_path=str(tiny_qwen_dir), backend="transformers")
    return TransformersBackend(model, AutoTokenizer.from_pretrained(tiny_qwen_dir), info, "cpu")


def test_transformers_engine_counts_from_ids(hf_backend):
    tok = hf_backend.tokenizer
    for output, opened in OUTPUTS:
        _check_located(hf_backend, output, tok.encode(output, add_special_tokens=False), opened)
    reqs = [Request(f"gsm8k/1/{i}", ({"role": "user", "content": q},), Sampling(max_new_tokens=12), seed=i)
            for i, q in enumerate(["What is 9 + 9?", "你好"])]
    for _req, done in zip(reqs, hf_backend.generate(reqs)):
        assert done.token_ids is not None and len(done.token_ids) == done.output_tokens
        _assert_adds_up(_row(hf_backend, done, prompt="<think>\n"))
        _assert_adds_up(_row(hf_backend, done))


def test_llama_engine_counts_from_ids(tiny_gguf):
    pytest.importorskip("llama_cpp")
    from harness.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend.from_options(str(tiny_gguf), n_ctx=512)
    try:
        for output, opened in OUTPUTS:
            ids = backend._llm.tokenize(output.encode(), add_bos=False, special=True)
            _check_located(backend, output, ids, opened)
        req = Request("gsm8k/1/0", ({"role": "user", "content": "What is 9 + 9?"},), Sampling(max_new_tokens=12), seed=0)
        done = backend.generate([req])[0]
        assert done.token_ids is not None and len(done.token_ids) == done.output_tokens
        _assert_adds_up(_row(backend, done, prompt="<think>\n"))
    finally:
        backend.close()


def test_vllm_adapter_counts_from_ids(tiny_qwen_dir):
    """vLLM is absent here: its RequestOutput is stood in for, decoded with the model's tokenizer."""
    from types import SimpleNamespace

    from transformers import AutoTokenizer

    from harness.backends.vllm import VLLMBackend, to_completion

    backend = object.__new__(VLLMBackend)
    backend._tokenizer = AutoTokenizer.from_pretrained(tiny_qwen_dir)
    for output, opened in OUTPUTS:
        ids = backend._tokenizer.encode(output, add_special_tokens=False) + [backend._tokenizer.eos_token_id]
        sample = SimpleNamespace(text=output, token_ids=tuple(ids), finish_reason="stop", stop_reason=None)
        done = to_completion(SimpleNamespace(outputs=[sample], prompt_token_ids=[1, 2, 3], metrics=None), 1, 0.1)
        assert done.token_ids == ids and done.output_tokens == len(ids)
        row = _row(backend, done, prompt="<think>\n" if opened else "Q")
        _assert_adds_up(row)
        _check_located(backend, output, ids, opened)


def _sse(*chunks) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


@pytest.mark.parametrize("usage,reasoning,expect", [
    ({"prompt_tokens": 5, "completion_tokens": 20, "completion_tokens_details": {"reasoning_tokens": 14}}, True, "server"),
    ({"prompt_tokens": 5, "completion_tokens": 20}, True, "estimated"),  # a trace but no reasoning count
    ({"prompt_tokens": 5, "completion_tokens": 20}, False, "estimated"),  # tags in the content, no ids
    (None, False, "estimated"),  # no usage at all (llama.cpp's server): deltas counted
])
def test_openai_engine_uses_server_reasoning_usage_else_marks_estimated(usage, reasoning, expect):
    httpx = pytest.importorskip("httpx")
    from harness.backends.openai import OpenAIBackend

    if reasoning:
        deltas = [{"reasoning_content": "nine and nine "}, {"reasoning_content": "is 18"}, {"content": "\\boxed{18}"}]
    else:
        deltas = [{"content": "nine and nine is 18\n"}, {"content": "</think>\n\n"}, {"content": "\\boxed{18}"}]
    chunks = [{"choices": [{"delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({"choices": [{"delta": {}, "finish_reason": "stop"}], **({"usage": usage} if usage else {})})
    backend = OpenAIBackend("openai:m", base_url="http://127.0.0.1:9/v1",
                            transport=httpx.MockTransport(lambda r: httpx.Response(200, content=_sse(*chunks))))
    req = Request("gsm8k/1/0", ({"role": "user", "content": "Q"},), Sampling(max_new_tokens=64), seed=0)
    done = backend.generate([req])[0]
    row = _row(backend, done, prompt="Q")
    _assert_adds_up(row)
    assert row["token_split"] == expect and row["correct"]
    if expect == "server":
        assert row["thinking_tokens"] == 14
