"""How much slower work goes on a shared machine: the load per core (now, from the kernel's runnable
count; then, as each measurement recorded it) and the slowdown it means for each phase of a run
(planning/timing.py scales its measured profile and earlier runs by it)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def _load() -> float:
    from harness.runtime.cache import load_per_core

    return round(load_per_core() or 0.0, 2)


CONTENTION_EXPONENT = 1.5  # slowdown = (load per core) ** this: measured on the shared 2-core VM, 2026-12-06:
# random:tiny's run 115.7 s at load 8.3 per core vs 6.3 s idle (18x: exponent 1.36), the 0.5B gsm8k run 612.6 s
# at 8.6 vs 21.1 s idle (29x: 1.57). Small torch ops and spinning threads make contention cost more than its share.


GEN_PHASES = ("warmup", "prefill", "decode")  # multi-threaded torch: contention costs them CONTENTION_EXPONENT;
# start-up and load are mostly one thread of Python and I/O, slowed about in proportion (exponent 1)


def busy(load_per_core: float | None, *, running: bool, exponent: float = CONTENTION_EXPONENT) -> float:
    """How many times slower than on an idle machine work goes at this load per core: a run's own
    threads count in a load taken while it ran (`running`), not in one taken before it starts, so
    those get one more per core."""
    lpc = float(load_per_core or 0.0) + (0.0 if running else 1.0)
    return max(1.0, lpc) ** exponent


def _exp(phase: str) -> float:
    return CONTENTION_EXPONENT if phase in GEN_PHASES else 1.0


def _scale(now: float | None, then: float | None, then_running: bool, phase: str) -> float:
    return busy(now, running=False, exponent=_exp(phase)) / busy(then, running=then_running, exponent=_exp(phase))


def record_load(r: dict) -> tuple[float | None, bool]:
    """(load per core, whether it counts the run's own threads) of an earlier run's record."""
    if "load_runnable" in r:
        return r["load_runnable"], False
    return r.get("load_per_core"), True


def current_load() -> float:
    """Other work per core right now: the kernel's runnable count (/proc/loadavg's 4th field) averaged
    over 20 samples in 0.2 s, less this process. The 1-minute load average lags by a minute, which
    the contention exponent would amplify; falls back to it where /proc is absent."""
    samples = []
    for _ in range(20):
        try:
            samples.append(int(Path("/proc/loadavg").read_text().split()[3].split("/")[0]))
        except (OSError, ValueError, IndexError):
            return _load()
        time.sleep(0.01)
    return max(0.0, sum(samples) / len(samples) - 1) / (os.cpu_count() or 1)
