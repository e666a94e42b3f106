"""Test session setup: offline, a private cache, and the shared data folder when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARNESS_SHARED", ROOT.parent / "shared"))


# A test that builds or loads a model through an engine, starts a server or installs a package is slow by
# nature; tests/slow.txt names the others measured over 1.5 s. `-m "not slow"` is the fast development loop.
HEAVY_FIXTURES = {"tiny_models", "tiny_gguf", "tiny_qwen_dir", "eager_eos_gguf", "eager_eos_qwen_dir", "llama_server", "plugin_path",
                  "lm_eval_written", "backend", "hf_backend"}
SLOW_IDS = {line.strip() for line in (Path(__file__).parent / "slow.txt").read_text().splitlines() if line.strip() and not line.startswith("#")}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid in SLOW_IDS or HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _no_stop_request_left_over():
    """The process-wide stop event (runtime.signals.STOP) starts clear in every test, whatever the last one did."""
    from harness.runtime.signals import STOP

    STOP.clear()
    yield
    STOP.clear()


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Keep the dtype and bandwidth caches out of the user's home, but share them in the session."""
    os.environ["HARNESS_CACHE"] = str(tmp_path_factory.mktemp("harness-cache"))
    yield


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is absent (it exists only in the project's own checkouts)")
    return SHARED
