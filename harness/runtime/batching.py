"""`--batching auto|static|continuous`: which scheduler feeds the engine, decided once with a reason.

static: the queue is cut into batches of `batch_size`; a batch ends with its longest row.
continuous: at most `batch_size` rows in flight; a row leaves when it ends and the next request
takes its slot (engines that declare `supports_continuous`, i.e. transformers).
auto: what was measured faster on this kind of device (benchmarks/ragged.py, docs/benchmarks.md);
where nothing was measured, static, the path with the longer record.
"""

from __future__ import annotations

from harness.errors import ConfigError

MODES = ("auto", "static", "continuous")

# device type -> (mode, the measurement behind it). Update from benchmarks/ragged.py runs.
MEASURED: dict[str, tuple[str, str]] = {
    "cpu": ("continuous", "on a 2-core EPYC VM (docs/benchmarks.md, 2026-11-29) continuous batching gave 2.50x static's useful "
                          "tokens/s on the ragged workload (random:qwen2.5-0.5b-instruct, 64 requests of 16-747 tokens, 8 slots, "
                          "bfloat16; paired passes 2.62x and 2.30x) and cost nothing on equal lengths (0.945x plain generate)"),
}


def choose(requested: str, backend, device_type: str, samplings=()) -> tuple[str, str]:
    """(mode, reason). An explicit `continuous` the engine or the run's decoding settings (`samplings`)
    cannot have is an error before any generation, never a silent swap."""
    if requested not in MODES:
        raise ConfigError(f"unknown batching mode {requested!r}", f"use one of {', '.join(MODES)}")
    why_not = _why_not_continuous(backend) or _why_not_sampling(samplings)
    if requested == "continuous":
        if why_not:
            raise ConfigError(f"--batching continuous is not available: {why_not}", "use --batching static (or auto)")
        return "continuous", "requested"
    if requested == "static":
        return "static", "requested"
    if why_not:
        return "static", f"auto: continuous batching is not available ({why_not})"
    mode, evidence = MEASURED.get(device_type, ("static", f"nothing measured on {device_type} yet: static until benchmarks/ragged.py says otherwise"))
    return mode, f"auto: {evidence}"


def _why_not_sampling(samplings) -> str | None:
    """Continuous batching draws each row's token itself and applies no repetition, presence or
    frequency penalty (backends/continuous.py)."""
    if any(s.repetition_penalty != 1.0 or s.presence_penalty or s.frequency_penalty for s in samplings):
        return "it applies no repetition, presence or frequency penalty, and this run sets one"
    return None


def _why_not_continuous(backend) -> str | None:
    if not backend.supports_continuous:
        return f"the {backend.info.backend} engine has no harness-side continuous batching"
    return backend.continuous_unsupported()
