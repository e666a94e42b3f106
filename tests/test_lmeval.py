"""lm-eval interoperability: our backends as lm-eval's "harness" model, lm-eval tasks through our
pipeline, and our run exported as an lm-eval results JSON that lm-eval's own code reads back.

Offline: the lm-eval task is tests/fixtures/lmeval/tiny_gsm.yaml.in (copied with an absolute data
path, since lm-eval resolves `data_files` against the working directory) over five problems of our
own, and the model is the scripted fake backend. Its script answers problem 1 correctly in both
lm-eval's "#### N" format and \\boxed{}, problem 2 with a bare number only (lenient-correct),
and the rest wrongly, so strict accuracy is 1/5 and lenient 2/5 on both sides.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

from harness.errors import ConfigError, DataError  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "lmeval"
TASK = "harness_tiny_gsm"
SCRIPT = {
    "Tom has 3 apples": "3 + 4 = 7 apples. The answer is \\boxed{7}.\n#### 7",
    "10 pens": "Ana leaves 4 pens.",
    "Sara reads": "#### 16\nQuestion: and after that?",  # lm-eval's `until` cuts at "Question:"
    "Think first": "<think>\nIs it 8? No.\n</think>\n\n#### 9",
    "*": "I do not know.",
}
STRICT, LENIENT = 1 / 5, 2 / 5


def _stderr(p: float, n: int) -> float:
    """lm-eval's mean_stderr of n 0/1 values with mean p."""
    return math.sqrt(p * (1 - p) / (n - 1))


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("lmeval-tasks")
    text = (FIXTURES / "tiny_gsm.yaml.in").read_text(encoding="utf-8").replace("@DATA_DIR@", str(FIXTURES.resolve()))
    (d / "tiny_gsm.yaml").write_text(text, encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def fake_model(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("lmeval-script") / "script.json"
    path.write_text(json.dumps(SCRIPT), encoding="utf-8")
    return f"fake:{path}"


@pytest.fixture(scope="module")
def lm_eval_own(task_dir, fake_model, tmp_path_factory):
    """lm-eval's own simple_evaluate over the tiny task, through --model harness (by name and model_args)."""
    import os

    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    import harness.lmeval.model  # noqa: F401  (registers "harness")

    timings = tmp_path_factory.mktemp("lmeval-timings") / "timings.jsonl"
    os.environ["HARNESS_LMEVAL_TIMINGS"] = str(timings)
    try:
        out = simple_evaluate(model="harness", model_args=f"model={fake_model},dtype=float32,max_new_tokens=32",
                              batch_size=2, device="cpu", tasks=[TASK], limit=5, log_samples=True,
                              task_manager=TaskManager(include_path=str(task_dir), include_defaults=False))
    finally:
        del os.environ["HARNESS_LMEVAL_TIMINGS"]
    return out, timings


@pytest.fixture(scope="module")
def pipeline_run(task_dir, fake_model, tmp_path_factory) -> Path:
    """`harness run --tasks lm_eval:harness_tiny_gsm`, in process, the include path as a task option."""
    from harness.cli import main

    out = tmp_path_factory.mktemp("lmeval-runs")
    rc = main(["run", "--model", fake_model, "--tasks", f"lm_eval:{TASK}", "--task-option", f"lm_eval:{TASK}.include_path={task_dir}",
               "--output-dir", str(out), "--max-new-tokens", "32", "--device", "cpu", "--dtype", "float32", "--quiet"])
    assert rc == 0
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


# ---- our backend as lm-eval's model ------------------------------------------------------------
def test_lmeval_simple_evaluate_scores_through_harness_backend(lm_eval_own):
    out, _ = lm_eval_own
    res = out["results"][TASK]
    assert res["exact_match,strict-match"] == pytest.approx(STRICT)
    assert res["exact_match,flexible-extract"] == pytest.approx(LENIENT)
    samples = {s["doc_id"]: s for s in out["samples"][TASK] if s["filter"] == "strict-match"}
    assert samples[2]["resps"] == [["#### 16\n"]]  # cut at the task's `until` string "Question:"
    assert out["config"]["model"] == "harness"
    perf = out["config"]["harness"]["perf"]  # our timings, merged by lm-eval through get_model_info()
    assert perf["output_tokens"] > 0 and perf["e2e_s"]["p50"] is not None
    assert perf["warmup"]["requests"] == perf["warmup"]["batch_size"] >= 1  # the first real batch's shape, once


def test_lmeval_timings_file_has_one_row_per_request(lm_eval_own):
    _, timings = lm_eval_own
    rows = [json.loads(line) for line in timings.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["doc_id"] for r in rows) == [0, 1, 2, 3, 4]
    assert sorted(r["batch_size"] for r in rows) == [1, 2, 2, 2, 2]  # batch_size=2 over five requests
    for r in rows:
        assert r["task"] == TASK and r["finish_reason"] in ("eos", "stop", "length")
        assert r["ttft_s"] is not None and r["e2e_s"] >= r["ttft_s"]
        assert r["sampling"]["stop"] == ["Question:", "</s>", "<|im_end|>"] and r["sampling"]["temperature"] == 0.0
        assert r["sampling"]["max_new_tokens"] == 32  # the task sets no max_gen_toks: the model argument is the default


def test_lmeval_registry_and_model_args(fake_model):
    from lm_eval.api.registry import get_model

    from harness.lmeval.model import HarnessLM

    cls = get_model("harness")
    assert cls is HarnessLM
    lm = cls.create_from_arg_string(f"model={fake_model},seed=3,max_gen_toks=7", {"batch_size": "auto:4", "device": "cpu"})
    assert lm.config.batch_size == "auto" and lm.config.seed == 3 and lm.config.max_new_tokens == 7
    assert lm.tokenizer_name == fake_model.replace("/", "__")
    with pytest.raises(ConfigError, match="unknown model_args.*colour"):
        cls.create_from_arg_string(f"model={fake_model},colour=red")
    assert lm.loglikelihood([]) == [] and lm.loglikelihood_rolling([]) == []


def test_lmeval_loglikelihood_on_an_engine_without_logprobs_names_the_reason(fake_model):
    from lm_eval.api.instance import Instance

    from harness.backends.logprobs import LogprobsUnsupported
    from harness.lmeval.model import HarnessLM

    lm = HarnessLM(model=fake_model, device="cpu")
    req = Instance("loglikelihood", {}, ("2 + 2 =", " 4"), idx=0, metadata=(TASK, 0, 1))
    with pytest.raises(LogprobsUnsupported, match="fake backend cannot score log-likelihoods: scripted answers"):
        lm.loglikelihood([req])
    with pytest.raises(LogprobsUnsupported, match="backend=transformers or llamacpp"):
        lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, ("some text",), idx=0, metadata=(TASK, 0, 1))])


