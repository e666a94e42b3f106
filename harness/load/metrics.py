"""Serving metrics from request records, with vLLM's definitions; goodput, spread and saturation.

Definitions (docs/load.md maps them to vLLM, GuideLLM and evalscope):
- TTFT: send to the first streamed content chunk.
- TPOT: per request, (E2EL - TTFT) / (output tokens - 1): the first token excluded, as vLLM does;
  a request with one output token has none.
- ITL: every gap between two successive content chunks, pooled over the level's requests.
- E2EL: send to the last byte of the response.
- duration: the level's first send to its last completion; throughputs divide by it.
- goodput: requests that succeeded and met every SLO limit, per second (a failure never conforms).
Percentiles interpolate linearly between order statistics (numpy's default, which vLLM uses): harness.stats.percentile.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from harness.errors import ConfigError
from harness.load.schema import Dist, Goodput, LevelMetrics, RequestRecord, Saturation, Slo, Spread
from harness.measure import timing
from harness.stats import percentile

SLO_KEYS = {"ttft": "ttft_s", "tpot": "tpot_s", "e2el": "e2el_s"}


def dist(xs: Sequence[float]) -> Dist:
    """mean, median, population std (numpy's default, as vLLM reports), p90, p99; None when empty."""
    if not xs:
        return Dist(n=0, mean=None, median=None, std=None, p90=None, p99=None)
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / len(xs))
    return Dist(n=len(xs), mean=mean, median=percentile(xs, 50), std=std, p90=percentile(xs, 90), p99=percentile(xs, 99))


def tpot(rec: RequestRecord) -> float | None:
    """(E2EL - TTFT) / (output tokens - 1), vLLM's TPOT and the run's (measure.timing); None for a failure or a single token."""
    return timing.tpot(rec.e2el_s, rec.ttft_s, rec.output_tokens) if rec.ok else None


def error_kind(rec: RequestRecord) -> str:
    if rec.status is not None and rec.status >= 400:
        return f"HTTP {rec.status}"
    return (rec.error or "error").split(":", 1)[0][:60]


def level_metrics(records: Sequence[RequestRecord], duration_s: float) -> LevelMetrics:
    done = [r for r in records if r.ok]
    failed = [r for r in records if not r.ok]
    out_tokens = sum(r.output_tokens for r in done)
    ins = [r.input_tokens for r in done]
    in_tokens = None if any(i is None for i in ins) else sum(i for i in ins if i is not None)

    def per_s(x: float | None) -> float | None:
        return None if x is None or duration_s <= 0 else x / duration_s

    tpots = [t for t in (tpot(r) for r in done) if t is not None]
    return LevelMetrics(
        completed=len(done), failed=len(failed), duration_s=duration_s,
        total_input_tokens=in_tokens, total_output_tokens=out_tokens,
        request_throughput=per_s(len(done)), output_throughput=per_s(out_tokens),
        total_token_throughput=per_s(None if in_tokens is None else in_tokens + out_tokens),
        ttft_s=dist([r.ttft_s for r in done if r.ttft_s is not None]),
        tpot_s=dist(tpots),
        itl_s=dist([g for r in done for g in r.itl_s]),
        e2el_s=dist([r.e2el_s for r in done if r.e2el_s is not None]),
        errors=dict(Counter(error_kind(r) for r in failed)),
    )


def parse_slo(text: str | None, attainment: float = 0.9) -> Slo | None:
    """`ttft=2,tpot=0.1,e2el=60` (seconds) -> Slo; None for no text."""
    if not text:
        return None
    if not (0 < attainment <= 1):
        raise ConfigError(f"--slo-attainment must be in (0, 1], got {attainment}", "e.g. --slo-attainment 0.9")
    limits: dict[str, float] = {}
    for part in text.split(","):
        key, eq, val = part.strip().partition("=")
        if key.strip().lower() not in SLO_KEYS or not eq:
            raise ConfigError(f"--slo expects ttft=S,tpot=S,e2el=S (seconds), got {part.strip()!r}", "e.g. --slo ttft=2,tpot=0.1,e2el=60")
        try:
            v = float(val)
        except ValueError:
            v = -1.0
        if not (math.isfinite(v) and v > 0):
            raise ConfigError(f"--slo {key.strip()} must be a positive number of seconds, got {val!r}", "e.g. --slo ttft=2")
        limits[SLO_KEYS[key.strip().lower()]] = v
    return Slo(attainment=attainment, **limits)


def conforms(rec: RequestRecord, slo: Slo) -> bool:
    """Succeeded and met every limit; a limit on a figure the request lacks (TPOT of one token) is met."""
    if not rec.ok:
        return False
    if slo.ttft_s is not None and (rec.ttft_s is None or rec.ttft_s > slo.ttft_s):
        return False
    if slo.e2el_s is not None and (rec.e2el_s is None or rec.e2el_s > slo.e2el_s):
        return False
    t = tpot(rec)
    return not (slo.tpot_s is not None and t is not None and t > slo.tpot_s)


def goodput(records: Sequence[RequestRecord], slo: Slo, duration_s: float) -> Goodput:
    good = [r for r in records if conforms(r, slo)]
    total = len(records)
    attainment = len(good) / total if total else None
    per = (lambda x: x / duration_s) if duration_s > 0 else (lambda x: None)
    return Goodput(conforming=len(good), attainment=attainment, request_goodput=per(len(good)),
                   output_goodput=per(sum(r.output_tokens for r in good)),
                   meets_slo=attainment is not None and attainment >= slo.attainment)


def spread(values: Sequence[float | None]) -> Spread:
    """mean, min, max and sample std (n-1) of the measured values among a load's repeats."""
    xs = [v for v in values if v is not None]
    if not xs:
        return Spread(mean=None, min=None, max=None, std=None, values=list(values))
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None
    return Spread(mean=mean, min=min(xs), max=max(xs), std=std, values=list(values))


def saturation(points: Sequence[tuple[float, float | None, float | None, bool | None]], mode: str, slo: Slo | None) -> Saturation:
    """The highest load that met the SLO at every repeat. `points`: (load, output tok/s, req/s, meets).

    Without an SLO, the load of the highest output throughput, said so."""
    m = "concurrency" if mode == "concurrency" else "rate"
    if not points:
        return Saturation(mode=m, load=None, criterion="", reason="no load level finished")
    if slo is None:
        best = max(points, key=lambda p: -1.0 if p[1] is None else p[1])
        return Saturation(mode=m, load=best[0], criterion="highest output throughput (no --slo given)",
                          output_throughput=best[1], request_throughput=best[2])
    meeting = [p for p in points if p[3]]
    criterion = f"highest load meeting the SLO: {slo.describe()}"
    if not meeting:
        return Saturation(mode=m, load=None, criterion=criterion, reason="no load level met the SLO")
    best = max(meeting, key=lambda p: p[0])
    return Saturation(mode=m, load=best[0], criterion=criterion, output_throughput=best[1], request_throughput=best[2])
