"""Inference backends. Each engine lives in its own module and is imported only when chosen."""

from harness.backends.base import Backend, BackendOptions, Completion, ModelInfo, Request, Sampling

__all__ = ["Backend", "BackendOptions", "Completion", "ModelInfo", "Request", "Sampling", "backend_class", "backend_for",
           "backend_name", "load_backend"]


def backend_for(model: str) -> str:
    """The backend a model spec implies when --backend is auto."""
    if model.startswith("openai:"):
        return "openai"
    if model.startswith("fake:"):
        return "fake"
    return "transformers"


def backend_name(cfg) -> str:
    return cfg.backend if cfg.backend != "auto" else backend_for(cfg.model)


def backend_class(cfg) -> type[Backend]:
    """The configured backend's class (its engine imports lazily), with --backend-option checked
    against the options it declares: a bad key fails here, before any model loads."""
    from harness import registry

    cls = registry.get("backends", backend_name(cfg)).load()
    cls.check_options(cfg.backend_options)
    return cls


def load_backend(cfg, dev) -> Backend:
    """Instantiate the configured backend through the registry."""
    cls = backend_class(cfg)
    optional = {k: getattr(cfg, k) for k in ("revision", "tokenizer", "device_map", "max_memory", "base_url", "api_key_env",
                                              "max_concurrency", "tensor_parallel_size", "n_ctx", "n_threads") if getattr(cfg, k) is not None}
    if getattr(cfg, "compile", "auto") != "auto":  # only an explicit choice is an option other engines note as ignored
        optional["compile"] = cfg.compile
    return cls.from_options(cfg.model, device=dev, trust_remote_code=cfg.trust_remote_code, allow_pickle=cfg.allow_pickle,
                            seed=cfg.seed, **optional, **cfg.backend_options)
