"""`harness claims --training`: published training-cost claims checked by arithmetic.

For every card with a `training` section (harness/cards/training.py):
- dollars: the published GPU-hours per stage, summed and compared with the claimed total, times
  the price per GPU-hour the publisher assumed (which must reproduce the claimed dollars) and
  times the user's price when given;
- implied model-FLOPs utilisation (MFU) of each stage with published tokens and context:
      model FLOPs = 6 N_active D + attention at the published context + the MTP module's 6 N_mtp D
      MFU = model FLOPs / (GPU-hours x 3600 x the GPU's dense peak FLOP/s)
  (harness/training/flops.py states the approximation), against both the BF16 and the FP8 dense peak of the
  GPU (harness/data/training_refs.yaml, with sources);
- an effective peak for the precision mix the card states (`training.precision`: e.g. DeepSeek-V3's FP8
  linear layers with BF16 attention and output head): each part of the model FLOPs runs at its own
  format's peak, so the stage needs F_fp8 / peak_fp8 + F_bf16 / peak_bf16 seconds at 100% and the
  effective peak is F / that; MFU against it is the share of the GPU-hours the arithmetic alone needs;
- a verdict that can fail: `implausible` when the MFU is above 100% of the relevant peak (the
  effective one, or without a stated mix even the FP8 one: the GPUs cannot do the claimed work in the
  claimed hours); `implausibly high` when it is above the top of the band of MFU reached in published
  *full training runs* (harness/data/training_refs.yaml, per precision, primary or secondary sources;
  throughput benchmarks are listed but never in the band); `plausible` otherwise. Without a stated mix
  the true utilisation lies between the FP8-peak and the BF16-peak figures and the lower one is judged.
  An MFU below the band is reported, not refuted: a slower run (MoE all-to-all, a smaller cluster)
  costs more, and a cost claim that is too high is not what this check is for.
`projection` turns a measured FLOP rate into device-hours and dollars for a card's pre-training.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.cards.loader import Card, Source, list_cards
from harness.cards.training import Figure, Name, Precision, Status, TrainingCost
from harness.errors import ConfigError
from harness.training.flops import attention_flops_per_token, matmul_params, need

SECONDS_PER_HOUR = 3600.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpuPeak(_Strict):
    match: list[str]
    bf16_dense_flops: float = Field(gt=0)
    fp8_dense_flops: float | None = Field(None, gt=0)
    source: str
    status: Status


class MfuRef(_Strict):
    run: str
    mfu: float = Field(gt=0, lt=1)
    precision: Literal["bf16", "fp8"] = "bf16"
    kind: Literal["full_training", "benchmark"] = "full_training"
    source: str
    status: Status


class Refs(_Strict):
    sources: dict[str, Source]
    gpus: dict[str, GpuPeak]
    mfu_published: list[MfuRef]


def load_refs() -> Refs:
    """GPU peaks and the published-MFU band (harness/data/training_refs.yaml)."""
    try:
        text = (resources.files("harness") / "data" / "training_refs.yaml").read_text(encoding="utf-8")
        return Refs.model_validate(yaml.safe_load(text))
    except (OSError, yaml.YAMLError, ValidationError) as e:
        raise ConfigError(f"cannot read harness/data/training_refs.yaml ({e})".replace("\n", " "), "check the file") from None


def gpu_peak(name: str | None, refs: Refs) -> tuple[str, GpuPeak] | None:
    """The reference entry whose match strings occur in a GPU name (e.g. 'NVIDIA H200' -> H200)."""
    low = (name or "").lower()
    for key, g in refs.gpus.items():
        if any(m.lower() in low for m in g.match):
            return key, g
    return None


def mfu_band(refs: Refs, precision: str = "bf16") -> dict[str, Any]:
    """The range of MFU reached in published full training runs at `precision`, over entries with a stored
    source (UNVERIFIED ones and benchmarks are listed apart). A precision with no such entry uses BF16's, saying so."""
    def full(p: str) -> list[MfuRef]:
        return [r for r in refs.mfu_published if r.status != "UNVERIFIED" and r.kind == "full_training" and r.precision == p]

    used, note = full(precision), None
    if not used and precision != "bf16":
        used, note = full("bf16"), f"no sourced full training run at {precision} in the references: the BF16 band is used"
    if not used:
        raise ConfigError("harness/data/training_refs.yaml has no sourced full-training MFU figure",
                          "add one with kind full_training and status verified or secondary")
    return {"low": min(r.mfu for r in used), "high": max(r.mfu for r in used), "precision": precision, "note": note,
            "entries": [r.model_dump() for r in used],
            "benchmarks": [r.model_dump() for r in refs.mfu_published if r.kind == "benchmark"],
            "unverified": [r.model_dump() for r in refs.mfu_published if r.status == "UNVERIFIED"]}


