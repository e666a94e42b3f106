"""The pipeline end to end with the scripted fake backend: files and fields, durable samples,
resume after a crash, refusal to resume with other settings, signals."""

from __future__ import annotations

import json
import os
import signal

import pytest
from helpers import gsm8k_rows, write_jsonl

from harness.cli import main
from harness.results.store import read_samples


@pytest.fixture
def data(tmp_path):
    return write_jsonl(tmp_path / "gsm8k.jsonl", gsm8k_rows(6))


@pytest.fixture
def script(tmp_path):
    # Correct for the first row only (3 + 1 = 4); a wrong boxed answer elsewhere.
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"Tom has 3 apples": "<think>3 + 1 = 4</think> The answer is \\boxed{4}.", "*": "\\boxed{999}"}))
    return path


def run_dir(out):
    (d,) = [p for p in out.iterdir() if p.is_dir()]
    return d


def run(args, out):
    return main(["run", *args, "--output-dir", str(out), "--quiet"])


def test_run_writes_three_files_with_fields(tmp_path, data, script):
    out = tmp_path / "out"
    assert run(["--model", f"fake:{script}", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}", "--batch-size", "4"], out) == 0
    d = run_dir(out)
    rows = sorted(read_samples(d / "samples.jsonl"), key=lambda r: int(r["id"]))  # appended in batch order
    assert len(rows) == 6
    need = "task id sample prompt output thinking answer extracted target correct input_tokens output_tokens finish_reason ttft_s tpot_s e2e_s".split()
    assert all(k in r for r in rows for k in need)
    assert [r["correct"] for r in rows] == [True] + [False] * 5
    assert rows[0]["thinking"] == "3 + 1 = 4" and rows[0]["extracted"] == "4"
    doc = json.loads((d / "run.json").read_text())
    assert doc["status"] == "complete" and doc["schema_version"]
    acc = doc["tasks"]["gsm8k"]["metrics"]["accuracy"]
    assert acc["value"] == pytest.approx(1 / 6) and acc["ci95"][0] < 1 / 6 < acc["ci95"][1]
    for k in ("python", "torch", "transformers", "harness"):
        assert k in doc["versions"]
    assert doc["model"]["name_or_path"].startswith("fake:")
    assert "verdict" not in (d / "report.md").read_text() or doc["claims"]
    assert "gsm8k" in (d / "report.md").read_text()


def test_resume_after_crash_keeps_every_sample_once(tmp_path, data, script):
    args = ["--model", f"fake:{script}", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}", "--batch-size", "2"]
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    assert run(args, clean) == 0 and run(args, crashed) == 0
    d = run_dir(crashed)
    lines = (d / "samples.jsonl").read_text().splitlines(keepends=True)
    (d / "samples.jsonl").write_text("".join(lines[:3]) + lines[3][:25])  # a torn last line, as after SIGKILL
    (d / "run.json").unlink()
    assert main(["run", "--resume", str(d), "--quiet"]) == 0
    rows = read_samples(d / "samples.jsonl")
    keys = [(r["task"], r["id"], r["sample"]) for r in rows]
    assert len(keys) == len(set(keys)) == 6
    a = json.loads((d / "run.json").read_text())["tasks"]["gsm8k"]["metrics"]
    b = json.loads((run_dir(clean) / "run.json").read_text())["tasks"]["gsm8k"]["metrics"]
    assert a == b


def test_resume_with_other_settings_is_refused(tmp_path, data, script, capsys):
    out = tmp_path / "out"
    assert run(["--model", f"fake:{script}", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}"], out) == 0
    rc = main(["run", "--resume", str(run_dir(out)), "--max-new-tokens", "7"])
    assert rc != 0 and "differ" in capsys.readouterr().err


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_after_the_batch_and_marks_interrupted(tmp_path, data, monkeypatch, signum, code):
    from harness.backends.fake import FakeBackend

    real = FakeBackend.generate
    calls = []

    def generate(self, requests):
        calls.append(len(requests))
        if len(calls) == 2:  # after warm-up and one batch: a Ctrl-C arrives mid-batch
            os.kill(os.getpid(), signum)
        return real(self, requests)

    monkeypatch.setattr(FakeBackend, "generate", generate)
    out = tmp_path / "out"
    rc = run(["--model", "fake:echo", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}", "--batch-size", "2"], out)
    assert rc == code
    d = run_dir(out)
    doc = json.loads((d / "run.json").read_text())
    assert doc["status"] == "interrupted"
    assert len(read_samples(d / "samples.jsonl")) == 2  # the batch in flight finished and was kept
    monkeypatch.setattr(FakeBackend, "generate", real)
    assert main(["run", "--resume", str(d), "--quiet"]) == 0
    assert json.loads((d / "run.json").read_text())["status"] == "complete"
    assert len(read_samples(d / "samples.jsonl")) == 6


def test_synthetic_is_the_default_task(tmp_path):
    out = tmp_path / "out"
    assert run(["--model", "fake:echo", "--limit", "3"], out) == 0
    doc = json.loads((run_dir(out) / "run.json").read_text())
    assert list(doc["tasks"]) == ["synthetic"] and doc["tasks"]["synthetic"]["n"] == 3


def test_k_samples_give_pass_and_maj_metrics(tmp_path, data, script):
    out = tmp_path / "out"
    assert run(["--model", f"fake:{script}", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}", "--num-samples", "3",
                "--limit", "2"], out) == 0
    doc = json.loads((run_dir(out) / "run.json").read_text())
    m = doc["tasks"]["gsm8k"]["metrics"]
    assert set(m) >= {"accuracy", "pass@3", "maj@3"}
    assert m["pass@3"]["value"] == pytest.approx(0.5) and len(m["maj@3"]["ci95"]) == 2
    assert doc["tasks"]["gsm8k"]["k"] == 3 and doc["tasks"]["gsm8k"]["settings"]["temperature"] == 0.6


def test_run_json_records_engine_sampling_protocol_source_and_token_split(tmp_path, data, script):
    out = tmp_path / "out"
    assert run(["--model", f"fake:{script}", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}", "--protocol", "qwen"], out) == 0
    d = run_dir(out)
    doc = json.loads((d / "run.json").read_text())
    assert doc["model"]["sampling"]["gsm8k"]["temperature"] == 0.0
    assert doc["model"]["sampling"]["gsm8k"]["repetition_penalty"] == 1.0
    assert doc["protocol"]["source"] == "--protocol" and "from --protocol" in (d / "report.md").read_text()
    for r in read_samples(d / "samples.jsonl"):
        assert r["thinking_tokens"] + r["answer_tokens"] == r["output_tokens"]
        assert r["token_split"] in ("ids", "exact")
    doc = json.loads((run_dir(out) / "run.json").read_text())
    assert doc["scoring"]["symbolic_limit_s"] > 0 and doc["scoring"]["limit_hits"] == 0
    assert sum(doc["scoring"]["token_split"].values()) == doc["samples"]["done"]
