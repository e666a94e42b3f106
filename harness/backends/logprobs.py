"""Log-likelihood scoring: the engine side of lm-eval's `loglikelihood` and `loglikelihood_rolling`.

A backend that can score implements two hooks from backends/base.py: `encode(text,
add_special_tokens)` (its tokenizer, with lm-eval's BOS rule) and `score(batch)` (one forward
pass over a batch of `ScoreRequest`s). This module owns everything between lm-eval's strings and
those hooks, mirroring lm-eval 0.4.13's HFLM so the numbers agree with `--model hf`:

- `encode_pair`: trailing spaces of the context move to the continuation; the continuation's
  tokens are those of `context + continuation` after the context's own tokens (so a merge across
  the boundary is scored as the continuation's); an empty context becomes the prefix token (BOS,
  else EOS) unless the continuation already starts with it (lm_eval/api/model.py, TemplateLM).
- `rolling_windows`: a document split into disjoint windows of at most `max_length` tokens, the
  first one conditioned on the prefix token (lm_eval/utils.py get_rolling_token_windows).
- `model_input`: context + continuation cut from the left to `max_length + 1` tokens, last one
  dropped (its prediction is never scored).
- `score_all`: length-sorted batches (longest first, so out-of-memory shows on the first batch;
  `auto` halves the batch and retries), each batch timed between device synchronisations.
- `score_causal_lm`: the transformers forward pass: right padding and no attention mask, as
  HFLM does (causal attention never lets a position see the padding after it), log-softmax over
  the full logits width in the logits' dtype, `greedy` = every continuation token is the argmax.

Engines that cannot score raise `LogprobsUnsupported` from the base hooks, with the reason.
torch and numpy are imported inside the functions that need them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.core.types import LogprobsUnsupported  # noqa: F401  (raised by the base hooks; importable from here)
from harness.errors import ConfigError

Encode = Callable[[str, "bool | None"], list[int]]


@dataclass(frozen=True)
class ScoreRequest:
    """One continuation to score: token ids of its context and of the continuation itself."""

    key: str
    context: tuple[int, ...]
    continuation: tuple[int, ...]


@dataclass
class Score:
    """The summed log-probability of a continuation, whether greedy decoding would produce it, and timings.

    input_tokens: tokens run through the model for it (after left truncation); truncated: tokens
    dropped from the left to fit `max_length`. Rows of a batch finish together: e2e_s is the batch's wall time."""

    logprob: float
    greedy: bool
    input_tokens: int
    continuation_tokens: int
    truncated: int = 0
    e2e_s: float | None = None
    batch_size: int = 1
    batch_wall_s: float | None = None


