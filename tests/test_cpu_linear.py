"""Prepacked CPU linears (backends/cpu_linear.py): the engine's outputs do not change, only its speed.

Any difference the packing made, in greedy tokens, sampled tokens, continuous batching or
log-likelihoods at these (decoding-sized) shapes, fails here; so do a shared weight packed in place
of the dense one, a head copy packed where memory is short, and a failed probe that still packs."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_model_folder
from torch import nn

from harness.backends import cpu_linear
from harness.backends.cpu_linear import PackedLinear, prepack
from harness.backends.hf import TransformersBackend
from harness.core.types import Request, Sampling
from harness.runtime.device import resolve

PROMPTS = ["What is 2 + 3?", "Tom has 5 apples and buys 7 more. How many now?", "小明有15个苹果，给了小红4个。",
           "Compute \\frac{3}{4} + \\frac{1}{4}, then multiply by 12 and subtract 5."]

pytestmark = pytest.mark.skipif(cpu_linear._why_not(nn.Linear(2, 2)) is not None, reason="this torch cannot pack linears")


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    folder = tiny_model_folder(tmp_path_factory.mktemp("tiny-qwen2"))
    device = resolve("cpu", "bfloat16")
    packed = TransformersBackend.from_options(str(folder), device=device)
    plain = TransformersBackend.from_options(str(folder), device=device, cpu_prepack=False)
    return packed, plain


def _reqs(n_new=24, **sampling):
    return [Request(key=str(i), messages=({"role": "user", "content": p},), sampling=Sampling(max_new_tokens=n_new, **sampling), seed=7 + i)
            for i, p in enumerate(PROMPTS)]


def test_packed_and_recorded(backends):
    packed, plain = backends
    layers = [m for m in packed.model.modules() if isinstance(m, PackedLinear)]
    assert layers and not any(isinstance(m, PackedLinear) for m in plain.model.modules())
    notes = packed.info.engine
    assert notes["cpu_prepack"] is True and f"{len(layers) - 1} linear layers" in notes["cpu_prepack_reason"]
    assert plain.info.engine == {**plain.info.engine, "cpu_prepack": False, "cpu_prepack_reason": "requested off: plain matmul"}
    # the tied output head is packed as a copy: the embedding table it shares stays dense, for lookups and head.py
    head, table = packed.model.lm_head, packed.model.model.embed_tokens
    assert isinstance(head, PackedLinear) and head.weight is table.weight and type(table) is nn.Embedding
    assert notes["cpu_prepack_head_copy_bytes"] == table.weight.numel() * 2 and "output head packed as a copy" in notes["cpu_prepack_reason"]
    assert packed.info.num_parameters == plain.info.num_parameters and packed.info.weight_bytes == plain.info.weight_bytes


@pytest.mark.parametrize("sampling", [{}, {"temperature": 0.9, "top_p": 0.95}], ids=["greedy", "sampled"])
def test_same_tokens_static_and_continuous(backends, sampling):
    packed, plain = backends
    a, b = packed.generate(_reqs(**sampling)), plain.generate(_reqs(**sampling))
    assert [c.token_ids for c in a] == [c.token_ids for c in b]
    a, b = packed.generate_continuous(_reqs(**sampling), 2), plain.generate_continuous(_reqs(**sampling), 2)
    assert [c.token_ids for c in a] == [c.token_ids for c in b]


def test_same_logits_for_scoring(backends):
    packed, plain = backends
    ids = packed.tokenizer(PROMPTS, return_tensors="pt", padding=True)
    with torch.inference_mode():
        assert torch.equal(packed.model(**ids).logits, plain.model(**ids).logits)


def test_shared_weights_stay_dense_and_float32_is_left_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 16)).to(torch.bfloat16)
    tied = nn.Linear(32, 16, bias=False).to(torch.bfloat16)
    tied.weight = model[2].weight
    model.append(nn.Sequential(tied))
    x = torch.randn(5, 16, dtype=torch.bfloat16)
    with torch.no_grad():
        before = model[:3](x)
        notes = prepack(model)
        assert torch.equal(model[:3](x), before)
    assert isinstance(model[0], PackedLinear) and type(model[2]) is nn.Linear and type(model[3][0]) is nn.Linear
    assert notes["cpu_prepack"] and "1 linear layers" in notes["cpu_prepack_reason"] and "2 sharing a weight" in notes["cpu_prepack_reason"]
    full = nn.Sequential(nn.Linear(4, 4))
    assert prepack(full) == {"cpu_prepack": False, "cpu_prepack_reason": "no bfloat16/float16 linear layer on the CPU to pack: plain matmul"}
    assert type(full[0]) is nn.Linear


def test_a_probe_that_disagrees_packs_nothing(monkeypatch):
    model = nn.Sequential(nn.Linear(16, 16)).to(torch.bfloat16)
    monkeypatch.setattr(cpu_linear, "_identical", lambda linear, hint: False)
    notes = prepack(model)
    assert notes["cpu_prepack"] is False and "bit for bit" in notes["cpu_prepack_reason"] and type(model[0]) is nn.Linear


def test_the_head_stays_dense_where_a_packed_copy_would_not_fit(monkeypatch, tmp_path):
    folder = tiny_model_folder(tmp_path / "m")
    monkeypatch.setattr(cpu_linear, "_head_copy_fits", lambda head: False)
    backend = TransformersBackend.from_options(str(folder), device=resolve("cpu", "bfloat16"))
    assert type(backend.model.lm_head) is nn.Linear and "output head dense" in backend.info.engine["cpu_prepack_reason"]
    assert "cpu_prepack_head_copy_bytes" not in backend.info.engine


def test_packing_frees_each_dense_weight_as_it_goes(monkeypatch):
    """Memory never holds a model's dense and packed weights together (a 7B model at 15 GiB under a
    20 GiB limit packed at 2x ran out): every replaced layer's dense weight is gone when prepack returns,
    and an allocation failure part-way leaves the rest dense with a note instead of failing the load."""
    import weakref

    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(32, 32) for _ in range(4)]).to(torch.bfloat16)
    dense = [weakref.ref(layer.weight) for layer in model]
    real, alive = torch.ops.mkldnn._reorder_linear_weight, []

    def counting(weight, hint):
        alive.append(sum(ref() is not None for ref in dense))
        return real(weight, hint)

    monkeypatch.setattr(cpu_linear, "_reorder", counting)
    assert prepack(model)["cpu_prepack"] is True
    assert alive == [4, 4, 3, 2, 1]  # the probe, then each layer: the ones already packed are gone
    assert all(ref() is None for ref in dense) and all(isinstance(m, PackedLinear) for m in model)

    model = nn.Sequential(*[nn.Linear(32, 32) for _ in range(4)]).to(torch.bfloat16)
    calls = []

    def failing(weight, hint):
        calls.append(1)
        if len(calls) > 3:  # the probe's, then two layers, then "out of memory"
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory")
        return real(weight, hint)

    monkeypatch.setattr(cpu_linear, "_reorder", failing)
    notes = prepack(model)
    assert notes["cpu_prepack"] is True and notes["cpu_prepack_reason"].startswith("2 of 4 linear layers packed")
    assert sum(isinstance(m, PackedLinear) for m in model) == 2
    x = torch.randn(3, 32, dtype=torch.bfloat16)
    with torch.no_grad():
        model(x)  # half packed, half dense: still a working model
