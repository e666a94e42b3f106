"""`harness export --format lm-eval RUN_DIR`: a run as the files lm-eval's CLI writes.

The results JSON has the keys lm-eval 0.4.13's `--output_path` file has (what `simple_evaluate`
returns plus its evaluation tracker's fields), with our numbers in lm-eval's shapes:
- results: strict and lenient accuracy as `exact_match` under lm-eval's `strict-match` and
  `flexible-extract` filters, stderr as lm-eval's `mean_stderr`; pass@k / maj@k when k > 1;
- configs: for an `lm_eval:<task>` the task's own config as lm-eval dumps it (recorded at run time),
  for our tasks the lm-eval task that reproduces the run's prompts (harness/lmeval/taskexport.py);
- versions: each task's version (lm-eval's metadata.version, or our task definition's), not the
  harness's; n-shot, higher_is_better, n-samples (the dataset's size before --limit when known);
- task_hashes and a samples file per task (`samples_<task>_<date>.jsonl` beside the results,
  in lm-eval's per-sample format: doc, target, arguments, resps, filtered_resps, metrics, hashes);
- git_hash: the harness checkout's `git describe --always` recorded by the run (left out when
  the run was not made from a git checkout; lm-eval writes null there, which its own schema refuses).
Our run's own record (perf, cost, protocol) is kept under the extra key `harness`.
Works without lm-eval installed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from datetime import datetime, timezone
from pathlib import Path

from harness.errors import ConfigError
from harness.results.schema import RunResult, as_run, dump

FILTERS = (("accuracy", "strict-match", "correct", "extracted"), ("accuracy_lenient", "flexible-extract", "correct_lenient", "extracted_lenient"))


# ---- a run as lm-eval results -------------------------------------------------------------------
def export_results(run_dir: Path, output: Path | None = None) -> Path:
    """Write RUN_DIR's results as lm-eval's results JSON (default RUN_DIR/results_<date>.json, lm-eval's name) and a
    samples_<task>_<date>.jsonl per task beside it; returns the results file."""
    from harness import results

    run_dir = Path(run_dir)
    run = dump(as_run(results.load_run(run_dir)))
    rows = results.all_samples(run_dir) if any(run_dir.glob("samples*.jsonl")) else []
    doc = lm_eval_document(run, rows)
    date_id = _date_id(run.get("created_utc"))
    out = Path(output) if output else run_dir / f"results_{date_id}.json"  # lm-eval's own name beside its samples_*.jsonl
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        for ours in run.get("tasks", {}):
            name = _name(ours)
            samples = lm_eval_samples(ours, run, [r for r in rows if r.get("task") == ours])
            _write_lines(out.parent / f"samples_{name}_{date_id}.jsonl", samples)
        results.write_json_atomic(out, doc)
    except OSError as e:
        raise ConfigError(f"cannot write {out} ({e.strerror or e})", "pass --output to a writable path") from None
    return out


def lm_eval_document(run: RunResult | dict, rows: list[dict]) -> dict:
    """The lm-eval results document for one run.json (and its samples, for exact standard errors and hashes)."""
    run = dump(as_run(run))  # validated against the run.json schema, then read as the document it is
    cfg, model, protocol = run.get("config", {}), run.get("model", {}), run.get("protocol", {})
    fewshot = int(protocol.get("fewshot") or 0)
    doc: dict = {"results": {}, "group_subtasks": {}, "configs": {}, "versions": {}, "n-shot": {}, "higher_is_better": {}, "n-samples": {}}
    hashes = {}
    for ours, block in run.get("tasks", {}).items():
        name = _name(ours)
        task_rows = [r for r in rows if r.get("task") == ours]
        metrics, hib = _task_metrics(name, block, task_rows)
        doc["results"][name] = metrics
        recorded = block.get("lm_eval_config")
        # our protocol, not the lm-eval task, chose the prompt's examples: its count is what ran (lm-eval sets this at run time too)
        doc["configs"][name] = {**recorded, "num_fewshot": fewshot} if recorded else _task_config(ours, block, cfg, protocol)
        doc["versions"][name] = block.get("version")
        doc["n-shot"][name] = fewshot
        doc["higher_is_better"][name] = hib
        n = int(block.get("n") or 0)
        data = block.get("data") or {}
        # original: the task's whole data set (the official set's size, else the data before --limit); never the problems run
        original = data.get("n_official") or block.get("dataset_size") or n  # n only where nothing else is known
        doc["n-samples"][name] = {"original": int(original), "effective": n}
        if task_rows:
            samples = lm_eval_samples(ours, run, task_rows)
            hashes[name] = _sha("".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"] for s in samples if s["filter"] == "strict-match"))
    name_or_path = str(model.get("name_or_path") or cfg.get("model") or "")
    doc["config"] = {
        "model": "harness", "model_args": f"model={name_or_path},backend={model.get('backend')}",
        **{key: model[field] for key, field in (("model_num_parameters", "num_parameters"), ("model_dtype", "dtype"),
                                                 ("model_revision", "revision")) if model.get(field) is not None},
        "batch_size": str(cfg.get("batch_size")), "batch_sizes": [], "device": (run.get("device") or {}).get("type"),
        "use_cache": None, "limit": cfg.get("limit"), "bootstrap_iters": 0, "gen_kwargs": None,
        "random_seed": cfg.get("seed"), "numpy_seed": cfg.get("seed"), "torch_seed": cfg.get("seed"), "fewshot_seed": cfg.get("seed"),
    }
    git = (run.get("versions") or {}).get("git_hash")
    if git:
        doc["git_hash"] = git
    system = protocol.get("system_prompt")
    perf = run.get("perf") or {}
    doc.update({
        "date": _epoch(run.get("created_utc")),
        "task_hashes": hashes,
        "model_source": "harness", "model_name": name_or_path, "model_name_sanitized": re.sub(r"[\"<>:/|\\?*\[\]]+", "__", name_or_path),
        "system_instruction": system, "system_instruction_sha": _sha(system) if system else None,
        "fewshot_as_multiturn": False if fewshot else None, "chat_template": None, "chat_template_sha": None,
        "start_time": _epoch(run.get("created_utc")), "end_time": _epoch(run.get("finished_utc")),
        "total_evaluation_time_seconds": str(perf.get("wall_s")),  # lm-eval stores it as a string
        "harness": {"run_id": run.get("run_id"), "schema_version": run.get("schema_version"), "status": run.get("status"),
                    "versions": run.get("versions"), "device": run.get("device"), "protocol": protocol, "perf": perf,
                    "cost": run.get("cost"), "warnings": run.get("warnings", [])},
    })
    return doc


def lm_eval_samples(ours: str, run: dict, rows: list[dict]) -> list[dict]:
    """lm-eval's per-sample records (as its --log_samples file holds them) for one task: one per problem and filter."""
    block = run.get("tasks", {}).get(ours, {})
    gen_kwargs = (block.get("lm_eval_config") or _task_config(ours, block, run.get("config", {}), run.get("protocol", {}))).get("generation_kwargs")
    by_id: dict[str, list[dict]] = {}
    for r in rows:
        by_id.setdefault(str(r.get("id")), []).append(r)
    out = []
    for item_id, group in by_id.items():
        group.sort(key=lambda r: r.get("sample") or 0)
        first = group[0]
        meta = first.get("meta") or {}
        doc = meta.get("lm_eval_doc") or {"id": item_id, "target": first.get("target")}
        target = meta.get("lm_eval_target", first.get("target"))
        prompt = first.get("prompt") or ""
        hashes = {"doc_hash": _sha(json.dumps(doc, indent=2, ensure_ascii=False, default=str)), "prompt_hash": _sha(prompt),
                  "target_hash": _sha(str(target))}
        for key, filt, field, extracted in FILTERS:
            if key not in block.get("metrics", {}):
                continue
            score = sum(bool(r.get(field)) for r in group) / len(group)
            out.append({"doc_id": int(item_id) if item_id.isdigit() else item_id, "doc": doc, "target": str(target),
                        "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": gen_kwargs}},
                        "resps": [[str(r.get("output") or "") for r in group]],
                        "filtered_resps": [str(r.get(extracted)) if r.get(extracted) is not None else "[invalid]" for r in group],
                        "filter": filt, "metrics": ["exact_match"], **hashes, "exact_match": score})
    return out


