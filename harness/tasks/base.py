"""The task interface and the one place that reads task data (Hub datasets or local JSONL).

A task knows where its data lives (Hub id, config, split), how a row becomes an `Item`, and what
kind of answer it expects. Prompting is the protocol's job (harness/protocols.py); scoring is
harness/scoring/grader.py's. Every data problem a user can cause ends in a `DataError` naming the file,
the line and the fix.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable

from harness.errors import DataError


@dataclass(frozen=True)
class Item:
    """One problem. For multiple choice, `choices` holds the option texts in display order
    (already shuffled where the task shuffles) and `target` is the correct letter."""

    id: str
    question: str
    target: str
    choices: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


LETTERS = "ABCDEFGHIJ"


def render_choices(question: str, choices: tuple[str, ...] | list[str]) -> str:
    """"Question\\n\\nA) ...\\nB) ..." — the layout every multiple-choice task uses."""
    if len(choices) > len(LETTERS):
        raise DataError(f"{len(choices)} options is more than the {len(LETTERS)} letters A-J", "use at most 10 options")
    lines = [f"{LETTERS[i]}) {text}" for i, text in enumerate(choices)]
    return question.strip() + "\n\n" + "\n".join(lines)


def letter(index: int) -> str:
    return LETTERS[index]


class Task:
    """Subclass per benchmark; set the metadata and implement `parse`. A module under
    harness/tasks/ (or an entry point in `harness.tasks`) is all it takes: every subclass that sets
    its own `name` is found there (harness/registry.py)."""

    name: ClassVar[str]
    title: ClassVar[str] = ""
    dataset: ClassVar[str | None] = None  # Hub dataset id
    config: ClassVar[str | None] = None
    split: ClassVar[str] = "test"
    data_files: ClassVar[str | None] = None  # Hub dataset file to read, where the repo is not a loader
    paper: ClassVar[str] = ""
    license: ClassVar[str] = ""
    answer_type: ClassVar[str] = "number"  # "number" | "math" | "choice"
    required_fields: ClassVar[tuple[str, ...]] = ()
    gated: ClassVar[bool] = False
    levels_field: ClassVar[str | None] = None  # meta key that holds a difficulty level, if any
    stop: ClassVar[tuple[str, ...]] = ()  # stop strings of the task's own, added to the protocol's
    max_new_tokens: ClassVar[int | None] = None  # the task's default generation budget, if it has one

    def __init__(self, **options: Any):
        self.options = options

    # ---- to implement ----------------------------------------------------------------------
    def parse(self, row: dict, index: int) -> Item:
        raise NotImplementedError

    # ---- shared ------------------------------------------------------------------------------
    def format_question(self, item: Item) -> str:
        """What the protocol puts in the user turn: the question, then lettered options when the
        item has choices (one layout for GPQA, ARC, C-Eval and plugins alike)."""
        return render_choices(item.question, item.choices) if item.choices else item.question

    def describe(self) -> str:
        """The exact source: dataset, config, split or file (or "generated locally")."""
        if not self.dataset:
            return "generated locally"
        where = f"{self.dataset}{' ' + self.config if self.config else ''}"
        what = self.data_files if self.data_files else f"split {self.split}"
        return f"{where} ({what}{', gated: needs HF_TOKEN' if self.gated else ''})"

    def load(self, data_file: str | Path | None = None, limit: int | None = None) -> list[Item]:
        rows = read_jsonl(Path(data_file)) if data_file else self.hub_rows()
        items = []
        for index, (where, row) in enumerate(rows):
            missing = [f for f in self.required_fields if f not in row]
            if missing:
                raise DataError(f"{where}: missing field(s) {', '.join(missing)} for task {self.name}",
                                f"each row needs {', '.join(self.required_fields)}")
            items.append(self.parse(row, index))
            if limit is not None and len(items) >= limit:
                break
        if not items:
            raise DataError(f"task {self.name}: no rows in {data_file or self.dataset}", "point --data-file at a non-empty JSONL file")
        ids = [it.id for it in items]
        if len(set(ids)) != len(ids):
            raise DataError(f"task {self.name}: duplicate item ids in {data_file or self.dataset}", "give every row a unique id")
        return items

    def hub_rows(self) -> Iterable[tuple[str, dict]]:
        """Rows from the Hugging Face Hub (or its local cache), with clear errors offline."""
        if not self.dataset:
            raise DataError(f"task {self.name} has no Hub dataset", f"pass --data-file {self.name}=PATH.jsonl")
        rows = load_hub_dataset(self.dataset, self.config, self.split, self.data_files, gated=self.gated, task=self.name)
        return ((f"{self.dataset}[{i}]", dict(r)) for i, r in enumerate(rows))


def read_jsonl(path: Path) -> Iterable[tuple[str, dict]]:
    """Yield ("file:line", row) for each non-blank line; every malformation is a DataError."""
    if not path.exists():
        raise DataError(f"data file not found: {path}", "check the path given to --data-file")
    if path.is_dir():
        raise DataError(f"data file is a directory: {path}", "point --data-file at a .jsonl file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 (byte {e.start})", "re-encode the file as UTF-8") from None
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{n} is not valid JSON ({e.msg})", "the file must be JSON Lines: one JSON object per line") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{n} is a JSON {type(row).__name__}, not an object", "each line must be a JSON object")
        out.append((f"{path}:{n}", row))
    return out


def load_hub_dataset(dataset: str, config: str | None, split: str, data_files: str | None = None, *, gated: bool = False, task: str = ""):
    """`datasets.load_dataset` with the Hub's failure modes turned into one-line errors."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a core dependency
        raise DataError("the `datasets` package is missing", "pip install datasets") from None
    if gated and not (os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or _cached_token()):
        raise DataError(f"{dataset} is a gated dataset and no Hugging Face token is set",
                        f"accept its terms on the Hub and set HF_TOKEN, or pass --data-file {task}=PATH.jsonl")
    try:
        kwargs = {"data_files": data_files} if data_files else {}
        return datasets.load_dataset(dataset, config, split=split, **kwargs)
    except Exception as e:  # datasets raises many types; classify by message
        msg = str(e)
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        if offline or "offline" in msg.lower() or "connection" in msg.lower():
            raise DataError(f"dataset {dataset} is not in the local cache and the Hub is unreachable (offline)",
                            f"download it once online, or pass --data-file {task}=PATH.jsonl") from None
        if "gated" in msg.lower() or "401" in msg or "403" in msg:
            raise DataError(f"{dataset} is gated and this token may not read it", "accept its terms on the Hub and set HF_TOKEN") from None
        raise DataError(f"could not load dataset {dataset}: {msg.splitlines()[0][:200] if msg else type(e).__name__}",
                        f"check the dataset id, or pass --data-file {task}=PATH.jsonl") from None


def _cached_token() -> str | None:
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:
        return None
