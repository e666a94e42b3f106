"""Published quantisation claims (harness/data/quantization_claims.yaml) judged against a precision matrix.

A claim states how much of the full-precision accuracy a quantisation scheme recovers, for a model
family and size, on some tasks. Against a matrix it is read on the first complete row whose
precision belongs to the claim's scheme: measured recovery = accuracy(variant) / accuracy(reference),
its interval the paired difference's 95% interval over the reference's accuracy (the reference's own
sampling error is not added: an approximation, said in the schema).

Comparability first, as for every other claim (harness/claims/comparability.py): each mismatch is a
reason with a code, and any reason makes the verdict `not_comparable`, with the statistical verdict
kept beside it as `indicative_verdict`. Codes: model (family or size differs), task (no claimed
task in the matrix), quantizer (another scheme or algorithm than the source's), reference (the
reference is not the original checkpoint), scheme_row (no complete row of the claim's scheme).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from harness.cards.schema import Source, Status
from harness.claims.comparability import sentence
from harness.precision.schema import ClaimJudgement, MatrixResult

Scheme = Literal["int4_weight_only", "int8_weight_only", "w8a8"]
SCHEME_ROWS: dict[str, tuple[str, ...]] = {
    "int4_weight_only": ("torchao:int4wo", "bnb:nf4", "q4_k_m", "q4_k_s", "q4_0", "q4_1"),
    "int8_weight_only": ("torchao:int8wo", "bnb:int8", "q8_0"),
    "w8a8": ("q8_0",),
}
SAME_ALGORITHM = {"torchao:int4wo", "torchao:int8wo"}  # none is GPTQ: every GGUF or torchao row differs from a GPTQ claim


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QuantClaim(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    text: str
    scheme: Scheme
    quantizer: str
    family: str
    params_b_min: float | None = Field(None, gt=0)
    params_b_max: float | None = Field(None, gt=0)
    relation: Literal[">=", "≈"]
    recovery_pct: float = Field(gt=0, le=100)
    tolerance_pts: float | None = Field(None, gt=0)
    tasks: list[str]
    source: str
    status: Status
    notes: list[str] = Field(default_factory=list)


class QuantClaimsFile(_Strict):
    sources: dict[str, Source]
    claims: list[QuantClaim]


def load_claims(path: str | Path | None = None) -> QuantClaimsFile:
    text = Path(path).read_text(encoding="utf-8") if path else \
        resources.files("harness.data").joinpath("quantization_claims.yaml").read_text(encoding="utf-8")
    data = QuantClaimsFile.model_validate(yaml.safe_load(text))
    for c in data.claims:
        key = c.source.split()[0].rstrip(";,.")
        if key not in data.sources:
            raise ValueError(f"claim {c.id} cites source {key!r}, which quantization_claims.yaml does not define")
        if c.relation == "≈" and c.tolerance_pts is None:
            raise ValueError(f"claim {c.id}: an '≈' claim needs tolerance_pts")
    return data


def _model_facts(model: str) -> tuple[str, float | None]:
    """(lower-cased name, parameters in billions) of the matrix's source model."""
    import json

    p = Path(model)
    params = None
    if p.is_dir() and (p / "config.json").is_file():
        from harness.core.architecture import count_parameters

        params = count_parameters(json.loads((p / "config.json").read_text(encoding="utf-8")))
    elif p.is_file():
        from harness.backends.gguf_file import read_header

        params = read_header(p).parameters
    return p.name.lower(), (params / 1e9 if params else None)


