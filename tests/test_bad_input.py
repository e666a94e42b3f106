"""Bad input never loses a measurement (issue 7, items 4-6).

Every mistake a user can make on the command line ends the same way: a non-zero exit, a last
stderr line `error: <problem> — <fix>`, no traceback, and no half-written results (no run folder
left behind, or, where one legitimately exists, nothing in it that claims to be complete or that
changed). The table below is the one docs/bad-input.md shows; most cases run the real CLI
in-process (fast), three run `python -m harness` in a fresh process.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import gsm8k_rows, run_cli, tiny_model_folder, write_jsonl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import results
from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--max-new-tokens", "4", "--limit", "2"]


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]  # after `harness`; {name} fields are filled from the `files` fixture
    keywords: tuple[str, ...]  # each must appear (case-insensitive) in the error line: the problem and the fix
    patch: str | None = None  # a simulation applied with monkeypatch (see PATCHES)
    env: dict = field(default_factory=dict)


def _gsm8k(data: str, *extra: str, model: str = "fake:echo") -> tuple[str, ...]:
    return ("run", "--model", model, "--tasks", "gsm8k", "--data-file", f"gsm8k={{{data}}}", "--output-dir", "{out}", *FAST, *extra)


def _with(base: tuple[str, ...], *extra: str) -> tuple[str, ...]:
    """`base` with the flags in `extra` (flag, value pairs) replacing its own, so each flag shows once."""
    over = set(extra[::2])
    kept = [x for flag, value in zip(base[1::2], base[2::2]) if flag not in over for x in (flag, value)]
    return (base[0], *kept, *extra)


GOOD = _gsm8k("good")
CASES = [
    # models
    Case("unknown model id (offline)", ("run", "--model", "nobody-xyz/no-such-model", "--output-dir", "{out}", *FAST),
         ("not in the local hugging face cache", "HF_HUB_OFFLINE=1", "download it once")),
    Case("gated repo without a token (simulated)", ("run", "--model", "meta-llama/Llama-3.1-8B", "--output-dir", "{out}", *FAST),
         ("gated", "set HF_TOKEN"), patch="gated"),
    Case("pickle-only checkpoint", ("run", "--model", "{pickle_model}", "--output-dir", "{out}", *FAST),
         ("only pickle", "--allow-pickle")),
    Case("remote-code model", ("run", "--model", "{remote_model}", "--output-dir", "{out}", *FAST),
         ("auto_map", "--trust-remote-code")),
    Case("model path not found", ("run", "--model", "/nonexistent/model", "--output-dir", "{out}", *FAST),
         ("model path not found", "check the path")),
    Case("unknown random model", ("run", "--model", "random:nosuch", "--output-dir", "{out}", *FAST),
         ("unknown random model", "harness list models")),
    Case("--device-map for a random model", ("run", "--model", "random:tiny", "--device-map", "auto", "--output-dir", "{out}", *FAST),
         ("--device-map 'auto' does not apply to random:tiny", "use --device")),
    Case("unknown backend", _with(GOOD, "--backend", "nosuch"), ("unknown backend", "choose one of")),
    # tasks and data
    Case("unknown task", ("run", "--model", "fake:echo", "--tasks", "nosuch", "--output-dir", "{out}", *FAST),
         ("unknown task 'nosuch'", "harness list tasks")),
    Case("dataset offline, not cached", ("run", "--model", "fake:echo", "--tasks", "gsm8k", "--output-dir", "{out}", *FAST),
         ("not in the local cache", "--data-file gsm8k=")),
    Case("data file missing", _gsm8k("missing"), ("data file not found", "check the path")),
    Case("data file not JSONL", _gsm8k("csv"), ("not valid json", "one json object per line")),
    Case("data file: a bad line", _gsm8k("badline"), (":2 is not valid json", "json lines")),
    Case("data file: a line not an object", _gsm8k("array"), ("not an object", "must be a json object")),
    Case("data file: missing fields", _gsm8k("nofields"), ("missing field(s) question, answer", "each row needs")),
    Case("data file empty", _gsm8k("empty"), ("no rows", "non-empty")),
    Case("data file not UTF-8", _gsm8k("latin1"), ("not utf-8", "re-encode")),
    Case("data file is a directory", _gsm8k("datadir"), ("is a directory", "point --data-file at a .jsonl")),
    Case("--data-file without '='", ("run", "--model", "fake:echo", "--tasks", "gsm8k", "--data-file", "{good}", "--output-dir", "{out}"),
         ("--data-file expects key=value", "e.g. --data-file gsm8k=")),
    Case("--data-file for a task not in --tasks", _with(GOOD, "--tasks", "synthetic"), ("--data-file names task(s) not in --tasks", "add those tasks")),
    Case("bad --task-option (no dot)", _with(GOOD, "--task-option", "steps=4"), ("task.key=value", "e.g. --task-option")),
    Case("bad --task-option (unknown option)", ("run", "--model", "fake:echo", "--tasks", "synthetic", "--output-dir", "{out}", *FAST,
                                                "--task-option", "synthetic.nosuch=4"), ("unknown option(s) nosuch", "accepts")),
    Case("bad --task-option (bad value)", ("run", "--model", "fake:echo", "--tasks", "synthetic", "--output-dir", "{out}", *FAST,
                                           "--task-option", "synthetic.steps=abc"), ("bad value 'abc'", "harness list tasks")),
    Case("--task-option for a task not in --tasks", _with(GOOD, "--task-option", "synthetic.steps=3"),
         ("--task-option names task(s) not in --tasks", "add those tasks")),
    # device and dtype
    Case("unknown device", _with(GOOD, "--device", "tpu"), ("unknown device 'tpu'", "use auto, cpu")),
    Case("unavailable device", _with(GOOD, "--device", "cuda"), ("not available on this machine", "--device cpu")),
    Case("unknown dtype", _with(GOOD, "--dtype", "float8"), ("invalid value for dtype", "fix --dtype")),
    Case("bfloat16 on a GPU without it (simulated)", _with(GOOD, "--device", "cuda", "--dtype", "bfloat16"),
         ("bfloat16 is not supported on tesla t4", "--dtype float16"), patch="cuda_no_bf16"),
    # numbers
    Case("--limit 0", _with(GOOD, "--limit", "0"), ("invalid value for limit", "greater than 0", "fix --limit")),
    Case("--limit -1", _with(GOOD, "--limit", "-1"), ("invalid value for limit", "fix --limit")),
    Case("--limit abc", _with(GOOD, "--limit", "abc"), ("invalid int value: 'abc'", "--help")),
    Case("--batch-size 0", _with(GOOD, "--batch-size", "0"), ("batch_size", "positive integer", "fix --batch-size")),
    Case("--batch-size -3", _with(GOOD, "--batch-size", "-3"), ("batch_size", "fix --batch-size")),
    Case("--batch-size abc", _with(GOOD, "--batch-size", "abc"), ("--batch-size must be a positive integer", "e.g. --batch-size 8")),
    Case("--num-samples 0", _with(GOOD, "--num-samples", "0"), ("num_samples", "fix --num-samples")),
    Case("--max-new-tokens 0", _with(GOOD, "--max-new-tokens", "0"), ("max_new_tokens", "fix --max-new-tokens")),
    Case("--max-new-tokens -5", _with(GOOD, "--max-new-tokens", "-5"), ("max_new_tokens", "fix --max-new-tokens")),
    Case("--temperature -1", _with(GOOD, "--temperature", "-1"), ("temperature", "greater than or equal to 0", "fix --temperature")),
    Case("--temperature 9", _with(GOOD, "--temperature", "9"), ("temperature", "less than or equal to 5", "fix --temperature")),
    Case("--top-p 0", _with(GOOD, "--top-p", "0"), ("top_p", "greater than 0", "fix --top-p")),
    Case("--top-p 1.5", _with(GOOD, "--top-p", "1.5"), ("top_p", "less than or equal to 1", "fix --top-p")),
    Case("--top-k -1", _with(GOOD, "--top-k", "-1"), ("top_k", "fix --top-k")),
    Case("empty --stop string", _with(GOOD, "--stop", ""), ("stop string cannot be empty", "fix --stop")),
    Case("--think-budgets not integers", _with(GOOD, "--think-budgets", "a,b"), ("comma-separated integers", "e.g. --think-budgets")),
    Case("an API key given where its variable's name belongs", _with(GOOD, "--api-key-env", "sk-0123456789abcdef"),
         ("name of an environment variable", "fix --api-key-env")),
    Case("an abbreviated flag (--api-key)", _with(GOOD, "--api-key", "sk-0123456789abcdef"), ("unrecognized arguments: --api-key", "--help")),
    Case("unknown --instance", _with(GOOD, "--instance", "nosuch"), ("unknown instance 'nosuch'", "--price-per-hour")),
    Case("--price-per-hour inf", _with(GOOD, "--price-per-hour", "inf"), ("--price-per-hour", "pass a price")),
    # output
    # a path under a regular file: chmod would not stop root, who runs these tests in CI
    Case("output directory not writable", _with(GOOD, "--output-dir", "{afile}/sub"), ("not writable", "not a directory", "pass --output-dir")),
    Case("output directory under /proc", _with(GOOD, "--output-dir", "/proc/harness-x"), ("not writable", "pass --output-dir")),
    # context window (random:tiny has 4096 positions)
    Case("max-new-tokens beyond the context window", _with(_gsm8k("good", model="random:tiny"), "--max-new-tokens", "5000"),
         ("exceeds the model's context window of 4096", "lower --max-new-tokens")),
    Case("a prompt longer than the context window", _gsm8k("huge", model="random:tiny"),
         ("prompt of", "exceeds the model's context window", "drop that item")),
    # cards, configs, protocols
    Case("invalid card YAML", _with(GOOD, "--card", "broken"), ("broken.yaml", "invalid yaml", "_template.yaml"), env={"HARNESS_CARDS_DIR": "{cards}"}),
    Case("unknown --card", _with(GOOD, "--card", "nosuchcard"), ("no model card named 'nosuchcard'", "harness cards")),
    Case("unknown config key", _with(GOOD, "--config", "{cfg_typo}"), ("unknown config key 'modle'", "check the spelling")),
    Case("malformed --config YAML", _with(GOOD, "--config", "{cfg_bad}"), ("not valid yaml (line 2, column 1)", "fix the file's syntax")),
    Case("--config file missing", _with(GOOD, "--config", "{missing}"), ("config file not found", "check the path")),
    Case("--config is a directory", _with(GOOD, "--config", "{datadir}"), ("cannot read config file", "is a directory", "readable yaml")),
    Case("--config not a mapping", _with(GOOD, "--config", "{cfg_list}"), ("must hold a mapping", "key: value")),
    Case("unknown --protocol", _with(GOOD, "--protocol", "nosuch"), ("unknown prompt protocol 'nosuch'", "choose one of")),
    # hostile input (issue 13): each a one-line error within seconds, nothing left behind
    Case("YAML alias bomb in --config", _with(GOOD, "--config", "{cfg_bomb}"), ("yaml aliases", "are not accepted", "write the repeated value out")),
    Case("deeply nested --config YAML", _with(GOOD, "--config", "{cfg_deep}"), ("nested more than", "flatten the file")),
    Case("YAML alias bomb in a model card", _with(GOOD, "--card", "bomb"), ("bomb.yaml", "yaml aliases", "write the repeated value out"),
         env={"HARNESS_CARDS_DIR": "{cards}"}),
    Case("data file is a FIFO", _gsm8k("fifo"), ("not a regular file", "save the data to a regular .jsonl file")),
    Case("data file: NaN in a row", _gsm8k("nan"), (":1: nan is not a json number", "finite json numbers")),
    Case("data file: JSON nested 100,000 deep", _gsm8k("deep"), (":1: json nested too deeply", "flatten that row")),
    Case("data file: one line of 1.5 million characters", _gsm8k("hugeline"), (":2: a line of 1,500,0", "shorten or drop that row")),
    Case("a prompt far over the context window (before tokenizing)", _gsm8k("longprompt", model="random:tiny"),
         ("longprompt.jsonl:1: a prompt of", "context window of 4096", "shorten or drop that row")),
    Case("--base-url with a bad port", _with(GOOD, "--base-url", "http://127.0.0.1:99999/v1"), ("invalid value for base_url", "port", "fix --base-url")),
    Case("--base-url with an unclosed IPv6 literal", _with(GOOD, "--base-url", "http://[::1/v1"), ("invalid value for base_url", "ipv6", "fix --base-url")),
    Case("a 300-character --output-dir name", _with(GOOD, "--output-dir", "{out}/" + "x" * 300), ("file name too long", "--output-dir")),
    Case("a control character in a value", _with(GOOD, "--instance", "a\rb\x1b[2Jc"), ("unknown instance", "\\r", "--price-per-hour")),
    # resume
    Case("--resume of a folder that does not exist", ("run", "--resume", "{missing}"), ("run folder not found", "written by `harness run`")),
    Case("--resume of a folder that is not a run", ("run", "--resume", "{datadir}"), ("not a run folder", "written by `harness run`")),
    Case("--resume with different settings", ("run", "--resume", "{done_run}", "--max-new-tokens", "8"),
         ("settings that differ", "max_new_tokens", "resume with the original settings")),
]


# ---- fixtures: the files the cases point at ---------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("bad-input")
    data = d / "data"
    data.mkdir()
    write_jsonl(data / "good.jsonl", gsm8k_rows(4))
    (data / "csv.jsonl").write_text("question,answer\n1+1,2\n")
    (data / "badline.jsonl").write_text('{"question": "1+1?", "answer": "#### 2"}\n{"question": "oops"\n')
    (data / "array.jsonl").write_text("[1, 2]\n")
    write_jsonl(data / "nofields.jsonl", [{"q": "1+1?", "a": "2"}])
    (data / "empty.jsonl").write_text("")
    (data / "latin1.jsonl").write_bytes('{"question": "café?", "answer": "#### 2"}\n'.encode("latin-1"))
    write_jsonl(data / "huge.jsonl", [{"question": "apple " * 5000, "answer": "#### 1"}])
    (d / "afile").write_text("a regular file, so nothing can be created under it\n")
    (d / "cfg_typo.yaml").write_text("modle: fake:echo\n")
    (d / "cfg_bad.yaml").write_text("model: [unclosed\n")
    (d / "cfg_list.yaml").write_text("- model\n- fake:echo\n")
    cards = d / "cards"
    cards.mkdir()
    (cards / "broken.yaml").write_text("name: broken\nhub_id: [not closed\n")
    levels = ["&a [x,x,x,x,x,x,x,x,x]"] + [f"&{c} [{','.join(['*' + b] * 9)}]" for b, c in zip("abcdefgh", "bcdefghi")]
    (d / "cfg_bomb.yaml").write_text(f"tasks: [synthetic]\ntask_options:\n  synthetic:\n    steps: [{', '.join(levels)}]\n")
    (cards / "bomb.yaml").write_text(f"name: bomb\nhub_id: x/y\nclaims: [{', '.join(levels)}]\n")
    (d / "cfg_deep.yaml").write_text("model: " + "[" * 200 + "]" * 200 + "\n")
    os.mkfifo(data / "fifo.jsonl")
    (data / "nan.jsonl").write_text('{"question": "1+1?", "answer": "#### 2", "meta": NaN}\n')
    (data / "deep.jsonl").write_text('{"question": "1+1?", "answer": "#### 2", "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    (data / "hugeline.jsonl").write_text(json.dumps(gsm8k_rows(1)[0]) + "\n" + json.dumps({"question": "a" * 1_500_000, "answer": "#### 1"}) + "\n")
    write_jsonl(data / "longprompt.jsonl", [{"question": "word " * 40_000, "answer": "#### 1"}])
    models = _model_folders(d)
    done = _finished_run(d, data / "good.jsonl")
    out = {"good": data / "good.jsonl", "datadir": data, "missing": d / "does-not-exist", "afile": d / "afile",
           "cards": cards, "done_run": done, **models,
           **{k: data / f"{k}.jsonl" for k in ("csv", "badline", "array", "nofields", "empty", "latin1", "huge", "fifo", "nan", "deep",
                                                 "hugeline", "longprompt")},
           **{k: d / f"{k}.yaml" for k in ("cfg_typo", "cfg_bad", "cfg_list", "cfg_bomb", "cfg_deep")}}
    return {k: str(v) for k, v in out.items()}


def _model_folders(d: Path) -> dict[str, Path]:
    """A pickle-only checkpoint (torch.save'd pytorch_model.bin) and a model with remote code (auto_map)."""
    import shutil

    import torch
    from safetensors.torch import load_file

    safe = tiny_model_folder(d / "tiny-safe")
    pickle_model = d / "tiny-pickle"
    shutil.copytree(safe, pickle_model)
    for f in pickle_model.glob("*.safetensors"):
        torch.save(load_file(f), pickle_model / "pytorch_model.bin")
        f.unlink()
    remote = d / "tiny-remote"
    shutil.copytree(safe, remote)
    cfg = json.loads((remote / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    (remote / "config.json").write_text(json.dumps(cfg))
    (remote / "modeling_evil.py").write_text("raise SystemExit('remote code ran')\n")
    return {"pickle_model": pickle_model, "remote_model": remote}


def _finished_run(d: Path, data: Path) -> Path:
    out = d / "done"
    code = main(["run", "--model", "fake:echo", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}", "--output-dir", str(out), *FAST])
    assert code == 0
    (run_dir,) = out.iterdir()
    return run_dir


# ---- simulations -----------------------------------------------------------------------------------
def _gated(monkeypatch):
    import httpx2
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError

    def refuse(repo_id, **_):
        response = httpx2.Response(401, request=httpx2.Request("GET", f"https://huggingface.co/api/models/{repo_id}"))
        raise GatedRepoError(f"Access to model {repo_id} is restricted.", response=response)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)


def _cuda_no_bf16(monkeypatch):
    """A CUDA machine whose GPU (a T4) lacks bfloat16."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Tesla T4")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)


PATCHES = {"gated": _gated, "cuda_no_bf16": _cuda_no_bf16}


# ---- the checks --------------------------------------------------------------------------------------


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def assert_one_error(code, out: str, err: str, keywords) -> str:
    assert code not in (0, None), f"exit code {code}; stderr: {err}"
    line = last_line(err)
    assert line.startswith("error: "), f"last stderr line is not an error line: {line!r}"
    assert " — " in line, f"no fix after the problem: {line!r}"
    for word in keywords:
        assert word.lower() in line.lower(), f"{word!r} missing from {line!r}"
    assert "Traceback" not in out + err
    assert "run folder:" not in out
    return line


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def fill(args, files, out: Path) -> list[str]:
    return [a.format(out=out, **files) for a in args]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, files, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    for k, v in case.env.items():
        monkeypatch.setenv(k, v.format(**files))
    if case.patch:
        PATCHES[case.patch](monkeypatch)
    before = tree_digest(Path(files["done_run"]))
    code, stdout, stderr = run_cli(fill(case.args, files, out), capsys)
    assert_one_error(code, stdout, stderr, case.keywords)
    assert not out.exists() or not any(out.iterdir()), f"a run folder was left behind: {list(out.iterdir())}"
    assert tree_digest(Path(files["done_run"])) == before, "a finished run folder changed"
    assert Path(files["afile"]).is_file()


def test_the_table_holds_enough_distinct_cases():
    assert len(CASES) >= 28
    assert len({c.id for c in CASES}) == len(CASES)


def test_allow_pickle_loads_the_pickle_checkpoint(files, tmp_path, capsys):
    """The control for the pickle case: the same folder runs once the user opts in."""
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(["run", "--model", files["pickle_model"], "--allow-pickle", "--tasks", "gsm8k",
                                    "--data-file", f"gsm8k={files['good']}", "--output-dir", str(out), *FAST], capsys)
    assert code == 0, stderr
    (run_dir,) = out.iterdir()
    assert json.loads((run_dir / results.RUN).read_text())["status"] == "complete"


# ---- disk full: one error line, whole rows only, and the run resumes ------------------------------
class _FullDisk:
    """A raw file whose writes start failing with ENOSPC after `ok` writes; the failing write
    lands half of its bytes first, as a real full disk can."""

    def __init__(self, f, ok: int):
        self._f, self.ok = f, ok

    def write(self, data) -> int:
        if self.ok <= 0:
            self._f.write(bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.ok -= 1
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)


def _start_run(files, out, capsys, monkeypatch, ok_writes: int):
    real_open = open

    def full_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        return _FullDisk(f, ok_writes) if Path(path).name == results.SAMPLES else f

    monkeypatch.setattr(results.store, "open", full_open, raising=False)
    argv = ["run", "--model", "fake:echo", "--tasks", "gsm8k", "--data-file", f"gsm8k={files['good']}", "--output-dir", str(out),
            "--limit", "4", "--batch-size", "1", "--max-new-tokens", "8"]
    code, stdout, stderr = run_cli(argv, capsys)
    monkeypatch.undo()
    return code, stdout, stderr


def _resume_completes(run_dir: Path, capsys) -> list[dict]:
    code, _, stderr = run_cli(["run", "--resume", str(run_dir)], capsys)
    assert code == 0, stderr
    assert json.loads((run_dir / results.RUN).read_text())["status"] == "complete"
    rows = results.read_samples(run_dir / results.SAMPLES)
    assert sorted(r["id"] for r in rows) == ["0", "1", "2", "3"]
    return rows


def test_disk_full_while_appending_samples(files, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    code, stdout, stderr = _start_run(files, out, capsys, monkeypatch, ok_writes=2)
    line = assert_one_error(code, stdout, stderr, ("could not append", "no space left on device", "--resume"))
    assert len([x for x in stderr.splitlines() if x.strip()]) == 1, stderr
    (run_dir,) = out.iterdir()  # two samples were measured: the folder stays
    text = (run_dir / results.SAMPLES).read_text(encoding="utf-8")
    assert text.endswith("\n") and len([json.loads(x) for x in text.splitlines()]) == 2, "torn or lost rows"
    run = json.loads((run_dir / results.RUN).read_text())
    assert run["status"] == "failed", line
    _resume_completes(run_dir, capsys)


def test_disk_full_writing_run_json(files, tmp_path, capsys, monkeypatch):
    """Every sample landed, but run.json could not be written: no run.json, samples intact, resumable."""
    import tempfile

    out = tmp_path / "out"
    real = tempfile.mkstemp

    def mkstemp(*args, prefix=None, **kwargs):
        if prefix and prefix.startswith(f".{results.RUN}."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, prefix=prefix, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    argv = ["run", "--model", "fake:echo", "--tasks", "gsm8k", "--data-file", f"gsm8k={files['good']}", "--output-dir", str(out),
            "--limit", "4", "--max-new-tokens", "8"]
    code, stdout, stderr = run_cli(argv, capsys)
    monkeypatch.undo()
    assert_one_error(code, stdout, stderr, ("could not write", "run.json", "no space left on device", "--resume"))
    (run_dir,) = out.iterdir()
    assert not (run_dir / results.RUN).exists()
    assert not list(run_dir.glob(".*.tmp")), "a temp file was left behind"
    assert len(results.read_samples(run_dir / results.SAMPLES)) == 4
    _resume_completes(run_dir, capsys)


# ---- fuzzing: any value for any numeric or named flag ends in success or one error line -------------
FLAGS = ["--limit", "--batch-size", "--num-samples", "--max-new-tokens", "--temperature", "--top-p", "--top-k", "--seed",
         "--warmup", "--device", "--dtype", "--protocol", "--task-option", "--stop", "--price-per-hour", "--instance"]
VALUES = st.one_of(st.integers(-10**12, 10**12).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12),
                   st.sampled_from(["0", "-1", "1e309", "nan", "auto", "cuda:99", "cpu", "=", ".", "x.y=z", "bfloat16", "laptop"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flag=st.sampled_from(FLAGS), value=VALUES)
def test_fuzz_flag_values(flag, value, files, tmp_path_factory, capsys):
    out = tmp_path_factory.mktemp("fuzz")
    argv = ["run", "--model", "fake:echo", "--tasks", "gsm8k", "--data-file", f"gsm8k={files['good']}", "--output-dir", str(out),
            "--limit", "2", "--max-new-tokens", "4", "--warmup", "0", flag, value]
    code, stdout, stderr = run_cli(argv, capsys)
    assert "Traceback" not in stdout + stderr
    assert "unexpected" not in stderr, stderr  # an unforeseen exception reached the catch-all
    if code == 0:  # one run, or one per --think-budgets value
        runs = list(out.iterdir())
        assert runs and all(json.loads((r / results.RUN).read_text())["status"] == "complete" for r in runs)
    else:
        assert last_line(stderr).startswith("error: "), stderr
        assert not any(out.iterdir())


# ---- a fresh process: exit code and exactly what the user sees ----------------------------------------
def _harness(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "HARNESS_NO_PLUGINS": "1", **(env or {})}
    full_env.pop("HARNESS_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120)


def test_fresh_process_offline_without_a_cache_prints_one_line(tmp_path):
    empty = tmp_path / "hf-home"
    empty.mkdir()
    out = tmp_path / "out"
    p = _harness("run", "--model", "Qwen/Qwen2.5-0.5B-Instruct", "--output-dir", str(out), *FAST,
                 env={"HF_HOME": str(empty), "HF_HUB_CACHE": str(empty / "hub")})
    assert p.returncode == 2
    assert p.stdout == ""
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("error: model 'Qwen/Qwen2.5-0.5B-Instruct' is not in the local Hugging Face cache")
    assert not out.exists()


def test_fresh_process_usage_error_ends_in_an_error_line(tmp_path):
    p = _harness("run", "--limit", "abc", "--output-dir", str(tmp_path / "out"))
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert last_line(p.stderr) == "error: argument --limit: invalid int value: 'abc' — see `harness run --help`"
    assert not (tmp_path / "out").exists()


def test_fresh_process_bad_data_file(tmp_path, files):
    p = _harness("run", "--model", "fake:echo", "--tasks", "gsm8k", "--data-file", f"gsm8k={files['latin1']}",
                 "--output-dir", str(tmp_path / "out"))
    assert p.returncode == 2
    line = p.stderr.strip()
    assert line.startswith(f"error: {files['latin1']} is not UTF-8 (byte ") and line.endswith(") — re-encode the file as UTF-8"), line
    assert not (tmp_path / "out").exists()


def test_a_nested_value_in_an_error_line_is_shown_short():
    """shown() of a non-string value (a dict or list from a YAML file) on every supported Python (reprlib.Repr
    took keyword arguments only from 3.12: on 3.10/3.11 the error line itself crashed)."""
    from harness.errors import shown

    text = shown({"key": list(range(100)), "nested": {"a": {"b": {"c": 1}}}})
    assert text.startswith("{") and len(text) <= 81 and "99" not in text
