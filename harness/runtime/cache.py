"""Measurements this machine remembers (bandwidth, CPU dtype, batch size): where they live, how they
are read and written, and when one is stale because the machine was busy while it was taken.

Files are JSON objects under ${HARNESS_CACHE:-~/.cache/cnllm-harness}, replaced atomically; a
missing or unreadable file reads as {} and an unwritable one only costs a re-measurement. A CPU
measurement records the load average per core it was taken at: one taken while the machine was
busy (over BUSY_LOAD per core) is redone once the load has halved, because other tenants' work
slowed what was timed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

BUSY_LOAD = 1.5  # load average per core above which a CPU timing measures other tenants as much as the machine


def cache_dir() -> Path:
    return Path(os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "cnllm-harness")


def read_cache(path: Path) -> dict:
    """A cache file as a dict; {} when missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_cache(path: Path, data: dict) -> bool:
    """Replace a cache file atomically (a concurrent reader never sees half a file); False when it
    cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        return False
    return True


def load_per_core() -> float | None:
    """The 1-minute load average per logical core, or None where the OS does not give one."""
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except (AttributeError, OSError):
        return None


def measured_busy(entry: dict, load: float | None) -> bool:
    """`entry` was measured while the machine was busy and it is less than half as loaded now."""
    then = entry.get("load_per_core")
    return isinstance(then, (int, float)) and then > BUSY_LOAD and load is not None and load < then / 2


def recall(path: Path, key: str, fields: set[str], load: float | None) -> dict | None:
    """The entry cached under `key` when it holds `fields` and is not a busy measurement to redo."""
    hit = read_cache(path).get(key)
    return hit if isinstance(hit, dict) and fields <= set(hit) and not measured_busy(hit, load) else None


def remember(path: Path, key: str, entry: dict, load: float | None) -> None:
    """Store `entry` under `key`, with the load it was measured at."""
    write_cache(path, {**read_cache(path), key: {**entry, **({"load_per_core": round(load, 2)} if load is not None else {})}})
