"""Continuous batching on a tiny random Qwen2: the same greedy outputs, token counts and seeded
samples as static batching whatever the batch company, rows that leave early, per-row timings,
and the choice of batching mode (explicit, auto, unavailable)."""

from __future__ import annotations

import json
import re

import pytest
import torch
from helpers import tiny_model_folder

from harness.backends.fake import FakeBackend
from harness.backends.hf import TransformersBackend
from harness.core.types import Request, Sampling
from harness.errors import ConfigError, Interrupted
from harness.orchestration.generate import generate_all
from harness.runtime.batching import MEASURED, choose
from harness.runtime.device import resolve

PROMPTS = ["What is 2 + 3?", "Tom has 5 apples and buys 7 more. How many now?", "小明有15个苹果，给了小红4个。",
           "Compute \\frac{3}{4} + \\frac{1}{4}, then multiply by 12 and subtract 5. Explain each step.", "hi",
           "Name three prime numbers and add them."]
LENGTHS = [3, 11, 6, 14, 1, 8]  # ragged per-request targets


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    folder = tiny_model_folder(tmp_path_factory.mktemp("tiny-qwen2"))
    return TransformersBackend.from_options(str(folder), device=resolve("cpu", "float32"))


def _reqs(lengths=None, fixed=False, **sampling):
    lengths = lengths or [12] * len(PROMPTS)
    return [Request(key=str(i), messages=({"role": "user", "content": p},), seed=100 + i,
                    sampling=Sampling(max_new_tokens=n, min_new_tokens=n if fixed else 0, **sampling))
            for i, (p, n) in enumerate(zip(PROMPTS, lengths))]


def _static(backend, reqs, size):
    return [c for i in range(0, len(reqs), size) for c in backend.generate(reqs[i:i + size])]


def _same(a, b):
    assert [c.text for c in a] == [c.text for c in b]
    assert [c.output_tokens for c in a] == [c.output_tokens for c in b]
    assert [c.finish_reason for c in a] == [c.finish_reason for c in b]
    assert [c.input_tokens for c in a] == [c.input_tokens for c in b]
    # every batching path hands over the generated ids, so the thinking/answer split is exact on each
    assert [c.token_ids for c in a] == [c.token_ids for c in b] and all(c.token_ids for c in a)


@pytest.mark.parametrize("slots", [2, 4])
def test_greedy_outputs_match_static_batching(backend, slots):
    reqs = _reqs(LENGTHS)
    _same(backend.generate_continuous(reqs, slots), _static(backend, reqs, 3))


def test_seeded_samples_do_not_depend_on_batch_company(backend):
    reqs = _reqs(LENGTHS, temperature=0.9, top_p=0.95, top_k=50)
    alone = [backend.generate_continuous([r], 1)[0] for r in reqs]
    _same(backend.generate_continuous(reqs, 2), alone)
    _same(backend.generate_continuous(list(reversed(reqs)), 3)[::-1], alone)
    _same(_static(backend, reqs, 6), alone)
    assert len({c.text for c in alone}) > 1


def test_fixed_lengths_hold_back_eos_per_row(backend):
    reqs = _reqs(LENGTHS, fixed=True)
    done = backend.generate_continuous(reqs, 4)
    assert [c.output_tokens for c in done] == LENGTHS
    assert all(c.finish_reason == "length" for c in done)
    _same(done, _static(backend, reqs, 6))  # static rows with their own targets end at them too


def test_stop_strings_end_a_row_as_in_static(backend):
    free = backend.generate_continuous(_reqs()[:1], 1)[0].text
    found = re.search(r"[A-Za-z]{2}", free[1:])  # whole characters: a stop string cannot hold half a UTF-8 byte sequence
    if not found:
        pytest.skip("the random model emitted no plain letters to pick a stop string from")
    stop = found.group()
    reqs = [Request(key=r.key, messages=r.messages, seed=r.seed, sampling=Sampling(max_new_tokens=12, stop=(stop,))) for r in _reqs()]
    cont = backend.generate_continuous(reqs, 2)
    assert cont[0].finish_reason == "stop" and stop not in cont[0].text
    _same(cont, _static(backend, reqs, 3))


