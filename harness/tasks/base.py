"""The task interface and the one place that reads task data (Hub datasets or local JSONL).

A task knows where its data lives (Hub id, config, split), how a row becomes an `Item`, and what
kind of answer it expects. Prompting is the protocol's job (harness/protocols.py); scoring is
harness/scoring/grader.py's. Every data problem a user can cause ends in a `DataError` naming the file,
the line and the fix.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from harness.core.types import Score
from harness.errors import DataError, shown

MAX_LINE_CHARS = 1_000_000  # no benchmark row comes near; a bigger one is a broken file, not a question


@dataclass(frozen=True)
class Item:
    """One problem. For multiple choice, `choices` holds the option texts in display order
    (already shuffled where the task shuffles) and `target` is the correct letter."""

    id: str
    question: str
    target: str
    choices: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    where: str = field(default="", compare=False)  # "file:line" (or "dataset[i]") the item was read from


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

    name: str  # per class; an adapter task (lm_eval:<task>) sets these per instance
    title: ClassVar[str] = ""
    dataset: ClassVar[str | None] = None  # Hub dataset id
    config: ClassVar[str | None] = None
    split: ClassVar[str] = "test"
    data_files: ClassVar[str | None] = None  # Hub dataset file to read, where the repo is not a loader
    paper: ClassVar[str] = ""
    license: ClassVar[str] = ""
    answer_type: str = "number"  # "number" | "math" | "choice", or a task's own with `score`
    required_fields: ClassVar[tuple[str, ...]] = ()
    gated: ClassVar[bool] = False
    levels_field: ClassVar[str | None] = None  # meta key that holds a difficulty level, if any
    size: ClassVar[int | None] = None  # problems in the full benchmark: what a faithful run costs without the data
    stop: tuple[str, ...] = ()  # stop strings of the task's own, added to the protocol's
    # Task options that narrow or change the problem set (a C-Eval subject, another CMATH file): a run
    # with one measures something else than a claim on the whole benchmark (harness/tasks/official.py).
    narrowing_options: ClassVar[tuple[str, ...]] = ()
    max_new_tokens: int | None = None  # the task's default generation budget, if it has one
    dataset_size: int | None = None  # problems in the data before --limit, where the task knows it (set by load)
    lm_eval_config: dict | None = None  # an lm-eval task's own config, as lm-eval records it (lm_eval:<task> only)
    version: float | None = 1.0  # of this definition (items, targets, scoring): bump it when one changes; lm-eval's metadata.version

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

    def score(self, answer: str, item: Item, *, truncated: bool) -> Score | None:
        """This task's own verdict on a reply's answer, for a kind of answer the built-in answer types do not
        cover (code to execute, free text, a judge model); None: the harness scores by `answer_type`."""
        return None

    def describe(self) -> str:
        """The exact source: dataset, config, split or file (or "generated locally")."""
        if not self.dataset:
            return "generated locally"
        where = f"{self.dataset}{' ' + self.config if self.config else ''}"
        what = self.data_files if self.data_files else f"split {self.split}"
        return f"{where} ({what}{', gated: needs HF_TOKEN' if self.gated else ''})"

    unchecked = False  # set by `load` when --limit stopped the read before the end of the data

    def load(self, data_file: str | Path | None = None, limit: int | None = None) -> list[Item]:
        rows = iter(read_jsonl(Path(data_file)) if data_file else self.hub_rows())
        items = []
        for index, (where, row) in enumerate(rows):
            missing = [f for f in self.required_fields if f not in row]
            if missing:
                raise DataError(f"{where}: missing field(s) {', '.join(missing)} for task {self.name}",
                                f"each row needs {', '.join(self.required_fields)}")
            items.append(replace(self.parse(row, index), where=where))
            if limit is not None and len(items) >= limit:
                self.unchecked = True  # read no further: rows after this one are not checked
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


def check_data_path(path: Path) -> None:
    """The data file exists and is a regular file (also checked before any heavy import, in harness/planning/preflight.py)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise DataError(f"data file not found: {shown(str(path))}", "check the path given to --data-file") from None
    except OSError as e:
        raise DataError(f"cannot read data file {shown(str(path))} ({e.strerror or e})", "check the path given to --data-file") from None
    if stat.S_ISDIR(st.st_mode):
        raise DataError(f"data file is a directory: {shown(str(path))}", "point --data-file at a .jsonl file")
    if not stat.S_ISREG(st.st_mode):  # a FIFO or a device would block the read forever or never end
        raise DataError(f"data file {shown(str(path))} is not a regular file (a pipe, socket or device)",
                        "save the data to a regular .jsonl file and pass that")


def read_jsonl(path: Path) -> Iterator[tuple[str, dict]]:
    """Yield ("file:line", row) for each non-blank line, reading as it goes (so --limit stops the
    read early); every malformation is a DataError naming file:line. Lines end at "\n" only:
    U+2028, U+2029 and U+0085 are legal inside a JSON string."""
    check_data_path(path)
    return _rows(path)


def _rows(path: Path) -> Iterator[tuple[str, dict]]:
    from harness.safeio import open_regular, read_line_bounded

    offset = 0
    limit = MAX_LINE_CHARS * 4 + 2  # UTF-8 bytes of the longest allowed line: a 400 MB line is refused after these
    with open_regular(path, "data file", "check the path given to --data-file", error=DataError) as f:
        for n, raw in enumerate(iter(lambda: read_line_bounded(f, limit), b""), 1):  # binary lines: split at b"\n" only
            if raw is None:
                raise DataError(f"{path}:{n}: a line over {MAX_LINE_CHARS:,} characters", "shorten or drop that row")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path} is not UTF-8 (byte {offset + e.start})", "re-encode the file as UTF-8") from None
            offset += len(raw)
            if not line.strip():
                continue
            if len(line) > MAX_LINE_CHARS:
                raise DataError(f"{path}:{n}: a line of {len(line):,} characters, over the {MAX_LINE_CHARS:,} a row may have",
                                "shorten or drop that row")
            try:
                row = json.loads(line, parse_constant=_no_constant)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n} is not valid JSON ({e.msg})", "the file must be JSON Lines: one JSON object per line") from None
            except ValueError as e:
                raise DataError(f"{path}:{n}: {e}", "write numbers as finite JSON numbers (or strings)") from None
            except RecursionError:
                raise DataError(f"{path}:{n}: JSON nested too deeply", "flatten that row") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{n} is a JSON {type(row).__name__}, not an object", "each line must be a JSON object")
            yield f"{path}:{n}", row


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


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
