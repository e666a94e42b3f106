"""Plugins are one file: a task module is found without a central list, and an installed
distribution's task and backend (entry points) run, with their options checked and their provider
written to run.json. The sample distribution is tests/fixtures/sample_plugin (tasks/README.md shows it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_cli

from harness import registry
from harness.errors import ConfigError

FIXTURE = Path(__file__).parent / "fixtures" / "sample_plugin"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    """The sample distribution pip-installed (offline, no deps) into a folder of its own."""
    root = tmp_path_factory.mktemp("plugin")
    src = shutil.copytree(FIXTURE, root / "src")  # building writes build/ and egg-info next to the sources
    target = root / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                           "--target", str(target), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (target / "harness_sample_plugin-0.3.1.dist-info").is_dir()
    return target


def harness(args: list[str], plugin_path: Path, cwd: Path, **env) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(plugin_path), "HF_HUB_OFFLINE": "1", **env}
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=cwd, env=environ, timeout=300)


def test_installed_task_and_backend_run_and_are_recorded(plugin_path, tmp_path):
    out = tmp_path / "out"
    proc = harness(["run", "--backend", "calculator", "--model", "calc", "--tasks", "sums", "--task-option", "sums.n=4",
                    "--output-dir", str(out), "--quiet"], plugin_path, tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = out.iterdir()
    run = json.loads((run_dir / "run.json").read_text())
    assert run["tasks"]["sums"]["metrics"]["accuracy"]["value"] == 1.0 and run["tasks"]["sums"]["n"] == 4
    provided = {"provider": "harness-sample-plugin", "version": "0.3.1"}
    assert run["plugins"]["backend"] == {"name": "calculator", **provided}
    assert run["plugins"]["task:sums"] == {"name": "sums", **provided}


def test_backend_options_come_from_the_backends_own_model(plugin_path, tmp_path):
    out = tmp_path / "out"
    proc = harness(["run", "--backend", "calculator", "--model", "calc", "--tasks", "sums", "--backend-option", "offset=1",
                    "--output-dir", str(out), "--quiet"], plugin_path, tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = out.iterdir()
    assert json.loads((run_dir / "run.json").read_text())["tasks"]["sums"]["metrics"]["accuracy"]["value"] == 0.0

    proc = harness(["run", "--backend", "calculator", "--model", "calc", "--tasks", "sums", "--backend-option", "ofset=1",
                    "--output-dir", str(tmp_path / "bad"), "--quiet"], plugin_path, tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "ofset: unknown key; did you mean 'offset'?" in proc.stderr, proc.stderr
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())

    listing = harness(["list", "backends"], plugin_path, tmp_path)
    assert "calculator" in listing.stdout and "offset" in listing.stdout and "harness-sample-plugin 0.3.1" in listing.stdout


def test_plugins_can_be_switched_off(plugin_path, tmp_path):
    proc = harness(["run", "--backend", "fake", "--model", "fake:echo", "--tasks", "sums", "--output-dir", str(tmp_path), "--quiet"],
                   plugin_path, tmp_path, HARNESS_NO_PLUGINS="1")
    assert proc.returncode == 2 and "unknown task 'sums'" in proc.stderr, proc.stderr


def test_a_new_task_module_is_found_without_a_list(tmp_path, monkeypatch):
    """Dropping one file into the tasks package is all a built-in task needs."""
    import harness.tasks

    (tmp_path / "riddles.py").write_text('"""Riddles."""\nfrom harness.tasks import Item, Task\n\n\nclass _Base(Task):\n    pass\n\n\n'
                                         'class Riddles(_Base):\n    name = "riddles"\n\n    def parse(self, row, index):\n'
                                         '        return Item(str(index), row["q"], row["a"])\n')
    monkeypatch.setattr(harness.tasks, "__path__", [*harness.tasks.__path__, str(tmp_path)])
    registry.builtin_tasks.cache_clear()
    try:
        found = registry.builtin_tasks()
        assert found["riddles"] == "harness.tasks.riddles:Riddles"
        assert "_Base" not in " ".join(found.values())  # a class without its own name is a base, not a task
        assert {"gsm8k", "math500", "aime24", "aime25", "gpqa_diamond", "arc_challenge", "cmath", "ceval", "synthetic"} <= set(found)
        assert registry.get("tasks", "riddles").record() == {"name": "riddles", "provider": "builtin", "version": harness.__version__}
    finally:
        registry.builtin_tasks.cache_clear()
        sys.modules.pop("harness.tasks.riddles", None)


def test_backend_option_for_a_backend_without_it_is_one_error(tmp_path, capsys):
    code, _, err = run_cli(["run", "--model", "fake:echo", "--backend-option", "n_ctx=4", "--output-dir", str(tmp_path), "--quiet"], capsys)
    assert code == 2 and err.startswith("error: backend fake: n_ctx: unknown key") and err.count("\n") == 1, err


def test_builtin_backends_declare_strict_options():
    for name, entry in registry.entries("backends").items():
        if entry.provider != "builtin":
            continue
        cls = entry.load()
        assert cls.Options.model_config.get("extra") == "forbid", name
        assert cls.install, name
        with pytest.raises(ConfigError, match="unknown key"):
            cls.check_options({"no_such_option": 1})


def test_tasks_readme_shows_the_tested_plugin_verbatim():
    readme = (Path(__file__).resolve().parents[1] / "tasks" / "README.md").read_text(encoding="utf-8")
    for rel in ("pyproject.toml", "sample_plugin/sums.py", "sample_plugin/calculator.py"):
        assert f"# {rel}\n{(FIXTURE / rel).read_text(encoding='utf-8')}```" in readme, f"tasks/README.md is out of date with {rel}"


def test_a_task_brings_its_own_scorer(tmp_path, monkeypatch, capsys):
    """A task whose answers are not numbers, expressions or letters (free text here) scores them itself;
    the run records its verdicts exactly as it would the built-in scorers'."""
    import harness.tasks

    (tmp_path / "echoes.py").write_text(
        '"""Echoes: the reply is right when it repeats the question word for word (a scorer of its own)."""\n'
        "from harness.core.types import Score\nfrom harness.tasks import Item, Task\n\n\n"
        "class Echoes(Task):\n    name = \"echoes\"\n    answer_type = \"text\"\n\n"
        "    def parse(self, row, index):\n        return Item(str(index), row[\"q\"], row[\"a\"])\n\n"
        "    def score(self, answer, item, *, truncated):\n"
        "        ok = not truncated and item.question in answer and item.target == \"echo\"\n"
        "        return Score(answer[:20], ok, answer[:20], ok)\n")
    data = tmp_path / "echoes.jsonl"
    data.write_text('{"q": "say hello", "a": "echo"}\n{"q": "say bye", "a": "no"}\n')
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"say hello": "say hello", "*": "something else"}))  # repeats only the first question
    monkeypatch.setattr(harness.tasks, "__path__", [*harness.tasks.__path__, str(tmp_path)])
    registry.builtin_tasks.cache_clear()
    try:
        code, out, err = run_cli(["run", "--model", f"fake:{script}", "--tasks", "echoes", "--data-file", f"echoes={data}",
                                  "--protocol", "plain", "--output-dir", str(tmp_path / "out"), "--quiet"], capsys)
        assert code == 0, err
        (run_dir,) = (tmp_path / "out").iterdir()
        rows = {r["id"]: r for r in map(json.loads, (run_dir / "samples.jsonl").read_text().splitlines())}
        assert rows["0"]["correct"] is True and rows["1"]["correct"] is False
        assert json.loads((run_dir / "run.json").read_text())["tasks"]["echoes"]["metrics"]["accuracy"]["value"] == 0.5
    finally:
        registry.builtin_tasks.cache_clear()
        sys.modules.pop("harness.tasks.echoes", None)
