"""Assembles run.json from what is on disk and what each process measured, then renders
report.md. Computes only summaries of measured values (metrics, percentiles, cost, roofline);
everything it reports can be recomputed from samples.jsonl, batches.jsonl and config.json."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

from pydantic import ValidationError

from harness import SCHEMA_VERSION, __version__, results
from harness.errors import validation_message
from harness.measure.cost import hourly_price, time_cost
from harness.measure.memory import host_peak_rss_bytes
from harness.measure.timing import perf_summary
from harness.results.schema import RunResult, dump
from harness.scoring.metrics import task_metrics
from harness.stats import INTERVAL_METHOD, INTERVAL_REFERENCE

RANDOM_WARNING = "random weights: accuracy is meaningless here; speed and memory are those of the real architecture"


def versions() -> dict:
    out = {"python": platform.python_version(), "harness": __version__, "platform": platform.platform(), "git_hash": git_hash()}
    for mod in ("torch", "transformers", "accelerate"):
        m = sys.modules.get(mod)
        out[mod] = getattr(m, "__version__", None) if m else None
    return out


def git_hash() -> str | None:
    """`git describe --always` of the harness source checkout (what lm-eval records of its own), None outside one."""
    import subprocess

    try:
        out = subprocess.run(["git", "describe", "--always"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def finish_run(ctx, gathered: list[dict], status: str) -> RunResult:
    """run.json and report.md for the run in `ctx` (pipeline.RunContext) from what is on disk and
    what each process measured (`gathered`)."""
    run_dir, cfg, plan, dev, info, state, world = ctx.run_dir, ctx.cfg, ctx.plan, ctx.dev, ctx.backend.info, ctx.state, ctx.dist.world
    order = [req.key for req, *_ in plan.work()]
    rows = results.merge_shards(run_dir, order) if world > 1 or results.shard_files(run_dir) else results.all_samples(run_dir)
    failed = [r for r in rows if results.is_error_row(r)]
    answered = [r for r in rows if not results.is_error_row(r)]
    logged = results.all_batches(run_dir)
    batches = _landed(logged, {results.key_of(r) for r in rows})
    wall_s = _earlier_sessions_s(logged, state.session) + max(g["wall_s"] for g in gathered)
    tasks = {}
    for name, tp in plan.tasks.items():
        task_rows = [r for r in answered if r["task"] == name]
        errors = sum(r["task"] == name for r in failed)
        if task_rows:  # metrics over the answered samples only; the failed ones are counted beside them
            tasks[name] = {**task_metrics(task_rows, tp.k), "errors": errors, "source": tp.data_file or tp.task.describe(),
                           "answer_type": tp.task.answer_type, "settings": {k: v for k, v in tp.settings.items() if k != "seed"},
                           "version": tp.task.version, "dataset_size": tp.task.dataset_size}
            if getattr(tp, "data", None):
                tasks[name]["data"] = dict(tp.data)
            if tp.task.lm_eval_config:  # the lm-eval task's own config, for `harness export --format lm-eval`
                tasks[name]["lm_eval_config"] = tp.task.lm_eval_config
    if status == "complete" and failed:
        status = "partial" if answered else "failed"
    correct = sum(bool(r.get("correct")) for r in answered)
    perf = perf_summary(answered, wall_s=wall_s, load_s=max(g["load_s"] for g in gathered), warmup=gathered[0]["warmup"], batches=batches)
    perf.update(_energy(gathered, dev, perf.get("output_tokens"), correct))
    perf["peak_memory_bytes"] = _memory(gathered)
    perf["processes"] = world
    # One definition everywhere (console, run.json, report, bench): output tokens over the generation's wall
    # seconds. The batches' own rate (generate calls only) stays in decode/prefill_tokens_per_s.
    perf["output_tokens_per_s"] = perf["output_tokens"] / wall_s if perf.get("output_tokens") and wall_s else None
    if world > 1:  # the job's: all processes' tokens over the slowest wall; per process: the mean of each one's own
        own = [sum(r.get("output_tokens") or 0 for r in answered if r.get("rank", 0) == i) / g["wall_s"]
               for i, g in enumerate(gathered) if g.get("wall_s")]
        perf["per_process_output_tokens_per_s"] = sum(own) / len(own) if own else None
        perf["per_process"] = [{"rank": i, "wall_s": g["wall_s"], "load_s": g["load_s"], "energy_j": g.get("energy_j"),
                                "device_memory": (g.get("memory") or {}).get("device")} for i, g in enumerate(gathered)]
    perf["roofline"] = _roofline(dev, info, answered, perf)
    data = {
        "schema_version": SCHEMA_VERSION, "run_id": state.run_id, "status": status,
        "created_utc": state.created, "finished_utc": results.utc_now(),
        "versions": versions(), "config": cfg.stored(),
        "model": _model(info), "device": {**_device(dev), "processes": world},
        "protocol": _protocol(plan), "tasks": tasks, "perf": perf,
        "cost": _cost(cfg, info, wall_s, perf, correct, answered),
        "intervals": {"method": INTERVAL_METHOD, "reference": INTERVAL_REFERENCE},
        "claims": [], "verdicts_mode": cfg.verdicts, "protocol_differences": {}, "warnings": [],
        "samples": {"done": len(answered), "errors": len(failed), "planned": len(order)},
        "scoring": _scoring(rows),
        "plugins": _plugins(cfg, plan),
    }
    if failed:
        data["errors"] = {"count": len(failed), "first": failed[0].get("error") or "the request failed",
                          "retry": "run `harness run --resume` on this folder to retry them"}
        data["warnings"].append(f"{len(failed)} of {len(rows)} samples failed and are left out of every metric "
                                f"(first: {(failed[0].get('error') or 'the request failed')[:200]})")
    data["warnings"].extend(state.notes)
    for name, tp in plan.tasks.items():
        if tp.task.unchecked:
            data["warnings"].append(f"{name}: reading stopped at --limit {cfg.limit}; any rows after that in {tp.data_file or 'the data'} were not checked")
    if info.random_weights:
        data["warnings"].append(RANDOM_WARNING)
    for name, tp in plan.tasks.items():
        if tp.k > 1 and tp.sampling.temperature == 0:
            data["warnings"].append(f"{name}: {tp.k} samples per problem with greedy decoding are identical copies")
    if plan.card is not None:
        _claims(data, plan, info, cfg.verdicts)
    try:  # a field the schema does not declare fails here, before anything is written
        run = RunResult.model_validate(data)
    except ValidationError as e:
        raise RuntimeError(f"run.json does not fit its schema (a harness bug): {validation_message(e, RunResult)}") from None
    return run


def write_run(run_dir, run: RunResult) -> None:
    """The report, then run.json: a run.json that says complete has its report."""
    from harness.reports.markdown import write_markdown

    write_markdown(run_dir, run)
    results.write_json_atomic(run_dir / results.RUN, dump(run))


def _landed(batches: list[dict], written: set[str]) -> list[dict]:
    """Batch records whose rows were all written; a kill between the two leaves a record without rows."""
    return [b for b in batches if all(k in written for k in b.get("keys", ()))]


def _earlier_sessions_s(batches: list[dict], session: str) -> float:
    """Generation time of earlier sessions of this run, rebuilt from the durable batch log (each
    batch row carries its session and the time since that session began generating), so a lost
    or unreadable run.json loses no time. Counts records whose rows were lost too: that time was spent."""
    spent: dict[str, float] = {}
    for b in batches:
        s = b.get("session")
        if s and s != session and isinstance(b.get("elapsed_s"), (int, float)):
            spent[s] = max(spent.get(s, 0.0), b["elapsed_s"])
    return sum(spent.values())


def _plugins(cfg, plan) -> dict:
    """Which code ran: each task and the backend, built in or from which distribution and version."""
    from harness import registry
    from harness.backends import backend_name

    out = {"backend": registry.get("backends", backend_name(cfg)).record()}
    for name in plan.tasks:
        if name.startswith("lm_eval:"):
            out[f"task:{name}"] = {"name": name, "provider": "lm-eval", "version": sys.modules["lm_eval"].__version__
                                   if hasattr(sys.modules.get("lm_eval"), "__version__") else None}
        else:
            out[f"task:{name}"] = registry.get("tasks", name).record()
    return out


def _model(info) -> dict:
    return {"name_or_path": info.name_or_path, "backend": info.backend, "revision": info.revision, "dtype": info.dtype,
            "num_parameters": info.num_parameters, "random_weights": info.random_weights, "architecture": info.architecture,
            "context_length": info.context_length, "quantization": info.quantization, "notes": list(info.notes),
            "engine": dict(getattr(info, "engine", None) or {}),
            "sampling": dict(getattr(info, "sampling", {}) or {}),
            "overridden_defaults": dict(getattr(info, "overridden_defaults", {}) or {}),
            "fingerprint": dict(getattr(info, "fingerprint", None) or {}) or None,
            "reported_models": list(getattr(info, "reported_models", None) or [])}


def _scoring(rows) -> dict:
    from harness.scoring.symbolic import LIMIT_S

    splits: dict[str, int] = {}
    for r in rows:
        how = r.get("token_split") or "unmeasured"
        splits[how] = splits.get(how, 0) + 1
    return {"symbolic": "math-verify in a worker process, its own alarms off", "symbolic_limit_s": LIMIT_S,
            "limit_hits": sum(bool(r.get("scoring_limit_hit")) for r in rows), "token_split": splits}


def _device(dev) -> dict:
    return {"type": dev.type, "index": dev.index, "name": dev.name, "count": dev.count, "runtime": dev.backend_runtime,
            "dtype": dev.dtype, "dtype_reason": dev.dtype_reason, "device_reason": dev.device_reason,
            "dtype_measurements": getattr(dev, "dtype_measurements", None)}


def _protocol(plan) -> dict:
    from harness.protocols import describe

    return {**describe(plan.protocol), "source": getattr(plan, "protocol_source", None)}


def _energy(gathered, dev, output_tokens, correct) -> dict:
    values = [g.get("energy_j") for g in gathered]
    # RAPL reads the whole CPU package: several CPU processes would count the same joules again.
    if dev.type == "cpu":
        values = values[:1]
    energy = sum(values) if values and all(v is not None for v in values) else None
    source = gathered[0].get("energy_source")
    return {"energy_j": energy, "energy_source": source,
            "joules_per_output_token": energy / output_tokens if energy is not None and output_tokens else None,
            "joules_per_correct": energy / correct if energy is not None and correct else None}


def _memory(gathered) -> dict:
    found = [(g.get("memory") or {}).get("device") for g in gathered]
    devs = [d for d in found if d]
    device = {k: max(d.get(k) or 0 for d in devs) for k in ("allocated", "reserved")} if devs else None
    return {"device": device, "host": host_peak_rss_bytes(), "per_process_device": devs or None}


def _roofline(dev, info, rows, perf) -> dict:
    """The decode bound for this run's real batch and context (harness/measure/roofline.py)."""
    from statistics import median

    from harness.core.architecture import WeightLayout
    from harness.measure.roofline import bandwidth_record, measure_bandwidth, published_peak, roofline

    peak = published_peak(dev.name)
    try:
        bw = bandwidth_record(f"{dev.type}:{dev.name}", lambda: measure_bandwidth(dev.torch_device))
    except Exception as e:  # a missing number is better than a failed run
        return {"bandwidth_gbps": None, "bandwidth_source": f"unavailable: {e}", "peak_bandwidth_gbps": peak["gbps"],
                "peak_bandwidth_source": peak["source"], "bound_tokens_per_s": None, "fraction": None}
    layout = info.weight_layout or (WeightLayout(total=int(info.weight_bytes)) if info.weight_bytes else None)
    if layout is None:
        return {"bandwidth_gbps": bw["gbps"], "bandwidth_source": bw["source"], "bandwidth_measured_utc": bw["measured_utc"],
                "peak_bandwidth_gbps": peak["gbps"], "peak_bandwidth_source": peak["source"], "bound_tokens_per_s": None,
                "fraction": None, "note": "weight bytes unknown for this backend"}
    # Mean context while decoding: the prompt plus half the answer (the cache grows token by token).
    ctx = [(r.get("input_tokens") or 0) + (r.get("output_tokens") or 0) / 2 for r in rows]
    batch = int(median([r.get("batch_size") or 1 for r in rows])) if rows else 1
    p50 = (perf.get("tpot_s") or {}).get("p50")
    out = roofline(bw, layout, info.kv_bytes_per_token or 0, batch=batch, mean_context=sum(ctx) / len(ctx) if ctx else 0.0,
                   measured_per_sequence=1.0 / p50 if p50 else None, peak=peak)
    if info.weight_layout is None:
        out["note"] = "weights by role unknown for this backend: every weight counted as read each step"
    return out


