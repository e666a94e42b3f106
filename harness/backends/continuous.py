"""Continuous batching for the transformers engine: a row leaves the batch the step it ends, and a
waiting request takes its slot at once instead of the batch decoding padding until its longest row.

How: one KV cache (transformers' DynamicCache) holds the active rows, left-padded to a common
length with an attention mask that hides the padding and per-row position ids (exactly what
`generate` does for a left-padded static batch). Admitted requests are prefilled together as a
left-padded group and their cache is joined to the running one; finished rows are cut out and
columns no remaining row uses are trimmed. Each row keeps its own seeded generator and draws with
the same function as static batching (`rows.draw`), so greedy outputs and seeded samples do not
depend on which requests share the batch.

Timing per row, the same meaning as in a static batch: the row's clock starts when its prefill
starts (after a device synchronise); TTFT is the time its first token was known on the host, e2e
the time its last one was. Only plain (full-attention) cache layers can be cut and joined; other
cache kinds (sliding windows, linear attention) raise `Unsupported` before any work is done.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from harness.backends.head import decides, float32_greedy
from harness.core.types import Completion, Request
from harness.errors import Interrupted
from harness.runtime import tokens as token_meter

if TYPE_CHECKING:
    from transformers import DynamicCache
    from transformers.generation.stopping_criteria import StopStringCriteria

# A segment: rows finished since the previous report, with the time spent since then and the part
# of it spent in prefill forwards (for run.json's prefill and decode rates, summed over the run).
OnDone = Callable[[list[int], list[Completion], dict[str, Any]], None]


class Unsupported(Exception):
    """This model's cache cannot be cut and joined per row."""


@dataclass
class _Row:
    index: int  # position in the caller's request list
    req: Request
    input_tokens: int
    generator: torch.Generator | None
    start: float
    ids: list[int] = field(default_factory=list)
    marks: list[float] = field(default_factory=list)
    stopper: tuple[StopStringCriteria, list[int]] | None = None  # the stop-string check and the prompt's ids


def check_supported(model) -> None:
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=model.config)
    kinds = {type(layer) for layer in cache.layers}
    if not cache.layers or kinds != {DynamicLayer}:
        names = ", ".join(sorted(k.__name__ for k in kinds)) or "none"
        raise Unsupported(f"{type(model).__name__} uses cache layers ({names}) that continuous batching cannot cut per row")


def _cache_kw(model, cache) -> dict:
    """The cache as the forward takes it: `cache` (transformers >= 5.2x) or `past_key_values` (vLLM's
    CPU build pins transformers < 5.20, where an unknown `cache=` is silently ignored)."""
    import inspect

    return {"cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values": cache}


def run(backend, requests: Sequence[Request], slots: int, on_done: OnDone | None = None,
        should_stop: Callable[[], int | None] = lambda: None) -> list[Completion]:
    """Generate every request with at most `slots` rows in flight; completions in request order."""
    from harness.backends.rows import draw, new_generator

    check_supported(backend.model)
    if any(r.sampling.repetition_penalty != 1.0 or r.sampling.presence_penalty or r.sampling.frequency_penalty for r in requests):
        raise ValueError("continuous batching applies no repetition, presence or frequency penalty; use --batching static")
    model, dev = backend.model, backend.device
    eos = sorted(backend.eos_ids)
    waiting = deque(enumerate(requests))
    rows: list[_Row] = []
    # the KV cache and attention mask of the rows in flight; both None exactly when no row is in flight
    cache: DynamicCache | None = None
    mask: torch.Tensor | None = None
    results: dict[int, Completion] = {}
    seg = {"t0": _now(backend), "prefill_s": 0.0}
    with torch.inference_mode(), float32_greedy(model) as refiner:
        while waiting or rows:
            signum = should_stop()
            if signum:
                raise Interrupted(signum)
            if waiting and len(rows) < slots:
                group = [waiting.popleft() for _ in range(min(slots - len(rows), len(waiting)))]
                t0 = _now(backend)
                new_rows, new_cache, new_mask, logits = _prefill(backend, group, t0, new_generator)
                rows = rows + new_rows
                cache, mask = _join(cache, mask, new_cache, new_mask)
                fresh = len(new_rows)
            else:
                # here rows is not empty (slots >= 1), and a batch with rows in flight has its mask
                assert mask is not None
                last = torch.tensor([[r.ids[-1]] for r in rows], device=dev)
                mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
                pos = torch.tensor([[r.input_tokens + len(r.ids) - 1] for r in rows], device=dev)
                logits = model(input_ids=last, attention_mask=mask, position_ids=pos, **_cache_kw(model, cache), use_cache=True,
                               logits_to_keep=1).logits[:, -1, :]
                fresh = 0
            # the rows that just prefilled are the last `fresh` ones; everyone else decoded a step
            stepping = rows[len(rows) - fresh:] if fresh else rows
            offset = len(rows) - len(stepping)
            scores = logits.float()
            if backend.vocab_limit is not None and scores.shape[-1] > backend.vocab_limit:
                scores[:, backend.vocab_limit:] = -float("inf")
            for i, r in enumerate(stepping):
                if eos and len(r.ids) < r.req.sampling.min_new_tokens:
                    scores[i, eos] = -float("inf")
            if refiner is not None:  # greedy rows decide on float32 logits (head.py)
                refiner.refine(scores, refiner.take(), [i for i, r in enumerate(stepping) if decides(r.req.sampling)])
            if all(r.generator is None for r in stepping):
                tokens = scores.argmax(dim=-1).tolist()
            else:
                # a row without a generator is greedy: argmax, as `draw` does for it
                tokens = [int(scores[i].argmax()) if r.generator is None else draw(scores[i], r.req.sampling, r.generator)
                          for i, r in enumerate(stepping)]
            now = _now(backend)
            if fresh:
                seg["prefill_s"] += now - t0
            ended = []
            token_meter.tick(len(stepping))
            for i, (r, t) in enumerate(zip(stepping, tokens)):
                r.ids.append(int(t))
                r.marks.append(now - r.start)
                reason = _ended(r, eos, backend)
                if reason:
                    results[r.index] = _completion(backend, r, reason, slots)
                    ended.append(offset + i)
            if ended:
                done = [rows[i] for i in ended]
                keep = [i for i in range(len(rows)) if i not in set(ended)]
                rows = [rows[i] for i in keep]
                cache, mask = _select(cache, mask, keep)
                if on_done is not None:
                    end = _now(backend)
                    on_done([r.index for r in done], [results[r.index] for r in done],
                            {"wall_s": end - seg["t0"], "prefill_s": seg["prefill_s"]})
                    seg = {"t0": end, "prefill_s": 0.0}
    return [results[i] for i in range(len(requests))]


