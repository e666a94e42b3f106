"""Typed run configuration. Unknown keys are errors (extra="forbid"), values are range-checked,
and the whole config is stored with the run so that `--resume` can refuse different settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.errors import ConfigError

# Settings that may differ on --resume without changing what is measured.
RESUME_FREE = {"output_dir", "resume", "num_processes", "quiet"}


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = "random:tiny"
    backend: str = "auto"  # auto: by model spec (openai:, .gguf with llamacpp installed? no: transformers)
    revision: str | None = None
    tokenizer: str | None = None
    card: str | None = None
    tasks: tuple[str, ...] = ("synthetic",)
    data_files: dict[str, str] = Field(default_factory=dict)
    task_options: dict[str, dict] = Field(default_factory=dict)
    limit: int | None = Field(default=None, gt=0)
    batch_size: int | Literal["auto"] = 8
    max_new_tokens: int | None = Field(default=None, gt=0)
    num_samples: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0.0, le=5.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=0)
    stop: tuple[str, ...] = ()
    protocol: str | None = None
    think_budgets: tuple[int, ...] = ()
    device: str = "auto"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    device_map: str | None = None
    max_memory: dict[str, str] | None = None
    seed: int = 0
    warmup: int = Field(default=1, ge=0)
    output_dir: str = "results"
    resume: str | None = None
    allow_pickle: bool = False
    trust_remote_code: bool = False
    truncate_prompts: bool = False
    price_per_hour: float | None = Field(default=None, ge=0.0)
    instance: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    max_concurrency: int = Field(default=8, gt=0)
    tensor_parallel_size: int = Field(default=1, gt=0)
    num_processes: int = Field(default=1, gt=0)
    quiet: bool = False

    @field_validator("batch_size")
    @classmethod
    def _positive_batch(cls, v):
        if v != "auto" and v <= 0:
            raise ValueError("must be a positive integer or 'auto'")
        return v

    @field_validator("tasks")
    @classmethod
    def _some_tasks(cls, v):
        if not v:
            raise ValueError("name at least one task")
        return v

    @model_validator(mode="after")
    def _data_files_match_tasks(self):
        unknown = set(self.data_files) - set(self.tasks)
        if unknown:
            raise ValueError(f"--data-file names task(s) not in --tasks: {', '.join(sorted(unknown))}")
        return self

    def stored(self) -> dict:
        """What goes into config.json: everything but secrets (there are none: keys stay in the environment)."""
        return self.model_dump(mode="json")

    def differs_from(self, stored: dict) -> list[str]:
        mine = self.stored()
        return sorted(k for k in mine if k not in RESUME_FREE and mine.get(k) != stored.get(k))


def make_config(**values) -> RunConfig:
    """Build a RunConfig, turning validation errors into one readable line."""
    try:
        return RunConfig(**values)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "config"
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"unknown config key {where!r}", "check the spelling against `harness run --help`") from None
        raise ConfigError(f"invalid value for {where}: {err['msg']}", f"fix --{where.replace('_', '-')}") from None


def load_config_file(path: str | Path) -> dict:
    """A YAML or JSON config file, loaded as data (yaml.safe_load; nothing is executed)."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}", "check the path given to --config") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p} is not valid YAML: {str(e).splitlines()[0]}", "fix the file's syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p} must hold a mapping of settings, not a {type(data).__name__}", "write key: value lines")
    return data