def _cost(cfg, info, wall_s, perf, correct, rows) -> dict:
    if info.backend == "openai":
        from harness.measure.cost import api_price, token_cost

        try:
            p_in, p_out, source = api_price(info.name_or_path)
            return token_cost(perf.get("input_tokens"), perf.get("output_tokens"), p_in, p_out, correct, price_source=source)
        except Exception:
            pass
    price, source = hourly_price(cfg.price_per_hour, cfg.instance)
    out = time_cost(wall_s, price, perf.get("output_tokens"), correct, price_source=source)
    out["billed_s"] = wall_s
    out["billed"] = "generation wall time (model load and warm-up excluded)"
    return out


def _claims(data, plan, info, mode: str) -> None:
    from harness.cards.settings import protocol_differences
    from harness.claims.verdicts import claims_for_run

    diffs = {}
    for name, tp in plan.tasks.items():
        used = {**tp.settings, "dtype": info.dtype, "quantization": info.quantization, "revision": info.revision,
                "num_fewshot": plan.protocol.fewshot}  # what the run applied, so a card setting is never silently dropped
        diffs[name] = protocol_differences(plan.card, name, used, random_weights=info.random_weights, model_source=info.name_or_path)
    data["protocol_differences"] = diffs
    data["claims"] = claims_for_run(plan.card, data["tasks"], differences_by_task=diffs, run_protocol=plan.protocol.name,
                                    model=data["model"], mode=mode)
    data["card"] = plan.card.name if hasattr(plan.card, "name") else str(plan.card)
    from harness.cards.identity import alias_warnings

    if info.backend == "openai":
        data["warnings"].extend(alias_warnings(plan.card, info.name_or_path, list(info.reported_models)))
