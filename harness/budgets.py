"""Thinking budgets: accuracy and cost at several caps on thinking tokens.

`BudgetedBackend` wraps any backend that accepts an assistant prefill. Phase 1 generates at most
`budget` tokens and stops at `</think>`. Phase 2 closes the trace (with the sentence Qwen3's
documentation suggests when the cap was hit) and generates the answer within `answer_tokens`.
Timings add up (TTFT from phase 1, e2e over both phases); token counts are the sum of both.
`run_budgets` runs the same configuration once per budget, writes one run folder per budget
inside one budgets folder, and draws the accuracy-versus-budget curve there.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from harness.backends.base import Backend, Completion, Request
from harness.errors import ConfigError

CLOSE = "</think>"
CUT_OFF = "\n\nConsidering the limited time by the user, I have to give the solution based on the thinking directly now.\n</think>\n\n"


class BudgetedBackend(Backend):
    def __init__(self, inner: Backend, budget: int, answer_tokens: int):
        if inner.name in ("openai",):
            raise ConfigError("thinking budgets need an assistant prefill, which chat APIs do not accept",
                              "use a local backend (transformers, vllm, llamacpp) for --think-budgets")
        self.inner, self.budget, self.answer_tokens = inner, budget, answer_tokens
        self.name, self.info = inner.name, inner.info

    def generate(self, requests: list[Request]) -> list[Completion]:
        first = [replace(r, sampling=replace(r.sampling, max_new_tokens=self.budget, min_new_tokens=0,
                                             stop=tuple(r.sampling.stop) + (CLOSE,))) for r in requests]
        thought = self.inner.generate(first)
        second = []
        for r, t in zip(requests, thought):
            closer = CLOSE + "\n\n" if t.finish_reason == "stop" and not any(s in t.text for s in r.sampling.stop) else CUT_OFF
            second.append(replace(r, prefill=r.prefill + t.text + closer,
                                  sampling=replace(r.sampling, max_new_tokens=self.answer_tokens, min_new_tokens=0)))
        answered = self.inner.generate(second)
        out = []
        for r, t, a, s in zip(requests, thought, answered, second):
            closer = s.prefill[len(r.prefill) + len(t.text):]
            out.append(Completion(
                text=t.text + closer + a.text, input_tokens=t.input_tokens,
                output_tokens=None if t.output_tokens is None or a.output_tokens is None else t.output_tokens + a.output_tokens,
                finish_reason=a.finish_reason, ttft_s=t.ttft_s,
                e2e_s=None if t.e2e_s is None or a.e2e_s is None else t.e2e_s + a.e2e_s,
                reasoning_text=t.reasoning_text, batch_size=len(requests),
                batch_wall_s=(t.batch_wall_s or 0) + (a.batch_wall_s or 0),
                unmeasured={**t.unmeasured, **a.unmeasured, "note": "two phases: thinking capped, then answer; closing text counted in neither"}))
        return out

    # hooks delegate to the wrapped backend
    def render(self, request):
        return self.inner.render(request)

    def count_tokens(self, text):
        return self.inner.count_tokens(text)

    def synchronize(self):
        self.inner.synchronize()

    def memory(self):
        return self.inner.memory()

    def reset_peak_memory(self):
        self.inner.reset_peak_memory()

    def max_batch_size(self):
        return self.inner.max_batch_size()

    def close(self):
        pass  # the wrapped backend is shared across budgets; run_budgets closes it


def run_budgets(cfg) -> list[Path]:
    """One run per budget, the model loaded once; returns the budgets folder and the run folders."""
    from harness import device as devices
    from harness import pipeline, results
    from harness.backends import load_backend

    folder = results.create_run_dir(cfg.output_dir, results.run_dir_name(cfg.model, ["budgets"], results.new_run_id()))
    dev = devices.resolve(cfg.device, cfg.dtype)
    backend = load_backend(cfg, dev)
    runs = []
    try:
        for budget in sorted(cfg.think_budgets):
            one = cfg.model_copy(update={"think_budgets": (), "think_budget": budget, "output_dir": str(folder)})
            runs.append(pipeline.run(one, backend=backend))
    finally:
        backend.close()
    write_curve(folder, runs)
    return [folder, *runs]


def curve_points(run_dirs: list[Path]) -> list[dict]:
    from harness.results import load_run

    points = []
    for d in run_dirs:
        doc = load_run(d)
        for task, t in doc["tasks"].items():
            acc = t["metrics"]["accuracy"]
            points.append({"run_dir": d.name, "task": task, "budget": doc["config"]["think_budget"], "accuracy": acc["value"],
                           "ci95": acc["ci95"], "mean_output_tokens": t.get("mean_output_tokens"),
                           "truncation_rate": t.get("truncation_rate"), "usd_per_correct": (doc.get("cost") or {}).get("usd_per_correct"),
                           "wall_s": doc["perf"]["wall_s"]})
    return points


def write_curve(folder: Path, run_dirs: list[Path]) -> Path:
    """budgets.json and budget_curve.png: accuracy (with 95% CI) against the thinking budget, per task."""
    from harness.results import write_json_atomic

    points = curve_points(run_dirs)
    write_json_atomic(folder / "budgets.json", {"points": points})
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for task in sorted({p["task"] for p in points}):
        ps = sorted((p for p in points if p["task"] == task), key=lambda p: p["budget"])
        xs, ys = [p["budget"] for p in ps], [100 * p["accuracy"] for p in ps]
        lo = [100 * (p["accuracy"] - p["ci95"][0]) for p in ps]
        hi = [100 * (p["ci95"][1] - p["accuracy"]) for p in ps]
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=task)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("thinking budget (tokens)")
    ax.set_ylabel("accuracy (%), 95% CI")
    ax.set_title("Accuracy versus thinking budget")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = folder / "budget_curve.png"
    fig.savefig(path)
    plt.close(fig)
    lines = ["# Thinking budgets", "", "| task | budget | accuracy | 95% CI | mean output tokens | truncated | $/correct | run |", "|---|---|---|---|---|---|---|---|"]
    for p in sorted(points, key=lambda p: (p["task"], p["budget"])):
        usd = "—" if p["usd_per_correct"] is None else f"${p['usd_per_correct']:.4g}"
        lines.append(f"| {p['task']} | {p['budget']} | {100 * p['accuracy']:.1f}% | [{100 * p['ci95'][0]:.1f}, {100 * p['ci95'][1]:.1f}] | "
                     f"{p['mean_output_tokens']:.1f} | {100 * p['truncation_rate']:.0f}% | {usd} | {p['run_dir']} |")
    lines += ["", "![accuracy versus thinking budget](budget_curve.png)", ""]
    (folder / "budgets.md").write_text("\n".join(lines), encoding="utf-8")
    return path
