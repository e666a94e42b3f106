"""`harness diff RUN_A RUN_B`: two runs of the same items compared sample by sample.

Where two engines (or two settings of one) are meant to do the same work, a score difference means
little until one looks at the samples. This module pairs the rows of two run folders by
(task, item, sample) and reports, per pair and in total:
- identical outputs (the same generated text), and for the others the first divergent token: both
  outputs tokenized with the model's tokenizer, the first index where the ids differ, the two tokens;
- the reference margin there: the log-probabilities a transformers model gives both engines' tokens
  after the shared prefix (prompt + common output ids), re-scored on demand, so a divergence at a
  near-tie (margin <= `near_tie` nats) is told apart from one at a wide margin (a bug); without a
  loadable model the margin is "unknown", never guessed;
- correctness flips both ways with McNemar's exact test, output-length and truncation shifts, and
  TTFT/TPOT ratios (B over A, geometric mean of per-sample ratios).

Runs are refused, with one line naming the difference, when their tasks, items, prompts or decoding
settings differ: a paired comparison of different work is not a comparison.
Outputs: console lines, `diff.json` and a self-contained `diff.html` in the output folder.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from harness.errors import ConfigError
from harness.results.store import all_samples, load_run, sample_key, write_json_atomic, write_text_atomic
from harness.stats import mcnemar

# The decoding settings two runs must share (run.json tasks.<task>.settings) to be paired.
DECODING = ("protocol", "system_prompt", "force_think", "temperature", "top_p", "top_k", "min_p", "repetition_penalty",
            "presence_penalty", "frequency_penalty", "max_new_tokens", "num_samples", "seed")
NEAR_TIE_NATS = 0.5  # a divergence whose two tokens are this close in log-probability is a near-tie


class Margin(TypedDict):
    """The reference model's view of one divergence point."""

    logprob_a: float  # log-probability of A's token after the shared prefix
    logprob_b: float
    top1: str
    top2: str
    top2_margin: float  # log p(top1) - log p(top2): how close the model was to a tie there
    near_tie: bool  # |logprob_a - logprob_b| <= near_tie nats


@dataclass
class Pair:
    """One (task, item, sample) in both runs."""

    key: str
    identical: bool
    correct_a: bool
    correct_b: bool
    output_tokens_a: int | None
    output_tokens_b: int | None
    truncated_a: bool
    truncated_b: bool
    diverge_at: int | None = None  # index of the first differing output token (or character, `unit`)
    unit: str = "token"
    token_a: str | None = None
    token_b: str | None = None
    margin: Margin | None = None
    margin_unknown: str | None = None  # why there is no margin


@dataclass
class DiffResult:
    """Everything diff.json holds."""

    run_a: str
    run_b: str
    engine_a: str
    engine_b: str
    n: int
    identical: int
    near_tie: int  # divergences the reference margin explains
    wide_margin: int  # divergences at a margin over `near_tie_nats` (to investigate)
    margin_unknown: int
    near_tie_nats: float
    reference: str | None  # the model that re-scored divergences, with its dtype
    correct_a: int
    correct_b: int
    mcnemar: dict[str, Any]
    truncated_a: int
    truncated_b: int
    mean_output_tokens_a: float | None
    mean_output_tokens_b: float | None
    ttft_ratio_b_over_a: float | None
    tpot_ratio_b_over_a: float | None
    pairs: list[Pair] = field(default_factory=list)


# ---- pairing, or refusing ------------------------------------------------------------------------
def _engine(run) -> str:
    return f"{run.model.backend} ({run.model.name_or_path})"


def check_pairable(run_a, run_b, rows_a: Sequence[dict], rows_b: Sequence[dict]) -> None:
    """Raise ConfigError (one line) when the two runs did not do the same work."""
    fix = "diff only runs of the same tasks, data, prompt protocol and decoding settings"
    if set(run_a.tasks) != set(run_b.tasks):
        raise ConfigError(f"the runs have different tasks: {sorted(run_a.tasks)} vs {sorted(run_b.tasks)}", fix)
    for task in sorted(run_a.tasks):
        sa, sb = run_a.tasks[task].settings, run_b.tasks[task].settings
        differ = [f"{k} {sa.get(k)!r} vs {sb.get(k)!r}" for k in DECODING if sa.get(k) != sb.get(k)]
        if differ:
            raise ConfigError(f"task {task}: decoding settings differ: {'; '.join(differ)}", fix)
    ka, kb = {sample_key(r): r for r in rows_a}, {sample_key(r): r for r in rows_b}
    if set(ka) != set(kb):
        only_a, only_b = sorted(set(ka) - set(kb)), sorted(set(kb) - set(ka))
        first = only_a[0] if only_a else only_b[0]
        raise ConfigError(f"the runs have different items: {len(only_a)} sample(s) only in A, {len(only_b)} only in B "
                          f"(first: {'/'.join(map(str, first))})", fix)
    differ_prompt = [k for k in ka if ka[k].get("prompt") != kb[k].get("prompt")]
    if differ_prompt:
        first = differ_prompt[0]
        for side, rows in (("A", ka), ("B", kb)):
            if _as_messages(rows[first].get("prompt")):
                raise ConfigError(f"run {side} recorded its prompts as chat messages (an openai: run without a local tokenizer), "
                                  "so they cannot be checked against the other run's rendered prompts",
                                  "rerun it with --backend-option tokenizer=MODEL_FOLDER (the served model's tokenizer) so its "
                                  "prompts are recorded as the text the server's chat template makes")
        raise ConfigError(f"the runs sent different prompts for {len(differ_prompt)} of {len(ka)} sample(s) "
                          f"(first: {'/'.join(map(str, sorted(differ_prompt)[0]))}): a different protocol or chat template", fix)


