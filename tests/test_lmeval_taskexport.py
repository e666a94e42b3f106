"""`harness export --format lm-eval-task`: our tasks with our prompt protocol as lm-eval tasks, run
by lm-eval's own `--model hf` on a random-weight model; the prompt lm-eval builds must be the prompt
`harness run` sends for the same problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

from helpers import gsm8k_rows, run_cli, tiny_model_folder, write_jsonl  # noqa: E402

from harness.errors import ConfigError  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return tiny_model_folder(tmp_path_factory.mktemp("taskexport-model"))


@pytest.fixture(scope="module")
def gsm_file(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("taskexport-data") / "gsm.jsonl", gsm8k_rows(4))


def _our_prompts(model_dir: Path, gsm_file: Path, protocol: str) -> dict[str, str]:
    """The exact text `harness run` feeds the model per problem id (backend.render of the planned request)."""
    from harness.backends.hf import TransformersBackend
    from harness.config import make_config
    from harness.planning.plan import make_plan
    from harness.runtime.device import resolve

    plan = make_plan(make_config(model=str(model_dir), tasks=("gsm8k",), data_files={"gsm8k": str(gsm_file)}, protocol=protocol, limit=2))
    backend = TransformersBackend.from_options(str(model_dir), device=resolve("cpu", "float32"))
    return {item.id: backend.render(req) for req, _, item, _ in plan.work()}


@pytest.mark.parametrize("protocol", ["r1", "qwen"])  # r1: forced "<think>\n" answer start; qwen: a system prompt
def test_exported_task_runs_under_lm_eval_with_our_prompts(protocol, model_dir, gsm_file, tmp_path, capsys):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    code, out, err = run_cli(["export", "--format", "lm-eval-task", "gsm8k", "--output", str(tmp_path), "--data-file", f"gsm8k={gsm_file}",
                              "--protocol", protocol, "--limit", "2", "--max-new-tokens", "4"], capsys)
    assert code == 0, err
    assert out.strip() == str(tmp_path / "harness_gsm8k.yaml")
    rows = [json.loads(line) for line in (tmp_path / "harness_gsm8k.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["target"] for r in rows] == ["4", "7"]

    res = simple_evaluate(model="hf", model_args=f"pretrained={model_dir},dtype=float32", tasks=["harness_gsm8k"], device="cpu",
                          apply_chat_template=True, log_samples=True, task_manager=TaskManager(include_path=str(tmp_path), include_defaults=False))
    metrics = res["results"]["harness_gsm8k"]
    assert {"exact_match,strict-match", "exact_match,flexible-extract"} <= set(metrics)
    assert res["configs"]["harness_gsm8k"]["generation_kwargs"]["max_gen_toks"] == 4
    assert res["versions"]["harness_gsm8k"] == 1.0
    theirs = {str(s["doc"]["id"]): s["arguments"][0][0] for s in res["samples"]["harness_gsm8k"]}
    assert theirs == _our_prompts(model_dir, gsm_file, protocol)


def test_exported_task_yaml_carries_the_protocol(gsm_file, tmp_path):
    import yaml

    from harness.lmeval.taskexport import export_tasks

    (path,) = export_tasks(["gsm8k"], tmp_path, data_files={"gsm8k": str(gsm_file)}, protocol="fewshot", limit=1)
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert cfg["metadata"]["apply_chat_template"] is False and "description" not in cfg and "gen_prefix" not in cfg
    assert cfg["generation_kwargs"]["until"] == ["\nQuestion:", "\n问题："]  # the plain few-shot protocol's stop strings
    assert cfg["dataset_kwargs"]["data_files"]["test"] == str(tmp_path / "harness_gsm8k.jsonl")
    (row,) = [json.loads(line) for line in (tmp_path / "harness_gsm8k.jsonl").read_text(encoding="utf-8").splitlines()]
    assert row["prompt"].count("Question:") == 5  # four worked examples, then the problem


def test_task_export_errors_are_one_line(tmp_path, capsys, gsm_file):
    code, _, err = run_cli(["export", "--format", "lm-eval-task", "no_such_task", "--output", str(tmp_path)], capsys)
    assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["export", "--format", "lm-eval", str(tmp_path), "--protocol", "r1"], capsys)
    assert code == 2 and "takes no --protocol" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot create"):
        from harness.lmeval.taskexport import export_tasks

        export_tasks(["gsm8k"], blocker / "sub", data_files={"gsm8k": str(gsm_file)})


TASK_FIXTURES = Path(__file__).parent / "fixtures" / "tasks"


def _builtin_tasks() -> list[str]:
    from harness import registry

    return sorted(registry.builtin_tasks())


@pytest.mark.parametrize("task", _builtin_tasks())
def test_every_task_exports_to_a_task_lm_eval_loads(task, tmp_path):
    """Each of our tasks, as lm-eval loads it: one doc per problem, our user turn as the text, our target."""
    from lm_eval.tasks import TaskManager

    from harness.config import make_config
    from harness.lmeval.taskexport import export_tasks, lm_eval_task_name
    from harness.planning.plan import make_plan
    from harness.protocols import build, get

    data = {task: str(TASK_FIXTURES / f"{task}.jsonl")} if task != "synthetic" else {}
    export_tasks([task], tmp_path, data_files=data, protocol="r1", limit=3)
    name = lm_eval_task_name(task)
    loaded = TaskManager(include_path=str(tmp_path), include_defaults=False).load([name])["tasks"]
    (lm_task,) = loaded.values()
    docs = list(lm_task.eval_docs)
    plan = make_plan(make_config(model="fake:echo", tasks=(task,), data_files=data, protocol="r1", limit=3)).tasks[task]
    assert len(docs) == len(plan.items) > 0
    for doc, item in zip(docs, plan.items):
        messages, _ = build(get("r1"), plan.task, item)
        assert lm_task.doc_to_text(doc) == messages[-1]["content"] and lm_task.doc_to_target(doc) == item.target
    assert lm_task.config.gen_prefix == "<think>\n" and lm_task.config.metadata["version"] == plan.task.version
