"""Helpers the built-in tasks share: how a question is shown, where it came from, and which options a
task accepts.

`OpenQuestion` and `MultipleChoice` are mixins placed before `Task` in a task's bases. They give the
task `format_question(item)` (what the protocol puts in the user turn) and a `describe()` that
names the exact source (dataset, config, split or file). Multiple-choice items always carry their
options in display order and a letter target, so one renderer serves GPQA, ARC and C-Eval alike.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from harness.errors import ConfigError, DataError
from harness.tasks.base import Item

LETTERS = "ABCDEFGHIJ"


def render_choices(question: str, choices: tuple[str, ...] | list[str]) -> str:
    """"Question\\n\\nA) ...\\nB) ..." — the layout every multiple-choice task uses."""
    if len(choices) > len(LETTERS):
        raise DataError(f"{len(choices)} options is more than the {len(LETTERS)} letters A-J", "use at most 10 options")
    lines = [f"{LETTERS[i]}) {text}" for i, text in enumerate(choices)]
    return question.strip() + "\n\n" + "\n".join(lines)


def letter(index: int) -> str:
    return LETTERS[index]


class OpenQuestion:
    """Free-answer tasks: the question is shown as is."""

    def format_question(self, item: Item) -> str:
        return item.question

    def describe(self) -> str:
        dataset = getattr(self, "dataset", None)
        if not dataset:
            return "generated locally"
        config = getattr(self, "config", None)
        files = getattr(self, "data_files", None)
        where = f"{dataset}{' ' + config if config else ''}"
        what = files if files else f"split {getattr(self, 'split', '?')}"
        gated = ", gated: needs HF_TOKEN" if getattr(self, "gated", False) else ""
        return f"{where} ({what}{gated})"


class MultipleChoice(OpenQuestion):
    """Multiple-choice tasks: the question followed by lettered options."""

    def format_question(self, item: Item) -> str:
        return render_choices(item.question, item.choices)


def check_options(task: str, options: Mapping[str, Any], allowed: Mapping[str, Callable[[Any], Any]]) -> dict[str, Any]:
    """Convert each option with its converter; an unknown key or a bad value is a ConfigError.

    Options may arrive as strings from the command line, so converters take either form.
    """
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        hint = f"task {task} accepts {', '.join(sorted(allowed))}" if allowed else f"task {task} takes no options"
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for task {task}", hint)
    out = {}
    for key, value in options.items():
        try:
            out[key] = allowed[key](value)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"bad value {value!r} for option {key} of task {task} ({e})", "see `harness list tasks`") from None
    return out


def as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("expected an integer")
    return int(value)


def field(row: Mapping[str, Any], names: tuple[str, ...], task: str, index: int) -> Any:
    """The first of `names` present in `row`: for datasets whose mirrors spell a field differently."""
    for name in names:
        if name in row and row[name] is not None:
            return row[name]
    raise DataError(f"task {task}: row {index} has none of the fields {', '.join(names)}",
                    f"each row needs one of {', '.join(names)}")
