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
- model: the run's model is not shown to be the card's (harness/cards/identity.py: Hub id and pinned
  revision, a local model's fingerprint, or a served name the server does not contradict).
- data: the problems are not the benchmark's official set, nor part of it (harness/tasks/official.py).
- subset: part of the official set chosen otherwise than by a seeded uniform sample: `--limit` (the
  first N rows), a hand-picked file, a task option that narrows the set. A `--sample N` run keeps its verdict.
- budget (between two runs only): different token budgets while the smaller one cut answers.

Every difference is one `Difference` (code, detail, material); one list of them serves claims,
comparative claims, `harness compare` and the reports. Material ones are reasons; the rest caveats.

A quantised or different-dtype model, a served model's unverified name, a fingerprint match, a uniform
sample and data whose official set the harness does not record are caveats, not reasons: the verdict
stands, and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from harness.cards.identity import model_identity
from harness.cards.schema import Card
from harness.cards.settings import SAMPLING_COMPARED
from harness.core.generation import DECODING_SETTINGS
from harness.core.spec import parse as parse_spec

MAX_TRUNCATION = 0.05  # share of traces cut at the token budget above which accuracy is not the model's
MATERIAL = ("model", "data", "subset", "random_weights", "truncation", "protocol", "sampling", "budget", "samples", "scripted")
IMMATERIAL_OK = ("protocol", "sampling")  # what a card may mark immaterial
_EPS = 1e-9
_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}


@dataclass(frozen=True)
class Difference:
    """One way a run differs from a claim, or two runs from each other. `material`: it stops a verdict."""

    code: str
    detail: str
    material: bool = True

    def reason(self) -> dict[str, str]:
        return {"code": self.code, "detail": self.detail}


def split(diffs: list[Difference]) -> tuple[list[dict[str, str]], list[str]]:
    """(reasons, caveats): the material differences as run.json reasons, the rest as caveat sentences."""
    return [d.reason() for d in diffs if d.material], [d.detail for d in diffs if not d.material]


def _reason(code: str, detail: str) -> dict:
    return {"code": code, "detail": detail}


def samples_needed(metric: str | None) -> int:
    """Samples per problem a metric needs: maj@N / cons@N / pass@N need N; accuracy and pass@1 need 1."""
    m = re.fullmatch(r"(?:maj|cons|pass)@(\d+)", metric or "")
    return int(m.group(1)) if m else 1


def _dtype(x) -> str:
    s = str(x or "").replace("torch.", "")
    return _DTYPES.get(s, s)


def _meaningless(model: dict[str, Any]) -> bool:
    return bool(model.get("random_weights") or parse_spec(str(model.get("name_or_path") or "")).is_random or model.get("backend") == "fake")


def model_differences(card: Card, model: dict[str, Any]) -> list[Difference]:
    """Whether run.json `model` is the card's model (harness/cards/identity.py), as differences."""
    if _meaningless(model):  # random weights and the scripted engine have reasons of their own
        return []
    ident = model_identity(card, model)
    out = [Difference("model", p) for p in ident.problems] if not ident.ok else []
    return out + [Difference("model", c, material=False) for c in ident.caveats]


def data_differences(task: dict[str, Any], name: str = "") -> list[Difference]:
    """Whether a task block measured the benchmark's official set (run.json `tasks.<task>.data`)."""
    data = task.get("data")
    settings = task.get("settings") or {}
    if not data:  # a run.json before 1.5: only --limit is known
        limit, n, total = settings.get("limit"), settings.get("n") or task.get("n"), settings.get("n_total") or task.get("dataset_size")
        if limit is not None and n is not None and total is not None and n < total:
            return [Difference("subset", f"--limit {limit}: {n} of {total} problems (the first rows, not a uniform sample)")]
        return []
    selection, detail = data.get("selection"), data.get("detail") or ""
    if selection == "other":
        return [Difference("data", f"not the official {name or 'benchmark'} set: {detail}")]
    if selection == "subset":
        return [Difference("subset", f"{detail}; a verdict on part of a benchmark needs a seeded uniform sample (--sample N)")]
    if selection == "sample":
        return [Difference("subset", f"{detail}: the interval is over these {data.get('n')} problems", material=False)]
    if selection == "unknown":
        return [Difference("data", detail, material=False)]
    return []