def test_rows_leave_early_and_keep_their_own_timings(backend):
    reqs = _reqs([2, 14, 2, 2])[:4]
    done = backend.generate_continuous(reqs, 2)
    for c in done:
        assert 0 < c.ttft_s <= c.e2e_s
        assert c.batch_size == 2
    # the short first row leaves after 2 tokens, long before the long row ends
    assert done[0].e2e_s < done[1].e2e_s
    # a request admitted later starts its own clock: its TTFT is a prefill, not the queue's wait
    assert done[3].ttft_s < done[1].e2e_s


def test_generate_all_hands_rows_over_as_they_finish(backend):
    reqs = _reqs(LENGTHS, fixed=True)
    seen = []
    batches = generate_all(backend, reqs, [len(p) for p in PROMPTS], batch_size=3, batching="continuous",
                           on_batch=lambda chunk, done, b: seen.append(([r.key for r in chunk], [c.output_tokens for c in done], b)))
    assert sorted(k for keys, _, _ in seen for k in keys) == sorted(r.key for r in reqs)
    assert sum(b.output_tokens for b in batches) == sum(LENGTHS)
    assert all(b.prefill_s is not None and 0 <= b.prefill_s <= b.wall_s for b in batches)
    assert len(batches) > 1  # rows are written as they end, not all at the end
    by_key = {k: n for keys, ns, _ in seen for k, n in zip(keys, ns)}
    assert by_key == {r.key: n for r, n in zip(reqs, LENGTHS)}


def test_a_stop_request_interrupts_between_steps(backend):
    calls = iter(range(100))
    with pytest.raises(Interrupted):
        backend.generate_continuous(_reqs(), 2, should_stop=lambda: 15 if next(calls) == 3 else None)


def test_select_trims_columns_no_row_uses():
    from harness.backends.continuous import _join, _select

    class Layer:
        def __init__(self, keys):
            self.keys, self.values = keys, keys.clone()

    class Cache:
        def __init__(self, *layers):
            self.layers = list(layers)

    a = Cache(Layer(torch.arange(1 * 1 * 6 * 2, dtype=torch.float).view(1, 1, 6, 2)))
    b = Cache(Layer(torch.ones(2, 1, 3, 2)))
    cache, mask = _join(a, torch.ones(1, 6, dtype=torch.long), b, torch.tensor([[0, 1, 1], [1, 1, 1]]))
    assert mask.tolist() == [[1] * 6, [0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1]]
    assert cache.layers[0].keys.shape == (3, 1, 6, 2)
    cache, mask = _select(cache, mask, [1, 2])  # the long row left: three columns are padding for everyone
    assert mask.tolist() == [[0, 1, 1], [1, 1, 1]]
    assert cache.layers[0].keys.shape == (2, 1, 3, 2) and cache.layers[0].values.shape == (2, 1, 3, 2)
    assert _select(cache, mask, []) == (None, None)


# ---- choosing the mode ----------------------------------------------------------------------

def test_choose_explicit_auto_and_unavailable(backend):
    assert choose("continuous", backend, "cpu") == ("continuous", "requested")
    assert choose("static", backend, "cpu") == ("static", "requested")
    mode, why = choose("auto", backend, "cpu")
    assert mode == MEASURED["cpu"][0] and why.startswith("auto: ")
    mode, why = choose("auto", backend, "rocm-someday")
    assert mode == "static" and "nothing measured" in why
    fake = FakeBackend.from_options("fake:echo", device=None)
    assert choose("auto", fake, "cpu")[0] == "static"
    with pytest.raises(ConfigError, match="--batching static"):
        choose("continuous", fake, "cpu")
    with pytest.raises(ConfigError):
        choose("sometimes", backend, "cpu")