# Every model_args key docs/lm-eval.md lists, as lm-eval's parser hands it over (digits become
# numbers, "true" a bool), and where the harness model keeps it.
MODEL_ARGS = {
    "model": ("model={m}", lambda lm, m: lm.config.model == m),
    "pretrained": ("pretrained={m}", lambda lm, m: lm.config.model == m),
    "backend": ("model={m},backend=fake", lambda lm, m: lm.config.backend == "fake" and lm.backend.name == "fake"),
    "device": ("model={m},device=cpu", lambda lm, m: lm.config.device == "cpu" and lm.dev.type == "cpu"),
    "dtype": ("model={m},dtype=float32", lambda lm, m: lm.config.dtype == "float32"),
    "revision": ("model={m},revision=1234567", lambda lm, m: lm.config.revision == "1234567"),
    "tokenizer": ("model={m},tokenizer=/tmp/tok", lambda lm, m: lm.config.tokenizer == "/tmp/tok"),
    "seed": ("model={m},seed=7", lambda lm, m: lm.config.seed == 7),
    "trust_remote_code": ("model={m},trust_remote_code=true", lambda lm, m: lm.config.trust_remote_code is True),
    "allow_pickle": ("model={m},allow_pickle=True", lambda lm, m: lm.config.allow_pickle is True),
    "device_map": ("model={m},device_map=auto", lambda lm, m: lm.config.device_map == "auto"),
    "base_url": ("model={m},base_url=http://127.0.0.1:9/v1", lambda lm, m: lm.config.base_url == "http://127.0.0.1:9/v1"),
    "api_key_env": ("model={m},api_key_env=MY_KEY", lambda lm, m: lm.config.api_key_env == "MY_KEY"),
    "max_concurrency": ("model={m},max_concurrency=4", lambda lm, m: lm.config.max_concurrency == 4),
    "tensor_parallel_size": ("model={m},tensor_parallel_size=2", lambda lm, m: lm.config.tensor_parallel_size == 2),
    "max_new_tokens": ("model={m},max_new_tokens=9", lambda lm, m: lm.config.max_new_tokens == 9),
    "max_gen_toks": ("model={m},max_gen_toks=11", lambda lm, m: lm.config.max_new_tokens == 11),
    "think_end_token": ("model={m},think_end_token=</think>", lambda lm, m: lm.think_end_token == "</think>"),
    "enable_thinking": ("model={m},enable_thinking=false", lambda lm, m: lm.template_kwargs == (("enable_thinking", False),)),
    "timings": ("model={m},timings=/tmp/t.jsonl", lambda lm, m: str(lm.timings_path) == "/tmp/t.jsonl"),
    "max_length": ("model={m},max_length=512", lambda lm, m: lm.max_length == 512),
    "batch_size": ("model={m},batch_size=3", lambda lm, m: lm.config.batch_size == 3),
    "max_batch_size": ("model={m},max_batch_size=16", lambda lm, m: lm.max_batch_size == 16),
}