def _as_messages(prompt) -> bool:
    """Is this recorded prompt a JSON list of chat messages (what an openai: run records without a tokenizer)?"""
    if not isinstance(prompt, str) or not prompt.startswith("[{"):
        return False
    try:
        value = json.loads(prompt)
    except ValueError:
        return False
    return isinstance(value, list) and all(isinstance(m, dict) and "role" in m for m in value)


# ---- divergence and its margin -------------------------------------------------------------------
Tokenize = Callable[[str], list[int]]


class Reference:
    """A transformers model that re-scores a divergence point: log-probabilities of the next token
    after prompt + shared output prefix. Loaded once, only when some pair diverges."""

    def __init__(self, path: str, dtype: str = "float32"):
        """Load the tokenizer and model from the folder `path` in `dtype`."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.path, self.dtype, self._torch = path, dtype, torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).eval()

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, no special tokens added (a rendered prompt carries its own)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def margin(self, prompt: str, prefix: list[int], a: int, b: int, near_tie: float) -> Margin:
        """Log-probabilities of tokens `a` and `b` and the top-2 gap after prompt + `prefix`."""
        torch = self._torch
        ids = torch.tensor([self.encode(prompt) + prefix])
        with torch.no_grad():
            logits = self.model(ids).logits[0, -1].float()
        logp = torch.log_softmax(logits, dim=-1)
        top = torch.topk(logp, 2)
        la, lb = float(logp[a]), float(logp[b])
        return Margin(logprob_a=la, logprob_b=lb, top1=str(self.tokenizer.decode([int(top.indices[0])])),
                      top2=str(self.tokenizer.decode([int(top.indices[1])])),
                      top2_margin=float(top.values[0] - top.values[1]), near_tie=abs(la - lb) <= near_tie)


def first_divergence(a: list[int] | str, b: list[int] | str) -> int | None:
    """Index of the first differing element; the shorter length when one is a prefix of the other; None when equal."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def _pair(key: str, ra: dict, rb: dict, reference: Reference | None, no_reference: str, near_tie: float) -> Pair:
    out_a, out_b = ra.get("output") or "", rb.get("output") or ""
    pair = Pair(key=key, identical=out_a == out_b, correct_a=bool(ra.get("correct")), correct_b=bool(rb.get("correct")),
                output_tokens_a=ra.get("output_tokens"), output_tokens_b=rb.get("output_tokens"),
                truncated_a=ra.get("finish_reason") == "length", truncated_b=rb.get("finish_reason") == "length")
    if pair.identical:
        return pair
    if reference is None:
        i = first_divergence(out_a, out_b) or 0  # not identical, so a position exists
        pair.diverge_at, pair.unit = i, "character"
        pair.token_a, pair.token_b = out_a[i:i + 12], out_b[i:i + 12]
        pair.margin_unknown = no_reference
        return pair
    ids_a, ids_b = reference.encode(out_a), reference.encode(out_b)
    at = first_divergence(ids_a, ids_b)
    pair.diverge_at = at
    if at is None:  # different text, same ids (cannot happen with a lossless tokenizer, but say so)
        pair.margin_unknown = "the outputs differ only in text the tokenizer maps to the same ids"
        return pair
    i = at
    tok = reference.tokenizer
    pair.token_a = str(tok.decode([ids_a[i]])) if i < len(ids_a) else "<end>"
    pair.token_b = str(tok.decode([ids_b[i]])) if i < len(ids_b) else "<end>"
    if i >= len(ids_a) or i >= len(ids_b):
        pair.margin_unknown = "one output ends where the other goes on (an end-of-sequence or stop, not a token choice)"
        return pair
    pair.margin = reference.margin(ra.get("prompt") or "", ids_a[:i], ids_a[i], ids_b[i], near_tie)
    return pair


