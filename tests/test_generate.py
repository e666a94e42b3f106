"""Batching under memory pressure: `--batch-size auto` halves on out-of-memory and retries the
same requests; at batch 1 (or with a fixed batch size) the run ends with a message naming the fix."""

from __future__ import annotations

import json

import pytest
from helpers import gsm8k_rows, write_jsonl

from harness.backends.fake import FakeBackend
from harness.cli import main
from harness.core.types import Request, Sampling
from harness.errors import OutOfMemory
from harness.orchestration.generate import generate_all, order


class OutOfMemoryError(RuntimeError):
    """Named like torch.OutOfMemoryError, which is how the harness recognises it."""


class Tight(FakeBackend):
    def __init__(self, fits: int):
        super().__init__(None, "fake:tight")
        self.fits, self.sizes = fits, []

    def max_batch_size(self) -> int:
        return 8

    def generate(self, requests):
        self.sizes.append(len(requests))
        if len(requests) > self.fits:
            raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().generate(requests)


def _reqs(n):
    return [Request(key=f"t/{i}/0", messages=({"role": "user", "content": f"{i} + 1 = ?"},), sampling=Sampling(max_new_tokens=8), seed=i)
            for i in range(n)]


def test_auto_batch_halves_and_retries_the_same_requests():
    backend, seen = Tight(fits=2), []
    batches = generate_all(backend, _reqs(7), [1] * 7, batch_size="auto",
                           on_batch=lambda reqs, done, b: seen.extend(r.key for r in reqs))
    assert backend.sizes[:3] == [7, 4, 2]  # 8 -> 4 -> 2, the first chunk retried each time
    assert sorted(seen) == sorted(r.key for r in _reqs(7)) and len(seen) == 7
    assert all(b.rows <= 2 for b in batches)


def test_oom_at_batch_one_names_the_fixes():
    with pytest.raises(OutOfMemory) as e:
        generate_all(Tight(fits=0), _reqs(3), [1] * 3, batch_size="auto", on_batch=lambda *a: None)
    msg = str(e.value)
    assert "batch size 1" in msg and "dtype" in msg and "max-new-tokens" in msg and "offload" in msg


def test_oom_with_a_fixed_batch_suggests_auto():
    with pytest.raises(OutOfMemory, match="--batch-size auto"):
        generate_all(Tight(fits=2), _reqs(4), [1] * 4, batch_size=4, on_batch=lambda *a: None)


def test_order_is_longest_first_and_stable():
    reqs = _reqs(4)
    assert [r.key for r in order(reqs, [3, 9, 3, 1])] == ["t/1/0", "t/0/0", "t/2/0", "t/3/0"]


def test_oom_through_the_cli_is_one_line_and_keeps_what_was_measured(tmp_path, monkeypatch, capsys):
    calls = []
    real = FakeBackend.generate

    def generate(self, requests):
        calls.append(len(requests))
        if len(calls) > 2:  # warm-up and one batch succeed, then the device runs out
            raise OutOfMemoryError("CUDA out of memory")
        return real(self, requests)

    monkeypatch.setattr(FakeBackend, "generate", generate)
    data = write_jsonl(tmp_path / "d.jsonl", gsm8k_rows(6))
    rc = main(["run", "--model", "fake:echo", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}", "--batch-size", "1",
               "--output-dir", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 3 and len(err) == 1 and err[0].startswith("error: out of memory at batch size 1")
    (run_dir,) = (tmp_path / "out").iterdir()
    doc = json.loads((run_dir / "run.json").read_text())
    assert doc["status"] == "failed" and doc["samples"]["done"] == 1  # the finished sample is kept, resumable
