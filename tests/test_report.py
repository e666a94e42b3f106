"""report.md and report.html from a hand-written run folder (results/README.md schema).

`make_run` builds that folder; test_compare.py and test_report_screenshot.py import it too.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import markupsafe
import pytest

from harness.reports import plots
from harness.reports.format import usd
from harness.reports.html import clip, render_html, sample_verdict
from harness.reports.markdown import progress, render_markdown, write_reports
from harness.stats import percentiles

SCRIPT = '<script>alert("pwned")</script>'


def make_samples(task: str, correct: list[bool], *, k: int = 1, model_seed: int = 0, levels: bool = True,
                 ttft: bool = True, truncate: bool = True) -> list[dict]:
    """One row per (problem, sample); `correct` holds one verdict per row, problem-major."""
    rows = []
    for j, ok in enumerate(correct):
        i, s = divmod(j, k)
        out_tokens = 20 + 7 * ((j * 13 + model_seed) % 11)
        truncated = truncate and not ok and j % 3 == 0
        ttft_s = 0.04 + 0.01 * ((j * 7) % 5)
        e2e = ttft_s + 0.004 * (out_tokens - 1)
        rows.append({
            "task": task, "id": f"q{i}", "sample": s, "prompt": f"Question {i}: what is {i} + {i}?\n<think>\n",
            "output": f"I think {SCRIPT} hard</think>The answer is {2 * i if ok else -1}.",
            "thinking": f"I think {SCRIPT} hard", "answer": f"The answer is {2 * i if ok else -1}.",
            "extracted": str(2 * i) if ok else "-1", "extracted_lenient": str(2 * i) if ok else "-1", "target": str(2 * i),
            "correct": ok, "correct_lenient": ok, "input_tokens": 12, "output_tokens": out_tokens,
            "thinking_tokens": out_tokens - 6, "finish_reason": "length" if truncated else "eos",
            "ttft_s": ttft_s if ttft else None, "tpot_s": 0.004 if ttft else None, "e2e_s": e2e, "batch_size": 4,
            "batch_wall_s": e2e + 0.01, "seed": 1234 + j, "meta": {"level": 1 + i % 3} if levels else {}, "rank": 0,
            "unmeasured": {} if ttft else {"ttft_s": "the server does not stream", "tpot_s": "needs ttft"},
        })
    return rows


def _metric(values: list[bool]) -> dict:
    p = sum(values) / len(values)
    return {"value": p, "ci95": [max(0.0, p - 0.2), min(1.0, p + 0.2)], "method": "wilson", "n": len(values)}


def make_run_json(rows_by_task: dict[str, list[dict]], *, model: str = "org/Model-1.5B", device: str = "cpu", dtype: str = "float32",
                  backend: str = "transformers", price: float | None = 2.0, claims: bool = True, run_id: str = "abc123") -> dict:
    tasks = {}
    all_rows = [r for rows in rows_by_task.values() for r in rows]
    for name, rows in rows_by_task.items():
        ids = {r["id"] for r in rows}
        by_level = {}
        for lv in sorted({r["meta"]["level"] for r in rows if r["meta"].get("level") is not None}):
            sel = [r["correct"] for r in rows if r["meta"].get("level") == lv]
            m = _metric(sel)
            by_level[str(lv)] = {"n": len(sel), "accuracy": m["value"], "ci95": m["ci95"]}
        tasks[name] = {"n": len(ids), "k": len(rows) // len(ids), "metrics": {"accuracy": _metric([r["correct"] for r in rows]),
                                                                               "accuracy_lenient": _metric([r["correct_lenient"] for r in rows])},
                       "truncation_rate": sum(r["finish_reason"] == "length" for r in rows) / len(rows),
                       "mean_output_tokens": sum(r["output_tokens"] for r in rows) / len(rows),
                       "mean_thinking_tokens": None if any(r["thinking_tokens"] is None for r in rows)
                       else sum(r["thinking_tokens"] for r in rows) / len(rows),
                       "by_level": by_level, "source": f"/data/{name}.jsonl"}
    wall = sum(r["batch_wall_s"] / r["batch_size"] for r in all_rows)
    out_tok = sum(r["output_tokens"] for r in all_rows)
    correct = sum(r["correct"] for r in all_rows)
    usd = None if price is None else wall / 3600 * price
    return {
        "schema_version": "1.0", "run_id": run_id, "status": "complete", "created_utc": "2026-11-28T10:00:00Z",
        "finished_utc": "2026-11-28T10:05:00Z", "versions": {"python": "3.11", "torch": "2.13.0", "transformers": "5.24", "harness": "0.1.0"},
        "config": {"model": model, "max_new_tokens": 96},
        "model": {"name_or_path": model, "backend": backend, "revision": None, "dtype": dtype, "num_parameters": 1_500_000_000,
                  "random_weights": False, "architecture": "Qwen2ForCausalLM", "context_length": 4096, "quantization": None, "notes": []},
        "device": {"type": device, "name": {"cpu": "AMD EPYC", "cuda": "NVIDIA H100"}.get(device, device), "count": 1,
                   "dtype": dtype, "dtype_reason": "cpu: float32", "device_reason": "auto: no accelerator", "processes": 1},
        "protocol": {"name": "r1", "system_prompt": None, "suffix": "", "force_think": True, "fewshot": 0},
        "tasks": tasks,
        "perf": {"wall_s": wall, "load_s": 1.5, "warmup": {"s": 0.3, "requests": 1}, "ttft_s": percentiles([r["ttft_s"] for r in all_rows]),
                 "tpot_s": percentiles([r["tpot_s"] for r in all_rows]),
                 "e2e_s": percentiles([r["e2e_s"] for r in all_rows]), "prefill_tokens_per_s": 900.0, "decode_tokens_per_s": 240.0, "output_tokens_per_s": out_tok / wall,
                 "input_tokens": 12 * len(all_rows), "output_tokens": out_tok,
                 "peak_memory_bytes": {"device": None, "host": 3 * 2**30}, "energy_j": 120.0, "energy_source": "rapl",
                 "joules_per_output_token": 120.0 / out_tok, "joules_per_correct": 120.0 / correct if correct else None,
                 "roofline": {"bandwidth_gbps": 33.0, "bound_tokens_per_s": 10.0, "fraction": 0.5}},
        "cost": {"price_per_hour_usd": price, "price_source": None if price is None else "user", "basis": "time", "usd_total": usd,
                 "usd_per_1m_output_tokens": None if usd is None else usd / out_tok * 1e6,
                 "usd_per_correct": None if usd is None or not correct else usd / correct},
        "claims": [{"task": next(iter(tasks)), "metric": "accuracy", "claimed": 0.839, "measured": 0.5, "ci95": [0.3, 0.7],
                    "verdict": "below", "gap": -0.339, "source": "paper <b>table 1</b>", "protocol_differences": ["fewer samples"],
                    "note": "outside"}] if claims else [],
        "protocol_differences": {}, "warnings": ["random weights: <i>accuracy</i> is meaningless"],
        "samples": {"done": len(all_rows), "planned": len(all_rows)},
    }


def make_run(root: Path, name: str, rows_by_task: dict[str, list[dict]], **kw) -> Path:
    d = Path(root) / name
    d.mkdir(parents=True)
    (d / "run.json").write_text(json.dumps(make_run_json(rows_by_task, **kw)))
    (d / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for rows in rows_by_task.values() for r in rows))
    return d


def tiny_run(root: Path, n: int = 12) -> Path:
    return make_run(root, "run", {"gsm8k": make_samples("gsm8k", [i % 3 != 0 for i in range(n)])})


def _img_sources(page: str) -> list[str]:
    return re.findall(r'<img [^>]*src="([^"]+)"', page)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One rendered run shared by the tests that only read it (rendering takes seconds)."""
    run = tiny_run(tmp_path_factory.mktemp("report"))
    return run, write_reports(run)