def run_differences(task: dict, model: dict, *, want: dict | None = None, metric: str | None = None,
                    immaterial: tuple[str, ...] | list[str] = (), card: Card | None = None, name: str = "") -> list[Difference]:
    """Every difference of one task block of a run from a claim (see run_reasons)."""
    diffs: list[Difference] = []
    settings = task.get("settings") or {}
    want = want or {}
    if model.get("random_weights") or parse_spec(str(model.get("name_or_path") or "")).is_random:
        diffs.append(Difference("random_weights", "random weights: the model's parameters are random, not the published checkpoint"))
    if model.get("backend") == "fake":
        diffs.append(Difference("scripted", "scripted fake backend: the answers are not a model's"))
    if card is not None:
        if model:  # an empty record (a unit call that gives no model) has nothing to identify
            diffs += model_differences(card, model)
        diffs += data_differences(task, name)
    rate = task.get("truncation_rate")
    budget, want_budget = settings.get("max_new_tokens"), want.get("max_new_tokens")
    if rate is not None and rate > MAX_TRUNCATION + _EPS:
        diffs.append(Difference("truncation", f"{100 * rate:.0f}% of traces hit the token budget (max_new_tokens {budget}); "
                                              f"above {100 * MAX_TRUNCATION:.0f}% the measured accuracy is the budget's, not the model's"))
    elif rate and budget is not None and want_budget is not None and budget < want_budget:
        diffs.append(Difference("truncation", f"max_new_tokens {budget} is below the claim's {want_budget} and "
                                              f"{100 * rate:.1f}% of traces were cut"))
    if want.get("prompt") and settings.get("protocol") != want["prompt"] and "protocol" not in immaterial:
        diffs.append(Difference("protocol", f"the claim was scored with the {want['prompt']} prompt (the card's protocol for this task); "
                                            f"this run used protocol {settings.get('protocol')!r}"))
    elif want.get("protocol") and settings.get("protocol") and settings["protocol"] != want["protocol"] and "protocol" not in immaterial:
        diffs.append(Difference("protocol", f"prompt protocol {settings['protocol']!r} instead of the claim's {want['protocol']!r}"))
    if "sampling" not in immaterial:
        changed = []
        for key in SAMPLING_COMPARED:  # every decoding number a card can state (a run of an older schema lacks some: skipped)
            got, need = settings.get(key), want.get(key)
            if got is not None and need is not None and abs(float(got) - float(need)) > _EPS:
                greedy = " (greedy)" if key == "temperature" and float(got) == 0 else ""
                changed.append(f"{key} {float(got):g}{greedy} instead of {float(need):g}")
        if changed:
            diffs.append(Difference("sampling", "decoding differs from the claim's: " + ", ".join(changed)))
    need_k, k = samples_needed(metric), task.get("k") or settings.get("num_samples") or 1
    if k < need_k:
        diffs.append(Difference("samples", f"{metric} needs {need_k} samples per problem; this run drew {k}"))
    got_dtype, want_dtype = _dtype(model.get("dtype")), _dtype(want.get("dtype"))
    if got_dtype and got_dtype != "auto" and want_dtype and got_dtype != want_dtype:
        diffs.append(Difference("dtype", f"dtype {got_dtype} instead of the claim's {want_dtype}: small accuracy shifts are possible",
                                material=False))
    if model.get("quantization"):
        diffs.append(Difference("quantization", f"quantised weights ({model['quantization']}) instead of the {want_dtype or 'published'} "
                                                "checkpoint: accuracy may be lower than the published model's", material=False))
    return diffs


