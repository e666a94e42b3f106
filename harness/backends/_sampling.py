"""Pieces the engine adapters share: stop-string scanning over streamed text, the mapping of
`Sampling` onto engine knobs, and the split of the pipeline's options into the ones an engine
takes and the ones it ignores (defined in base). Prompts are rendered by backends/render.py.

Kept free of engine imports so every adapter (and its tests) can use it without the engine.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.core.types import Sampling


class StopScanner:
    """Accumulates streamed text and finds the earliest stop string in it.

    Only the tail that could hold a new match is searched on each piece, so a long generation
    costs linear time. After a match `text` ends just before the stop string (the OpenAI and
    vLLM convention: the stop string is not part of the output) and `matched` names it.
    """

    def __init__(self, stops: Iterable[str] = ()):
        self.stops = tuple(s for s in stops if s)
        self._longest = max((len(s) for s in self.stops), default=0)
        self._checked = 0  # text before this index has been searched already
        self.text = ""
        self.matched: str | None = None

    def feed(self, piece: str, check: bool = True) -> bool:
        """Append `piece`; return True when a stop string is now complete.

        check=False appends without searching (while a minimum length holds stops back); the
        next checked feed searches everything not yet searched.
        """
        self.text += piece
        if not check or not self.stops or self.matched is not None:
            return self.matched is not None
        start = max(0, self._checked - self._longest + 1)
        hits = [(i, s) for s in self.stops if (i := self.text.find(s, start)) >= 0]
        self._checked = len(self.text)
        if not hits:
            return False
        index, stop = min(hits)
        self.text, self.matched = self.text[:index], stop
        return True


def effective_top_k(sampling: Sampling) -> int:
    """top-k for an engine where 0 means off: greedy decoding is top-k 1."""
    return 1 if sampling.greedy else max(0, sampling.top_k)


def engine_seed(seed: int, bits: int = 32) -> int:
    """Fold a request seed into an engine's unsigned seed range.

    llama.cpp treats 0xFFFFFFFF as "pick a random seed", so that value is moved one down:
    a request seed must always reproduce.
    """
    folded = seed % (1 << bits)
    return folded - 1 if folded == (1 << bits) - 1 else folded