def verdict(mfu_low: float, mfu_high: float, band: dict[str, Any]) -> tuple[str, str]:
    """(verdict, why) for an implied MFU known to lie in [mfu_low, mfu_high] (equal when the precision mix is stated)."""
    lo, hi = band["low"], band["high"]
    what = f"the implied MFU {mfu_low:.1%}" if mfu_low == mfu_high else f"even the lowest implied MFU {mfu_low:.1%}"
    if mfu_low > 1.0:
        return "implausible", f"{what} is above 100% of the peak: the GPUs cannot do the claimed work in the claimed hours"
    if mfu_low > hi:
        return "implausibly high", f"{what} is above the best published full training run ({hi:.1%})"
    shown = f"{mfu_low:.1%}" if mfu_low == mfu_high else f"{mfu_low:.1%}-{mfu_high:.1%}"
    if mfu_high < lo:
        return "plausible", (f"the implied MFU {shown} is below the published band {lo:.1%}-{hi:.1%}: a slower run costs more, "
                             "which this check does not refute")
    return "plausible", f"the implied MFU {shown} is within reach of the published band {lo:.1%}-{hi:.1%}"


def effective_peak(fl: dict[str, Any], precision: Precision | None, g: GpuPeak) -> dict[str, Any] | None:
    """The effective peak of a stage's FLOPs under a stated precision mix (None without a mix or an FP8 peak).

    The output head's share is 6 x vocab x hidden per token (twice with an MTP module, which has its own head)."""
    if precision is None:
        return None
    peaks = {"bf16": g.bf16_dense_flops, "fp8": g.fp8_dense_flops}
    if any(peaks[x] is None for x in (precision.matmul, precision.attention, precision.head)):
        return None
    cfg = fl.get("config") or {}
    heads = 2 if fl["mtp"] else 1
    head = 6.0 * float(cfg.get("vocab_size") or 0) * float(cfg.get("hidden_size") or 0) * fl["tokens"] * heads
    attention = fl["attention"] or 0.0
    body = fl["total"] - attention - head
    parts = {"matmul": (body, precision.matmul), "attention": (attention, precision.attention), "head": (head, precision.head)}
    seconds = sum(f / peaks[p] for f, p in parts.values())
    return {"flops_by_part": {k: {"flops": f, "precision": p} for k, (f, p) in parts.items()},
            "peak": fl["total"] / seconds if seconds else None, "source": precision.source, "status": precision.status}


def _fig(f: Figure | Name | None) -> dict[str, Any] | None:
    return None if f is None else {"value": f.value, "status": f.status, "source": f.source, "note": f.note}


def stage_flops(t: TrainingCost, tokens: float, context: float | None) -> dict[str, Any]:
    """Model FLOPs of training on `tokens` at `context`: the 6ND term, attention and MTP, each shown."""
    if t.params_active_b.value is None:
        raise ValueError("the training claim publishes no active-parameter count (params_active_b is null)")
    n = t.params_active_b.value * 1e9
    out: dict[str, Any] = {"params_active": n, "tokens": tokens, "dense": 6.0 * n * tokens, "attention": None, "mtp": None, "missing": []}
    cfg = t.arch.config if t.arch else None
    mtp_layers = int((cfg or {}).get("num_nextn_predict_layers") or 0)
    if cfg is not None and context:
        layers = need(cfg, "num_hidden_layers") + mtp_layers  # an MTP module has its own attention layer
        out["attention"] = attention_flops_per_token(cfg, int(context), layers=layers) * tokens
        out["attention_layers"] = layers
    else:
        out["missing"].append("attention (no architecture dims or context length)")
    if t.mtp_active_b is not None and t.mtp_active_b.value is not None:
        out["mtp"] = 6.0 * t.mtp_active_b.value * 1e9 * tokens
    out["total"] = out["dense"] + (out["attention"] or 0.0) + (out["mtp"] or 0.0)
    out["config"] = dict(cfg or {})
    return out


