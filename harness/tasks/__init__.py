"""Benchmark tasks: one module per benchmark, found by harness/registry.py without a central list
(every Task subclass in a module here that sets its own `name`). The names below are what a task,
built in or a plugin, builds on."""

from harness.tasks.base import Item, Task, letter, render_choices
from harness.tasks.options import as_int, check_options, field

__all__ = ["Item", "Task", "as_int", "check_options", "field", "letter", "render_choices"]
