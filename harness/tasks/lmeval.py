"""An lm-eval task as our Task: `harness run --tasks lm_eval:<task>` turns an lm-eval task's
evaluation docs into our Items (question = the task's `doc_to_text`, target = its `doc_to_target`
cut to the final answer), so the task runs through our pipeline: our prompts, timings, scoring.

lm-eval is imported inside functions only: importing this module costs nothing until a task loads.
"""

from __future__ import annotations

import difflib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, DataError
from harness.tasks.base import Item, Task, letter, render_choices
from harness.tasks.options import check_options

INCLUDE_ENV = "HARNESS_LMEVAL_INCLUDE"
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
        self.dataset_size: int | None = None  # evaluation docs before --limit
        self.lm_eval_config: dict | None = None  # the task's config as lm-eval records it (results "configs")
        self._source: str | None = None

    def describe(self) -> str:
        version = f" v{self.version}" if self.version is not None else ""
        return f"lm-eval task {self.lm_eval_task}{version}" + (f" ({self._source})" if self._source else "")

    def format_question(self, item: Item) -> str:
        return render_choices(item.question, item.choices) if item.choices else item.question

    def load(self, data_file: str | Path | None = None, limit: int | None = None) -> list[Item]:
        task = self._lm_eval_task(data_file)
        items = []
        self.dataset_size = len(task.eval_docs)
        for index, doc in enumerate(task.eval_docs):
            if limit is not None and index >= limit:
                break
            items.append(self._item(task, doc, index))
        if not items:
            raise DataError(f"task {self.name}: no evaluation docs in {self._source}", "check the task's dataset or --data-file")
        return items

    # ---- loading ------------------------------------------------------------------------------
    def _lm_eval_task(self, data_file: str | Path | None) -> Any:  # an lm-eval Task (lm_eval is untyped)
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
                              "run it with `python -m harness.lmeval --model harness` (engine log-likelihoods, see docs/lm-eval.md)")
        if kind == "multiple_choice" and not self._answer_type_given:
            self.answer_type = "choice"
        gen = dict(task.config.generation_kwargs or {}) if kind == "generate_until" else {}
        until = gen.get("until") or ()
        self.stop = (until,) if isinstance(until, str) else tuple(s for s in until if s)
        self.max_new_tokens = int(gen["max_gen_toks"]) if gen.get("max_gen_toks") else None
        self.version = (task.config.metadata or {}).get("version")
        self.lm_eval_config = _jsonable(task.dump_config() if hasattr(task, "dump_config") else task.config.to_dict())
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
        meta = {"lm_eval_target": kept, "lm_eval_doc": _jsonable(doc)}
        if task.config.doc_to_choice is not None and (task.OUTPUT_TYPE == "multiple_choice" or isinstance(raw, int)):
            choices = tuple(str(c) for c in task.doc_to_choice(doc))
            return Item(id=str(index), question=question.strip(), target=_choice_letter(raw, choices, self.name, index),
                        choices=choices, meta=meta)
        target = final_answer(raw[0] if isinstance(raw, list) else raw, self.answer_type)
        if not target:
            raise DataError(f"task {self.name}: doc {index} has an empty target", "check the task's doc_to_target")
        return Item(id=str(index), question=question.strip(), target=target, meta=meta)


def _jsonable(value):
    import json

    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


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