def test_unsupported_cache_layers_are_reported(backend, monkeypatch):
    from harness.backends import continuous

    def refuse(model):
        raise continuous.Unsupported("sliding-window layers")

    monkeypatch.setattr(continuous, "check_supported", refuse)
    assert backend.continuous_unsupported() == "sliding-window layers"
    mode, why = choose("auto", backend, "cpu")
    assert mode == "static" and "sliding-window" in why


def test_run_records_the_batching_mode(tmp_path, capsys):
    from helpers import run_cli

    code, out, err = run_cli(["run", "--model", "random:tiny", "--limit", "3", "--batch-size", "2", "--max-new-tokens", "6",
                              "--batching", "continuous", "--output-dir", str(tmp_path), "--quiet"], capsys)
    assert code == 0, err
    run = json.loads(next(tmp_path.rglob("run.json")).read_text())
    assert run["config"]["batching"] == "continuous"
    engine = run["model"]["engine"]
    assert (engine["batching"], engine["batching_reason"]) == ("continuous", "requested")
    assert engine["compiled"] is False and "CUDA" in engine["compile_reason"]
    device = run["device"]  # CPU auto dtype: from the stored machine profile unless measured (harness plan --calibrate)
    assert device["dtype"] in ("float32", "bfloat16") and device["dtype_reason"].startswith("auto")
    code, out, err = run_cli(["run", "--model", "fake:echo", "--limit", "1", "--batching", "continuous",
                              "--output-dir", str(tmp_path / "f")], capsys)
    assert code == 2 and err.strip().count("\n") == 0 and "error: --batching continuous is not available" in err


def test_min_p_samples_match_static_batching(backend):
    """Both batching modes draw through rows.draw, so main's min_p sampling holds in both."""
    reqs = _reqs(LENGTHS, temperature=0.9, min_p=0.2)
    _same(backend.generate_continuous(reqs, 2), _static(backend, reqs, 3))


@pytest.mark.parametrize("penalty", [{"repetition_penalty": 1.3}, {"presence_penalty": 0.5}, {"frequency_penalty": 0.5}])
def test_continuous_refuses_penalties_it_does_not_apply(backend, penalty):
    with pytest.raises(ValueError, match="penalty"):
        backend.generate_continuous(_reqs(LENGTHS[:2], **penalty), 2)


@pytest.mark.parametrize("penalty", [{"repetition_penalty": 1.3}, {"presence_penalty": 0.5}, {"frequency_penalty": 0.5}])
def test_auto_keeps_static_and_explicit_continuous_is_refused_for_penalties(backend, penalty, monkeypatch):
    """Whatever auto picks on a device, a run with a penalty gets static batching (which applies it),
    and an explicit continuous is refused before any generation rather than failing mid-run."""
    from harness.runtime import batching

    monkeypatch.setitem(batching.MEASURED, "cpu", ("continuous", "test"))
    with_penalty = [Sampling(max_new_tokens=4), Sampling(max_new_tokens=4, **penalty)]
    assert choose("auto", backend, "cpu", [Sampling(max_new_tokens=4)])[0] == "continuous"
    mode, why = choose("auto", backend, "cpu", with_penalty)
    assert mode == "static" and "penalty" in why
    with pytest.raises(ConfigError, match="penalty"):
        choose("continuous", backend, "cpu", with_penalty)


def test_engine_options_are_declared():
    """--compile, --n-ctx and --n-threads reach the engines as options their Options models declare."""
    from harness.backends.llamacpp import LlamaCppBackend

    assert TransformersBackend.check_options({"compile": "off"}).compile == "off"
    with pytest.raises(ConfigError):
        TransformersBackend.check_options({"compile": "sometimes"})
    assert LlamaCppBackend.check_options({"n_ctx": 512, "n_threads": 2}).n_threads == 2
