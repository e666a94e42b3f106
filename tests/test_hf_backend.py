"""The transformers backend on a tiny random Qwen2: true token counts, batching that does not
change greedy outputs, agreement with a plain `model.generate` loop, per-row sampling seeds."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_model_folder

from harness.backends.hf import TransformersBackend
from harness.core.types import Request, Sampling
from harness.runtime.device import resolve

PROMPTS = ["What is 2 + 3?", "Tom has 5 apples and buys 7 more. How many now?", "小明有15个苹果，给了小红4个。",
           "Compute \\frac{3}{4} + \\frac{1}{4}, then multiply by 12 and subtract 5. Explain each step."]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tiny_model_folder(tmp_path_factory.mktemp("tiny-qwen2"))


@pytest.fixture(scope="module")
def backend(folder):
    return TransformersBackend.from_options(str(folder), device=resolve("cpu", "float32"))


def _reqs(n_new=24, **sampling):
    return [Request(key=str(i), messages=({"role": "user", "content": p},), sampling=Sampling(max_new_tokens=n_new, **sampling), seed=100 + i)
            for i, p in enumerate(PROMPTS)]


def test_true_token_counts_not_padded(backend):
    done = backend.generate(_reqs())
    rendered = [backend.render(r) for r in _reqs()]
    assert [c.input_tokens for c in done] == [backend.count_tokens(t) for t in rendered]
    assert len({c.input_tokens for c in done}) == len(PROMPTS)
    for c in done:
        assert 1 <= c.output_tokens <= 24
        assert c.finish_reason in ("eos", "length")
        assert 0 < c.ttft_s <= c.e2e_s <= c.batch_wall_s + 1e-6
        assert c.batch_size == len(PROMPTS)


def test_batching_keeps_greedy_outputs_and_matches_plain_generate(backend):
    batched = [c.text for c in backend.generate(_reqs())]
    single = [backend.generate([r])[0].text for r in _reqs()]
    assert batched == single
    tok, model = backend.tokenizer, backend.model
    plain = []
    for p in PROMPTS:
        text = tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
        ids = tok(text, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=24, do_sample=False, pad_token_id=tok.pad_token_id)
        new = out[0, ids.input_ids.shape[1]:].tolist()
        if tok.eos_token_id in new:
            new = new[: new.index(tok.eos_token_id)]
        plain.append(tok.decode(new, skip_special_tokens=False))
    assert batched == plain


def test_sampling_is_per_row_and_reproducible(backend):
    reqs = _reqs(12, temperature=0.9, top_p=0.95)
    a = [c.text for c in backend.generate(reqs)]
    b = [backend.generate([r])[0].text for r in reversed(reqs)][::-1]
    assert a == b  # a sample does not depend on its batch or its position in it
    assert len(set(a)) > 1


def test_fixed_length_with_min_new_tokens(backend):
    done = backend.generate(_reqs(10, min_new_tokens=10))
    assert all(c.output_tokens == 10 and c.finish_reason == "length" for c in done)


def test_stop_string_ends_a_row(backend):
    free = backend.generate(_reqs(24)[:1])[0].text
    if len(free) < 4:
        pytest.skip("the random model emitted too little text to pick a stop string")
    stop = free[2:4]
    done = backend.generate([Request(key="s", messages=({"role": "user", "content": PROMPTS[0]},),
                                     sampling=Sampling(max_new_tokens=24, stop=(stop,)), seed=0)])[0]
    assert done.finish_reason == "stop"
    assert stop not in done.text and free.startswith(done.text)


def test_greedy_ignores_the_models_generation_config_and_records_what_it_overrode(folder, tmp_path):
    """A repetition penalty (or do_sample, top_k ...) in generation_config.json must not change
    greedy outputs: every decoding field is set on each call and the overridden ones recorded."""
    import json
    import shutil

    from harness.backends.hf import overridden_defaults

    neutral = TransformersBackend.from_options(str(folder), device=resolve("cpu", "float32"))
    assert neutral.info.overridden_defaults == overridden_defaults(neutral.model.generation_config)
    opinionated = tmp_path / "opinionated"
    shutil.copytree(folder, opinionated)
    cfg_path = opinionated / "generation_config.json"
    cfg = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
    cfg.update({"repetition_penalty": 3.0, "do_sample": True, "temperature": 0.7, "top_k": 20, "no_repeat_ngram_size": 2})
    cfg_path.write_text(json.dumps(cfg))
    b = TransformersBackend.from_options(str(opinionated), device=resolve("cpu", "float32"))
    assert {"repetition_penalty": 3.0, "do_sample": True, "temperature": 0.7, "top_k": 20,
            "no_repeat_ngram_size": 2}.items() <= b.info.overridden_defaults.items()
    assert [c.text for c in b.generate(_reqs())] == [c.text for c in neutral.generate(_reqs())]
    # and the model's own defaults would have changed them: the comparison above can fail
    tok, model = b.tokenizer, b.model
    text = tok.apply_chat_template([{"role": "user", "content": PROMPTS[3]}], tokenize=False, add_generation_prompt=True)
    ids = tok(text, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=24, do_sample=False, pad_token_id=tok.pad_token_id)
    assert tok.decode(out[0, ids.input_ids.shape[1]:]) != neutral.generate(_reqs()[3:])[0].text
    assert b.engine_sampling(Sampling())["repetition_penalty"] == 1.0
