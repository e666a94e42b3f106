"""The vLLM adapter without vLLM: sampling mapping, output conversion, metrics of each engine
version, and the whole generate path against a stand-in `vllm` module."""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace as NS

import pytest

from harness.backends import vllm as adapter
from harness.core.types import Request, Sampling
from harness.errors import ModelLoadError


def test_sampling_greedy_and_sampled():
    greedy = adapter.sampling_kwargs(Sampling(max_new_tokens=64, top_k=50, top_p=0.9, stop=("\n\n",)), seed=7)
    # every knob explicit, so neither vLLM's nor the model's generation_config defaults apply
    assert greedy == {"n": 1, "temperature": 0.0, "top_p": 1.0, "top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0,
                      "presence_penalty": 0.0, "frequency_penalty": 0.0, "max_tokens": 64,
                      "min_tokens": 0, "stop": ["\n\n"], "seed": 7}
    sampled = adapter.sampling_kwargs(Sampling(max_new_tokens=8, min_new_tokens=8, temperature=0.6, top_p=0.95), seed=-1)
    assert sampled["temperature"] == 0.6 and sampled["top_p"] == 0.95 and sampled["top_k"] == -1
    assert sampled["min_tokens"] == 8 and sampled["max_tokens"] == 8
    assert 0 <= sampled["seed"] < 2**63  # negative seeds fold into torch's range, deterministically
    assert adapter.sampling_kwargs(Sampling(temperature=1.0, top_k=20), seed=3)["top_k"] == 20


@pytest.mark.parametrize(
    ("reason", "stop_reason", "expected"),
    [("stop", None, "eos"), ("stop", "</answer>", "stop"), ("stop", 151645, "eos"), ("length", None, "length"),
     ("abort", None, "error"), (None, None, "error")],
)
def test_finish_reason_mapping(reason, stop_reason, expected):
    assert adapter.finish_reason(reason, stop_reason) == expected


def _output(metrics, token_ids=(5, 6, 7), finish="stop", stop_reason=None):
    sample = NS(text="abc", token_ids=list(token_ids), finish_reason=finish, stop_reason=stop_reason)
    return NS(prompt_token_ids=[1, 2, 3, 4], outputs=[sample], metrics=metrics)


def test_v1_metrics_give_ttft_and_e2e():
    stats = NS(first_token_latency=0.25, arrival_time=1000.0, first_token_ts=50.0, last_token_ts=51.5, num_generation_tokens=3)
    c = adapter.to_completion(_output(stats), batch_size=4, batch_wall_s=2.0)
    assert (c.input_tokens, c.output_tokens, c.finish_reason) == (4, 3, "eos")
    assert c.ttft_s == pytest.approx(0.25) and c.e2e_s == pytest.approx(1.75)
    assert (c.batch_size, c.batch_wall_s, c.unmeasured) == (4, 2.0, {})


def test_v0_metrics_give_ttft_and_e2e():
    metrics = NS(arrival_time=10.0, first_token_time=10.5, last_token_time=12.0, first_scheduled_time=10.1)
    c = adapter.to_completion(_output(metrics, finish="length"), batch_size=1, batch_wall_s=None)
    assert c.ttft_s == pytest.approx(0.5) and c.e2e_s == pytest.approx(2.0) and c.finish_reason == "length"


def test_missing_metrics_are_unmeasured_with_reason():
    c = adapter.to_completion(_output(None, stop_reason="###"), batch_size=2, batch_wall_s=1.0)
    assert c.ttft_s is None and c.e2e_s is None and c.finish_reason == "stop"
    assert set(c.unmeasured) == {"ttft_s", "e2e_s"} and "metrics" in c.unmeasured["ttft_s"]
    empty_v1 = NS(first_token_latency=0.0, first_token_ts=0.0, last_token_ts=0.0)
    assert adapter.to_completion(_output(empty_v1), 1, None).unmeasured.keys() == {"ttft_s", "e2e_s"}


def test_kv_bytes_per_token():
    cfg = NS(num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2, hidden_size=1536)
    assert adapter.kv_bytes_per_token(cfg, 2) == 28 * 2 * 128 * 2 * 2
    assert adapter.kv_bytes_per_token(NS(), 2) is None


def test_missing_engine_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(ModelLoadError) as err:
        adapter.VLLMBackend.from_options("Qwen/Qwen2.5-0.5B-Instruct")
    assert "vllm" in str(err.value) and "[vllm]" in str(err.value)


class _Dtype:
    itemsize = 2

    def __str__(self):
        return "torch.bfloat16"


