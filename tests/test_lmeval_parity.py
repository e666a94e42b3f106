"""Parity of `--model harness` with lm-eval's own `--model hf` on the same saved model folder.

A tiny random-weight Qwen2 (float32) saved with save_pretrained; tasks written here as YAML over
local JSONL: a multiple-choice task (acc, acc_norm: log-likelihood requests, some choices with
leading spaces, Chinese, digits, a context ending in a space) and a generate_until task (exact_match)
whose targets are the model's own greedy continuations for half of the docs, so exact_match is
neither 0 nor 1. Both models run through lm-eval's `simple_evaluate`; metrics must be equal and
every request's log-likelihood must agree to 1e-4. Request-level checks call lm-eval's HFLM and
our HarnessLM directly, on tokenizers with and without a BOS token, for the edge cases lm-eval's
tokenisation rules handle (empty context, trailing spaces, BOS already in the text, rolling windows).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")
pytest.importorskip("torch")

from helpers import tiny_model_folder, write_jsonl  # noqa: E402

TOL = 1e-4
MC_ROWS = [
    {"q": "Which is a fruit?", "choices": ["apple", "stone", "a big chair"], "label": 0},
    {"q": "2 plus 3 equals", "choices": ["5", "6", "23"], "label": 0},
    {"q": "天空是什么颜色？", "choices": ["蓝色", "绿色的", "red"], "label": 0},
    {"q": "Pick one: ", "choices": ["x", " y", "zz z"], "label": 1},  # context ends in a space
    {"q": "The capital of France is", "choices": ["Paris", "Lyon", "Marseille"], "label": 0},
    {"q": "<think>", "choices": ["</think>", "ok", "no"], "label": 1},
]
GEN_QUESTIONS = ["Tom has 3 apples.", "What is 6 times 7?", "你好", "Count: 1 2 3", "Say hi", "A B C D"]


def _task_yaml(folder: Path, name: str, data: Path, body: str) -> None:
    (folder / f"{name}.yaml").write_text(
        f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: '{data}'\ntest_split: test\n{body}", encoding="utf-8")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return tiny_model_folder(tmp_path_factory.mktemp("parity-model"), seed=1)


def _greedy(model_dir: Path, prompt: str, n: int) -> str:
    """The model's own greedy continuation, by plain transformers (not through either harness)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ids = tok(prompt, return_tensors="pt").input_ids
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).split("\n")[0]


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory, model_dir) -> Path:
    d = tmp_path_factory.mktemp("parity-tasks")
    mc = write_jsonl(d / "mc.jsonl", MC_ROWS)
    _task_yaml(d, "parity_mc", mc, "output_type: multiple_choice\ndoc_to_text: '{{q}}'\ndoc_to_choice: '{{choices}}'\n"
               "doc_to_target: label\nmetric_list:\n  - metric: acc\n  - metric: acc_norm\n")
    rows = [{"q": q, "a": _greedy(model_dir, q, 6) if i % 2 == 0 else "certainly not this"} for i, q in enumerate(GEN_QUESTIONS)]
    gen = write_jsonl(d / "gen.jsonl", rows)
    _task_yaml(d, "parity_gen", gen, "output_type: generate_until\ndoc_to_text: '{{q}}'\ndoc_to_target: '{{a}}'\n"
               "generation_kwargs:\n  until: ['\\n']\n  do_sample: false\n  max_gen_toks: 6\n"
               "metric_list:\n  - metric: exact_match\n    aggregation: mean\n    higher_is_better: true\n")
    return d


@pytest.fixture(scope="module")
def both(task_dir, model_dir):
    """simple_evaluate with --model hf and with --model harness, same folder, same tasks."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    import harness.lmeval.model  # noqa: F401  (registers "harness")

    def run(model: str, args: str) -> dict:
        return simple_evaluate(model=model, model_args=args, tasks=["parity_mc", "parity_gen"], batch_size=4, device="cpu",
                               log_samples=True, task_manager=TaskManager(include_path=str(task_dir), include_defaults=False))

    return run("hf", f"pretrained={model_dir},dtype=float32"), run("harness", f"model={model_dir},dtype=float32")


def test_parity_metrics_equal_lm_eval_hf(both):
    theirs, ours = both
    mc_t, mc_o = theirs["results"]["parity_mc"], ours["results"]["parity_mc"]
    assert mc_o["acc,none"] == mc_t["acc,none"] and mc_o["acc_norm,none"] == mc_t["acc_norm,none"]
    assert mc_o["acc_stderr,none"] == pytest.approx(mc_t["acc_stderr,none"])
    gen_t, gen_o = theirs["results"]["parity_gen"], ours["results"]["parity_gen"]
    assert gen_o["exact_match,none"] == gen_t["exact_match,none"]
    assert 0 < gen_t["exact_match,none"] < 1  # the targets are the model's own greedy text for half the docs


def test_parity_per_request_loglikelihoods(both):
    theirs, ours = both

    def by_doc(out):
        return {s["doc_id"]: s for s in out["samples"]["parity_mc"]}

    t, o = by_doc(theirs), by_doc(ours)
    assert sorted(t) == sorted(o) == list(range(len(MC_ROWS)))
    for doc_id in t:
        assert [a["arguments"] for a in [t[doc_id]]] == [o[doc_id]["arguments"]]
        for (ll_t, g_t), (ll_o, g_o) in zip(t[doc_id]["filtered_resps"], o[doc_id]["filtered_resps"], strict=True):
            assert abs(float(ll_t) - float(ll_o)) < TOL and g_t == g_o
    gen_t = {s["doc_id"]: s["filtered_resps"] for s in theirs["samples"]["parity_gen"]}
    gen_o = {s["doc_id"]: s["filtered_resps"] for s in ours["samples"]["parity_gen"]}
    assert gen_o == gen_t


def test_parity_timings_for_scoring_requests(both):
    _, ours = both
    perf = ours["config"]["harness"]["perf"]
    n_choices = sum(len(r["choices"]) for r in MC_ROWS)
    assert perf["loglikelihood"]["requests"] == n_choices
    assert perf["loglikelihood"]["e2e_s"]["p50"] > 0 and perf["loglikelihood"]["input_tokens"] > 0


# ---- request level: lm-eval's HFLM and ours on the same requests -------------------------------
def _bos_folder(model_dir: Path, out: Path) -> Path:
    """The same weights with a tokenizer that prepends a BOS token (as Llama's do)."""
    import shutil

    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    shutil.copytree(model_dir, out)
    tok = AutoTokenizer.from_pretrained(model_dir)
    bos = "<|endoftext|>"
    tok.bos_token = bos
    tok._tokenizer.post_processor = TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                       special_tokens=[(bos, tok.convert_tokens_to_ids(bos))])
    tok.save_pretrained(out)
    assert AutoTokenizer.from_pretrained(out)("hi").input_ids[0] == tok.convert_tokens_to_ids(bos)
    return out