def judge(claim: QuantClaim, matrix: MatrixResult) -> ClaimJudgement:
    reasons: list[dict[str, str]] = []
    name, params_b = _model_facts(matrix.model)
    if claim.family != "any" and claim.family not in name.replace("_", "-"):
        reasons.append({"code": "model", "detail": f"the claim is about {claim.family} models; the matrix measured {Path(matrix.model).name}"})
    if params_b is not None and ((claim.params_b_min and params_b < claim.params_b_min) or (claim.params_b_max and params_b > claim.params_b_max)):
        span = f"{claim.params_b_min or 0:g}B to {claim.params_b_max:g}B" if claim.params_b_max else f"{claim.params_b_min:g}B and up"
        reasons.append({"code": "model", "detail": f"the claim covers {span}; the matrix's model has {params_b:.2f}B parameters"})
    rows = [r for p in SCHEME_ROWS[claim.scheme] for r in matrix.rows if r.precision == p and r.status == "complete" and not r.is_reference]
    ref = next((r for r in matrix.rows if r.is_reference and r.status == "complete"), None)
    base = ClaimJudgement(id=claim.id, text=claim.text, source=claim.source, status=claim.status, verdict="not_comparable")
    if not rows or ref is None:
        reasons.append({"code": "scheme_row", "detail": f"no complete {claim.scheme} row ({', '.join(SCHEME_ROWS[claim.scheme])}) beside a "
                                                        "complete reference in this matrix"})
        return base.model_copy(update={"reasons": reasons})
    row = rows[0]
    if row.precision not in SAME_ALGORITHM or claim.scheme == "w8a8":
        reasons.append({"code": "quantizer", "detail": f"the claim's quantizer is {claim.quantizer}; {row.precision} is "
                                                       + ("llama.cpp's GGUF quantisation" if row.engine == "llamacpp" else "another algorithm")
                                                       + (" (block-wise 8-bit weights, 32 per scale), not a per-channel W8A8 scheme"
                                                          if claim.scheme == "w8a8" else "")})
    if matrix.source_notes:
        reasons.append({"code": "reference", "detail": "the reference is not the original checkpoint: " + matrix.source_notes[0]})
    task = next((t for t in claim.tasks if t in row.tasks), None)
    if task is None:
        task = next(iter(row.tasks), None)
        reasons.append({"code": "task", "detail": f"the claim is about {', '.join(claim.tasks)}; the matrix ran {', '.join(row.tasks) or 'nothing'}"})
    cell, ref_cell = (row.tasks.get(task), ref.tasks.get(task)) if task else (None, None)
    recovery = ci = None
    stat = "inconclusive"
    if cell and ref_cell and cell.paired and ref_cell.accuracy:
        recovery = cell.paired.diff / ref_cell.accuracy + 1
        ci = (1 + cell.paired.ci95[0] / ref_cell.accuracy, 1 + cell.paired.ci95[1] / ref_cell.accuracy)
        claimed = claim.recovery_pct / 100
        if claim.relation == ">=":
            stat = "consistent" if ci[0] >= claimed else ("below" if ci[1] < claimed else "inconclusive")
        else:
            tol = (claim.tolerance_pts or 0) / 100
            stat = "below" if ci[1] < claimed - tol else ("above" if ci[0] > claimed + tol else
                                                          ("consistent" if ci[0] >= claimed - tol and ci[1] <= claimed + tol else "inconclusive"))
    elif ref_cell is not None and not ref_cell.accuracy:
        reasons.append({"code": "reference", "detail": "the reference scored 0 on the task: recovery is undefined"})
    verdict = "not_comparable" if reasons else stat
    return base.model_copy(update={"precision": row.precision, "claimed_recovery": claim.recovery_pct / 100, "measured_recovery": recovery,
                                   "recovery_ci95": ci, "verdict": verdict, "reasons": reasons,
                                   "indicative_verdict": stat if reasons else None})


def judge_all(matrix: MatrixResult, path: str | Path | None = None) -> list[ClaimJudgement]:
    return [judge(c, matrix) for c in load_claims(path).claims]


def describe(j: ClaimJudgement) -> str:
    rec = "" if j.measured_recovery is None else f" measured recovery {100 * j.measured_recovery:.0f}%"
    if j.recovery_ci95:
        rec += f" [{100 * j.recovery_ci95[0]:.0f}%, {100 * j.recovery_ci95[1]:.0f}%]"
    why = f" — {sentence(j.reasons)}" if j.reasons else ""
    ind = f" (indicative: {j.indicative_verdict})" if j.indicative_verdict else ""
    return f"{j.id}: {j.verdict}{ind}{' on ' + j.precision if j.precision else ''};{rec or ' no measurement'}{why}"


__all__ = ["QuantClaim", "describe", "judge", "judge_all", "load_claims"]