def test_lmeval_every_documented_model_arg_is_tested():
    import re

    doc = (Path(__file__).resolve().parents[1] / "docs" / "lm-eval.md").read_text(encoding="utf-8")
    table = doc.split("`--model_args` keys", 1)[1].split("\n\n", 2)[1]
    documented = {key for line in table.splitlines() if line.startswith("| `") for key in re.findall(r"`([a-z_]+)`", line.split("|")[1])}
    assert documented == set(MODEL_ARGS)


@pytest.mark.parametrize("key", sorted(MODEL_ARGS))
def test_lmeval_model_arg(key, fake_model):
    """Each key works from model_args while lm-eval's CLI also sends its own device/batch_size defaults."""
    from harness.lmeval.model import HarnessLM

    args, check = MODEL_ARGS[key]
    lm = HarnessLM.create_from_arg_string(args.format(m=fake_model), {"batch_size": 1, "max_batch_size": None, "device": "cuda:0"})
    assert check(lm, fake_model)


@pytest.mark.parametrize("cli, expect", [({"device": "cpu"}, ("cpu", 1)), ({"batch_size": "auto:4"}, ("cpu", "auto")),
                                         ({"batch_size": 5, "device": "cpu"}, ("cpu", 5))])
def test_lmeval_cli_device_and_batch_size(cli, expect, fake_model):
    """lm-eval's own --device and --batch_size reach the model when model_args do not set them."""
    from harness.lmeval.model import HarnessLM

    lm = HarnessLM.create_from_arg_string(f"model={fake_model}", {"batch_size": 1, **cli})
    assert (lm.dev.type, lm.config.batch_size) == expect


def test_lmeval_model_args_with_device_through_lm_eval_cli(task_dir, fake_model, tmp_path, capsys):
    """The reported TypeError: `--model_args model=...,device=cpu` with lm-eval's CLI, which also passes --device."""
    from harness.lmeval import main

    main(["--model", "harness", "--model_args", f"model={fake_model},device=cpu,batch_size=2", "--device", "cpu", "--batch_size", "1",
          "--tasks", TASK, "--include_path", str(task_dir), "--limit", "2", "--output_path", str(tmp_path / "out")])
    assert "exact_match" in capsys.readouterr().out


