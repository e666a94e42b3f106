"""Security defaults (issue 7): secrets stay in the environment, YAML is data, run folders stay
inside --output-dir whatever the model id, and neither remote code nor pickles run unless asked.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from helpers import run_cli, tiny_model_folder
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import results
from harness.backends import models
from harness.cli import build_parser
from harness.config import RunConfig, make_config
from harness.errors import ConfigError, ModelLoadError

# ---- (a) API keys come from the environment only, and never reach an output -------------------------
SECRET_VARS = ("OPENAI_API_KEY", "DEEPSEEK_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


def test_planted_keys_appear_in_no_output(tmp_path, capsys, monkeypatch):
    planted = {name: f"sk-PLANTED-{name}-{uuid.uuid4().hex}" for name in SECRET_VARS}
    for name, value in planted.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(["run", "--model", "random:tiny", "--limit", "2", "--max-new-tokens", "4",
                                    "--api-key-env", "DEEPSEEK_API_KEY", "--output-dir", str(out)], capsys)
    assert code == 0, stderr
    (run_dir,) = out.iterdir()
    code, rep_out, rep_err = run_cli(["report", str(run_dir)], capsys)
    assert code == 0, rep_err
    written = sorted(p for p in run_dir.rglob("*") if p.is_file())
    names = {p.name for p in written}
    assert {"run.json", "config.json", "samples.jsonl", "report.md", "report.html"} <= names, names
    for value in planted.values():
        needle = value.encode()
        assert needle not in (stdout + stderr + rep_out + rep_err).encode()
        for p in written:
            assert needle not in p.read_bytes(), f"{value} leaked into {p.name}"
        assert value.split("-")[-1].encode() not in b"".join(p.read_bytes() for p in written)  # nor a fragment of it


def test_keys_cannot_be_given_by_flag_or_config(tmp_path, capsys):
    """The only way to hand over a key is an environment variable named by --api-key-env."""
    with pytest.raises(ConfigError, match="unknown config key 'api_key'"):
        make_config(api_key="sk-in-a-config-file")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("api_key: sk-in-a-config-file\n")
    code, _, err = run_cli(["run", "--config", str(cfg), "--output-dir", str(tmp_path / "out")], capsys)
    assert code == 2 and "unknown config key 'api_key'" in err and "sk-in-a-config-file" not in err
    out = tmp_path / "out"
    fast = ["run", "--model", "fake:echo", "--limit", "1", "--max-new-tokens", "4", "--output-dir", str(out)]
    code, _, err = run_cli([*fast, "--api-key", "sk-on-the-command-line"], capsys)  # not an abbreviation of --api-key-env
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: unrecognized arguments: --api-key")
    code, _, err = run_cli([*fast, "--api-key-env", "sk-on-the-command-line"], capsys)  # a key where a name belongs
    assert code == 2 and "NAME of an environment variable" in err and "sk-on-the-command-line" not in err
    assert not out.exists()
    stored = make_config(api_key_env="MY_KEY").stored()
    assert stored["api_key_env"] == "MY_KEY"
    assert {k for k in stored if any(w in k for w in ("key", "secret", "password", "auth"))} == {"api_key_env"}


# ---- (b) YAML is loaded as data: python tags are refused, never executed ------------------------------
PAYLOADS = [
    '!!python/object/apply:os.system ["touch {marker}"]',
    '!!python/object/new:os.system ["touch {marker}"]',
    '!!python/object/apply:subprocess.call [["touch", "{marker}"]]',
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=["apply", "new", "subprocess"])
def test_config_yaml_with_python_tags_is_rejected(payload, tmp_path, capsys):
    marker = Path("/tmp") / f"pwned-{uuid.uuid4().hex}"
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(f"model: fake:echo\nseed: {payload.format(marker=marker)}\n")
    code, out, err = run_cli(["run", "--config", str(cfg), "--output-dir", str(tmp_path / "out")], capsys)
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: ") and "not valid YAML" in line, line
    assert not marker.exists(), "a YAML tag ran code"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("payload", PAYLOADS, ids=["apply", "new", "subprocess"])
def test_card_yaml_with_python_tags_is_rejected(payload, tmp_path, capsys, monkeypatch):
    marker = Path("/tmp") / f"pwned-{uuid.uuid4().hex}"
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "evil.yaml").write_text(f"name: evil\ndisplay_name: {payload.format(marker=marker)}\n")
    monkeypatch.setenv("HARNESS_CARDS_DIR", str(cards))
    code, _, err = run_cli(["run", "--model", "fake:echo", "--card", "evil", "--output-dir", str(tmp_path / "out")], capsys)
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: ") and "evil.yaml" in line and "invalid YAML" in line, line
    code, _, err = run_cli(["cards", "--dir", str(cards)], capsys)
    assert code == 2 and "card(s) failed validation" in err
    assert not marker.exists(), "a YAML tag ran code"
    assert not (tmp_path / "out").exists()


# ---- (c) hostile model ids cannot steer the run folder out of --output-dir ----------------------------
HOSTILE = ["../../etc", "a/../../b", "..", ".", "/", "/etc/passwd", "~/.ssh/x", "..\\..\\windows", "a/./../../../x",
           "模型/../../逃出", "\u202egnp.exe", "zero\u200bwidth", "e\u0301/..\u2215..", "...", "-rf", " ", "",
           "x" * 5000, "../" * 400, "ab/" * 300 + "c", "fake:../../etc", "random:..", "C:\\x\\..\\..", "\t\n\r"]


@pytest.mark.parametrize("model", HOSTILE, ids=lambda m: repr(m)[:40])
def test_slug_and_run_dir_stay_inside(model, tmp_path):
    s = results.slug(model)
    assert s and "/" not in s and "\\" not in s and ".." not in s and not s.startswith(("-", ".")), s
    assert len(s) <= 48
    name = results.run_dir_name(model, ["gsm8k", "../x"], results.new_run_id(), datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert "/" not in name and len(name.encode()) <= 255
    base = tmp_path / "out"
    path = results.create_run_dir(base, name)
    assert path.parent == base.resolve() and path.is_dir()


@settings(max_examples=150, deadline=None)
@given(model=st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=300))
def test_any_model_id_yields_a_folder_inside(model, tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    name = results.run_dir_name(model, ["synthetic"], results.new_run_id())
    path = results.create_run_dir(base, name)
    assert path.parent == base.resolve()
    assert os.path.commonpath([path, base.resolve()]) == str(base.resolve())


def test_create_run_dir_refuses_a_name_that_escapes(tmp_path):
    """The last line of defence, should a caller skip slug()."""
    for name in ("../escaped", "a/../../escaped", "/tmp/escaped-abs"):
        with pytest.raises(ConfigError, match="would escape"):
            results.create_run_dir(tmp_path / "out", name)
    assert not (tmp_path / "escaped").exists()


def test_a_hostile_fake_model_path_runs_inside_output_dir(tmp_path, capsys):
    """End to end: a model spec full of '..' and '/' still writes its run under --output-dir."""
    script = tmp_path / "deep" / "er" / "script.json"
    script.parent.mkdir(parents=True)
    script.write_text(json.dumps({"*": "The answer is \\boxed{4}."}))
    spec = f"fake:{tmp_path}/deep/er/../er/../../deep/er/script.json"
    out = tmp_path / "runs"
    before = set(tmp_path.rglob("*"))
    code, _, err = run_cli(["run", "--model", spec, "--limit", "2", "--max-new-tokens", "8", "--output-dir", str(out)], capsys)
    assert code == 0, err
    (run_dir,) = out.iterdir()
    assert run_dir.parent == out.resolve()
    created = {p for p in set(tmp_path.rglob("*")) - before}
    assert all(out in p.parents or p == out for p in created), created - {out}


# ---- (d) remote code and pickles are off by default ----------------------------------------------------
def test_defaults_are_safe():
    cfg = RunConfig()
    assert cfg.trust_remote_code is False and cfg.allow_pickle is False
    args = build_parser().parse_args(["run"])
    assert not args.trust_remote_code and not args.allow_pickle


class _Boom:
    """A pickle that runs a command when loaded."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def safe_model(tmp_path_factory) -> Path:
    return tiny_model_folder(tmp_path_factory.mktemp("models") / "tiny")