def check_card(card: Card, refs: Refs, band: dict[str, Any], price: float | None = None) -> dict[str, Any]:
    """Dollars, implied MFU per stage and the verdict for one card's training claim."""
    t = card.training
    if t is None:
        raise ValueError(f"card {card.name!r} has no training section")  # callers pass only cards with one
    active = t.params_active_b.value
    assumed = t.price_per_gpu_hour_usd.value
    peak = gpu_peak(t.gpu.value, refs)

    def band_for(precision: str) -> dict[str, Any]:
        return band if band.get("precision", "bf16") == precision else mfu_band(refs, precision)

    stages: list[dict[str, Any]] = []
    for s in t.stages:
        hours = s.gpu_hours.value
        row: dict[str, Any] = {"name": s.name, "description": s.description, "gpu_hours": _fig(s.gpu_hours), "tokens": _fig(s.tokens),
                               "context_length": _fig(s.context_length), "notes": list(s.notes),
                               "usd_assumed": None if hours is None or assumed is None else hours * assumed,
                               "usd_at_price": None if hours is None or price is None else hours * price, "mfu": None}
        tokens = s.tokens.value if s.tokens else None
        why = [w for w, bad in (("no published GPU-hours", hours is None), ("no published token count", tokens is None),
                                ("no published GPU model" if t.gpu.value is None else f"no reference peak for GPU {t.gpu.value!r}",
                                 peak is None), ("no published active-parameter count", active is None)) if bad]
        if hours is not None and tokens is not None and peak is not None and active is not None:  # i.e. not why
            fl = stage_flops(t, tokens, s.context_length.value if s.context_length else None)
            g = peak[1]
            capacity = hours * SECONDS_PER_HOUR
            bf16 = fl["total"] / (capacity * g.bf16_dense_flops)
            fp8 = fl["total"] / (capacity * g.fp8_dense_flops) if g.fp8_dense_flops else None
            eff = effective_peak(fl, t.precision, g)
            if eff is not None and eff["peak"] and t.precision is not None:  # eff is None without a stated mix
                eff["mfu"] = fl["total"] / (capacity * eff["peak"])
                v, reason = verdict(eff["mfu"], eff["mfu"], band_for(t.precision.matmul))
                reason = f"against the effective peak of the stated mix ({eff['peak'] / 1e12:,.0f} TFLOP/s): {reason}"
            else:
                v, reason = verdict(fp8 if fp8 is not None else bf16, bf16, band)
            row["mfu"] = {"flops": {k: x for k, x in fl.items() if k != "config"}, "gpu": peak[0], "bf16_peak": g.bf16_dense_flops,
                          "fp8_peak": g.fp8_dense_flops, "peak_source": g.source, "peak_status": g.status, "mfu_bf16": bf16, "mfu_fp8": fp8,
                          "effective": eff, "dense_only_mfu_bf16": fl["dense"] / (capacity * g.bf16_dense_flops), "verdict": v, "why": reason}
        else:
            row["unchecked"] = "; ".join(why)
        stages.append(row)
    known = [s["gpu_hours"]["value"] for s in stages if s["gpu_hours"]["value"] is not None]
    claimed_hours = t.total_gpu_hours.value if t.total_gpu_hours else None
    total_hours = claimed_hours if claimed_hours is not None else (sum(known) if known else None)
    total_usd = None if total_hours is None or assumed is None else total_hours * assumed
    claimed_usd = t.total_cost_usd.value if t.total_cost_usd else None
    cross: dict[str, Any] | None = None
    if t.arch is not None and active is not None:
        derived = matmul_params(t.arch.config)["total"]
        cross = {"active_matmul_params_from_arch": derived, "published_active": active * 1e9,
                 "ratio": derived / (active * 1e9), "arch_source": t.arch.source, "arch_status": t.arch.status}
    checked = [s for s in stages if s["mfu"]]
    return {"card": card.name, "display": card.display_name, "claim": t.claim, "gpu": _fig(t.gpu), "gpu_count": _fig(t.gpu_count),
            "params_total_b": _fig(t.params_total_b), "params_active_b": _fig(t.params_active_b), "mtp_active_b": _fig(t.mtp_active_b),
            "price_assumed": _fig(t.price_per_gpu_hour_usd), "price_user": price, "stages": stages,
            "stage_hours_sum": sum(known) if known else None, "total_gpu_hours": _fig(t.total_gpu_hours),
            "total_usd_assumed": total_usd, "total_usd_claimed": _fig(t.total_cost_usd),
            "reproduced": None if total_usd is None or claimed_usd is None else abs(total_usd - claimed_usd) <= 1e-6 * claimed_usd,
            "total_usd_at_price": None if total_hours is None or price is None else total_hours * price,
            "verdict": checked[0]["mfu"]["verdict"] if checked else "not checkable",
            "cross_check": cross, "excludes": list(t.excludes), "notes": list(t.notes),
            "sources": {k: v.model_dump(exclude_none=True) for k, v in card.sources.items()}}


