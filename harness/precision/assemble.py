"""The matrix from what is on disk: each variant's run.json and samples, its divergence.json, and the
paired comparison with the reference's run. Pure reading and arithmetic; writing is `write_outputs`.
"""

from __future__ import annotations

from pathlib import Path

from harness.core.spec import parse as parse_spec
from harness.precision import divergence as div
from harness.precision import variants as var
from harness.precision.paired import paired_against
from harness.precision.schema import (
    BuildRecord,
    DivergenceRecord,
    MatrixResult,
    McNemar,
    NonInferiorityRecord,
    PairedDifference,
    Row,
    TaskCell,
)
from harness.precision.state import Spec, VariantState
from harness.results import store


def _samples(run_dir: Path | None) -> list[dict]:
    return store.all_samples(run_dir) if run_dir is not None and run_dir.is_dir() else []


def sample_keys(samples: list[dict]) -> set[tuple]:
    """(task, id, sample, seed) of every row: the items and seeds a variant answered."""
    return {(r.get("task"), str(r.get("id")), r.get("sample"), r.get("seed")) for r in samples}


def assemble(spec: Spec, folder: Path, states: list[VariantState], device_type: str) -> MatrixResult:
    ref_state = next((s for s in states if s.variant.name == spec.reference), None)
    ref_run = store.load_run(ref_state.run_dir) if ref_state and ref_state.status == "complete" and ref_state.run_dir else None
    ref_samples = _samples(ref_state.run_dir) if ref_run is not None and ref_state is not None else []
    rows, missing, keysets = [], [], []
    for st in states:
        row = _row(spec, st, st is ref_state, ref_run, ref_samples)
        rows.append(row)
        if row.status != "complete":
            missing.append(f"{row.precision}: {row.status}" + (f" ({row.reason})" if row.reason else ""))
        elif row.divergence is None or row.divergence.kl_divergence_mean is None:
            missing.append(f"{row.precision}: divergence " + (row.reason or "not measured (the reference has no distributions)"))
        if row.status == "complete":
            keysets.append(sample_keys(_samples(st.run_dir)))
    from harness.precision.claims import judge_all

    notes = [f"reference: {spec.reference}; every paired difference and divergence is against it"]
    notes += [f"reference caveat: {n}" for n in var.source_notes(spec.model)]
    pending = any(s.status == "pending" for s in states)
    matrix = MatrixResult(
        status="running" if pending else ("complete" if not missing else "partial"), created_utc=spec.created_utc,
        finished_utc=None if pending else store.utc_now(), model=spec.model, source_fingerprint=spec.fingerprint,
        source_notes=var.source_notes(spec.model), reference=spec.reference, margin=spec.margin,
        tasks=[str(t) for t in (spec.run_values.get("tasks") or [])] or sorted({t for r in rows for t in r.tasks}),
        settings={k: v for k, v in spec.run_values.items() if k not in ("output_dir",)},
        same_items_and_seeds=(all(k == keysets[0] for k in keysets) if len(keysets) > 1 else None),
        kl_method=div.KL_METHOD, kl_texts=div.load_texts(spec.kl_texts).source, device=device_type,
        price_per_hour_usd=spec.run_values.get("price_per_hour"), rows=rows, missing=missing, notes=notes)
    matrix.claims = judge_all(matrix)
    return matrix


def _row(spec: Spec, st: VariantState, is_ref: bool, ref_run, ref_samples: list[dict]) -> Row:
    v, b = st.variant, st.built
    row = Row(precision=v.name, is_reference=is_ref, status=st.status, reason=st.reason, kind=v.kind, engine=v.engine,
              bits_per_weight=(b.bits_per_weight if b else None) or v.nominal_bits, notes=list(b.notes) if b else [])
    if b is not None and b.model:
        row.build = BuildRecord(artifact=b.model, derived_from=b.derived_from, cached=b.cached, build_s=b.build_s)
        row.weight_bytes = b.weight_bytes
    if st.status != "complete" or st.run_dir is None:
        # every field present, null, so a reader sees the same shape on every row (and the reason beside it)
        row.tasks = {str(t): TaskCell(n=0, k=0, accuracy=None) for t in spec.run_values.get("tasks") or []}
        row.divergence = DivergenceRecord(note=f"not measured: {st.reason or st.status}")
        return row
    run = store.load_run(st.run_dir)
    samples = _samples(st.run_dir)
    row.run_dir = str(st.run_dir)
    perf, cost = run.perf, run.cost
    if perf is not None:
        row.output_tokens_per_s, row.decode_tokens_per_s = perf.output_tokens_per_s, perf.decode_tokens_per_s
        mem = perf.peak_memory_bytes
        if mem is not None:
            row.peak_memory_bytes = mem.host
            row.peak_device_memory_bytes = mem.device.allocated if mem.device else None
    if cost is not None:
        row.usd_per_1m_output_tokens, row.usd_per_correct = cost.usd_per_1m_output_tokens, cost.usd_per_correct
    for name, t in run.tasks.items():
        acc = t.metrics.get("accuracy")
        cell = TaskCell(n=t.n, k=t.k, accuracy=acc.value if acc else None, accuracy_ci95=acc.ci95 if acc else None,
                        mean_output_tokens=t.mean_output_tokens, truncation_rate=t.truncation_rate)
        ref_task = ref_run.tasks.get(name) if ref_run is not None else None
        if is_ref:
            cell.non_inferiority = NonInferiorityRecord(margin=spec.margin, verdict="reference", text="the reference")
        elif ref_task is not None:
            cell.output_tokens_shift = _sub(t.mean_output_tokens, ref_task.mean_output_tokens)
            cell.truncation_shift = _sub(t.truncation_rate, ref_task.truncation_rate)
            res = paired_against(samples, ref_samples, name, spec.margin)
            if res is not None:
                mc = McNemar(b01=res["b01"], b10=res["b10"], p_value=res["p_value"], method=res["method"]) if res["test"] == "mcnemar" else None
                cell.paired = PairedDifference(n=res["n"], diff=res["diff"], ci95=tuple(res["ci95"]), ci_method=res["ci_method"],
                                               test=res["test"], p_value=res["p_value"], mcnemar=mc)
                ni = res["non_inferiority"]
                cell.non_inferiority = NonInferiorityRecord(margin=ni.margin, verdict=ni.verdict, text=ni.text,
                                                            problems_needed=ni.problems_needed, more_problems_needed=ni.more_problems_needed)
        row.tasks[name] = cell
    if st.divergence is not None:
        note = None
        if not is_ref and st.divergence.get("engine") != _ref_engine(spec):
            note = "the reference ran on another engine: this divergence includes the engines' differences, not only the precision's"
        row.divergence = DivergenceRecord(**st.divergence, note=note)
    return row


def _ref_engine(spec: Spec) -> str:
    return var.parse_one(spec.reference).engine if not parse_spec(spec.reference).is_gguf else "llamacpp"


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def write_outputs(folder: Path, matrix: MatrixResult, final: bool) -> None:
    """matrix.json always (atomically); matrix.md and report.html when the matrix is done."""
    store.write_json_atomic(folder / "matrix.json", matrix.model_dump(mode="json"))
    if final:
        from harness.precision.report import render_html, render_markdown

        store.write_text_atomic(folder / "matrix.md", render_markdown(matrix))
        store.write_text_atomic(folder / "report.html", render_html(matrix))


__all__ = ["assemble", "sample_keys", "write_outputs"]
