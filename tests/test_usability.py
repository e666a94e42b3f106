"""What a person reads and gets: every `harness list` section, `harness cards [NAME]`, the generated
claims table, progress and heartbeat, the Ctrl-C resume command, both reports from a run, one file
mode for every result file, relative paths in the repository, and cards shipped in the wheel."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import gsm8k_rows, run_cli, write_jsonl

from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]

# ---- harness list ----------------------------------------------------------------------------------

LIST_SECTIONS = {
    "tasks": [r"^tasks:", r"^  gsm8k\s+openai/gsm8k", r"^  math500\s+", r"lm_eval:<task>"],
    "models": [r"^random models", r"^  random:tiny\s", r"^  random:qwen2\.5-7b-instruct\s+Qwen/Qwen2\.5-7B-Instruct"],
    "backends": [r"^backends", r"^  transformers\s+built in", r"^  llamacpp\s+"],
    "protocols": [r"^prompt protocols:", r"^  r1\s+system=no force_think=True"],
    "devices": [r"^devices:", r"^  cpu\s+available"],
    "cards": [r"^ok\s+r1-distill-qwen-7b\s+deepseek-ai/DeepSeek-R1-Distill-Qwen-7B\s+\(7 claims\)"],
    "prices": [r"^instances \(USD per hour\):", r"^  lambda-1x-h100-sxm\s+\$4\.29/h", r"^APIs \(USD per 1M tokens\):",
               r"^  deepseek-reasoner\s+\$0\.55 input, \$0\.14 cached input, \$2\.19 output",
               r"^  o1\s+\$15 input.*\$60 output.*third-party copy of model card o1-1217"],
}


@pytest.mark.parametrize("section", sorted(LIST_SECTIONS))
def test_every_list_section_prints_its_content(section, capsys):
    code, out, err = run_cli(["list", section], capsys)
    assert code == 0, err
    for pattern in LIST_SECTIONS[section]:
        assert re.search(pattern, out, re.M), f"{section}: {pattern!r} not in\n{out}"
    assert "{}" not in out


def test_list_all_has_every_section_but_cards_and_prices(capsys):
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0
    for section in ("tasks", "models", "backends", "protocols", "devices"):
        assert re.search(LIST_SECTIONS[section][0], out, re.M)


def test_secondary_prices_say_they_are_copies_wherever_printed(capsys):
    from harness.measure.cost import api_price, hourly_price

    assert "third-party copy" in api_price("o1")[2]
    assert "third-party copy" in hourly_price(None, "lambda-1x-h100-sxm")[1]
    code, out, _ = run_cli(["cards", "o1-1217"], capsys)
    assert code == 0 and re.search(r"price: \$15/1M input, \$60/1M output \(third-party copy", out)


# ---- cards -------------------------------------------------------------------------------------------

def test_cards_name_shows_model_protocol_claims_and_cost(capsys):
    code, out, err = run_cli(["cards", "r1-distill-qwen-7b"], capsys)
    assert code == 0, err
    assert "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B @ 393119fcd6a873e5776c79b0db01c96911f5f0fc" in out
    assert "protocol r1: system prompt none, force <think> True, temperature 0.6" in out
    assert re.search(r"math500\s+pass@1\s+92\.8%\s+\[verified, 64 samples\] R1_README", out)
    assert re.search(r"gsm8k\s+pass@1\s+no published value\s+\[UNVERIFIED\]", out)
    assert "500 problems x 64 samples = 32000 requests" in out  # MATH-500's size, without the data
    assert "memory: about" in out and "time (transformers):" in out


def test_cards_name_unknown_is_one_error_line(capsys):
    code, _, err = run_cli(["cards", "no-such-card"], capsys)
    assert code == 2 and err.count("error:") == 1 and "no model card named" in err


def test_docs_claims_md_is_generated_from_the_cards(capsys):
    code, out, _ = run_cli(["cards", "--markdown"], capsys)
    assert code == 0
    assert (ROOT / "docs" / "claims.md").read_text(encoding="utf-8") == out, \
        "docs/claims.md is stale: run `harness cards --markdown > docs/claims.md`"
    assert "| r1-distill-qwen-7b | deepseek-ai/DeepSeek-R1-Distill-Qwen-7B | math500 | MATH-500 | pass@1 | 92.8% | 64 | verified |" in out


# ---- progress, Ctrl-C, reports ---------------------------------------------------------------------------

def test_heartbeat_without_a_terminal():
    from harness.reports.console import RunProgress

    stream = io.StringIO()
    p = RunProgress(tty=False, interval=0.05, stream=stream, out=stream)
    p.loading("random:tiny")
    p.start(10)
    p(4)
    p.tokens(100)
    time.sleep(0.3)
    p.close()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "loading random:tiny ..."
    beats = [x for x in lines if x.startswith("progress: 4/10 samples")]
    assert len(beats) >= 2 and "tok/s" in beats[0] and "ETA" in beats[0]


@pytest.fixture
def data(tmp_path):
    return write_jsonl(tmp_path / "gsm8k.jsonl", gsm8k_rows(6))


def test_ctrl_c_prints_the_run_folder_and_the_resume_command(tmp_path, data, monkeypatch, capsys):
    from harness.backends.fake import FakeBackend

    real, calls = FakeBackend.generate, []

    def generate(self, requests):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, requests)

    monkeypatch.setattr(FakeBackend, "generate", generate)
    out = tmp_path / "out"
    code, _, err = run_cli(["run", "--model", "fake:echo", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}", "--batch-size", "2",
                            "--output-dir", str(out), "--quiet"], capsys)
    assert code == 130
    (run_dir,) = out.iterdir()
    assert f"run folder: {run_dir}" in err
    command = re.search(r"resume with: (harness run --resume .+)", err).group(1)
    monkeypatch.setattr(FakeBackend, "generate", real)
    assert main(command.split()[1:] + ["--quiet"]) == 0


def test_run_writes_both_reports_and_prints_their_paths(tmp_path, data, capsys):
    out = tmp_path / "out"
    code, stdout, _ = run_cli(["run", "--model", "fake:echo", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}",
                               "--output-dir", str(out), "--quiet"], capsys)
    (run_dir,) = out.iterdir()
    assert code == 0
    assert str(run_dir / "report.md") in stdout and str(run_dir / "report.html") in stdout
    assert (run_dir / "report.html").stat().st_size > 1000


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_every_result_file_has_one_mode_from_the_umask(tmp_path, data, umask, capsys):
    old = os.umask(umask)
    try:
        out = tmp_path / "out"
        assert main(["run", "--model", "fake:echo", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}",
                     "--output-dir", str(out), "--quiet"]) == 0
    finally:
        os.umask(old)
    (run_dir,) = out.iterdir()
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in run_dir.iterdir() if p.is_file()}
    assert {"run.json", "report.html", "report.md", "samples.jsonl", "config.json"} <= set(modes)
    assert set(modes.values()) == {0o666 & ~umask}, modes


# ---- the repository ----------------------------------------------------------------------------------

def test_no_absolute_paths_of_a_development_machine_in_the_repository():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    if not files:
        pytest.skip("not a git checkout")
    # /work/results and /home/harness are paths inside the Docker image, not of a machine
    pattern = re.compile(r"/work/(?!results\b)[a-z]|/home/(?!harness\b)[a-z]|/Users/[A-Za-z]|[A-Z]:\\\\Users")
    hits = []
    for name in files:
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        hits += [f"{name}:{i}" for i, line in enumerate(text.splitlines(), 1) if pattern.search(line) and name != "tests/test_usability.py"]
    assert not hits, hits


@pytest.mark.slow
def test_wheel_ships_the_cards_and_runs_outside_the_checkout(tmp_path):
    """Build the wheel, install it (no dependencies: they come from this environment) in a fresh
    venv, and from a folder outside the checkout list the cards and run random:tiny."""
    pytest.importorskip("setuptools", reason="building the wheel offline needs setuptools in this environment")
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True)
    (wheel,) = wheels.glob("*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # the dependencies (torch, transformers, ...) from this environment; not its editable harness
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (site / "deps.pth").write_text("\n".join(deps) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("HARNESS_CARDS_DIR", "PYTHONPATH")}
    harness = str(venv / "bin" / "harness")
    where = subprocess.run([str(py), "-c", "import harness; print(harness.__file__)"], cwd=outside, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert str(venv) in where  # the installed wheel, not the checkout
    cards = subprocess.run([harness, "cards"], cwd=outside, env=env, capture_output=True, text=True)
    assert cards.returncode == 0, cards.stderr
    assert re.search(r"ok\s+r1-distill-qwen-7b .*\(7 claims\)", cards.stdout)
    run = subprocess.run([harness, "run", "--model", "random:tiny", "--limit", "2", "--max-new-tokens", "4", "--quiet"],
                         cwd=outside, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    (run_json,) = (outside / "results").glob("*/run.json")
    assert json.loads(run_json.read_text())["status"] == "complete"