def _now(backend) -> float:
    backend.synchronize()
    return time.perf_counter()


def _prefill(backend, group, t0, new_generator):
    from transformers import DynamicCache

    reqs = [r for _, r in group]
    templated = backend.has_template and reqs[0].chat
    if any((backend.has_template and r.chat) != templated for r in reqs):  # one tokenizer call per kind of prompt
        parts = [_prefill(backend, [g], t0, new_generator) for g in group]
        return _merge_prefills(parts)
    enc = backend.tokenizer([backend.render(r) for r in reqs], return_tensors="pt", padding=True,
                            add_special_tokens=not templated).to(backend.device)
    mask = enc.attention_mask
    pos = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
    cache = DynamicCache(config=backend.model.config)
    logits = backend.model(input_ids=enc.input_ids, attention_mask=mask, position_ids=pos, **_cache_kw(backend.model, cache), use_cache=True,
                           logits_to_keep=1).logits[:, -1, :]
    lens = mask.sum(dim=1).tolist()
    rows = []
    for (index, req), n in zip(group, lens):
        stopper = None
        if req.sampling.stop:
            from transformers.generation.stopping_criteria import StopStringCriteria

            ids = enc.input_ids[len(rows)][mask[len(rows)] == 1].tolist()  # the prompt's tail can start a stop string
            stopper = (StopStringCriteria(backend.tokenizer, list(req.sampling.stop)), ids)
        gen = None if req.sampling.greedy else new_generator(req.seed, backend.device)
        rows.append(_Row(index, req, int(n), gen, t0, stopper=stopper))
    return rows, cache, mask, logits


def _merge_prefills(parts):
    rows, cache, mask, logits = [], None, None, []
    for r, c, m, lg in parts:
        rows += r
        cache, mask = _join(cache, mask, c, m)
        logits.append(lg)
    return rows, cache, mask, torch.cat(logits)


def _ended(r: _Row, eos: list[int], backend) -> str | None:
    s = r.req.sampling
    if r.ids[-1] in eos:
        return "eos"
    if r.stopper is not None:
        crit, prompt = r.stopper
        tail = (prompt + r.ids)[-crit.maximum_token_len:]
        ids = torch.tensor([tail], device=backend.device)
        if bool(crit(ids, None)[0]):
            return "stop"
    return "length" if len(r.ids) >= s.max_new_tokens else None


def _completion(backend, r: _Row, reason: str, slots: int) -> Completion:
    from harness.backends.rows import cut_at_stop

    ids = r.ids[:-1] if reason == "eos" else r.ids  # EOS counts as output but is not text
    text = backend.tokenizer.decode(ids, skip_special_tokens=False)
    if reason == "stop":
        text = cut_at_stop(text, r.req.sampling.stop)
    # the generated ids, EOS included, as static batching gives them: the thinking/answer split counts exactly
    return Completion(text=text, input_tokens=r.input_tokens, output_tokens=len(r.ids), finish_reason=reason, token_ids=list(r.ids),
                      ttft_s=r.marks[0], e2e_s=r.marks[-1], batch_size=slots, batch_wall_s=r.marks[-1])


def _join(cache, mask, new_cache, new_mask):
    """Rows of `new_cache` appended to `cache`, both left-padded to the longer length."""
    if cache is None:
        return new_cache, new_mask
    width = max(mask.shape[1], new_mask.shape[1])
    for layer, new in zip(cache.layers, new_cache.layers):
        layer.keys = torch.cat([_pad(layer.keys, width), _pad(new.keys, width)])
        layer.values = torch.cat([_pad(layer.values, width), _pad(new.values, width)])
    return cache, torch.cat([_pad_mask(mask, width), _pad_mask(new_mask, width)])


def _pad(t: torch.Tensor, width: int) -> torch.Tensor:
    extra = width - t.shape[-2]
    return t if extra == 0 else torch.cat([t.new_zeros(*t.shape[:-2], extra, t.shape[-1]), t], dim=-2)


def _pad_mask(m: torch.Tensor, width: int) -> torch.Tensor:
    extra = width - m.shape[1]
    return m if extra == 0 else torch.cat([m.new_zeros(m.shape[0], extra), m], dim=1)


def _select(cache, mask, keep: list[int]):
    """Only the rows in `keep`, without the leading columns none of them uses."""
    if not keep:
        return None, None
    idx = torch.tensor(keep, device=mask.device)
    mask = mask.index_select(0, idx)
    used = mask.any(dim=0).nonzero()
    first = int(used[0]) if len(used) else 0
    for layer in cache.layers:
        layer.keys = layer.keys.index_select(0, idx)[..., first:, :]
        layer.values = layer.values.index_select(0, idx)[..., first:, :]
    return cache, mask[:, first:]
