"""Typed run configuration. Unknown keys are errors (extra="forbid"), values are range-checked,
and the whole config is stored with the run so that `--resume` can refuse different settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.errors import ConfigError, describe_error

# Keys older versions stored in config.json that no longer exist (read back and ignored on --resume).
RETIRED_KEYS = {"truncate_prompts"}
# Settings that may differ on --resume without changing what is measured.
RESUME_FREE = {"output_dir", "resume", "num_processes", "quiet", "force", "verdicts"}


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
    # settings that came from --config FILE rather than a flag: the plan labels their source; never stored
    from_config: tuple[str, ...] = Field(default=(), exclude=True)
    limit: int | None = Field(default=None, gt=0)
    sample: int | None = Field(default=None, gt=0)  # a seeded uniform sample of N problems per task (seed: `seed`)
    batch_size: int | Literal["auto"] = 8
    batching: Literal["auto", "static", "continuous"] = "auto"  # harness/runtime/batching.py
    compile: Literal["auto", "on", "off"] = "auto"  # compiled decoding on CUDA (harness/backends/compiled.py)
    max_new_tokens: int | None = Field(default=None, gt=0)
    num_samples: int | None = Field(default=None, gt=0, le=1024)  # every sample is a request held in memory
    temperature: float | None = Field(default=None, ge=0.0, le=5.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=0)
    stop: tuple[str, ...] = ()
    protocol: str | None = None
    think_budgets: tuple[int, ...] = ()  # one run per budget (harness/orchestration/budgets.py)
    think_budget: int | None = Field(default=None, gt=0)  # cap on thinking tokens for this run
    answer_tokens: int = Field(default=256, gt=0)  # budget for the answer after a capped trace
    device: str = "auto"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    device_map: str | None = None
    max_memory: dict[str, str] | None = None
    seed: int = 0
    warmup: int = Field(default=1, ge=0, le=100)
    output_dir: str = "results"
    resume: str | None = None
    allow_pickle: bool = False
    trust_remote_code: bool = False
    price_per_hour: float | None = Field(default=None, ge=0.0)  # USD per hour; bounds checked in harness/measure/cost.py
    instance: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    n_ctx: int | None = Field(default=None, gt=0)  # llama.cpp context (vLLM: max_model_len); None: the engine's default
    n_threads: int | None = Field(default=None, gt=0, le=1024)  # llama.cpp threads; None: one per physical core
    max_concurrency: int | None = Field(default=None, gt=0)  # None: the backend's own default
    tensor_parallel_size: int | None = Field(default=None, gt=0)
    backend_options: dict[str, Any] = Field(default_factory=dict)  # checked against the backend's Options model
    num_processes: int = Field(default=1, gt=0)
    quiet: bool = False
    force: bool = False  # start even when the memory estimate exceeds what is available (harness/planning/preflight.py)
    # strict: a claim the run cannot support is not_comparable; indicative: its statistical verdict is
    # computed too and shown beside it, marked indicative (harness/claims/comparability.py).
    verdicts: Literal["strict", "indicative"] = "strict"

    @field_validator("batch_size")
    @classmethod
    def _positive_batch(cls, v):
        if v != "auto" and v <= 0:
            raise ValueError("must be a positive integer or 'auto'")
        return v

    @field_validator("think_budgets")
    @classmethod
    def _positive_budgets(cls, v):
        if any(b <= 0 for b in v):
            raise ValueError("every thinking budget must be a positive number of tokens")
        return v

    @field_validator("tasks")
    @classmethod
    def _some_tasks(cls, v):
        if not v:
            raise ValueError("name at least one task")
        return v

    @field_validator("api_key_env")
    @classmethod
    def _a_name_not_a_key(cls, v):  # config.json stores this value: it must never be the key itself
        if v is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
            raise ValueError("give the NAME of an environment variable (e.g. DEEPSEEK_API_KEY), never the key itself")
        return v

    @field_validator("base_url")
    @classmethod
    def _no_credentials_in_url(cls, v):  # config.json and run.json store this value
        if v is None:
            return v
        from harness.secrets import strip_userinfo

        try:
            return strip_userinfo(v)
        except ValueError as e:
            raise ValueError(f"not a valid URL ({e}); e.g. http://127.0.0.1:8000/v1") from None

    @field_validator("backend_options")
    @classmethod
    def _no_credentials_in_option_urls(cls, v):  # --backend-option base_url=... is the same value as --base-url
        from harness.secrets import strip_userinfo

        out = {}
        for key, value in v.items():
            if isinstance(value, str) and "://" in value:
                try:
                    value = strip_userinfo(value)
                except ValueError as e:
                    raise ValueError(f"backend option {key}: not a valid URL ({e})") from None
            out[key] = value
        return out

    @field_validator("stop")
    @classmethod
    def _no_empty_stop(cls, v):
        if any(not s for s in v):
            raise ValueError("a stop string cannot be empty (it would end every answer after one token)")
        return v

    @model_validator(mode="after")
    def _data_files_match_tasks(self):
        for what, names in (("--data-file", self.data_files), ("--task-option", self.task_options)):
            unknown = set(names) - set(self.tasks)
            if unknown:  # a typo here would otherwise be silently ignored
                raise ValueError(f"{what} names task(s) not in --tasks: {', '.join(sorted(unknown))}")
        return self

    @model_validator(mode="after")
    def _limit_or_sample(self):
        if self.limit is not None and self.sample is not None:
            raise ValueError("--limit and --sample both choose which problems run: give one")
        return self

    def stored(self) -> dict:
        """What goes into config.json: everything but secrets (there are none: keys stay in the environment)."""
        return self.model_dump(mode="json")

    def differs_from(self, stored: dict) -> list[str]:
        mine = self.stored()
        # a key an older version did not store had its default then
        defaults = RunConfig().stored()
        return sorted(k for k in mine if k not in RESUME_FREE and mine.get(k) != stored.get(k, defaults[k]))


def make_config(**values) -> RunConfig:
    """Build a RunConfig, turning validation errors into one readable line."""
    try:
        return RunConfig(**values)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        msg = describe_error(dict(err), RunConfig)[1]
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"unknown config key {where!r}", _closest_key(where)) from None
        if not where and "--sample" in msg:
            raise ConfigError(msg, "drop --limit (the first N rows, a quick look) or --sample (a uniform sample that can get a verdict)") from None
        if not where:  # a rule across settings (see the model validator)
            raise ConfigError(msg, "add those tasks to --tasks, or drop the setting that names them") from None
        raise ConfigError(f"invalid value for {where}: {msg}", f"fix --{where.split('.')[0].replace('_', '-')}") from None


def _closest_key(key: str) -> str:
    import difflib

    known = list(RunConfig.model_fields)
    close = difflib.get_close_matches(key.replace("-", "_").lstrip("_"), known, n=1, cutoff=0.6)
    spelling = "check the spelling; keys are written as in `harness run --help` with underscores, e.g. max_new_tokens for --max-new-tokens"
    return f"did you mean {close[0]!r}? ({spelling})" if close else f"known keys: {', '.join(known)} ({spelling})"


def normalise_keys(data: dict) -> dict:
    """A config file may spell keys as the flags do (`max-new-tokens`, `--max-new-tokens`) or as config.json does."""
    out = {}
    for key, value in data.items():
        name = str(key).lstrip("-").replace("-", "_") if isinstance(key, str) else key
        if name in out:
            raise ConfigError(f"config key {key!r} is given twice (as {name!r} too)", "keep one spelling")
        out[name] = value
    return out


def load_config_file(path: str | Path) -> dict:
    """A YAML or JSON config file, loaded as data (yaml.safe_load; nothing is executed)."""
    import yaml

    from harness.safeio import read_regular

    p = Path(path)
    try:  # a regular file only (a FIFO would block, a device never end), bounded, UTF-8
        data = safe_yaml(read_regular(p, "config file", "check the path: pass --config a readable YAML or JSON file"), p)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{p} is not valid YAML{where}: {problem}", "fix the file's syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p} must hold a mapping of settings, not a {type(data).__name__}", "write key: value lines")
    return normalise_keys(data)


MAX_YAML_DEPTH = 64


def safe_yaml(text: str, where) -> object:
    """yaml.safe_load, after a streaming pass over the parser's events (no tree is built) that
    refuses aliases and deep nesting. An alias lets a few hundred bytes expand to gigabytes (a
    "billion laughs"), and deep nesting overflows the recursive composer: both are refused before
    anything is composed, walked or printed. Settings files and cards never need either."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        # the parser marks where every event starts (only hand-built events lack a mark)
        assert event.start_mark is not None
        if isinstance(event, yaml.AliasEvent):
            raise ConfigError(f"{where}: line {event.start_mark.line + 1}: YAML aliases (*{str(event.anchor)[:40]}) are not accepted",
                              "write the repeated value out in full")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise ConfigError(f"{where}: line {event.start_mark.line + 1}: nested more than {MAX_YAML_DEPTH} levels deep",
                                  "flatten the file: settings and cards need only a few levels")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
    return yaml.load(text, Loader=loader)  # noqa: S506  (CSafeLoader where libyaml is built in: 10x faster, as safe)
