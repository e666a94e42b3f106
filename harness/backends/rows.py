"""One row's decoding, shared by static (hf.py) and continuous (continuous.py) batching so both
draw the same tokens: a per-request seeded generator, the next-token draw, the stop-string cut."""

from __future__ import annotations

import torch


def new_generator(seed: int, device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed & 0x7FFF_FFFF_FFFF_FFFF)
    return g


def draw(scores: torch.Tensor, s, generator: torch.Generator) -> int:
    """One row's next token: argmax when greedy, else temperature/top-k/top-p sampling with the
    row's own generator. Shared by static and continuous batching, so both draw the same tokens."""
    row = scores.float()
    if s.greedy:
        return int(row.argmax())
    row = row / s.temperature
    if s.top_k and s.top_k < row.shape[-1]:
        kth = torch.topk(row, s.top_k).values[-1]
        row = row.masked_fill(row < kth, -float("inf"))
    probs = torch.softmax(row, dim=-1)
    if s.min_p > 0:
        probs = probs.masked_fill(probs < s.min_p * probs.max(), 0.0)
    if s.top_p < 1.0:
        sorted_p, idx = torch.sort(probs, descending=True)
        cut = torch.cumsum(sorted_p, dim=-1) - sorted_p > s.top_p  # keep the smallest set reaching top_p
        sorted_p[cut] = 0.0
        probs = torch.zeros_like(probs).scatter(0, idx, sorted_p)
    return int(torch.multinomial(probs, 1, generator=generator))


def cut_at_stop(text: str, stops) -> str:
    cuts = [text.rfind(s) for s in stops if s and s in text]
    return text[: max(cuts)] if cuts else text


def row_end(ids: list[int], eos_ids: set[int], stop_step: int | None) -> tuple[int, str]:
    """The step that produced a row's last token, and why it ended. After a row ends, generate
    pads it (with EOS when pad = EOS), so the first EOS or the stop string, whichever came first."""
    eos_step = next((i for i, t in enumerate(ids) if t in eos_ids), None)
    if eos_step is not None and (stop_step is None or eos_step <= stop_step):
        return eos_step, "eos"
    if stop_step is not None:
        return stop_step, "stop"
    return len(ids) - 1, "length"