def check_training(price: float | None = None, cards: list[Card] | None = None) -> dict[str, Any]:
    """Every card's training claim, checked; the band and peaks used, with their sources."""
    if price is not None and not (0 < price <= 1000):
        raise ConfigError(f"--price-per-hour must be in (0, 1000] USD per GPU-hour, got {price}", "e.g. --price-per-hour 2.5")
    refs = load_refs()
    band = mfu_band(refs)
    with_training = [c for c in (cards if cards is not None else list_cards()) if c.training is not None]
    if not with_training:
        raise ConfigError("no model card has a training section", "add one (see model_cards/deepseek-v3.yaml)")
    return {"band": band, "ref_sources": {k: v.model_dump(exclude_none=True) for k, v in refs.sources.items()},
            "price_per_gpu_hour": price, "cards": [check_card(c, refs, band, price) for c in with_training]}


def projection(card: Card, achieved_flops_per_s: float, price: float | None, stage: str = "pre-training") -> dict[str, Any] | None:
    """Device-hours (and dollars) this device would need for a card's stage at a measured FLOP rate."""
    t = card.training
    s = next((x for x in (t.stages if t else []) if x.name == stage), None)
    if t is None or s is None or s.tokens is None or s.tokens.value is None or achieved_flops_per_s <= 0:
        return None  # (s is None whenever t is)
    fl = stage_flops(t, s.tokens.value, s.context_length.value if s.context_length else None)
    hours = fl["total"] / achieved_flops_per_s / SECONDS_PER_HOUR
    assumed = t.price_per_gpu_hour_usd.value
    return {"card": card.name, "display": card.display_name, "stage": stage, "tokens": s.tokens.value, "model_flops": fl["total"],
            "device_hours": hours, "price_per_hour": price, "usd": None if price is None else hours * price,
            "usd_at_published_price": None if assumed is None else hours * assumed, "published_price": assumed,
            "published_gpu_hours": s.gpu_hours.value, "published_gpu": t.gpu.value}


# ---- rendering --------------------------------------------------------------------------------

def _usd(x: float | None) -> str:
    if x is None:
        return "—"
    return f"${x / 1e6:,.3f}M" if x >= 1e6 else f"${x:,.0f}"


def _n(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}"


def _src(f: dict | None) -> str:
    return "" if not f else f" [{f['status']}: {f['source']}]"


def _mfu_lines(m: dict) -> list[str]:
    fl = m["flops"]
    out = [f"    6 x N_active x D = 6 x {fl['params_active']:.4g} x {fl['tokens']:.4g} = {fl['dense']:.4g} FLOPs"]
    if fl["attention"] is not None:
        out.append(f"    + attention at the published context (6 L H (d_qk + d_v) T per token, {fl['attention_layers']} layers incl. MTP) "
                   f"= {fl['attention']:.4g} FLOPs")
    if fl["mtp"] is not None:
        out.append(f"    + MTP module 6 x N_mtp x D = {fl['mtp']:.4g} FLOPs")
    out += [f"    not counted: {x}" for x in fl["missing"]]
    out.append(f"    = {fl['total']:.4g} model FLOPs")
    fp8 = f", FP8 {m['fp8_peak'] / 1e12:,.0f}" if m["fp8_peak"] else ""
    out.append(f"    peak per {m['gpu']}: BF16 {m['bf16_peak'] / 1e12:,.0f}{fp8} TFLOP/s dense [{m['peak_status']}: {m['peak_source']}]")
    fp8_mfu = f", {m['mfu_fp8']:.1%} of the FP8 peak" if m["mfu_fp8"] is not None else ""
    out.append(f"    implied MFU = FLOPs / (GPU-hours x 3600 x peak) = {m['mfu_bf16']:.1%} of the BF16 peak{fp8_mfu} "
               f"(6ND alone: {m['dense_only_mfu_bf16']:.1%} of BF16)")
    eff = m.get("effective")
    if eff and eff.get("peak"):
        parts = ", ".join(f"{k} {v['flops']:.3g} in {v['precision'].upper()}" for k, v in eff["flops_by_part"].items())
        out.append(f"    stated precision mix: {parts} -> effective peak {eff['peak'] / 1e12:,.0f} TFLOP/s "
                   f"[{eff['status']}: {eff['source']}]; implied MFU {eff['mfu']:.1%} of it")
    out.append(f"    verdict: {m['verdict'].upper()} — {m['why']}")
    return out


