"""run.json's schema: written and read through the pydantic models, documented from them, versioned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_cli
from test_report import make_run, make_samples

from harness import SCHEMA_VERSION
from harness.errors import ConfigError
from harness.results import load_run, schema, schema_doc

ROOT = Path(__file__).resolve().parents[1]


def test_committed_docs_are_generated_from_the_models():
    readme = (ROOT / "results" / "README.md").read_text(encoding="utf-8")
    assert schema_doc.render_readme(readme) == readme, "results/README.md is stale: run `python -m harness.results`"
    committed = json.loads((ROOT / "results" / "run.schema.json").read_text(encoding="utf-8"))
    assert committed == schema_doc.json_schema(), "results/run.schema.json is stale: run `python -m harness.results`"


def test_every_model_forbids_unknown_fields_and_is_documented():
    models = [m for m in vars(schema).values() if isinstance(m, type) and issubclass(m, schema._Model) and m is not schema._Model]
    assert len(models) > 10
    text = schema_doc.markdown()
    for m in models:
        assert m.model_config.get("extra") == "forbid", m.__name__
        assert f"### {m.__name__}" in text, m.__name__


def test_a_real_run_is_written_through_the_schema(tmp_path):
    out = tmp_path / "out"
    from harness.cli import main

    assert main(["run", "--model", "fake:echo", "--limit", "3", "--output-dir", str(out), "--quiet"]) == 0
    (run_dir,) = out.iterdir()
    raw = json.loads((run_dir / "run.json").read_text())
    run = load_run(run_dir)
    assert raw["schema_version"] == SCHEMA_VERSION
    assert schema.dump(run) == raw  # the file is exactly the model's dump: nothing outside the schema
    assert run.tasks["synthetic"].metrics["accuracy"].n == 3


def test_writing_an_undeclared_field_fails(tmp_path, monkeypatch, capsys):
    """A field added to the summary but not to the schema is a bug caught before anything is written."""
    from harness.orchestration import summary

    real = summary._model
    monkeypatch.setattr(summary, "_model", lambda info: {**real(info), "undeclared": 1})
    code, _, err = run_cli(["run", "--model", "fake:echo", "--limit", "2", "--output-dir", str(tmp_path), "--quiet"], capsys)
    assert code != 0 and "model.undeclared: unknown key" in err, err
    assert not list(tmp_path.rglob("run.json"))


def _write(tmp_path, mutate) -> Path:
    d = make_run(tmp_path, "run", {"gsm8k": make_samples("gsm8k", [True, False, True])})
    doc = json.loads((d / "run.json").read_text())
    mutate(doc)
    (d / "run.json").write_text(json.dumps(doc))
    return d


def test_schema_1_0_files_still_read(tmp_path):
    d = _write(tmp_path, lambda doc: doc.update(schema_version="1.0"))
    assert load_run(d).schema_version == "1.0"


@pytest.mark.parametrize("version, fix", [("2.0", "matching harness"), ("0.9", "matching harness"), ("1.99", "upgrade"), ("x", "matching")])
def test_other_versions_are_refused_with_one_line(tmp_path, version, fix):
    d = _write(tmp_path, lambda doc: doc.update(schema_version=version))
    with pytest.raises(ConfigError, match=fix) as e:
        load_run(d)
    assert "\n" not in str(e.value)


def test_a_misspelt_field_names_its_path_and_the_fix(tmp_path):
    def typo(doc):
        acc = doc["tasks"]["gsm8k"]["metrics"]["accuracy"]
        acc["vaule"] = acc.pop("value")

    d = _write(tmp_path, typo)
    with pytest.raises(ConfigError) as e:
        load_run(d)
    msg = str(e.value)
    assert "tasks.gsm8k.metrics.accuracy.vaule: unknown key; did you mean 'value'?" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("argv", [["report", "{d}"], ["compare", "{d}", "--output-dir", "{o}"], ["export", "{d}", "--output", "{o}/x.json"],
                                  ["claims", "{d}", "--output-dir", "{o}"]])
def test_every_reader_validates(tmp_path, capsys, argv):
    """Every command that reads run.json goes through the loader: a bad file is one error line, exit 2."""
    d = _write(tmp_path, lambda doc: doc["perf"].update(tokens_per_sec=1.0))
    code, _, err = run_cli([a.format(d=d, o=tmp_path / "o") for a in argv], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error:") and "perf.tokens_per_sec: unknown key" in err, err


def test_status_and_verdict_cover_what_other_stages_write():
    assert set(schema.Status.__args__) >= {"running", "complete", "partial", "failed", "interrupted"}
    assert "not_comparable" in schema.Verdict.__args__


def test_resume_reads_a_config_with_a_retired_key(tmp_path, capsys):
    """config.json of an older version may hold keys that are gone (truncate_prompts): --resume still works."""
    out = tmp_path / "out"
    assert run_cli(["run", "--model", "fake:echo", "--limit", "2", "--output-dir", str(out), "--quiet"], capsys)[0] == 0
    (run_dir,) = out.iterdir()
    cfg = json.loads((run_dir / "config.json").read_text())
    cfg.pop("_sha256")  # the versions that stored truncate_prompts wrote no digest of the settings
    (run_dir / "config.json").write_text(json.dumps({**cfg, "truncate_prompts": False}))
    code, _, err = run_cli(["run", "--resume", str(run_dir), "--quiet"], capsys)
    assert code == 0, err
