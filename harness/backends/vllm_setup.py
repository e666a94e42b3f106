"""How the vLLM engine is set up on this machine, and its log-likelihood scoring: the parts of the
vLLM backend (backends/vllm.py) that are about the host and the engine's calls, not about requests.

CPU (vLLM's CPU build): the engine is built eager (`enforce_eager`: no graph capture or
torch.compile warm-up, which costs minutes on a few cores and buys nothing at the batch sizes a CPU
runs), with a KV cache of `VLLM_CPU_KVCACHE_SPACE` GiB (DEFAULT_CPU_KV_GIB when unset, at most a
quarter of free memory; vLLM's own default reserves far more). vLLM's CPU platform forces its
workers to start with `spawn`, which re-runs the calling script's top level in each child unless it
sits under `if __name__ == "__main__":`; `no_main_reimport` hides the main script from the children
while the engine starts (they run only vLLM's importable code), so a caller needs no guard.

Log-likelihoods: each request is one prompt with `prompt_logprobs=1` and one generated token; vLLM
returns every prompt token's log-probability and rank, so the summed log-probability and the greedy
flag (every continuation token ranked first) need no logits of our own.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

DEFAULT_CPU_KV_GIB = 2  # enough for a few thousand tokens of context on small models; vLLM's own default takes far more


def cuda_present() -> bool:
    """Whether a CUDA device is visible (vLLM's CPU build runs everywhere else)."""
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def cpu_kv_space_gib(environ: Mapping[str, str] | None = None, free_bytes: int | None = None) -> tuple[int, str]:
    """(GiB for vLLM's CPU KV cache, why): VLLM_CPU_KVCACHE_SPACE when set, else DEFAULT_CPU_KV_GIB,
    no more than a quarter of free memory (at least 1)."""
    env = os.environ if environ is None else environ
    given = env.get("VLLM_CPU_KVCACHE_SPACE", "")
    if given.strip():
        return int(given), "VLLM_CPU_KVCACHE_SPACE (set by the user)"
    if free_bytes is None:
        import psutil

        free_bytes = int(psutil.virtual_memory().available)
    quarter = max(1, free_bytes // 4 // (1 << 30))
    gib = min(DEFAULT_CPU_KV_GIB, quarter)
    return gib, f"the harness's CPU default ({DEFAULT_CPU_KV_GIB} GiB, at most a quarter of free memory)"


@contextlib.contextmanager
def no_main_reimport() -> Iterator[None]:
    """While vLLM starts its engine processes: hide the main script from `spawn`, so each child does
    not re-run the caller's top level (a script without a `__main__` guard would start a second
    engine in every child). The children run only vLLM's own importable code."""
    main = sys.modules.get("__main__")
    saved = {k: getattr(main, k) for k in ("__file__", "__spec__") if main is not None and hasattr(main, k)}
    try:
        if main is not None and "__file__" in saved:
            del main.__file__
            main.__spec__ = None
        yield
    finally:
        for k, v in saved.items():
            setattr(main, k, v)


def score_prompt_logprobs(llm: Any, sampling_params: Callable[..., Any], requests: Sequence[Any], max_length: int) -> list:
    """One `logprobs.Score` per `logprobs.ScoreRequest`, each cut from the left to `max_length` + 1 tokens."""
    from harness.backends.logprobs import Score

    prompts, cuts = [], []
    for r in requests:
        whole = list(r.context) + list(r.continuation)
        kept = whole[-(max_length + 1):]
        prompts.append({"prompt_token_ids": kept})
        cuts.append(len(whole) - len(kept))
    params = sampling_params(max_tokens=1, temperature=0.0, prompt_logprobs=1, detokenize=False)
    outputs = llm.generate(prompts, params, use_tqdm=False)
    out = []
    for r, prompt, cut, o in zip(requests, prompts, cuts, outputs):
        ids = prompt["prompt_token_ids"]
        n = len(r.continuation)
        total, greedy = 0.0, True
        for pos in range(len(ids) - n, len(ids)):
            entry = o.prompt_logprobs[pos][ids[pos]]
            total += float(entry.logprob)
            greedy = greedy and entry.rank == 1
        out.append(Score(logprob=total, greedy=greedy, input_tokens=len(ids) - 1, continuation_tokens=n, truncated=cut))
    return out


__all__ = ["DEFAULT_CPU_KV_GIB", "cpu_kv_space_gib", "cuda_present", "no_main_reimport", "score_prompt_logprobs"]