@pytest.mark.parametrize("args, match", [("max_length=0", "max_length=0 is not a positive"), ("enable_thinking=maybe", "not true or false"),
                                         ("max_new_tokens=-1", "max_new_tokens=-1"), ("pretrained=other", "name different models")])
def test_lmeval_bad_model_args_are_one_line_errors(args, match, fake_model):
    from harness.lmeval.model import HarnessLM

    with pytest.raises(ConfigError, match=match):
        HarnessLM.create_from_arg_string(f"model={fake_model},{args}")


def test_lmeval_chat_template_sends_messages_not_rendered_text(fake_model):
    from lm_eval.api.instance import Instance

    from harness.lmeval.model import HarnessLM

    lm = HarnessLM(model=fake_model, device="cpu", dtype="float32", batch_size=4)
    seen = []
    generate = lm.backend.generate
    lm.backend.generate = lambda reqs: seen.extend(reqs) or generate(reqs)
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tom has 3 apples and buys 4 more."}]
    templated = lm.apply_chat_template(chat)
    prefilled = lm.apply_chat_template([*chat, {"role": "assistant", "content": "The answer:"}], add_generation_prompt=False)
    reqs = [Instance("generate_until", {}, (ctx, {"until": ["\n\n"], "do_sample": False}), idx=0, metadata=(TASK, i, 1))
            for i, ctx in enumerate([templated, prefilled, "plain text 5"])]
    out = lm.generate_until(reqs, disable_tqdm=True)
    assert out[0].startswith("3 + 4 = 7 apples") and out[2] == "I do not know."
    timed = [r for r in seen if r.sampling.max_new_tokens == 256]  # the warm-up is capped at 8 tokens
    by_prompt = {r.messages[-1]["content"]: r for r in timed}
    assert by_prompt[chat[1]["content"]].chat and by_prompt[chat[1]["content"]].messages == tuple(chat)
    assert {r.prefill for r in timed if r.chat} == {"", "The answer:"}
    assert not by_prompt["plain text 5"].chat
    assert len(lm.timings) == 3 and lm.warmup["requests"] == lm.warmup["batch_size"] == 3  # the first batch (3 <= batch_size 4)


def test_lmeval_think_end_token_and_enable_thinking(fake_model):
    from lm_eval.api.instance import Instance

    from harness.lmeval.model import HarnessLM

    lm = HarnessLM(model=fake_model, device="cpu", dtype="float32", think_end_token="</think>", enable_thinking=False)
    req = Instance("generate_until", {}, ("Think first: 4 + 5?", {"until": ["\n\n"]}), idx=0, metadata=(TASK, 0, 1))
    assert lm.generate_until([req], disable_tqdm=True) == ["#### 9"]  # thinking dropped before the stop strings apply
    assert lm.template_kwargs == (("enable_thinking", False),)
    plain = HarnessLM(model=fake_model, device="cpu", dtype="float32")
    assert plain.generate_until([req], disable_tqdm=True) == ["<think>\nIs it 8? No.\n</think>"]


def test_lmeval_gen_kwargs_map_to_sampling():
    from harness.lmeval.model import sampling_from_gen_kwargs

    s, stops, ignored = sampling_from_gen_kwargs({"until": "Q:", "do_sample": False, "temperature": 0.7}, 64)
    assert (s.temperature, s.max_new_tokens, s.stop, stops, ignored) == (0.0, 64, ("Q:",), ["Q:"], [])
    s, _, _ = sampling_from_gen_kwargs({"do_sample": True, "max_gen_toks": 9, "top_p": 0.9, "top_k": 20}, 64)
    assert (s.temperature, s.max_new_tokens, s.top_p, s.top_k) == (1.0, 9, 0.9, 20)
    s, _, ignored = sampling_from_gen_kwargs({"temperature": 0.6, "repetition_penalty": 1.1, "until": ["", "x"]}, 64)
    assert s.temperature == 0.6 and s.stop == ("x",) and ignored == ["repetition_penalty"]
    with pytest.raises(ConfigError):
        sampling_from_gen_kwargs({"max_gen_toks": 0}, 64)
    with pytest.raises(ConfigError):
        sampling_from_gen_kwargs({"temperature": "hot"}, 64)