class _Tokenizer:
    chat_template = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}<|assistant|>"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        assert not tokenize and add_generation_prompt
        return "".join(f"<|{m['role']}|>{m['content']}" for m in messages) + "<|assistant|>"

    def encode(self, text, add_special_tokens=True):
        return ([0] if add_special_tokens else []) + [ord(ch) for ch in text]


def _fake_vllm(calls):
    """A stand-in `vllm` module: records what the adapter submits, answers like the V1 engine."""

    class SamplingParams:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class LLM:
        def __init__(self, **kwargs):
            calls["init"] = kwargs
            hf_config = NS(architectures=["Qwen2ForCausalLM"], num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, hidden_size=64)
            self.llm_engine = NS(model_config=NS(dtype=_Dtype(), max_model_len=4096,
                                                 hf_config=hf_config, quantization=None, revision="abc123"))

        def get_tokenizer(self):
            return _Tokenizer()

        def generate(self, prompts, params, use_tqdm=True):
            calls["prompts"], calls["params"] = prompts, [p.kwargs for p in params]
            outs = []
            for i, (prompt, p) in enumerate(zip(prompts, params)):
                n = p.kwargs["max_tokens"]
                stats = NS(first_token_latency=0.1 * (i + 1), first_token_ts=5.0, last_token_ts=5.0 + 0.01 * (n - 1))
                sample = NS(text="x" * n, token_ids=list(range(n)), finish_reason="length", stop_reason=None)
                outs.append(NS(prompt_token_ids=prompt["prompt_token_ids"], outputs=[sample], metrics=stats))
            return outs

    return types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams, __version__="0.0-fake")


def test_generate_submits_all_requests_at_once(monkeypatch):
    calls: dict = {}
    monkeypatch.setitem(sys.modules, "vllm", _fake_vllm(calls))
    backend = adapter.VLLMBackend.from_options("m", tensor_parallel_size=2, n_ctx=2048, dtype="bfloat16",
                                               n_gpu_layers=None, allow_pickle=True)
    assert calls["init"]["tensor_parallel_size"] == 2 and calls["init"]["max_model_len"] == 2048
    assert calls["init"]["disable_log_stats"] is False and calls["init"]["dtype"] == "bfloat16"
    assert any("allow_pickle" in n for n in backend.info.notes)  # ignored options are recorded
    assert backend.info.dtype == "bfloat16" and backend.info.architecture == "Qwen2ForCausalLM"
    assert backend.info.revision == "abc123" and backend.info.kv_bytes_per_token == 2 * 2 * 16 * 2 * 2

    msgs = ({"role": "user", "content": "hi"},)
    reqs = [Request(f"t/{i}/0", msgs, Sampling(max_new_tokens=3 + i), seed=100 + i, prefill="<think>\n" if i else "")
            for i in range(3)]
    out = backend.generate(reqs)
    assert len(calls["prompts"]) == 3  # one submission: the engine batches continuously
    assert calls["prompts"][0]["prompt_token_ids"] == [ord(c) for c in "<|user|>hi<|assistant|>"]  # no extra BOS
    assert backend.render(reqs[1]).endswith("<|assistant|><think>\n")
    assert [p["seed"] for p in calls["params"]] == [100, 101, 102]
    assert [c.output_tokens for c in out] == [3, 4, 5]
    assert [c.input_tokens for c in out] == [len(p["prompt_token_ids"]) for p in calls["prompts"]]
    assert [c.ttft_s for c in out] == pytest.approx([0.1, 0.2, 0.3])
    assert out[2].e2e_s == pytest.approx(0.3 + 0.04)
    assert all(c.batch_size == 3 and c.finish_reason == "length" for c in out)


def test_split_options_notes_only_what_matters():
    from harness.backends.base import split_options

    taken, ignored = split_options({"n_ctx": 512, "tokenizer": None, "device": "cuda", "seed": 3, "base_url": "http://x",
                                    "allow_pickle": False, "max_memory": [], "dtype": "bfloat16"}, ("n_ctx", "tokenizer"))
    assert taken == {"n_ctx": 512} and ignored == ["base_url", "dtype"]


def test_model_sampling_defaults_are_recorded_as_overridden():
    """vLLM's default SamplingParams come from the model's generation_config; the run sets its own."""
    qwen = NS(temperature=0.7, top_p=0.8, top_k=20, min_p=0.0, repetition_penalty=1.05, presence_penalty=0.0, frequency_penalty=0.0)
    assert adapter.model_defaults(qwen) == {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.05}
    plain = NS(temperature=1.0, top_p=1.0, top_k=0, min_p=0.0, repetition_penalty=1.0, presence_penalty=0.0, frequency_penalty=0.0)
    assert adapter.model_defaults(plain) == {} and adapter.model_defaults(None) == {}
