"""What an OpenAI-compatible server says it serves under a model name, for choosing the prompt
protocol of an `openai:<name>` run (the name itself is whatever the server calls the model)."""

from __future__ import annotations

from harness.backends.openai import DEFAULT_BASE_URL
from harness.backends.openai_http import import_httpx, resolve_api_key
from harness.core.spec import parse as parse_spec
from harness.errors import ModelLoadError


def served_model(model: str, base_url: str | None, api_key_env: str | None, transport=None) -> str | None:
    """What the server says it serves under `model`: vLLM's `root` (the hub id or path it loaded),
    else the listed id when it is a path (llama-cpp-python lists the GGUF path); None when the
    server cannot be asked or says nothing more than the name."""
    httpx = import_httpx()
    name = parse_spec(model).name if parse_spec(model).kind == "openai" else model
    base = (base_url or DEFAULT_BASE_URL).rstrip("/")
    try:
        key, _ = resolve_api_key(base, api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        with httpx.Client(timeout=10.0, transport=transport) as client:
            listed = client.get(f"{base}/models", headers=headers).json().get("data") or []
    except (ModelLoadError, httpx.HTTPError, ValueError, AttributeError):
        return None
    for entry in listed:
        if isinstance(entry, dict) and entry.get("id") == name:
            root = entry.get("root") or entry.get("id")
            return root if root and (root != name or "/" in root) else None
    return None
