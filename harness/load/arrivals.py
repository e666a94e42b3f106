"""When each request of an open-loop load test is sent: constant, Poisson or gamma arrivals.

Pure and seeded: the same (kind, rate, n, seed) gives the same schedule, so two runs of a load
test offer the server the same arrivals. Gamma arrivals follow vLLM's `--burstiness`: the gaps
are gamma-distributed with shape = burstiness and mean 1/rate, so burstiness 1 is Poisson, below
1 is burstier, above 1 is more regular; `constant` is the limit of infinite burstiness.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from harness.errors import ConfigError

KINDS = ("poisson", "gamma", "constant")


@dataclass(frozen=True)
class Arrivals:
    """An arrival process: `kind` with gamma's `burstiness` (1.0 for Poisson, inf for constant)."""

    kind: str
    burstiness: float = 1.0

    def describe(self) -> str:
        return f"gamma:{self.burstiness:g}" if self.kind == "gamma" else self.kind


def parse_arrivals(text: str) -> Arrivals:
    """`poisson`, `constant` or `gamma:BURSTINESS` (a positive number)."""
    kind, _, arg = text.strip().lower().partition(":")
    if kind == "poisson" and not arg:
        return Arrivals("poisson", 1.0)
    if kind == "constant" and not arg:
        return Arrivals("constant", math.inf)
    if kind == "gamma":
        try:
            b = float(arg)
        except ValueError:
            b = -1.0
        if math.isfinite(b) and b > 0:
            return Arrivals("gamma", b)
        raise ConfigError(f"--arrivals gamma needs a positive burstiness, got {text!r}", "e.g. --arrivals gamma:0.5 (1 = Poisson)")
    raise ConfigError(f"unknown --arrivals {text!r}", "use poisson, constant or gamma:BURSTINESS")


def gaps(arrivals: Arrivals, rate: float, n: int, seed: int) -> list[float]:
    """n gaps in seconds before each request (the first is 0: the test starts with a request)."""
    if not (math.isfinite(rate) and rate > 0):
        raise ConfigError(f"a request rate must be a positive number, got {rate!r}", "e.g. --rate 0.5,1,2")
    if n <= 0:
        return []
    mean = 1.0 / rate
    rng = random.Random(seed)
    out = [0.0]
    for _ in range(n - 1):
        if arrivals.kind == "constant":
            out.append(mean)
        elif arrivals.kind == "poisson":
            out.append(rng.expovariate(rate))
        else:  # gamma with shape k and scale mean/k keeps the mean at 1/rate
            k = arrivals.burstiness
            out.append(rng.gammavariate(k, mean / k))
    return out


def schedule(arrivals: Arrivals, rate: float, n: int, seed: int) -> list[float]:
    """Send times in seconds from the start of the level (cumulative gaps)."""
    t, out = 0.0, []
    for g in gaps(arrivals, rate, n, seed):
        t += g
        out.append(t)
    return out