def test_write_reports_writes_both_files(report):
    run, (md, page) = report
    assert md == run / "report.md" and page == run / "report.html"
    text = md.read_text()
    assert "## Accuracy by difficulty level" in text and "| gsm8k | 2 |" in text
    assert "66.7%" in text  # 8 of 12 correct
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "</html>" in html


def test_html_is_self_contained(report):
    html = report[1][1].read_text()
    # No URL the browser could fetch: every src/href is a data: URI or an in-page #anchor.
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert refs and all(r.startswith(("data:image/png;base64,", "#")) for r in refs)
    assert "http://" not in html and "https://" not in html and "url(" not in html and "@import" not in html
    assert "default-src 'none'" in html  # scripts and fetches are refused even if escaping ever failed
    images = _img_sources(html)
    assert len(images) >= 6  # 3 latency histograms, scatter, thinking and output lengths, levels
    for src in images:
        png = base64.b64decode(src.split(",", 1)[1])
        assert png.startswith(b"\x89PNG") and len(png) > 2000


def test_untrusted_text_is_escaped(report):
    html = report[1][1].read_text()
    assert SCRIPT not in html and "<script" not in html.lower()
    assert str(markupsafe.escape(SCRIPT)) in html  # "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;"
    assert "<b>table 1</b>" not in html and "&lt;b&gt;table 1&lt;/b&gt;" in html  # claim source
    assert "<i>accuracy</i>" not in html  # warnings are data too