def run_reasons(task: dict, model: dict, *, want: dict | None = None, metric: str | None = None,
                immaterial: tuple[str, ...] | list[str] = (), card: Card | None = None, name: str = "") -> tuple[list[dict], list[str]]:
    """(reasons, caveats) for one task block of a run.

    `task` is run.json `tasks.<task>` (truncation_rate, k, settings, data); `model` is run.json `model`
    (random_weights, backend, dtype, quantization, fingerprint, reported_models). `want` holds the claim's
    stated settings (protocol, temperature, top_p, max_new_tokens, dtype; None values are not compared);
    without it only the run's own conditions are checked. `metric` is the run metric being judged.
    With `card`, the model must be the card's and the data the official set `name` (or a uniform sample of it).
    """
    return split(run_differences(task, model, want=want, metric=metric, immaterial=immaterial, card=card, name=name))


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else repr(x)


def pair_differences(a: dict, b: dict, task: str) -> list[Difference]:
    """Every difference that bears on comparing two runs' accuracies on `task`: each run's own conditions
    (labelled A and B), prompt protocol, system prompt, <think> forcing, every decoding setting, the token
    budget (material when the smaller one cut answers), samples per problem, data, dtype and quantisation.
    Different models are what a comparison is for, and never a difference here."""
    diffs: list[Difference] = []
    ta, tb = ((r.get("tasks") or {}).get(task) or {} for r in (a, b))
    for tag, run, t in (("A", a, ta), ("B", b, tb)):
        diffs += [Difference(d.code, f"{tag}: {d.detail}", d.material) for d in run_differences(t, run.get("model") or {})]
    sa, sb = ta.get("settings") or {}, tb.get("settings") or {}
    for key, code in (("protocol", "protocol"), ("system_prompt", "protocol"), ("force_think", "protocol")):
        if key in sa and key in sb and sa[key] != sb[key]:
            diffs.append(Difference(code, f"the runs used different prompts: {key} A {_num(sa[key])}, B {_num(sb[key])}"))
    changed = [f"{key} A {float(sa[key]):g}, B {float(sb[key]):g}" for key in DECODING_SETTINGS
               if sa.get(key) is not None and sb.get(key) is not None and abs(float(sa[key]) - float(sb[key])) > _EPS]
    if changed:
        diffs.append(Difference("sampling", "the runs decoded differently: " + "; ".join(changed)))
    ba, bb = sa.get("max_new_tokens"), sb.get("max_new_tokens")
    if ba is not None and bb is not None and ba != bb:
        small = ta if ba < bb else tb
        cut = small.get("truncation_rate") or 0
        detail = f"the runs had different token budgets: max_new_tokens A {ba}, B {bb}"
        diffs.append(Difference("budget", detail + (f"; the smaller cut {100 * cut:.1f}% of its traces" if cut else
                                                    "; the smaller cut no trace"), material=bool(cut)))
    ka, kb = ta.get("k") or sa.get("num_samples"), tb.get("k") or sb.get("num_samples")
    if ka and kb and ka != kb:
        diffs.append(Difference("samples", f"samples per problem differ: A {ka}, B {kb} (accuracy averages them; the intervals differ)",
                                material=False))
    da, db = ta.get("data") or {}, tb.get("data") or {}
    if (da.get("selection") == "other") != (db.get("selection") == "other") and da and db:
        which = "A" if da.get("selection") == "other" else "B"
        diffs.append(Difference("data", f"{which} measured problems that are not the official set ({(da if which == 'A' else db).get('detail')})"))
    elif da.get("sha256") and db.get("sha256") and da["sha256"] != db["sha256"]:
        diffs.append(Difference("data", f"the runs measured different problem sets (A: {da.get('how')}; B: {db.get('how')}); "
                                        "only the problems both ran are paired", material=False))
    ma, mb = a.get("model") or {}, b.get("model") or {}
    if _dtype(ma.get("dtype")) != _dtype(mb.get("dtype")):
        diffs.append(Difference("dtype", f"the runs differ in dtype: A {ma.get('dtype')}, B {mb.get('dtype')}", material=False))
    return diffs


def pair_reasons(a: dict, b: dict, task: str) -> tuple[list[dict], list[str]]:
    """(reasons, caveats) why two runs' accuracies on `task` cannot be compared (pair_differences, split)."""
    return split(pair_differences(a, b, task))


def sentence(reasons: list[dict]) -> str:
    """One sentence saying why no verdict is given."""
    return "not comparable: " + "; ".join(r["detail"] for r in reasons) + " (the measured value and interval are indicative only)"