def encode_pair(encode: Encode, prefix_token_id: int, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's (context tokens, continuation tokens) for one loglikelihood request."""
    if context == "":
        cont = encode(continuation, False)
        if not cont:
            raise ConfigError("a loglikelihood request has an empty context and an empty continuation", "check the task's doc_to_choice")
        return ([prefix_token_id], cont) if cont[0] != prefix_token_id else (cont[:1], cont[1:])
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = encode(context + continuation, None)
    ctx = encode(context, None)
    return ctx, whole[len(ctx):]


def rolling_windows(tokens: Sequence[int], prefix_token_id: int, max_length: int) -> list[tuple[list[int], list[int]]]:
    """Disjoint (context, continuation) windows that together score every token of a document once."""
    tokens = list(tokens)
    if not tokens:
        return []
    windows = []
    first = min(max_length, len(tokens))
    windows.append(([prefix_token_id] + tokens[:first - 1], tokens[:first]))
    done = first
    while done < len(tokens):
        n = min(len(tokens) - done, max_length)  # context_len=1: each window predicts up to max_length tokens
        end = done + n
        windows.append((tokens[max(0, end - max_length - 1):end - 1], tokens[end - n:end]))
        done = end
    return [(ctx[:len(ctx) - (len(cont) - 1)], cont) for ctx, cont in windows]  # lm-eval's make_disjoint_window


def model_input(req: ScoreRequest, max_length: int) -> tuple[list[int], int]:
    """(tokens fed to the model, tokens truncated from the left) for one request."""
    whole = list(req.context) + list(req.continuation)
    kept = whole[-(max_length + 1):]
    return kept[:-1], len(whole) - len(kept)


def order(requests: Sequence[ScoreRequest]) -> list[int]:
    """Indices longest first (ties by token ids, as lm-eval's Collator), so a batch's first row sets its padded length."""
    def key(i: int):
        toks = requests[i].context + requests[i].continuation
        return -len(toks), toks
    return sorted(range(len(requests)), key=key)


def score_all(backend, requests: Sequence[ScoreRequest], *, batch_size: int | str, max_length: int | None = None,
              on_batch: Callable[[list[int], list[Score], float], None] = lambda idx, scores, wall: None,
              progress: Callable[[int], None] = lambda n: None) -> list[Score]:
    """Every request scored through `backend.score`, in length-sorted batches; results in request order."""
    from harness.backends.chunks import in_batches

    for r in requests:
        if not r.context or not r.continuation:
            raise ConfigError(f"loglikelihood request {r.key} has an empty context or continuation after tokenisation",
                              "check the task's doc_to_text and doc_to_choice")
    out: list[Score | None] = [None] * len(requests)

    def finished(idx, scores, wall):
        for j, s in zip(idx, scores):
            s.e2e_s, s.batch_size, s.batch_wall_s = wall, len(idx), wall
            out[j] = s
        on_batch(list(idx), scores, wall)

    in_batches(backend, order(requests), lambda b, idx: b.score([requests[j] for j in idx], max_length), finished,
               batch_size=batch_size, progress=progress, oom_fix="use --dtype bfloat16, a smaller max_length, or a smaller model")
    return out  # type: ignore[return-value]


def score_causal_lm(model, device, requests: Sequence[ScoreRequest], max_length: int) -> list[Score]:
    """One batched forward pass of a transformers causal LM over `requests`."""
    import torch
    import torch.nn.functional as F

    inputs = [model_input(r, max_length) for r in requests]
    width = max(len(toks) for toks, _ in inputs)
    batch = torch.zeros((len(inputs), width), dtype=torch.long)  # right padding with id 0, as HFLM's pad_and_concat
    for row, (toks, _) in enumerate(inputs):
        batch[row, :len(toks)] = torch.tensor(toks, dtype=torch.long)
    with torch.inference_mode():
        logits = model(batch.to(device)).logits
        logprobs = F.log_softmax(logits, dim=-1)
    out = []
    for row, (req, (toks, cut)) in enumerate(zip(requests, inputs)):
        n = len(req.continuation)
        rows = logprobs[row, len(toks) - n:len(toks)]  # the positions that predict the continuation
        cont = torch.tensor(req.continuation, dtype=torch.long, device=rows.device)
        picked = rows.gather(1, cont.unsqueeze(-1)).squeeze(-1)
        greedy = bool((rows.argmax(dim=-1) == cont).all())
        out.append(Score(logprob=float(picked.sum()), greedy=greedy, input_tokens=len(toks), continuation_tokens=n, truncated=cut))
    return out


def score_from_logits(rows, continuation: Sequence[int]) -> tuple[float, bool]:
    """(summed log-probability, greedy) from a numpy array of raw logits, one row per continuation token."""
    import numpy as np

    x = np.asarray(rows, dtype=np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    logprobs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    cont = np.asarray(continuation, dtype=np.intp)
    picked = logprobs[np.arange(len(cont)), cont]
    return float(picked.sum()), bool((x.argmax(axis=-1) == cont).all())


def score_llama_cpp(llm, requests: Sequence[ScoreRequest], max_length: int) -> list[Score]:
    """Requests one at a time on a llama_cpp.Llama: the context prefilled in n_batch chunks with only
    the chunks holding continuation positions asking for logits (a row of n_vocab floats per token)."""
    import numpy as np

    n_vocab, n_batch = llm.n_vocab(), llm.n_batch
    out = []
    for req in requests:
        toks, cut = model_input(req, max_length)
        first = len(toks) - len(req.continuation)  # position whose logits predict the first continuation token
        llm.reset()
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)  # no KV reuse: every request is prefilled in full
        rows = []
        for start in range(0, len(toks), n_batch):
            chunk = toks[start:start + n_batch]
            wanted = start + len(chunk) > first
            llm._batch.set_batch(batch=chunk, n_past=start, logits_all=wanted)
            llm._ctx.decode(llm._batch)
            if wanted:
                logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(chunk), n_vocab))
                rows.append(logits[max(0, first - start):].copy())
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        logprob, greedy = score_from_logits(np.concatenate(rows), req.continuation)
        out.append(Score(logprob=logprob, greedy=greedy, input_tokens=len(toks), continuation_tokens=len(req.continuation), truncated=cut))
    return out
