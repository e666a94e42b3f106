"""The comparisons file (harness/data/comparisons.yaml): claims that compare two models' scores
or prices, each with its source. Schema (pydantic, `extra="forbid"`) and loading.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.cards.schema import Source, Status
from harness.errors import ConfigError, validation_message


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Pair(_Strict):
    a: float = Field(ge=0)
    b: float = Field(ge=0)


class Comparison(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    text: str
    a: str
    b: str
    task: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    metric: Literal["pass@1", "accuracy"]  # what a paired test of per-problem correctness measures
    relation: Literal["a > b", "a ≈ b"]
    margin_pts: float | None = Field(None, gt=0)
    published: Pair
    source: str
    status: Status
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def check(self):
        gap = self.published.a - self.published.b
        if self.relation == "a ≈ b":
            if self.margin_pts is None:
                raise ValueError("an 'a ≈ b' claim needs margin_pts")
            if abs(gap) > self.margin_pts:
                raise ValueError(f"the published gap {gap:+.1f} pts is outside margin_pts {self.margin_pts}")
        elif gap <= 0:
            raise ValueError(f"published values {self.published.a} vs {self.published.b} do not show a > b")
        return self


class PriceClaim(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    text: str
    a: str
    b: str
    per: Literal["input", "output"]
    published: Pair
    ratio: float = Field(gt=0)
    source: str
    status: Status
    notes: list[str] = Field(default_factory=list)


class ComparisonsFile(_Strict):
    sources: dict[str, Source]
    comparisons: list[Comparison]
    prices: list[PriceClaim] = Field(default_factory=list)

    @model_validator(mode="after")
    def check(self):
        ids = [c.id for c in [*self.comparisons, *self.prices]]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate ids: {sorted({i for i in ids if ids.count(i) > 1})}")
        for c in self.comparisons:
            if c.source.split()[0] not in self.sources:
                raise ValueError(f"{c.id}: source must start with a key of `sources` ({', '.join(self.sources)})")
        return self


def load_comparisons(path: str | Path | None = None) -> ComparisonsFile:
    """The comparative claims (default: the packaged harness/data/comparisons.yaml)."""
    where = str(path or "harness/data/comparisons.yaml")
    try:
        text = Path(path).read_text(encoding="utf-8") if path else (resources.files("harness") / "data" / "comparisons.yaml").read_text(encoding="utf-8")
        from harness.config import safe_yaml

        return ComparisonsFile.model_validate(safe_yaml(text, where))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read comparisons file {where} ({e})".replace("\n", " "), "check the file") from None
    except ValidationError as e:
        raise ConfigError(f"{where}: {validation_message(e, ComparisonsFile)}", "fix the comparisons file") from None


def describe_source(text: str, sources: dict[str, Source]) -> str:
    """'KEY rest' -> 'KEY rest — repo path @ commit (url)' where KEY is a known source."""
    out = []
    for key in dict.fromkeys(re.findall(r"\b[A-Z][A-Z0-9_]{2,}\b", text)):
        s = sources.get(key)
        if s is not None:
            where = " ".join(x for x in (s.repo, s.path, f"@ {s.commit[:7]}" if s.commit else None, s.url) if x)
            out.append(f"{key}: {where or s.note}")
    return f"{text} — {'; '.join(out)}" if out else text
