"""Greedy decisions from float32 logits when the model runs in bfloat16 or float16.

A bfloat16 output head rounds each logit to 8 significant bits: between 16 and 32 the values are
0.125 apart, so two tokens whose logits differ by less than that come out equal and argmax takes
the lower token id. That coin flip, not the model, then decides a greedy token, and different
kernels (another engine, another batch shape) flip it differently: on the real Qwen2.5 0.5B, 30
GSM8K prompts, 128 tokens, the head's rounding alone changed 12 of 30 of the transformers engine's
greedy outputs, and deciding on float32 logits brought it from 15 to 25 of 30 outputs identical to
the float32 model's (benchmarks/greedy_head.py, docs/benchmarks.md). llama.cpp computes its logits
in float32 already.

Recomputing the whole head in float32 would cost a float32 copy of the largest matrix (or 3-4x
its time); instead only the tokens that rounding could have put on top are re-scored. With u the
rounding step at the largest logit, every token whose rounded logit is within 2u of the top one
is recomputed as float32(hidden) . float32(weight row) (+ bias), and argmax runs over those.
A token whose true logit is the largest is always in that set (rounding moves each value by at
most u/2), so the choice equals argmax over a float32 head up to summation order; the set is a
handful of rows, so the cost is nothing next to the step. Sampled rows, rows with a repetition
penalty (their scores are no longer the head's logits) and float32 models are left as they are.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

LOW_PRECISION = (torch.bfloat16, torch.float16)
MAX_CANDIDATES = 256  # more tokens than this inside the window: a flat row, left to plain argmax
NOTE = "greedy: argmax over float32 logits (the tokens within two rounding steps of the top low-precision logit re-scored in float32)"


def output_head(model: nn.Module) -> nn.Module | None:
    """The model's output projection (transformers' get_output_embeddings), or None."""
    get = getattr(model, "get_output_embeddings", None)
    return get() if callable(get) else None


def applies(model: nn.Module) -> bool:
    """A low-precision output head with a dense weight (an nn.Linear, or a packed one keeping it: cpu_linear.py)."""
    weight = getattr(output_head(model), "weight", None)
    return isinstance(weight, torch.Tensor) and weight.dim() == 2 and weight.dtype in LOW_PRECISION and weight.device.type != "meta"


def decides(sampling) -> bool:
    """Does this row take its token from float32 logits? Greedy rows without a repetition penalty
    (a penalised score is no longer the head's logit)."""
    return bool(sampling.greedy and sampling.repetition_penalty == 1.0)


class Refiner:
    """Keeps the head's input of each forward (last position) while generating; `refine` fixes greedy rows."""

    def __init__(self, head: nn.Module):
        self.head = head
        self.seen: list[torch.Tensor] = []

    def keep(self, module, args, output) -> None:
        hidden = args[0]
        self.seen.append(hidden[:, -1, :] if hidden.dim() == 3 else hidden)

    def take(self) -> torch.Tensor | None:
        """The hidden states behind the scores about to be decided (one row per batch row), and forget them."""
        hidden = torch.cat(self.seen) if len(self.seen) > 1 else (self.seen[0] if self.seen else None)
        self.seen.clear()
        return hidden

    @torch.no_grad()
    def refine(self, scores: torch.Tensor, hidden: torch.Tensor | None, rows) -> None:
        """Overwrite, in place, the near-top scores of `rows` with their float32 logits."""
        if hidden is None or hidden.shape[0] != scores.shape[0]:
            return
        weight, bias = self.head.weight, getattr(self.head, "bias", None)
        assert isinstance(weight, torch.Tensor)  # applies() checked it
        eps = torch.finfo(weight.dtype).eps
        for i in rows:
            row = scores[i]
            top = float(row.max())
            if not math.isfinite(top):
                continue
            window = 2 * eps * 2.0 ** math.floor(math.log2(abs(top))) if top != 0 else 2 * eps
            cand = torch.nonzero(row >= top - window).flatten()
            if len(cand) < 2 or len(cand) > MAX_CANDIDATES:
                continue
            exact = weight[cand].float() @ hidden[i].float()
            if bias is not None:
                exact = exact + bias[cand].float()
            row[cand] = exact.to(row.dtype)


@contextmanager
def float32_greedy(model: nn.Module, off: bool = False) -> Iterator[Refiner | None]:
    """While generating: a Refiner fed by a hook on the output head, or None where it does not apply
    (`off`: a compiled forward, where a Python hook would break the graph)."""
    if off or not applies(model):
        yield None
        return
    head = output_head(model)
    assert head is not None  # applies() said so
    refiner = Refiner(head)
    hook = refiner.head.register_forward_hook(refiner.keep)
    try:
        yield refiner
    finally:
        hook.remove()
