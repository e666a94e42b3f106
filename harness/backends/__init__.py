"""Inference backends. Each engine lives in its own module and is imported only when chosen."""

from harness.backends.base import Backend, BackendOptions
from harness.core.spec import parse as parse_spec
from harness.core.types import Completion, ModelInfo, Request, Sampling
from harness.errors import ConfigError

__all__ = ["Backend", "BackendOptions", "Completion", "ModelInfo", "Request", "Sampling", "backend_class", "backend_for",
           "backend_name", "load_backend"]


def backend_for(model: str) -> str:
    """The backend a model spec implies when --backend is auto."""
    spec = parse_spec(model)
    return spec.kind if spec.is_served else "transformers"


def backend_name(cfg) -> str:
    return cfg.backend if cfg.backend != "auto" else backend_for(cfg.model)


# Engine options that also have a top-level flag (`--revision`, `--n-threads`, ...). Either channel may
# set one; both at once is refused, so no engine ever receives a value twice.
FLAG_OPTIONS = ("revision", "tokenizer", "device_map", "max_memory", "base_url", "api_key_env", "max_concurrency",
                "tensor_parallel_size", "n_ctx", "n_threads", "compile", "trust_remote_code", "allow_pickle", "seed")


def engine_options(cfg) -> dict:
    """The one set of engine options a run passes: its flags, then `--backend-option` values; a key
    given both ways is a one-line error (even with equal values: which one counts would be a guess)."""
    flags = {k: getattr(cfg, k, None) for k in FLAG_OPTIONS}
    flags = {k: v for k, v in flags.items() if v is not None and v is not False and not (k == "compile" and v == "auto")}
    given = dict(cfg.backend_options)
    for key in ("device", "model"):
        if key in given:
            raise ConfigError(f"--backend-option {key}=... is not an engine option", f"use --{key}")
    explicit = set(cfg.model_fields_set) if hasattr(cfg, "model_fields_set") else set(flags)
    clash = sorted(k for k in given if k in flags and (k != "seed" or "seed" in explicit))
    if clash:
        k = clash[0]
        raise ConfigError(f"{k} given twice: as --{k.replace('_', '-')} and as --backend-option {k}={given[k]}",
                          f"give it once (drop --backend-option {k}=... or --{k.replace('_', '-')})")
    if "seed" in given:
        flags.pop("seed", None)
    return {**flags, **given}


def backend_class(cfg) -> type[Backend]:
    """The configured backend's class (its engine imports lazily), with every engine option checked
    against the options it declares: a bad or doubled key fails here, before any model loads."""
    from harness import registry

    cls = registry.get("backends", backend_name(cfg)).load()
    engine_options(cfg)  # refuses a key given both as a flag and as --backend-option
    cls.check_options(cfg.backend_options)  # names a bad key and the allowed ones
    return cls


def load_backend(cfg, dev) -> Backend:
    """Instantiate the configured backend through the registry."""
    cls = backend_class(cfg)
    options = engine_options(cfg)
    options.setdefault("trust_remote_code", False)
    options.setdefault("allow_pickle", False)
    options.setdefault("seed", cfg.seed)
    return cls.from_options(cfg.model, device=dev, **options)