def test_sections_and_anchors(report):
    html = report[1][1].read_text()
    for section in ("accuracy", "claims", "performance", "lengths", "levels", "samples"):
        assert f'id="{section}"' in html and f'href="#{section}"' in html
    links = set(re.findall(r'href="#(s-\d+)"', html))
    targets = set(re.findall(r'id="(s-\d+)"', html))
    assert links == targets == {f"s-{i}" for i in range(12)}
    assert html.count('<details class="sample">') == 12
    assert 'class="badge bad">below<' in html and "-33.9 pts" in html


def test_samples_are_capped_and_say_so(tmp_path):
    run = tiny_run(tmp_path, n=30)
    _, page = write_reports(run, max_samples=5)
    html = page.read_text()
    assert html.count('<details class="sample">') == 5
    assert "Showing the first 5 of 30 samples" in html


def test_missing_measurements_are_notes_not_crashes(tmp_path):
    rows = make_samples("gsm8k", [True, False, True, False], levels=False, ttft=False)
    for r in rows:
        r["thinking_tokens"] = None
    run = make_run(tmp_path, "api", {"gsm8k": rows}, price=None, claims=False)
    html = write_reports(run)[1].read_text()
    assert "the server does not stream" in html  # why TTFT is missing
    assert "no thinking tokens counted" in html
    assert 'id="levels"' not in html and 'id="claims"' not in html
    assert "no price given" in html


def test_long_text_is_clipped():
    text = "a" * 5000 + "MIDDLE" + "b" * 5000
    out = clip(text, head=100, tail=50)
    assert out.startswith("a" * 100) and out.endswith("b" * 50) and "MIDDLE" not in out
    assert "characters omitted" in out
    assert clip("short") == "short" and clip(None) == ""


def test_usd_has_no_exponent():
    assert usd(6.133e-05) == "$0.0000613" and usd(0.7258) == "$0.726" and usd(1234.5) == "$1,234.50"
    assert usd(0) == "$0.00" and usd(None) == "—"


def test_sample_verdicts():
    assert sample_verdict({"correct": True, "finish_reason": "eos"})[0] == "correct"
    assert sample_verdict({"correct": False, "finish_reason": "length"})[0] == "truncated"
    assert sample_verdict({"correct": False, "correct_lenient": True, "finish_reason": "eos"})[0] == "lenient only"
    assert sample_verdict({"correct": False, "finish_reason": "error"})[0] == "error"
    assert sample_verdict({"correct": False, "finish_reason": "eos"})[0] == "wrong"


def test_render_markdown_keeps_its_shape(tmp_path):
    data = make_run_json({"gsm8k": make_samples("gsm8k", [True, False, True, True])})
    md = render_markdown(data)
    assert md.startswith("# Run abc123: org/Model-1.5B")
    assert "| gsm8k | 4 | 1 | 0 | accuracy | 75.0% |" in md  # n, k, failed samples, metric
    assert "**below**" in md and "-33.9 pts" in md


def test_render_html_counts_steps():
    data = make_run_json({"gsm8k": make_samples("gsm8k", [True, False])})
    steps = []
    render_html(data, make_samples("gsm8k", [True, False]), step=steps.append)
    assert len(steps) == 8  # 3 histograms, scatter, 2 length histograms, 1 level chart, samples


def test_progress_is_silent_without_a_terminal(capsys):
    with progress("x", total=2, show=False) as advance:
        advance()
        advance(description="y")
    assert capsys.readouterr().err == ""


def test_histogram_and_levels_handle_edge_cases():
    assert plots.histogram([None, None], title="t", xlabel="x") is None
    assert plots.histogram([1.0, 1.0, 1.0], title="t", xlabel="x").startswith(b"\x89PNG")  # one distinct value
    assert plots.histogram([1.0, float("nan"), 2.0], title="t", xlabel="x", highlight=[True, False, False]) is not None
    with pytest.raises(ValueError):
        plots.histogram([1.0], title="t", xlabel="x", highlight=[True, False])
    assert plots.level_bars({}, title="t") is None
    assert plots.level_bars({"1": {"n": 3, "accuracy": 0.5, "ci95": [0.1, 0.9]}}, title="t").startswith(b"\x89PNG")


def test_markdown_and_html_write_numbers_the_same_way(tmp_path):
    """One formatting module: bytes, dollars and percentages read alike in report.md and report.html."""
    run = tiny_run(tmp_path)
    doc = json.loads((run / "run.json").read_text())
    doc["perf"]["peak_memory_bytes"] = {"device": {"allocated": 400_000_000, "reserved": 440_844_288}, "host": 3 * 2**30}
    doc["cost"]["usd_total"] = 6.133e-05
    (run / "run.json").write_text(json.dumps(doc))
    md, page = (p.read_text() for p in write_reports(run))
    for shown in ("420.42 MiB", "381.47 MiB", "3.00 GiB", "$0.0000613", "66.7%"):
        assert shown in md and shown in page, shown
    assert "440,844,288" not in md and "bytes" not in md.split("## Performance")[1]