def render_text(doc: dict) -> str:
    b = doc["band"]
    out = ["Training-cost claims: arithmetic on published figures", "",
           f"Published full-training MFU band ({b.get('precision', 'bf16').upper()}): {b['low']:.1%}-{b['high']:.1%} from"]
    out += [f"  {e['mfu']:.1%} {e['run']} [{e['status']}: {e['source']}]" for e in b["entries"]]
    if b.get("note"):
        out.append(f"  note: {b['note']}")
    if b.get("benchmarks"):
        out.append("  not in the band (throughput benchmarks, not full training runs): "
                   + "; ".join(f"{e['run']} {e['mfu']:.1%}" for e in b["benchmarks"]))
    if b["unverified"]:
        out.append("  not in the band (UNVERIFIED, no stored source): " + "; ".join(f"{e['run']} {e['mfu']:.1%}" for e in b["unverified"]))
    for c in doc["cards"]:
        count = f" x {_n(c['gpu_count']['value'])}" if c["gpu_count"] and c["gpu_count"]["value"] else ""
        out += ["", f"{c['display']} ({c['card']}): {c['claim']}",
                f"  GPU: {c['gpu']['value'] or 'not published'}{count}{_src(c['gpu'])}",
                f"  parameters: {c['params_total_b']['value']:g}B total, {c['params_active_b']['value']:g}B active{_src(c['params_active_b'])}"]
        for f, label in ((c["params_active_b"], "active parameters"), (c["mtp_active_b"], "MTP module")):
            if f and (f["note"] or label == "MTP module"):
                out.append(f"  {label}: {f['value']:g}B" + ("" if label != "MTP module" else _src(f)) + (f" — {f['note']}" if f["note"] else ""))
        price = c["price_assumed"]["value"]
        for s in c["stages"]:
            h = s["gpu_hours"]["value"]
            at = f" -> {_usd(s['usd_assumed'])} at ${price:g}/GPU-hour" if s["usd_assumed"] is not None else ""
            out.append(f"  stage {s['name']} ({s['description']}): {_n(h)} GPU-hours{at}{_src(s['gpu_hours'])}")
        if c["stage_hours_sum"] is not None:
            claimed = c["total_gpu_hours"]
            cl = f" (claimed total {_n(claimed['value'])}{_src(claimed)})" if claimed else ""
            out.append(f"  GPU-hours: stages sum to {_n(c['stage_hours_sum'])}{cl}")
        if c["total_usd_assumed"] is not None:
            claimed = c["total_usd_claimed"]
            rep = "" if c["reproduced"] is None else (": reproduced" if c["reproduced"] else ": NOT reproduced")
            hours = (c["total_gpu_hours"] or {}).get("value") or c["stage_hours_sum"]
            out.append(f"  dollars: {_n(hours)} GPU-hours x ${price:g}/GPU-hour (the publisher's assumed rental price{_src(c['price_assumed'])}) "
                       f"= {_usd(c['total_usd_assumed'])} (claimed {_usd(claimed['value'] if claimed else None)}{rep})")
        if c["total_usd_at_price"] is not None:
            out.append(f"  at your price ${c['price_user']:g}/GPU-hour: {_usd(c['total_usd_at_price'])}")
        for s in c["stages"]:
            if s["mfu"]:
                out += [f"  implied MFU, stage {s['name']}:"] + _mfu_lines(s["mfu"])
            else:
                out.append(f"  implied MFU, stage {s['name']}: not checkable ({s['unchecked']})")
        x = c["cross_check"]
        if x:
            out.append(f"  cross-check: the architecture dims give {x['active_matmul_params_from_arch'] / 1e9:.2f}B active matmul weights per token "
                       f"vs the published {x['published_active'] / 1e9:g}B ({x['ratio']:.2f}x) [{x['arch_status']}: {x['arch_source']}]")
        out += [f"  excludes: {e}" for e in c["excludes"]]
        out += [f"  note: {n}" for n in c["notes"]]
        out.append(f"  verdict: {c['verdict'].upper()}")
    return "\n".join(out) + "\n"


def run_training_claims(price: float | None = None, output_dir: str | None = None) -> int:
    """`harness claims --training`: print the check; with output_dir also write training_claims.json/.md."""
    import json
    from pathlib import Path

    from harness.results import write_text_atomic

    doc = check_training(price)
    text = render_text(doc)
    if output_dir:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "training_claims.json", json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        write_text_atomic(out / "training_claims.md", "# Training-cost claims\n\n```\n" + text + "```\n")
        text += f"\nwrote {out / 'training_claims.md'} and {out / 'training_claims.json'}\n"
    print(text, end="")
    return 0