def test_lmeval_launcher_registers_model_before_lm_eval_cli(monkeypatch):
    import sys

    import lm_eval.__main__

    from harness import lmeval

    seen = {}

    def fake_cli():
        from lm_eval.api.registry import get_model

        seen["argv"], seen["model"] = list(sys.argv[1:]), get_model("harness").__name__

    monkeypatch.setattr(lm_eval.__main__, "cli_evaluate", fake_cli)
    monkeypatch.setattr(sys, "argv", ["harness.lmeval"])
    lmeval.main(["--model", "harness", "--tasks", TASK])
    assert seen == {"argv": ["--model", "harness", "--tasks", TASK], "model": "HarnessLM"}


# ---- lm-eval tasks through our pipeline ----------------------------------------------------------
def test_lmeval_task_runs_through_harness_pipeline(pipeline_run):
    run = json.loads((pipeline_run / "run.json").read_text(encoding="utf-8"))
    block = run["tasks"][f"lm_eval:{TASK}"]
    assert run["status"] == "complete" and block["n"] == 5
    assert block["metrics"]["accuracy"]["value"] == pytest.approx(STRICT)
    assert block["metrics"]["accuracy_lenient"]["value"] == pytest.approx(LENIENT)
    assert block["source"].startswith(f"lm-eval task {TASK}")
    rows = [json.loads(line) for line in (pipeline_run / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    by_id = {r["id"]: r for r in rows}
    assert by_id["0"]["prompt"].startswith("Question: Tom has 3 apples") and by_id["4"]["target"] == "2000"


def test_lmeval_task_items_stop_and_env_include(task_dir, monkeypatch):
    from harness.tasks.lmeval import INCLUDE_ENV, LMEvalTask

    monkeypatch.setenv(INCLUDE_ENV, str(task_dir))
    task = LMEvalTask(TASK)
    items = task.load(limit=3)
    assert [i.target for i in items] == ["7", "4", "15"]
    assert items[0].question == "Question: Tom has 3 apples and buys 4 more. How many apples does he have?\nAnswer:"
    assert task.stop == ("Question:", "</s>", "<|im_end|>") and task.max_new_tokens is None
    assert task.answer_type == "number" and "json, split test" in task.describe()


def test_lmeval_task_data_file_override(task_dir, tmp_path):
    from harness.tasks.lmeval import LMEvalTask

    data = tmp_path / "mine.jsonl"
    data.write_text(json.dumps({"question": "What is 6 times 7?", "answer": "6 * 7 = 42\n#### 42"}) + "\n", encoding="utf-8")
    task = LMEvalTask(TASK, include_path=str(task_dir))
    (item,) = task.load(data)
    assert (item.question, item.target) == ("Question: What is 6 times 7?\nAnswer:", "42")
    assert str(data.resolve()) in task.describe()
    with pytest.raises(DataError, match="not found"):
        task.load(tmp_path / "missing.jsonl")


def test_lmeval_multiple_choice_task_becomes_lettered_items(tmp_path):
    from harness.tasks.lmeval import LMEvalTask

    (tmp_path / "mc.jsonl").write_text(json.dumps({"q": "Which is a fruit?", "options": ["stone", "apple", "chair"], "gold": 1}) + "\n",
                                       encoding="utf-8")
    (tmp_path / "mc.yaml").write_text(
        f"task: harness_tiny_mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: '{tmp_path / 'mc.jsonl'}'\n"
        "output_type: multiple_choice\ntest_split: test\ndoc_to_text: '{{q}}'\ndoc_to_choice: '{{options}}'\ndoc_to_target: gold\n"
        "metric_list:\n  - metric: acc\n", encoding="utf-8")
    task = LMEvalTask("harness_tiny_mc", include_path=str(tmp_path))
    (item,) = task.load()
    assert (item.target, item.choices, task.answer_type) == ("B", ("stone", "apple", "chair"), "choice")
    assert task.format_question(item) == "Which is a fruit?\n\nA) stone\nB) apple\nC) chair"
    (tmp_path / "group.yaml").write_text("group: harness_tiny_group\ntask:\n  - harness_tiny_mc\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="group or tag"):
        LMEvalTask("harness_tiny_group", include_path=str(tmp_path)).load()


def test_lmeval_task_options_and_paths_are_checked(tmp_path):
    from harness.tasks.lmeval import LMEvalTask, final_answer

    with pytest.raises(ConfigError, match="unknown option"):
        LMEvalTask(TASK, shots=5)
    with pytest.raises(ConfigError, match="bad value"):
        LMEvalTask(TASK, answer_type="essay")
    with pytest.raises(ConfigError, match="include path not found"):
        LMEvalTask(TASK, include_path=str(tmp_path / "nowhere")).load()
    assert final_answer("so 1,250 + 750\n#### 2,000", "number") == "2000"
    assert final_answer("\\frac{1}{2}", "math") == "\\frac{1}{2}"


# ---- our run as lm-eval results ------------------------------------------------------------------
@pytest.fixture(scope="module")
def lm_eval_written(task_dir, fake_model, tmp_path_factory):
    """What lm-eval's own CLI writes (--output_path, --log_samples) for the same task and answers."""
    from harness.lmeval import main

    out = tmp_path_factory.mktemp("lmeval-written")
    main(["--model", "harness", "--model_args", f"model={fake_model},max_new_tokens=32", "--device", "cpu", "--tasks", TASK,
          "--include_path", str(task_dir), "--output_path", str(out), "--log_samples"])
    (results,) = out.rglob("results_*.json")
    (samples,) = out.rglob(f"samples_{TASK}_*.jsonl")
    return json.loads(results.read_text(encoding="utf-8")), [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()]


def _schema_errors(doc: dict) -> set[tuple]:
    """Where lm-eval's results schema (a TypedDict) refuses a document, as (key, field...) paths without list indices."""
    import pydantic
    from lm_eval.result_schema import EvalResults

    try:
        pydantic.TypeAdapter(EvalResults).validate_python(doc)
    except pydantic.ValidationError as e:
        return {tuple(str(x) for x in err["loc"][:3]) for err in e.errors()}
    return set()


def test_lmeval_export_matches_what_lm_eval_writes(pipeline_run, lm_eval_written, tmp_path):
    from harness.cli import main

    assert main(["export", "--format", "lm-eval", str(pipeline_run), "--output", str(tmp_path / "out.json")]) == 0
    doc = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    theirs, their_samples = lm_eval_written

    # every key lm-eval writes, except facts about lm-eval's own environment and tokenizer
    env = {"pretty_env_info", "transformers_version", "lm_eval_version", "upper_git_hash", "tokenizer_pad_token", "tokenizer_eos_token",
           "tokenizer_bos_token", "eot_token_id", "max_length"}
    assert set(theirs) - env <= set(doc)
    assert set(theirs["results"][TASK]) == set(doc["results"][TASK])
    for key in ("versions", "n-shot", "higher_is_better", "n-samples"):
        assert doc[key] == theirs[key], key
    assert doc["versions"][TASK] == 1.0  # the task's metadata.version, not the harness version
    # the task's own config as lm-eval dumps it; lm-eval adds the model's arguments to its metadata
    model_keys = {"model", "max_new_tokens", "device"}
    assert {k: v for k, v in doc["configs"][TASK].items() if k != "metadata"} == {k: v for k, v in theirs["configs"][TASK].items() if k != "metadata"}
    assert {k: v for k, v in theirs["configs"][TASK]["metadata"].items() if k not in model_keys} == doc["configs"][TASK]["metadata"]
    assert isinstance(doc["git_hash"], str) and doc["task_hashes"].keys() == theirs["task_hashes"].keys()

    # lm-eval's results schema refuses nothing in ours that it does not refuse in its own file
    assert _schema_errors(doc) <= _schema_errors(theirs)
    assert not _schema_errors({k: v for k, v in doc.items() if k != "configs"})

    # the samples file: lm-eval's record shape, the same docs, targets and doc hashes
    (ours_file,) = tmp_path.glob(f"samples_{TASK}_*.jsonl")
    ours_samples = [json.loads(line) for line in ours_file.read_text(encoding="utf-8").splitlines()]
    assert {frozenset(s) for s in ours_samples} == {frozenset(s) for s in their_samples}
    key = lambda s: (s["doc_id"], s["filter"])  # noqa: E731
    mine, their = {key(s): s for s in ours_samples}, {key(s): s for s in their_samples}
    assert mine.keys() == their.keys()
    for k in their:
        for field in ("doc", "target", "doc_hash", "target_hash", "metrics"):
            assert mine[k][field] == their[k][field], (k, field)
        assert mine[k]["arguments"]["gen_args_0"]["arg_0"].startswith(their[k]["arguments"]["gen_args_0"]["arg_0"])


def test_lmeval_export_is_read_back_by_lm_eval(pipeline_run, lm_eval_own, tmp_path):
    from lm_eval.utils import make_table

    from harness.cli import main

    assert main(["export", "--format", "lm-eval", str(pipeline_run), "--output", str(tmp_path / "out.json")]) == 0
    doc = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    ours, theirs = doc["results"][TASK], lm_eval_own[0]["results"][TASK]

    # the same numbers for the same answers
    for key in theirs:
        if key.startswith("exact_match"):
            assert ours[key] == pytest.approx(theirs[key])
    assert ours["exact_match_stderr,strict-match"] == pytest.approx(_stderr(STRICT, 5))

    # lm-eval's own table renderer reads it: one row per filter, with version, value and stderr
    table = make_table(doc)
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines() if "exact_match" in line]
    assert cells[0][0] == TASK and cells[0][1] == "1"
    shown = {row[2]: (float(row[6]), float(row[8])) for row in cells}
    assert shown["strict-match"] == pytest.approx((STRICT, _stderr(STRICT, 5)), abs=1e-4)
    assert shown["flexible-extract"] == pytest.approx((LENIENT, _stderr(LENIENT, 5)), abs=1e-4)


def test_lmeval_export_default_path_and_missing_run(pipeline_run, tmp_path):
    from harness.lmeval.export import export_results

    path = export_results(pipeline_run)
    assert path.parent == pipeline_run and path.name.startswith("results_") and path.suffix == ".json"  # lm-eval's name
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["config"]["model"] == "harness" and doc["harness"]["status"] == "complete"
    assert doc["n-samples"][TASK] == {"original": 5, "effective": 5} and doc["n-shot"][TASK] == 0
    with pytest.raises(ConfigError, match="no run.json"):
        export_results(tmp_path)


def test_lm_eval_export_of_a_limited_run_names_the_whole_set_as_original(shared, tmp_path, capsys):
    """`n-samples.original` is the task's whole set (MATH-500: 500), not the problems a --limit run used; the file
    carries lm-eval's own name, results_<date>.json."""
    from helpers import run_cli

    from harness.lmeval.export import export_results

    code, _, err = run_cli(["run", "--model", "fake:echo", "--tasks", "math500", "--data-file", f"math500={shared}/data/math500/test.jsonl",
                            "--limit", "3", "--protocol", "plain", "--output-dir", str(tmp_path), "--quiet"], capsys)
    assert code == 0, err
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    out = export_results(run_dir)
    doc = json.loads(out.read_text())
    assert out.name.startswith("results_") and doc["n-samples"]["math500"] == {"original": 500, "effective": 3}
