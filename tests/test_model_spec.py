"""The model spec is parsed in one place (harness/core/spec.py), and engine options arrive by one channel:
a key given both as a flag and as --backend-option is refused before anything loads."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.backends import engine_options
from harness.core.spec import parse
from harness.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("text, kind, name", [
    ("random:tiny", "random", "tiny"),
    ("openai:deepseek-reasoner", "openai", "deepseek-reasoner"),
    ("openai:deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "openai", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"),
    ("fake:echo", "fake", "echo"),
    ("./m.gguf", "gguf", "./m.gguf"),
    ("models/Qwen.Q4_K_M.GGUF", "gguf", "models/Qwen.Q4_K_M.GGUF"),
    ("/abs/folder", "folder", "/abs/folder"),
    ("~/folder", "folder", "~/folder"),
    ("a/b/c", "folder", "a/b/c"),
    ("Qwen/Qwen2.5-0.5B-Instruct", "hub", "Qwen/Qwen2.5-0.5B-Instruct"),
])
def test_every_kind_of_spec(text, kind, name):
    spec = parse(text)
    assert (spec.kind, spec.name, str(spec)) == (kind, name, text)
    assert spec.is_served == (kind in ("openai", "fake"))
    assert spec.is_local == (kind in ("gguf", "folder"))


def test_an_existing_relative_folder_is_local(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse("mymodel").kind == "hub"
    (tmp_path / "mymodel").mkdir()
    assert parse("mymodel").kind == "folder"


def test_no_other_module_reads_a_spec_prefix():
    """The class of bug: a prefix tested by hand in one place and not in its sibling."""
    pattern = re.compile(r"""(startswith|removeprefix)\(\s*\(?\s*["'](random|openai|fake):|endswith\(\s*["']\.gguf["']""")
    offenders = [f"{f.relative_to(ROOT)}:{i}" for f in (ROOT / "harness").rglob("*.py") if f.name != "spec.py"
                 for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert not offenders, offenders


def _cfg(backend_options=None, **flags):
    base = {k: None for k in ("revision", "tokenizer", "device_map", "max_memory", "base_url", "api_key_env", "max_concurrency",
                              "tensor_parallel_size", "n_ctx", "n_threads")}
    base.update(compile="auto", trust_remote_code=False, allow_pickle=False, seed=0)
    base.update(flags)
    return SimpleNamespace(**base, backend_options=backend_options or {}, model_fields_set=set(flags))


def test_one_channel_merges_flags_and_backend_options():
    assert engine_options(_cfg({"allow_pickle": "true"})) == {"allow_pickle": "true", "seed": 0}
    assert engine_options(_cfg(revision="main")) == {"revision": "main", "seed": 0}


@pytest.mark.parametrize("flag, value", [("revision", "main"), ("n_threads", 2), ("base_url", "http://127.0.0.1:1/v1"),
                                         ("trust_remote_code", True), ("seed", 3)])
def test_a_key_given_both_ways_is_one_clear_error(flag, value):
    with pytest.raises(ConfigError, match=f"{flag} given twice"):
        engine_options(_cfg({flag: str(value)}, **{flag: value}))


def test_device_is_not_an_engine_option():
    with pytest.raises(ConfigError, match="not an engine option"):
        engine_options(_cfg({"device": "cpu"}))


def test_cli_refuses_an_option_given_twice_in_one_line(tmp_path, capsys):
    from harness.cli import main

    code = main(["run", "--model", "random:tiny", "--limit", "1", "--revision", "main", "--backend-option", "revision=main",
                 "--output-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code != 0 and "given twice" in err and len(err.strip().splitlines()) == 1, err
    assert not any(tmp_path.iterdir())  # refused before a run folder is made
