"""Benchmark tasks: one module per benchmark, registered in harness/registry.py."""

from harness.tasks.base import Item, Task

__all__ = ["Item", "Task"]
