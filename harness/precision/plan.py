"""`harness precision --dry-run`: which precisions fit this machine, how fast each should decode, and
what a run of each costs, before anything is built, downloaded or run.

Per variant: its weight bytes (the built file's where it is cached, else parameters x llama.cpp's
nominal bits per weight), memory needed (weights + an f16 KV cache at the run's context + the
runtime) against what the machine has, the decode speed the memory-bandwidth bound gives (bytes read
per token: the weights once plus the KV cache; harness.planning.estimate.roofline_speed, on the
bandwidth `harness env` measures and caches), the run's output tokens (requests x the token budget, an
upper bound) over that speed, and dollars at --price-per-hour. On a CPU the speed is an estimate,
not a bound (harness/planning/engines.py, ROOFLINE_KIND).
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.core.architecture import count_parameters
from harness.planning import estimate as est
from harness.precision import variants as var


def _shape(model: str) -> tuple[int | None, int | None]:
    """(parameters, KV bytes per token at f16) of the source model."""
    p = Path(model)
    if p.is_file():
        from harness.backends.gguf_file import read_header

        h = read_header(p)
        return h.parameters, h.kv_bytes_per_token(2)
    config = json.loads((p / "config.json").read_text(encoding="utf-8"))
    params = count_parameters(config)
    try:
        heads = int(config["num_attention_heads"])
        head_dim = int(config.get("head_dim") or int(config["hidden_size"]) // heads)
        kv = 2 * int(config["num_hidden_layers"]) * int(config.get("num_key_value_heads") or heads) * head_dim * 2
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        kv = None
    return params, kv


def plan_lines(spec, price_per_hour: float | None = None) -> list[str]:
    """The dry-run's lines for a matrix spec (harness/precision/matrix.py Spec)."""
    from harness.config import make_config
    from harness.planning.engines import ROOFLINE_KIND, bandwidth
    from harness.planning.plan import make_plan
    from harness.runtime.device import resolve

    cfg = make_config(**{**spec.run_values, "model": spec.model})
    plan = make_plan(cfg)
    work = list(plan.work())
    budget = max((tp.settings["max_new_tokens"] for tp in plan.tasks.values()), default=0)
    tokens = sum(req.sampling.max_new_tokens for req, *_ in work)
    prompt_ctx = 512  # a generous prompt allowance for the KV cache estimate
    context = prompt_ctx + budget
    dev = resolve(str(spec.run_values.get("device") or "auto"), "bfloat16")
    gbps, gbps_src = bandwidth(dev)
    available, avail_src = est.host_available() if dev.type == "cpu" else est.device_available(dev.type, dev.index)
    params, kv = _shape(spec.model)
    runtime = est.RUNTIME_BYTES.get(dev.type, est.RUNTIME_BYTES["cuda"])
    lines = [f"precision plan: {spec.model} ({params / 1e9:.2f}B parameters)" if params else f"precision plan: {spec.model}",
             (f"  {len(work)} requests per variant ({', '.join(plan.tasks)}), at most {tokens:,} output tokens each run "
             f"(the budget {budget} x requests: an upper bound)"),
             (f"  machine: {dev.name} ({dev.type}); memory available {est.human_bytes(available)} ({avail_src}); "
             f"bandwidth {'unknown' if gbps is None else f'{gbps:.1f} GB/s'} ({gbps_src})"),
             f"  reference: {spec.reference}"]
    lines += [f"  note: {n}" for n in var.source_notes(spec.model)]
    fp = spec.fingerprint or None
    for v in var.parse_precisions(spec.precisions):
        reason = var.unbuildable_reason(v, dev.type)
        if reason:
            lines.append(f"  {v.name:<16} cannot be built here: {reason}")
            continue
        weights, how = None, "nominal"
        cached = fp and (var.cache_root() / fp[:16]).glob(f"*-{v.name}.gguf")
        hit = next(iter(cached), None) if cached else None
        if v.kind == "given" and v.path is not None:
            from harness.backends.gguf_file import read_header

            weights, how = read_header(v.path).tensor_bytes, "the file"
        elif hit is not None:
            from harness.backends.gguf_file import read_header

            weights, how = read_header(hit).tensor_bytes, "the cached build"
        elif params and v.nominal_bits:
            weights = int(params * v.nominal_bits / 8)
        if weights is None:
            lines.append(f"  {v.name:<16} size unknown (no parameter count for this model)")
            continue
        need = weights + (kv or 0) * context + runtime
        fits = available is None or need <= available
        batch = 1 if v.engine == "llamacpp" else (cfg.batch_size if isinstance(cfg.batch_size, int) else 1)
        speed = est.roofline_speed(gbps, weights, kv or 0, prompt_ctx + budget / 2, batch) if gbps else None
        secs = tokens / speed if speed else None
        money = f", ${secs / 3600 * price_per_hour:.4f} a run" if secs is not None and price_per_hour is not None else ""
        build = ("cached" if hit is not None or v.kind in ("hf", "given") else
                 "built once: convert to a bf16 GGUF" + ("" if v.name in var.FLOAT_GGUF else f", then quantise to {v.name.upper()}"))
        lines.append(f"  {v.name:<16} {v.engine:<12} weights {est.human_bytes(weights)} ({how}, {8 * weights / params:.2f} bits a weight)"
                     if params else f"  {v.name:<16} {v.engine:<12} weights {est.human_bytes(weights)}")
        lines[-1] += (f"; needs about {est.human_bytes(need)}: {'fits' if fits else 'does NOT fit'}; "
                      f"decode about {'?' if speed is None else f'{speed:.1f}'} tok/s at batch {batch}; "
                      f"a run about {est.human_seconds(secs)}{money}; {build}")
    if dev.type in ROOFLINE_KIND:
        lines.append(f"  speeds are {ROOFLINE_KIND[dev.type]}")
    return lines


__all__ = ["plan_lines"]