def _load(path: Path, **kw):
    return models.load(str(path), torch_dtype=None, device_map="cpu", **kw)


def test_remote_code_model_is_refused_and_its_code_never_runs(safe_model, tmp_path):
    marker = tmp_path / "remote-code-ran"
    folder = tmp_path / "remote"
    shutil.copytree(safe_model, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig", "AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    (folder / "config.json").write_text(json.dumps(cfg))
    for mod in ("configuration_evil.py", "modeling_evil.py"):
        (folder / mod).write_text(f"open({str(marker)!r}, 'w').close()\n")
    with pytest.raises(ModelLoadError, match="--trust-remote-code"):
        _load(folder)
    assert not marker.exists()


def test_pickle_only_checkpoint_is_refused(safe_model, tmp_path):
    marker = tmp_path / "pickle-ran"
    folder = tmp_path / "pickled"
    shutil.copytree(safe_model, folder)
    for f in folder.glob("*.safetensors"):
        f.unlink()
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Boom(marker)))
    with pytest.raises(ModelLoadError, match="--allow-pickle"):
        _load(folder)
    assert not marker.exists()


def test_safetensors_win_and_a_pickle_beside_them_is_never_opened(safe_model, tmp_path):
    marker = tmp_path / "pickle-ran"
    folder = tmp_path / "both"
    shutil.copytree(safe_model, folder)
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Boom(marker)))
    loaded = _load(folder)
    assert loaded.source == "local"
    assert not marker.exists()


@pytest.mark.parametrize("allow_pickle", [False, True])
def test_hub_downloads_fetch_pickles_only_when_allowed(allow_pickle, tmp_path, monkeypatch):
    import huggingface_hub

    seen = {}

    def fake_download(repo_id, *, allow_patterns, **kwargs):
        seen.update(patterns=allow_patterns, **kwargs)
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    models._hub_snapshot("org/model", None, allow_pickle)
    pickles = {"*.bin", "*.pt", "*.pth"} & set(seen["patterns"])
    assert "*.safetensors" in seen["patterns"]
    assert bool(pickles) is allow_pickle
