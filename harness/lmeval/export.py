"""`harness export --format lm-eval RUN_DIR`: a run as an lm-eval results JSON (the document
`simple_evaluate` returns), our strict and lenient accuracy as lm-eval's `strict-match` and
`flexible-extract` filters of `exact_match`. Works without lm-eval installed.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from pathlib import Path

from harness.errors import ConfigError
from harness.results.schema import ProtocolRecord, RunResult, TaskResult, as_run, dump

DEFAULT_EXPORT_NAME = "lm_eval_results.json"


# ---- 3. a run as an lm-eval results JSON ------------------------------------------------------
def export_results(run_dir: Path, output: Path | None = None) -> Path:
    """Write RUN_DIR's results as lm-eval's results JSON; returns the file (default RUN_DIR/lm_eval_results.json)."""
    from harness import results

    run_dir = Path(run_dir)
    run = results.load_run(run_dir)
    rows = results.all_samples(run_dir) if any(run_dir.glob("samples*.jsonl")) else []
    out = Path(output) if output else run_dir / DEFAULT_EXPORT_NAME
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        results.write_json_atomic(out, lm_eval_document(run, rows))
    except OSError as e:
        raise ConfigError(f"cannot write {out} ({e.strerror or e})", "pass --output to a writable path") from None
    return out


def lm_eval_document(run: RunResult | dict, rows: list[dict]) -> dict:
    """The lm-eval results document for one run.json (and its samples, for exact standard errors)."""
    from harness import __version__

    run = as_run(run)
    cfg, model, protocol = run.config, run.model, run.protocol or ProtocolRecord(name="")
    fewshot = int(protocol.fewshot or 0)
    doc: dict = {"results": {}, "group_subtasks": {}, "configs": {}, "versions": {}, "n-shot": {}, "higher_is_better": {}, "n-samples": {}}
    for ours, block in run.tasks.items():
        name = ours.removeprefix("lm_eval:")
        task_rows = [r for r in rows if r.get("task") == ours]
        metrics, hib = _task_metrics(name, block, task_rows)
        doc["results"][name] = metrics
        doc["configs"][name] = _task_config(name, block, cfg, protocol, fewshot)
        doc["versions"][name] = __version__  # our task definitions are versioned with the harness
        doc["n-shot"][name] = fewshot
        doc["higher_is_better"][name] = hib
        doc["n-samples"][name] = {"original": block.n, "effective": block.n}  # the dataset's full size is not recorded
    name_or_path = str(model.name_or_path or cfg.get("model") or "")
    doc["config"] = {
        "model": "harness", "model_args": f"model={name_or_path},backend={model.backend}",
        **{key: getattr(model, field) for key, field in (("model_num_parameters", "num_parameters"), ("model_dtype", "dtype"),
                                                          ("model_revision", "revision")) if getattr(model, field) is not None},
        "batch_size": str(cfg.get("batch_size")), "batch_sizes": [], "device": run.device.type,
        "use_cache": None, "limit": cfg.get("limit"), "bootstrap_iters": 0, "gen_kwargs": None,
        "random_seed": cfg.get("seed"), "numpy_seed": cfg.get("seed"), "torch_seed": cfg.get("seed"), "fewshot_seed": cfg.get("seed"),
    }
    dumped = dump(run)
    doc.update({
        "git_hash": None,  # not recorded by harness run (lm-eval also writes None outside a git checkout)
        "date": _epoch(run.created_utc),
        "model_source": "harness", "model_name": name_or_path, "model_name_sanitized": re.sub(r"[\"<>:/|\\?*\[\]]+", "__", name_or_path),
        "total_evaluation_time_seconds": str(run.perf.wall_s if run.perf else None),  # lm-eval stores it as a string
        "harness": {key: dumped[key] for key in ("run_id", "schema_version", "status", "versions", "device", "protocol", "perf",
                                                 "cost", "warnings")},
    })
    return doc


def _task_metrics(name: str, block: TaskResult, rows: list[dict]) -> tuple[dict, dict]:
    """results[task] in lm-eval's "metric,filter" keys: strict accuracy as exact_match/strict-match,
    lenient as exact_match/flexible-extract; pass@k and maj@k (k > 1) under strict-match."""
    metrics = block.metrics
    n = block.n
    out: dict = {"name": name, "alias": name, "sample_len": n}
    hib = {}
    for key, filt, field in (("accuracy", "strict-match", "correct"), ("accuracy_lenient", "flexible-extract", "correct_lenient")):
        if key in metrics:
            value = metrics[key].value
            out[f"exact_match,{filt}"] = value
            out[f"exact_match_stderr,{filt}"] = _stderr(rows, field) if rows else _binomial_stderr(value, n)
            hib["exact_match"] = True
    for key, m in metrics.items():
        if key.startswith(("pass@", "maj@")):
            out[f"{key},strict-match"] = m.value
            out[f"{key}_stderr,strict-match"] = "N/A"  # ours is a bootstrap/Wilson interval (run.json ci95), not a stderr
            hib[key] = True
    return out, hib


def _stderr(rows: list[dict], field: str) -> float | str:
    """lm-eval's mean_stderr (sample std / sqrt(n)) over problems; with k samples a problem's value is its mean."""
    per: dict[str, list[float]] = {}
    for r in rows:
        per.setdefault(str(r.get("id")), []).append(float(bool(r.get(field))))
    values = [sum(v) / len(v) for v in per.values()]
    n = len(values)
    if n < 2:
        return "N/A"
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def _binomial_stderr(p: float, n: int) -> float | str:
    return math.sqrt(p * (1 - p) / (n - 1)) if n >= 2 else "N/A"


def _task_config(name: str, block: TaskResult, cfg: dict, protocol: ProtocolRecord, fewshot: int) -> dict:
    s = block.settings
    temperature = float(s.get("temperature") or 0.0)
    return {
        "task": name, "dataset_path": block.source, "output_type": "generate_until", "num_fewshot": fewshot,
        "generation_kwargs": {"until": list(cfg.get("stop") or []), "do_sample": temperature > 0, "temperature": temperature,
                              "top_p": s.get("top_p"), "top_k": s.get("top_k"), "max_gen_toks": s.get("max_new_tokens")},
        "repeats": block.k,
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
        "filter_list": [{"name": "strict-match", "filter": [{"function": "harness.scoring.grader.extract", "answer": "strict"}]},
                        {"name": "flexible-extract", "filter": [{"function": "harness.scoring.grader.extract", "answer": "lenient"}]}],
        "metadata": {"answer_type": block.answer_type, "protocol": protocol.name,
                     "system_prompt": protocol.system_prompt, "force_think": protocol.force_think,
                     "truncation_rate": block.truncation_rate},
    }


def _epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
