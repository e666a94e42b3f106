"""Inference backends. Each engine lives in its own module and is imported only when chosen."""

from harness.backends.base import Backend, Completion, ModelInfo, Request, Sampling

__all__ = ["Backend", "Completion", "ModelInfo", "Request", "Sampling", "backend_for", "load_backend"]


def backend_for(model: str) -> str:
    """The backend a model spec implies when --backend is auto."""
    if model.startswith("openai:"):
        return "openai"
    if model.startswith("fake:"):
        return "fake"
    return "transformers"


def load_backend(cfg, dev) -> Backend:
    """Instantiate the configured backend through the registry (engines import lazily)."""
    from harness import registry

    name = cfg.backend if cfg.backend != "auto" else backend_for(cfg.model)
    cls = registry.get("backends", name).load()
    optional = {k: getattr(cfg, k) for k in ("revision", "tokenizer", "device_map", "max_memory", "base_url", "api_key_env",
                                              "max_concurrency", "tensor_parallel_size", "n_ctx", "n_threads") if getattr(cfg, k) is not None}
    if getattr(cfg, "compile", "auto") != "auto":  # only an explicit choice is an option other engines note as ignored
        optional["compile"] = cfg.compile
    return cls.from_options(cfg.model, device=dev, trust_remote_code=cfg.trust_remote_code, allow_pickle=cfg.allow_pickle,
                            seed=cfg.seed, **optional)
