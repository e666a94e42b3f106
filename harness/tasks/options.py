"""Checking the options a task accepts (`--task-option NAME:KEY=VALUE`), and reading a field that
dataset mirrors spell differently. Public: plugin tasks use these too."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from harness.errors import ConfigError, DataError


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
