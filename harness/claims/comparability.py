"""Whether a run can support a verdict at all, decided before any statistic is looked at.

A measured number is compared with a published one (harness/claims/verdicts.py), with a
published relation between two models (harness/claims/comparative.py) or with another run
(harness/reports/compare.py) only when every material condition holds. Each failed condition is
a reason: a machine-readable `code` plus a `detail` sentence. The conditions and thresholds are
documented in model_cards/README.md ("When a verdict is given") and results/README.md:

- random_weights: the model's parameters are random, not the published checkpoint.
- truncation: more than MAX_TRUNCATION of the traces hit the token budget, or the budget is
  below the claim's while any trace was cut (cut answers count as wrong).
- protocol: a different prompt protocol than the claim's, unless the card lists `protocol`
  under `protocol.immaterial`.
- sampling: different decoding (greedy vs the claim's temperature, another top-p, top-k, min-p or penalty), unless the
  card lists `sampling` under `protocol.immaterial`.
- samples: fewer samples per problem than the metric needs (maj@64 needs 64; pass@1 averaged
  over any number of samples is fine).
- scripted: the answers come from the scripted fake backend, not a model.

A quantised or different-dtype model is a caveat, not a reason: the verdict stands, and says so.
"""

from __future__ import annotations

import re

from harness.cards.settings import SAMPLING_COMPARED
from harness.core.spec import parse as parse_spec

MAX_TRUNCATION = 0.05  # share of traces cut at the token budget above which accuracy is not the model's
MATERIAL = ("random_weights", "truncation", "protocol", "sampling", "samples", "scripted")
IMMATERIAL_OK = ("protocol", "sampling")  # what a card may mark immaterial
_EPS = 1e-9
_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}


def _reason(code: str, detail: str) -> dict:
    return {"code": code, "detail": detail}


def samples_needed(metric: str | None) -> int:
    """Samples per problem a metric needs: maj@N / cons@N / pass@N need N; accuracy and pass@1 need 1."""
    m = re.fullmatch(r"(?:maj|cons|pass)@(\d+)", metric or "")
    return int(m.group(1)) if m else 1


def _dtype(x) -> str:
    s = str(x or "").replace("torch.", "")
    return _DTYPES.get(s, s)


def run_reasons(task: dict, model: dict, *, want: dict | None = None, metric: str | None = None,
                immaterial: tuple[str, ...] | list[str] = ()) -> tuple[list[dict], list[str]]:
    """(reasons, caveats) for one task block of a run.

    `task` is run.json `tasks.<task>` (truncation_rate, k, settings); `model` is run.json `model`
    (random_weights, backend, dtype, quantization). `want` holds the claim's stated settings
    (protocol, temperature, top_p, max_new_tokens, dtype; None values are not compared); without
    it only the run's own conditions are checked. `metric` is the run metric being judged.
    """
    reasons: list[dict] = []
    caveats: list[str] = []
    settings = task.get("settings") or {}
    want = want or {}
    if model.get("random_weights") or parse_spec(str(model.get("name_or_path") or "")).is_random:
        reasons.append(_reason("random_weights", "random weights: the model's parameters are random, not the published checkpoint"))
    if model.get("backend") == "fake":
        reasons.append(_reason("scripted", "scripted fake backend: the answers are not a model's"))
    rate = task.get("truncation_rate")
    budget, want_budget = settings.get("max_new_tokens"), want.get("max_new_tokens")
    if rate is not None and rate > MAX_TRUNCATION + _EPS:
        reasons.append(_reason("truncation", f"{100 * rate:.0f}% of traces hit the token budget (max_new_tokens {budget}); "
                                             f"above {100 * MAX_TRUNCATION:.0f}% the measured accuracy is the budget's, not the model's"))
    elif rate and budget is not None and want_budget is not None and budget < want_budget:
        reasons.append(_reason("truncation", f"max_new_tokens {budget} is below the claim's {want_budget} and "
                                             f"{100 * rate:.1f}% of traces were cut"))
    if want.get("protocol") and settings.get("protocol") and settings["protocol"] != want["protocol"] and "protocol" not in immaterial:
        reasons.append(_reason("protocol", f"prompt protocol {settings['protocol']!r} instead of the claim's {want['protocol']!r}"))
    if "sampling" not in immaterial:
        diffs = []
        for key in SAMPLING_COMPARED:  # every decoding number a card can state (a run of an older schema lacks some: skipped)
            got, need = settings.get(key), want.get(key)
            if got is not None and need is not None and abs(float(got) - float(need)) > _EPS:
                greedy = " (greedy)" if key == "temperature" and float(got) == 0 else ""
                diffs.append(f"{key} {float(got):g}{greedy} instead of {float(need):g}")
        if diffs:
            reasons.append(_reason("sampling", "decoding differs from the claim's: " + ", ".join(diffs)))
    need_k, k = samples_needed(metric), task.get("k") or settings.get("num_samples") or 1
    if k < need_k:
        reasons.append(_reason("samples", f"{metric} needs {need_k} samples per problem; this run drew {k}"))
    got_dtype, want_dtype = _dtype(model.get("dtype")), _dtype(want.get("dtype"))
    if got_dtype and got_dtype != "auto" and want_dtype and got_dtype != want_dtype:
        caveats.append(f"dtype {got_dtype} instead of the claim's {want_dtype}: small accuracy shifts are possible")
    if model.get("quantization"):
        caveats.append(f"quantised weights ({model['quantization']}) instead of the {want_dtype or 'published'} checkpoint: "
                       "accuracy may be lower than the published model's")
    return reasons, caveats


def pair_reasons(a: dict, b: dict, task: str) -> tuple[list[dict], list[str]]:
    """(reasons, caveats) why two runs' accuracies on `task` cannot be compared: each run's own
    conditions (labelled A and B), and a different prompt protocol or decoding between them."""
    reasons: list[dict] = []
    caveats: list[str] = []
    ta, tb = ((r.get("tasks") or {}).get(task) or {} for r in (a, b))
    for tag, run, t in (("A", a, ta), ("B", b, tb)):
        r, c = run_reasons(t, run.get("model") or {})
        reasons += [{"code": x["code"], "detail": f"{tag}: {x['detail']}"} for x in r]
        caveats += [f"{tag}: {x}" for x in c]
    sa, sb = ta.get("settings") or {}, tb.get("settings") or {}
    if sa.get("protocol") and sb.get("protocol") and sa["protocol"] != sb["protocol"]:
        reasons.append(_reason("protocol", f"the runs used different prompt protocols: A {sa['protocol']!r}, B {sb['protocol']!r}"))
    diffs = [f"{key} A {sa[key]:g}, B {sb[key]:g}" for key in ("temperature", "top_p")
             if sa.get(key) is not None and sb.get(key) is not None and abs(float(sa[key]) - float(sb[key])) > _EPS]
    if diffs:
        reasons.append(_reason("sampling", "the runs decoded differently: " + "; ".join(diffs)))
    ma, mb = a.get("model") or {}, b.get("model") or {}
    if _dtype(ma.get("dtype")) != _dtype(mb.get("dtype")):
        caveats.append(f"the runs differ in dtype: A {ma.get('dtype')}, B {mb.get('dtype')}")
    return reasons, caveats


def sentence(reasons: list[dict]) -> str:
    """One sentence saying why no verdict is given."""
    return "not comparable: " + "; ".join(r["detail"] for r in reasons) + " (the measured value and interval are indicative only)"
