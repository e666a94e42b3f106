"""Greedy decisions from float32 logits in a bfloat16 model (backends/head.py).

The class of bug: a greedy token decided by the rounding of the output head (two logits equal in
bfloat16, argmax takes the lower id) instead of by the model. Caught here at three levels: the
re-scoring against a float32 head on random heads, the transformers engine (static and
continuous batching) against `generate` with a float32 head, and what it must leave alone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import tiny_model_folder
from torch import nn

from harness.backends.head import NOTE, Refiner
from harness.backends.hf import TransformersBackend
from harness.core.types import Request, Sampling
from harness.runtime.device import resolve

PROMPTS = ["What is 2 + 3?", "Tom has 5 apples and buys 7 more. How many now?", "小明有15个苹果，给了小红4个。",
           "Compute 3/4 + 1/4, then multiply by 12."]


def _head(vocab, hidden, seed, dtype=torch.bfloat16):
    g = torch.Generator().manual_seed(seed)
    head = nn.Linear(hidden, vocab, bias=seed % 2 == 0)
    with torch.no_grad():  # tokens in pairs of nearly equal rows: near-ties a bfloat16 head rounds to ties
        rows = torch.randn(vocab // 2, hidden, generator=g) * 0.6
        head.weight.copy_(torch.stack([rows, rows + 0.004 * torch.randn(rows.shape, generator=g)], 1).reshape(vocab, hidden))
        if head.bias is not None:
            head.bias.copy_(torch.randn(vocab, generator=g))
    return head.to(dtype), torch.randn(4, hidden, generator=g).to(dtype)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_refined_argmax_is_the_float32_heads(dtype):
    rounded_wrong = 0
    for seed in range(40):
        head, hidden = _head(2000, 64, seed, dtype)
        with torch.no_grad():
            scores = head(hidden).float()  # what generate hands the logits processors
            exact = F.linear(hidden.float(), head.weight.float(), None if head.bias is None else head.bias.float())
        rounded_wrong += int((scores.argmax(-1) != exact.argmax(-1)).sum())
        refiner = Refiner(head)
        refiner.keep(head, (hidden[:, None, :],), None)
        refiner.refine(scores, refiner.take(), range(4))
        assert torch.equal(scores.argmax(-1), exact.argmax(-1)), seed
        assert not refiner.seen
    assert rounded_wrong > 0  # the rounded head really does pick other tokens on these heads


def test_masks_and_unlisted_rows_are_left_alone():
    head, hidden = _head(500, 32, 3)
    with torch.no_grad():
        scores = head(hidden).float()
    top = scores.argmax(-1)
    scores[0, top[0]] = -float("inf")  # e.g. EOS held back until a row's min_new_tokens
    before = scores.clone()
    refiner = Refiner(head)
    refiner.refine(scores, hidden, [0])
    assert scores[0, top[0]] == -float("inf")
    assert torch.equal(scores[1:], before[1:])
    changed = (scores[0] != before[0]).nonzero().flatten()
    window = before[0].max() - 2 * torch.finfo(torch.bfloat16).eps * 2 ** torch.floor(torch.log2(before[0].max().abs()))
    assert all(before[0, i] >= window for i in changed)  # only near-top tokens are re-scored
    refiner.refine(scores, None, [0])  # no hidden state (nothing captured): nothing happens


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    folder = tiny_model_folder(tmp_path_factory.mktemp("tiny-qwen2"))
    return TransformersBackend.from_options(str(folder), device=resolve("cpu", "bfloat16"))


def _reference(engine, float32_head: bool, n_new: int) -> list[list[int]]:
    """`generate` on the same batch, with the model's own bfloat16 head or a float32 one."""
    tok, model = engine.tokenizer, engine.model
    texts = [engine.render(r) for r in _reqs(n_new)]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    head = model.lm_head
    if float32_head:
        class Float32Head(nn.Module):
            def forward(self, h):
                return F.linear(h.float(), head.weight.float())
        model.lm_head = Float32Head()
    try:
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=n_new, do_sample=False, pad_token_id=tok.pad_token_id, eos_token_id=None)
    finally:
        model.lm_head = head
    return [row[enc.input_ids.shape[1]:].tolist() for row in out]


def _reqs(n_new):
    return [Request(key=str(i), messages=({"role": "user", "content": p},), sampling=Sampling(max_new_tokens=n_new, min_new_tokens=n_new), seed=i)
            for i, p in enumerate(PROMPTS)]


def test_engine_greedy_is_the_float32_heads(engine):
    n = 48
    want, rounded = _reference(engine, True, n), _reference(engine, False, n)
    assert want != rounded  # on this model the rounding changes some greedy tokens, so the test can fail
    got = [c.token_ids for c in engine.generate(_reqs(n))]
    assert got == want
    assert engine.engine_sampling(_reqs(n)[0].sampling)["decoding"] == NOTE
    # continuous batching prefills one row at a time here, so its numbers differ from the padded batch's
    # by the batch shape; each row must still be float32 argmax on its own forward: compare with batch-1 static
    singles = [engine.generate([r])[0].token_ids for r in _reqs(n)]
    assert [c.token_ids for c in engine.generate_continuous(_reqs(n), 1)] == singles


def test_sampled_rows_and_penalties_keep_the_plain_scores(engine):
    sampling = Sampling(max_new_tokens=8, repetition_penalty=1.3)
    assert engine.engine_sampling(sampling)["decoding"] == "argmax"
    assert engine.engine_sampling(Sampling(max_new_tokens=8, temperature=0.7))["decoding"] == "per-row sampler"
