"""Generated tokens as they are made: every engine ticks here per decoding step or streamed delta, so a
progress display can show tokens/s and an ETA while a batch is still generating (a 32k-token trace
finishes no sample for hours). One process-wide counter; a listener is optional and never slows a step.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_lock = threading.Lock()
_count = [0]
_listeners: list[Callable[[int], None]] = []


def tick(n: int = 1) -> None:
    """`n` more tokens generated (a step of a batch of n rows, or n streamed deltas)."""
    if n <= 0:
        return
    with _lock:
        _count[0] += n
    for fn in list(_listeners):
        fn(n)


def generated() -> int:
    """Tokens ticked in this process so far."""
    return _count[0]


def listen(fn: Callable[[int], None]) -> Callable[[], None]:
    """Call `fn(n)` on every tick; returns the function that stops listening."""
    _listeners.append(fn)
    return lambda: _listeners.remove(fn) if fn in _listeners else None
