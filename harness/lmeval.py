"""Interoperability with EleutherAI's lm-evaluation-harness (lm-eval 0.4.x), three ways:

1. `harness run --tasks lm_eval:<task>`: `LMEvalTask` turns an lm-eval task's evaluation docs into
   our Items (question = the task's `doc_to_text`, target = its `doc_to_target` cut to the final
   answer), so the task runs through our pipeline: our prompts, timings, scoring and run.json.
2. `python -m harness.lmeval --model harness --model_args model=... --tasks ...`: lm-eval's own CLI
   with our backends registered as the lm-eval model "harness" (harness/lmeval_model.py).
   lm-eval 0.4.13 only knows models registered when it runs (it reads no plugin entry points), so
   this launcher imports the registration and then hands over to `lm_eval.__main__.cli_evaluate`.
3. `harness export --format lm-eval RUN_DIR`: `export_results` writes a run as an lm-eval results
   JSON (the document `simple_evaluate` returns), our strict and lenient accuracy as lm-eval's
   `strict-match` and `flexible-extract` filters of `exact_match`.

lm-eval is imported inside functions only: `harness export` works without it, and importing this
module costs nothing until a task is loaded.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from harness.errors import ConfigError, DataError
from harness.tasks._choice import check_options, letter, render_choices
from harness.tasks.base import Item, Task

INCLUDE_ENV = "HARNESS_LMEVAL_INCLUDE"
DEFAULT_EXPORT_NAME = "lm_eval_results.json"
ANSWER_TYPES = ("number", "math", "choice")
_GENERATIVE = ("generate_until", "multiple_choice")  # multiple_choice: shown as lettered options, answered by generation


# ---- 1. an lm-eval task as our Task -----------------------------------------------------------
def _answer_type(value) -> str:
    if value not in ANSWER_TYPES:
        raise ValueError(f"choose one of {', '.join(ANSWER_TYPES)}")
    return value


class LMEvalTask(Task):
    """`lm_eval:<task>`. Options: include_path (folders of task YAML, os.pathsep-separated; default
    $HARNESS_LMEVAL_INCLUDE), answer_type (number, math or choice; default number, or choice for
    multiple_choice tasks). After `load`, `stop` holds the task's `until` strings and
    `max_new_tokens` its `max_gen_toks` (None when the task sets none)."""

    name = "lm_eval"
    title = "lm-evaluation-harness task"

    def __init__(self, task: str, **options):
        full = f"lm_eval:{task}"
        opts = check_options(full, options, {"include_path": str, "answer_type": _answer_type})
        super().__init__(**opts)
        if not task:
            raise ConfigError("lm_eval: needs a task name", "e.g. --tasks lm_eval:gsm8k")
        self.lm_eval_task = task
        self.name = full
        self.answer_type = opts.get("answer_type", "number")
        self._answer_type_given = "answer_type" in opts
        include = opts.get("include_path") or os.environ.get(INCLUDE_ENV) or ""
        self.include_paths = [p for p in include.split(os.pathsep) if p]
        self.stop: tuple[str, ...] = ()
        self.max_new_tokens: int | None = None
        self.version = None  # the task's metadata.version, once loaded
        self._source: str | None = None

    def describe(self) -> str:
        version = f" v{self.version}" if self.version is not None else ""
        return f"lm-eval task {self.lm_eval_task}{version}" + (f" ({self._source})" if self._source else "")

    def format_question(self, item: Item) -> str:
        return render_choices(item.question, item.choices) if item.choices else item.question

    def load(self, data_file: str | Path | None = None, limit: int | None = None) -> list[Item]:
        task = self._lm_eval_task(data_file)
        items = []
        for index, doc in enumerate(task.eval_docs):
            if limit is not None and index >= limit:
                break
            items.append(self._item(task, doc, index))
        if not items:
            raise DataError(f"task {self.name}: no evaluation docs in {self._source}", "check the task's dataset or --data-file")
        return items

    # ---- loading ------------------------------------------------------------------------------
    def _lm_eval_task(self, data_file):
        manager = self._manager()
        if self.lm_eval_task not in manager.all_subtasks:  # a group or tag: refuse before any dataset loads
            raise ConfigError(f"lm_eval:{self.lm_eval_task} is a group or tag of lm-eval tasks, not one task",
                              "name one of its tasks (see `lm-eval ls tasks`), e.g. --tasks lm_eval:<task>")
        spec: str = self.lm_eval_task
        with tempfile.TemporaryDirectory(prefix="harness-lmeval-") as tmp:
            if data_file:
                spec = _override_yaml(manager, self.lm_eval_task, Path(data_file), Path(tmp))
            try:
                loaded = manager.load(spec)
            except Exception as e:  # lm-eval and datasets raise many types; the first line says what
                first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
                raise DataError(f"lm-eval task {self.lm_eval_task} could not be loaded ({first})",
                                f"download its dataset once online, or pass --data-file {self.name}=PATH.jsonl") from None
        tasks = loaded["tasks"]
        if len(tasks) != 1 or loaded["groups"]:
            raise ConfigError(f"lm_eval:{self.lm_eval_task} is a group or tag of {len(tasks)} tasks",
                              f"name one task, e.g. lm_eval:{sorted(tasks)[0] if tasks else '<task>'}")
        task = next(iter(tasks.values()))
        self._adopt(task, data_file)
        return task

    def _manager(self):
        from lm_eval.tasks import TaskManager

        for p in self.include_paths:
            if not Path(p).is_dir():
                raise ConfigError(f"lm-eval include path not found: {p}",
                                  f"point include_path or ${INCLUDE_ENV} at a folder of task YAML files")
        if self.include_paths:  # only the given folders: about 0.06 s instead of indexing all of lm-eval's tasks (9 s)
            manager = TaskManager(include_path=self.include_paths, include_defaults=False)
            if self.lm_eval_task in manager.all_tasks:
                return manager
        manager = TaskManager(include_path=self.include_paths or None)
        if self.lm_eval_task not in manager.all_tasks:
            close = difflib.get_close_matches(self.lm_eval_task, manager.all_tasks, n=3)
            where = f"{', '.join(self.include_paths)} nor " if self.include_paths else ""
            raise ConfigError(f"no lm-eval task {self.lm_eval_task!r} in {where}lm-eval's built-in tasks",
                              f"did you mean {', '.join(close)}?" if close else f"list them with `lm-eval ls tasks`, or set ${INCLUDE_ENV}")
        return manager

    def _adopt(self, task, data_file) -> None:
        """Take what our pipeline needs from the loaded task: output type, stop strings, source."""
        kind = task.OUTPUT_TYPE
        if kind not in _GENERATIVE:
            raise ConfigError(f"lm-eval task {self.lm_eval_task} is a {kind} task: it scores log-probabilities, not generated answers",
                              "use a generate_until or multiple_choice task, or lm-eval's own `--model hf` for this one")
        if kind == "multiple_choice" and not self._answer_type_given:
            self.answer_type = "choice"
        gen = dict(task.config.generation_kwargs or {}) if kind == "generate_until" else {}
        until = gen.get("until") or ()
        self.stop = (until,) if isinstance(until, str) else tuple(s for s in until if s)
        self.max_new_tokens = int(gen["max_gen_toks"]) if gen.get("max_gen_toks") else None
        self.version = (task.config.metadata or {}).get("version")
        cfg = task.config
        dataset = f"{cfg.dataset_path}{' ' + cfg.dataset_name if cfg.dataset_name else ''}"
        split = cfg.test_split or cfg.validation_split
        self._source = f"data file {Path(data_file).resolve()}" if data_file else f"{dataset}, split {split}"

    def _item(self, task, doc: dict, index: int) -> Item:
        question = task.doc_to_text(doc)
        if not isinstance(question, str):
            raise ConfigError(f"lm-eval task {self.lm_eval_task} has several contexts per doc (doc_to_text gave {type(question).__name__})",
                              "only one-question-per-doc tasks can run through harness run")
        raw = task.doc_to_target(doc)
        kept = raw if isinstance(raw, (str, int, float)) else [str(t) for t in raw] if isinstance(raw, list) else str(raw)
        meta = {"lm_eval_target": kept}
        if task.config.doc_to_choice is not None and (task.OUTPUT_TYPE == "multiple_choice" or isinstance(raw, int)):
            choices = tuple(str(c) for c in task.doc_to_choice(doc))
            return Item(id=str(index), question=question.strip(), target=_choice_letter(raw, choices, self.name, index),
                        choices=choices, meta=meta)
        target = final_answer(raw[0] if isinstance(raw, list) else raw, self.answer_type)
        if not target:
            raise DataError(f"task {self.name}: doc {index} has an empty target", "check the task's doc_to_target")
        return Item(id=str(index), question=question.strip(), target=target, meta=meta)


def final_answer(target, answer_type: str) -> str:
    """The final answer in an lm-eval target: after "####" when there is one (GSM8K-style worked
    solutions), commas dropped from numbers ("1,250" -> "1250")."""
    text = str(target).strip()
    if "####" in text:
        text = text.rpartition("####")[2].strip()
    if answer_type == "number":
        text = text.replace(",", "")
    return text


def _choice_letter(raw, choices: tuple[str, ...], task: str, index: int) -> str:
    if isinstance(raw, int) and 0 <= raw < len(choices):
        return letter(raw)
    if isinstance(raw, str) and raw in choices:
        return letter(choices.index(raw))
    raise DataError(f"task {task}: doc {index} target {raw!r} is not one of its {len(choices)} choices", "check the task's doc_to_target")


def _override_yaml(manager, task: str, data_file: Path, tmp: Path) -> str:
    """A task YAML that includes the task's own and reads its eval docs from `data_file` (JSONL),
    so `--data-file lm_eval:<task>=PATH` works offline for any YAML-defined task."""
    import yaml

    path = data_file.expanduser().resolve()
    if not path.is_file():
        raise DataError(f"data file not found: {data_file}", "check the path given to --data-file")
    entry = manager.task_index.get(task)
    if task not in manager.all_subtasks or entry is None or entry.yaml_path is None:
        raise ConfigError(f"--data-file cannot replace the data of lm-eval {task}: it is not a YAML-defined task",
                          "drop --data-file, or point an include path at your own task YAML")
    override = {"include": str(Path(entry.yaml_path).resolve()), "task": task, "dataset_path": "json", "dataset_name": None,
                "dataset_kwargs": {"data_files": {"test": str(path)}}, "test_split": "test", "validation_split": None,
                "training_split": None, "fewshot_split": None, "num_fewshot": 0}
    out = tmp / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', task)}.yaml"
    out.write_text(yaml.safe_dump(override, sort_keys=False), encoding="utf-8")
    return str(out)


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


def lm_eval_document(run: dict, rows: list[dict]) -> dict:
    """The lm-eval results document for one run.json (and its samples, for exact standard errors)."""
    from harness import __version__

    cfg, model, protocol = run.get("config", {}), run.get("model", {}), run.get("protocol", {})
    fewshot = int(protocol.get("fewshot") or 0)
    doc: dict = {"results": {}, "group_subtasks": {}, "configs": {}, "versions": {}, "n-shot": {}, "higher_is_better": {}, "n-samples": {}}
    for ours, block in run.get("tasks", {}).items():
        name = ours.removeprefix("lm_eval:")
        task_rows = [r for r in rows if r.get("task") == ours]
        metrics, hib = _task_metrics(name, block, task_rows)
        doc["results"][name] = metrics
        doc["configs"][name] = _task_config(name, block, cfg, protocol, fewshot)
        doc["versions"][name] = __version__  # our task definitions are versioned with the harness
        doc["n-shot"][name] = fewshot
        doc["higher_is_better"][name] = hib
        doc["n-samples"][name] = {"original": block.get("n", 0), "effective": block.get("n", 0)}  # the dataset's full size is not recorded
    name_or_path = str(model.get("name_or_path") or cfg.get("model") or "")
    doc["config"] = {
        "model": "harness", "model_args": f"model={name_or_path},backend={model.get('backend')}",
        **{key: model[field] for key, field in (("model_num_parameters", "num_parameters"), ("model_dtype", "dtype"),
                                                 ("model_revision", "revision")) if model.get(field) is not None},
        "batch_size": str(cfg.get("batch_size")), "batch_sizes": [], "device": (run.get("device") or {}).get("type"),
        "use_cache": None, "limit": cfg.get("limit"), "bootstrap_iters": 0, "gen_kwargs": None,
        "random_seed": cfg.get("seed"), "numpy_seed": cfg.get("seed"), "torch_seed": cfg.get("seed"), "fewshot_seed": cfg.get("seed"),
    }
    perf = run.get("perf") or {}
    doc.update({
        "git_hash": None,  # not recorded by harness run (lm-eval also writes None outside a git checkout)
        "date": _epoch(run.get("created_utc")),
        "model_source": "harness", "model_name": name_or_path, "model_name_sanitized": re.sub(r"[\"<>:/|\\?*\[\]]+", "__", name_or_path),
        "total_evaluation_time_seconds": str(perf.get("wall_s")),  # lm-eval stores it as a string
        "harness": {"run_id": run.get("run_id"), "schema_version": run.get("schema_version"), "status": run.get("status"),
                    "versions": run.get("versions"), "device": run.get("device"), "protocol": protocol, "perf": perf,
                    "cost": run.get("cost"), "warnings": run.get("warnings", [])},
    })
    return doc


def _task_metrics(name: str, block: dict, rows: list[dict]) -> tuple[dict, dict]:
    """results[task] in lm-eval's "metric,filter" keys: strict accuracy as exact_match/strict-match,
    lenient as exact_match/flexible-extract; pass@k and maj@k (k > 1) under strict-match."""
    metrics = block.get("metrics", {})
    n = int(block.get("n") or 0)
    out: dict = {"name": name, "alias": name, "sample_len": n}
    hib = {}
    for key, filt, field in (("accuracy", "strict-match", "correct"), ("accuracy_lenient", "flexible-extract", "correct_lenient")):
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


def _task_config(name: str, block: dict, cfg: dict, protocol: dict, fewshot: int) -> dict:
    s = block.get("settings", {})
    temperature = float(s.get("temperature") or 0.0)
    return {
        "task": name, "dataset_path": block.get("source"), "output_type": "generate_until", "num_fewshot": fewshot,
        "generation_kwargs": {"until": list(cfg.get("stop") or []), "do_sample": temperature > 0, "temperature": temperature,
                              "top_p": s.get("top_p"), "top_k": s.get("top_k"), "max_gen_toks": s.get("max_new_tokens")},
        "repeats": block.get("k", 1),
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
        "filter_list": [{"name": "strict-match", "filter": [{"function": "harness.scoring.extract", "answer": "strict"}]},
                        {"name": "flexible-extract", "filter": [{"function": "harness.scoring.extract", "answer": "lenient"}]}],
        "metadata": {"answer_type": block.get("answer_type"), "protocol": protocol.get("name"),
                     "system_prompt": protocol.get("system_prompt"), "force_think": protocol.get("force_think"),
                     "truncation_rate": block.get("truncation_rate")},
    }


def _epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


# ---- 2. lm-eval's CLI with our model registered -------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    """`python -m harness.lmeval [lm-eval arguments]`: lm-eval's CLI, with `--model harness` available."""
    import harness.lmeval_model  # noqa: F401  (registers "harness" in lm-eval's model registry)
    from lm_eval.__main__ import cli_evaluate

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    cli_evaluate()


if __name__ == "__main__":
    main()