# ---- the comparison ------------------------------------------------------------------------------
def _mean(values: Sequence[float | int | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def _geo_ratio(a: Sequence[float | None], b: Sequence[float | None]) -> float | None:
    """Geometric mean of per-sample b/a ratios over the pairs where both were measured."""
    logs = [math.log(y / x) for x, y in zip(a, b) if x and y and x > 0 and y > 0]
    return math.exp(sum(logs) / len(logs)) if logs else None


def reference_model(run_a, run_b, given: str | None) -> str | None:
    """The model folder to re-score divergences with: --reference-model, else the first run's model
    when it is a local Hugging Face folder (config.json beside its weights)."""
    if given:
        return given
    for run in (run_a, run_b):
        path = Path(run.model.name_or_path)
        if path.is_dir() and (path / "config.json").is_file():
            return str(path)
    return None


def diff_runs(dir_a: str | Path, dir_b: str | Path, *, reference: str | None = None, near_tie: float = NEAR_TIE_NATS,
              rescore: bool = True, dtype: str = "float32") -> DiffResult:
    """Pair two run folders and compare them (raises ConfigError when they cannot be paired)."""
    run_a, run_b = load_run(dir_a), load_run(dir_b)
    rows_a = [r for r in all_samples(dir_a)]
    rows_b = [r for r in all_samples(dir_b)]
    if not rows_a or not rows_b:
        raise ConfigError(f"{dir_a if not rows_a else dir_b} has no samples", "diff runs that finished at least one sample")
    check_pairable(run_a, run_b, rows_a, rows_b)
    by_b = {sample_key(r): r for r in rows_b}
    keyed = sorted((sample_key(r), r) for r in rows_a)
    ref_path = reference_model(run_a, run_b, reference) if rescore else None
    ref, why = None, "margin unknown: no transformers model to re-score with (pass --reference-model FOLDER)"
    if not rescore:
        why = "margin unknown: re-scoring switched off (--no-rescore)"
    elif ref_path and any(r.get("output") != by_b[k].get("output") for k, r in keyed):
        try:
            ref = Reference(ref_path, dtype)
        except (OSError, ValueError, ImportError) as exc:
            why = f"margin unknown: {ref_path} did not load in transformers ({type(exc).__name__})"
    pairs = [_pair("/".join(map(str, k)), r, by_b[k], ref, why, near_tie) for k, r in keyed]
    diverged = [p for p in pairs if not p.identical]
    test = mcnemar([p.correct_a for p in pairs], [p.correct_b for p in pairs], exact=True)
    rows_b_sorted = [by_b[k] for k, _ in keyed]
    rows_a_sorted = [r for _, r in keyed]
    return DiffResult(
        run_a=str(dir_a), run_b=str(dir_b), engine_a=_engine(run_a), engine_b=_engine(run_b), n=len(pairs),
        identical=sum(p.identical for p in pairs),
        near_tie=sum(1 for p in diverged if p.margin and p.margin["near_tie"]),
        wide_margin=sum(1 for p in diverged if p.margin and not p.margin["near_tie"]),
        margin_unknown=sum(1 for p in diverged if not p.margin), near_tie_nats=near_tie,
        reference=f"{ref.path} (transformers, {ref.dtype})" if ref else None,
        correct_a=sum(p.correct_a for p in pairs), correct_b=sum(p.correct_b for p in pairs), mcnemar=test,
        truncated_a=sum(p.truncated_a for p in pairs), truncated_b=sum(p.truncated_b for p in pairs),
        mean_output_tokens_a=_mean([p.output_tokens_a for p in pairs]), mean_output_tokens_b=_mean([p.output_tokens_b for p in pairs]),
        ttft_ratio_b_over_a=_geo_ratio([r.get("ttft_s") for r in rows_a_sorted], [r.get("ttft_s") for r in rows_b_sorted]),
        tpot_ratio_b_over_a=_geo_ratio([r.get("tpot_s") for r in rows_a_sorted], [r.get("tpot_s") for r in rows_b_sorted]),
        pairs=pairs)


# ---- output --------------------------------------------------------------------------------------
def _num(v: float | None, fmt: str = ".3f") -> str:
    return "n/a" if v is None else format(v, fmt)


def summary_lines(d: DiffResult) -> list[str]:
    """The console summary (the HTML page shows the same lines above its table)."""
    test = d.mcnemar
    lines = [
        f"A: {d.engine_a}", f"B: {d.engine_b}",
        f"identical outputs: {d.identical}/{d.n}",
        f"divergences: {d.n - d.identical} (near-tie <= {d.near_tie_nats} nats: {d.near_tie}, wide margin: {d.wide_margin}, "
        f"margin unknown: {d.margin_unknown})" + (f"; re-scored with {d.reference}" if d.reference else ""),
        f"correct: A {d.correct_a}/{d.n}, B {d.correct_b}/{d.n}; flips A right->B wrong {test['b10']}, A wrong->B right {test['b01']}; "
        f"McNemar exact p = {test['p_value']:.3g}",
        f"truncated (hit max_new_tokens): A {d.truncated_a}, B {d.truncated_b}; mean output tokens A {_num(d.mean_output_tokens_a, '.1f')}, "
        f"B {_num(d.mean_output_tokens_b, '.1f')}",
        f"TTFT ratio B/A {_num(d.ttft_ratio_b_over_a)}, TPOT ratio B/A {_num(d.tpot_ratio_b_over_a)} (geometric mean of per-sample ratios)",
    ]
    for p in d.pairs:
        if p.identical:
            continue
        where = f"{p.unit} {p.diverge_at}: A {p.token_a!r} vs B {p.token_b!r}"
        if p.margin:
            m = p.margin
            note = (f"logp A {m['logprob_a']:.3f}, B {m['logprob_b']:.3f}, top-2 margin {m['top2_margin']:.3f}"
                    f" -> {'near-tie' if m['near_tie'] else 'WIDE MARGIN'}")
        else:
            note = p.margin_unknown or "margin unknown"
        lines.append(f"  {p.key}: first divergence at {where}; {note}")
    return lines


_HTML = """<!doctype html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>harness diff</title><style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}.same{color:#070}.tie{color:#a60}.bad{color:#b00}
pre{margin:0;white-space:pre-wrap}</style></head><body>
<h1>harness diff</h1>
{% for line in lines if not line.startswith("  ") %}<p>{{ line }}</p>{% endfor %}
<table><tr><th>sample</th><th>outputs</th><th>first divergence</th><th>margin (nats)</th><th>correct A/B</th>
<th>tokens A/B</th><th>truncated A/B</th></tr>
{% for p in pairs %}<tr><td>{{ p.key }}</td>
<td class="{{ 'same' if p.identical else ('tie' if p.margin and p.margin.near_tie else 'bad') }}">
{{ 'identical' if p.identical else ('near-tie' if p.margin and p.margin.near_tie else ('wide margin' if p.margin else 'differ')) }}</td>
<td>{% if not p.identical %}{{ p.unit }} {{ p.diverge_at }}: <pre>A {{ p.token_a|tojson }} | B {{ p.token_b|tojson }}</pre>{% endif %}</td>
<td>{% if p.margin %}A {{ '%.3f'|format(p.margin.logprob_a) }}, B {{ '%.3f'|format(p.margin.logprob_b) }};
top-2 {{ '%.3f'|format(p.margin.top2_margin) }}{% elif not p.identical %}{{ p.margin_unknown }}{% endif %}</td>
<td>{{ p.correct_a }} / {{ p.correct_b }}</td><td>{{ p.output_tokens_a }} / {{ p.output_tokens_b }}</td>
<td>{{ p.truncated_a }} / {{ p.truncated_b }}</td></tr>{% endfor %}
</table></body></html>
"""


def render_html(d: DiffResult) -> str:
    """A self-contained page (no scripts, no external URLs; every model text escaped)."""
    import jinja2

    env = jinja2.Environment(autoescape=True)
    return env.from_string(_HTML).render(lines=summary_lines(d), pairs=[asdict(p) for p in d.pairs])


def default_output_dir(dir_a: str | Path, dir_b: str | Path) -> Path:
    """Beside run A: `diff_<A>__<B>` (the run folders themselves are left untouched)."""
    a, b = Path(dir_a).resolve(), Path(dir_b).resolve()
    return a.parent / f"diff_{a.name}__{b.name}"


def write(d: DiffResult, out_dir: str | Path) -> list[Path]:
    """diff.json and diff.html, each written atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "diff.json", asdict(d))
    write_text_atomic(out / "diff.html", render_html(d))
    return [out / "diff.json", out / "diff.html"]


def cmd_diff(args) -> int:
    """The `harness diff` subcommand: print, write, exit 0 (exit 2 with one line when the runs cannot be paired)."""
    if args.near_tie <= 0:
        raise ConfigError(f"--near-tie must be a positive number of nats, got {args.near_tie}", "e.g. --near-tie 0.5")
    d = diff_runs(args.run_a, args.run_b, reference=args.reference_model, near_tie=args.near_tie,
                  rescore=not args.no_rescore, dtype=args.reference_dtype)
    for line in summary_lines(d):
        print(line)
    files = write(d, args.output_dir or default_output_dir(args.run_a, args.run_b))
    print(f"wrote {', '.join(str(f) for f in files)}")
    return 0


__all__ = ["DECODING", "DiffResult", "Margin", "NEAR_TIE_NATS", "Pair", "Reference", "check_pairable", "cmd_diff",
           "diff_runs", "first_divergence", "render_html", "summary_lines", "write"]
