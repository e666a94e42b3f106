"""What a precision matrix was asked for (precision.json) and where each variant stands while it runs.

Shared by harness/precision/matrix.py (which drives the variants) and harness/precision/assemble.py
(which reads them into matrix.json), so neither imports the other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError
from harness.precision import variants as var
from harness.precision.schema import RowStatus
from harness.results import store

SPEC = "precision.json"


@dataclass
class Spec:
    """What the matrix was asked for: stored as precision.json so a resume continues the same matrix."""

    model: str
    precisions: list[str]
    reference: str
    margin: float
    run_values: dict
    kl_texts: str | None = None
    fingerprint: str = ""
    created_utc: str = field(default_factory=store.utc_now)

    def save(self, folder: Path) -> None:
        store.write_json_atomic(folder / SPEC, self.__dict__)

    @classmethod
    def load(cls, folder: Path) -> Spec:
        path = folder / SPEC
        if not path.is_file():
            raise ConfigError(f"{folder} holds no {SPEC}", "pass --resume a folder written by `harness precision`")
        return cls(**json.loads(path.read_text(encoding="utf-8")))


@dataclass
class VariantState:
    variant: var.Variant
    built: var.Built | None = None
    run_dir: Path | None = None
    divergence: dict | None = None
    reason: str | None = None
    status: RowStatus = "pending"


__all__ = ["SPEC", "Spec", "VariantState"]