EDGE_PAIRS = [("", "hello world"), ("Question: 1+1=", " 2"), ("trailing space ", "x"), ("ab", "cd"), ("问题：", "答案"),
              ("<|endoftext|>Already has BOS.", " yes"), ("x", "<|endoftext|>"), ("tabs\t\n", " and newlines")]


@pytest.mark.parametrize("bos", [False, True], ids=["no-bos", "bos"])
def test_parity_request_level_edge_cases(model_dir, tmp_path, bos):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from harness.lmeval.model import HarnessLM

    folder = _bos_folder(model_dir, tmp_path / "bos") if bos else model_dir
    hf = HFLM(pretrained=str(folder), device="cpu", dtype="float32", batch_size=3, max_length=24)
    ours = HarnessLM(model=str(folder), device="cpu", dtype="float32", batch_size=3, max_length=24)

    reqs = [Instance("loglikelihood", {}, pair, idx=i, metadata=("edge", i, 1)) for i, pair in enumerate(EDGE_PAIRS)]
    for (ll_t, g_t), (ll_o, g_o) in zip(hf.loglikelihood(reqs, disable_tqdm=True), ours.loglikelihood(reqs, disable_tqdm=True), strict=True):
        assert abs(ll_t - ll_o) < TOL and g_t == g_o

    rng = random.Random(0)
    words = ["alpha", "beta", "七", "8", " ", "\n", "<|endoftext|>", "gamma,"]
    docs = ["".join(rng.choice(words) for _ in range(n)) for n in (1, 5, 23, 60)]  # 60 words: several 24-token windows
    rolling = [Instance("loglikelihood_rolling", {}, (d,), idx=0, metadata=("roll", i, 1)) for i, d in enumerate(docs)]
    for t, o in zip(hf.loglikelihood_rolling(rolling, disable_tqdm=True), ours.loglikelihood_rolling(rolling, disable_tqdm=True), strict=True):
        assert abs(t - o) < TOL
    rows = [r for r in ours.timings if r["request_type"] == "loglikelihood_rolling"]
    assert len(rows) == len(docs) and max(r["windows"] for r in rows) > 1


def test_rolling_windows_match_lm_eval():
    from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

    from harness.backends.logprobs import rolling_windows

    for n in range(0, 40):
        tokens = list(range(100, 100 + n))
        for max_len in (1, 2, 3, 7, 16, 64):
            theirs = [make_disjoint_window(w) for w in get_rolling_token_windows(tokens, prefix_token=-1, max_seq_len=max_len, context_len=1)]
            assert rolling_windows(tokens, -1, max_len) == [(list(a), list(b)) for a, b in theirs], (n, max_len)


def test_score_all_sorts_longest_first_keeps_order_and_halves_on_oom():
    from harness.backends.base import Backend
    from harness.backends.logprobs import Score, ScoreRequest, score_all
    from harness.errors import OutOfMemory

    class Stub(Backend):
        name = "stub"

        def __init__(self):
            self.batches = []

        def score(self, requests, max_length=None):
            if len(requests) > 2:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")
            self.batches.append([len(r.context) + len(r.continuation) for r in requests])
            return [Score(logprob=-float(r.key), greedy=False, input_tokens=len(r.context), continuation_tokens=1) for r in requests]

    reqs = [ScoreRequest(str(i), tuple(range(n)), (1,)) for i, n in enumerate([3, 9, 1, 5, 7])]
    stub = Stub()
    out = score_all(stub, reqs, batch_size="auto")
    assert [s.logprob for s in out] == [-0.0, -1.0, -2.0, -3.0, -4.0]  # request order, whatever the batching
    assert stub.batches == [[10, 8], [6, 4], [2]] and [s.batch_size for s in out] == [2, 2, 1, 2, 2]
    with pytest.raises(OutOfMemory, match="out of memory at batch size 4"):
        score_all(Stub(), reqs, batch_size=4)
