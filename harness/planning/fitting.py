"""What a run's memory allows: the dtype it runs in and the batch sizes that fit.

`run_dtype` is the one dtype decision for plan, run and bench: on CPU with `--dtype auto` and the
transformers engine, the dtype a short generation of the architecture ran faster in
(planning/cpu_dtype.py; nothing is timed unless asked: then bfloat16); then `fit_dtype`'s memory check, which drops an automatic float32 that
would not fit to bfloat16 and says why. `batch_fits` answers, for `--batch-size auto`, whether a
batch fits at the run's context by the same estimate (measure/estimate.py).
"""

from __future__ import annotations

from dataclasses import replace

from harness.planning import estimate as est


def run_dtype(cfg, dev, shape: dict, batch: int, context: int, *, measure: bool = False) -> tuple[object, dict | None, list[str]]:
    """(device, memory estimate, notes) with the dtype a run uses; `measure`: time the CPU dtype
    now when no measurement is cached (`harness plan --calibrate`)."""
    from harness.planning.cpu_dtype import refine

    return fit_dtype(cfg, refine(dev, cfg, shape.get("config"), measure=measure), shape, batch, context)


def fit_dtype(cfg, dev, shape: dict, batch: int, context: int) -> tuple[object, dict | None, list[str]]:
    """The estimate in the run's dtype; an automatic float32 (the faster one here, or the only
    choice) that would not fit drops to bfloat16, and the reason says both."""
    notes: list[str] = []
    if shape["file_bytes"] and not shape["params"]:
        w = shape["file_bytes"]
        return dev, {"weights": w, "kv_cache": 0, "kv_per_token": 0, "activations": int(w * est.ACTIVATION_MARGIN),
                     "runtime": est.RUNTIME_BYTES["cpu"], "total": int(w * (1 + est.ACTIVATION_MARGIN)) + est.RUNTIME_BYTES["cpu"],
                     "dtype": "as stored", "batch": batch, "context": context}, notes
    if not shape["params"]:
        return dev, None, notes
    config = shape["config"] or {}
    memory = est.memory_estimate(config, shape["params"], dev.dtype, batch, context, dev.type)
    if cfg.dtype == "auto" and dev.dtype == "float32":
        available, _ = est.device_available(dev.type, dev.index)
        if not est.fits(memory, available):
            smaller = est.memory_estimate(config, shape["params"], "bfloat16", batch, context, dev.type)
            why = (f"auto: float32 would need {est.human_bytes(memory['total'])} of {est.human_bytes(available)} available, "
                   f"so bfloat16 ({est.human_bytes(smaller['total'])})")
            if dev.dtype_measurements:
                why += f" (float32 measured faster: {dev.dtype_reason})"
            dev, memory = replace(dev, dtype="bfloat16", dtype_reason=why), smaller
            notes.append(f"dtype {why}")
    return dev, memory, notes


def batch_fits(memory: dict | None, shape: dict | None, device_type: str, available: int | None):
    """b -> whether the run fits at batch b and the estimate's context (True when nothing is known)."""
    shape = shape or {}
    if not memory or not shape.get("params") or memory["dtype"] == "as stored":
        return lambda b: True
    return lambda b: est.fits(est.memory_estimate(shape.get("config") or {}, shape["params"], memory["dtype"], b, memory["context"],
                                                  device_type), available)
