"""Timing: the TPOT definition and the run's `perf` summary (the clock itself is read in
harness/orchestration/generate.py and the backends, with the device synchronised around each timed region).

Definitions follow vLLM's benchmarks and MLPerf (results/README.md):
- TTFT: first token time - request start (in a static batch, the batch's prefill time);
- TPOT: (e2e - TTFT) / (output_tokens - 1), undefined (None) for one output token or fewer;
- throughputs are ratios of sums over batches (time-weighted), never means of per-batch rates.
No torch here.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.stats import percentiles


def tpot(e2e_s: float | None, ttft_s: float | None, output_tokens: int | None) -> float | None:
    """Time per output token after the first; None when undefined or not measured."""
    if e2e_s is None or ttft_s is None or output_tokens is None or output_tokens <= 1:
        return None
    return (e2e_s - ttft_s) / (output_tokens - 1)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _row_tpot(row: dict) -> float | None:
    if row.get("tpot_s") is not None:
        return row["tpot_s"]
    return tpot(row.get("e2e_s"), row.get("ttft_s"), row.get("output_tokens"))


def _sum(values) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def perf_summary(
    rows: Sequence[dict],
    *,
    wall_s: float,
    load_s: float | None,
    warmup: dict,
    batches: Sequence[dict],
) -> dict:
    """The timing part of run.json's `perf` block.

    rows: samples.jsonl rows (ttft_s, tpot_s, e2e_s, input_tokens, output_tokens per row).
    batches: one dict per generated batch, warm-up excluded:
      {"rows": n, "input_tokens": int, "output_tokens": int, "prefill_s": float|None, "wall_s": float}.
    output_tokens_per_s = sum(output tokens) / sum(batch wall).
    prefill_tokens_per_s = sum(input tokens) / sum(prefill time), over batches with a prefill time.
    decode_tokens_per_s = sum(output tokens - rows) / sum(batch wall - prefill time), same batches:
      each row's first token comes out of prefill, so it is not a decode token.
    A batch missing a quantity a rate needs is left out of that rate; a rate with nothing left
    (or a zero denominator) is None.
    """
    # A batch joins a rate only when every quantity that rate needs was measured for it.
    counted = [b for b in batches if b.get("output_tokens") is not None]
    prefilled = [b for b in batches if b.get("prefill_s") is not None and b.get("input_tokens") is not None]
    decoded = [b for b in counted if b.get("prefill_s") is not None]
    return {
        "wall_s": wall_s,
        "load_s": load_s,
        "warmup": dict(warmup),
        "ttft_s": percentiles([r.get("ttft_s") for r in rows]),
        "tpot_s": percentiles([_row_tpot(r) for r in rows]),
        "e2e_s": percentiles([r.get("e2e_s") for r in rows]),
        "input_tokens": _sum(r.get("input_tokens") for r in rows),
        "output_tokens": _sum(r.get("output_tokens") for r in rows),
        "output_tokens_per_s": _ratio(
            sum(b["output_tokens"] for b in counted), sum(b["wall_s"] for b in counted)
        ),
        "prefill_tokens_per_s": _ratio(
            sum(b["input_tokens"] for b in prefilled), sum(b["prefill_s"] for b in prefilled)
        ),
        "decode_tokens_per_s": _ratio(
            sum(max(0, b["output_tokens"] - b["rows"]) for b in decoded),
            sum(b["wall_s"] - b["prefill_s"] for b in decoded),
        ),
    }