def _task_metrics(name: str, block: dict, rows: list[dict]) -> tuple[dict, dict]:
    """results[task] in lm-eval's "metric,filter" keys: strict accuracy as exact_match/strict-match,
    lenient as exact_match/flexible-extract; pass@k and maj@k (k > 1) under strict-match."""
    metrics = block.get("metrics", {})
    n = int(block.get("n") or 0)
    out: dict = {"name": name, "alias": name, "sample_len": n}
    hib = {}
    for key, filt, field, _ in FILTERS:
        if key in metrics:
            value = metrics[key]["value"]
            out[f"exact_match,{filt}"] = value
            out[f"exact_match_stderr,{filt}"] = _stderr(rows, field) if rows else _binomial_stderr(value, n)
            hib["exact_match"] = True
    for key, m in metrics.items():
        if key.startswith(("pass@", "maj@")):
            out[f"{key},strict-match"] = m["value"]
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


def _task_config(ours: str, block: dict, cfg: dict, protocol: dict) -> dict:
    """The lm-eval task that reproduces this run's prompts for one of our tasks (its data: the run's source)."""
    from harness.lmeval.taskexport import lm_eval_config

    settings = {**block.get("settings", {}), "stop": list(cfg.get("stop") or [])}
    config = lm_eval_config(ours, protocol=protocol, settings=settings, version=block.get("version"),
                            answer_type=block.get("answer_type") or "number", data_path=None)
    config["metadata"]["source"] = block.get("source")
    return config


def _name(ours: str) -> str:
    return ours.removeprefix("lm_eval:")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _write_lines(path: Path, records: list[dict]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _date_id(stamp: str | None) -> str:
    """lm-eval's file date stamp (isoformat with ':' as '-') of the run's start."""
    when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ") if stamp else datetime.now(timezone.utc).replace(tzinfo=None)
    return when.isoformat().replace(":", "-")


def _epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
