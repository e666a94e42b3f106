"""`harness precision`: build each precision of one model, run each through `harness run` on the same
items with the same seeds, measure its divergence from the reference, and write one matrix.

The matrix folder (`<output-dir>/precision_<model>_<stamp>/`) holds precision.json (what was asked,
so `--resume` continues it), one `variants/<precision>/` folder per precision with the variant's own
run folder (a normal `harness run` folder: run.json, samples.jsonl, reports) and its divergence.json,
reference.npz (the reference's next-token distributions, harness/precision/divergence.py), and
matrix.json, matrix.md and report.html.

Each variant runs `harness run` in a child process: the run pipeline is the same one a user runs,
its peak memory is the variant's own, and a crash in one engine leaves the others standing. A
variant that cannot be built, or whose run fails, keeps its row with the reason; the matrix lists it
under `missing`, and `harness precision --resume DIR` builds and runs only what is missing.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from harness.errors import ConfigError
from harness.precision import divergence as div
from harness.precision import variants as var
from harness.precision.schema import MatrixResult
from harness.precision.state import SPEC, Spec, VariantState
from harness.results import store

MATRIX = "matrix.json"
REFERENCE = "reference.npz"
DIVERGENCE = "divergence.json"
DEFAULT_MARGIN = 0.02
# run settings the matrix decides per variant, never taken from the user's flags
PER_VARIANT = ("model", "backend", "dtype", "output_dir", "resume", "tokenizer")


def new_spec(values: dict, precisions: str, reference: str | None, margin: float, kl_texts: str | None) -> Spec:
    """Check everything a user can get wrong before anything is built or run."""
    model = str(values.get("model") or "")
    if not model:
        raise ConfigError("harness precision needs --model", "e.g. --model ./Qwen2.5-0.5B-Instruct --precisions bf16,q8_0,q4_k_m")
    var.source_kind(model)
    names = [v.name for v in var.parse_precisions(precisions)]
    ref = (reference or names[0]).lower()
    if ref not in names:
        raise ConfigError(f"--reference {reference} is not among --precisions ({', '.join(names)})", "add it to --precisions")
    if not 0 < margin < 1:
        raise ConfigError(f"--margin must be a fraction between 0 and 1 (0.02 = 2 points), got {margin}", "e.g. --margin 0.02")
    bad = [k for k in values if k in ("num_processes", "think_budgets", "think_budget", "base_url", "card") and values[k]]
    if bad:
        raise ConfigError(f"harness precision does not take {', '.join('--' + k.replace('_', '-') for k in bad)}",
                          "run those with `harness run`")
    if kl_texts is not None and not Path(kl_texts).is_file():
        raise ConfigError(f"--kl-texts file not found: {kl_texts}", "give a .json {\"texts\": [{\"id\", \"text\"}]} or a .txt file")
    run_values = {k: v for k, v in values.items() if k not in PER_VARIANT}
    if not run_values.get("n_threads"):
        run_values["n_threads"], why = free_threads()
        print(f"precision: llama.cpp threads {run_values['n_threads']} for every variant ({why}; --n-threads to choose)", file=sys.stderr)
    if not run_values.get("protocol"):
        from harness import protocols

        run_values["protocol"] = protocols.default_protocol(Path(model).resolve().name)  # one protocol for every variant
    from harness.config import make_config

    make_config(**{**run_values, "model": model})  # a bad setting fails now, before any build
    return Spec(str(Path(model).resolve()), [str(p) for p in (precisions.split(",") if isinstance(precisions, str) else precisions)
                                             if str(p).strip()], ref, margin, run_values, kl_texts)


def free_threads() -> tuple[int, str]:
    """llama.cpp threads for every variant: the physical cores the load average leaves free, at least 1.
    Its threads spin-wait for each other, so more threads than free cores collapses its speed on a
    shared machine (seen here, 2 cores at load 8: 0.4 tok/s with 2 threads, 7.3 with 1); one choice
    for the whole matrix keeps the variants' speeds comparable."""
    from harness.backends.llamacpp import physical_cores

    cores = physical_cores()
    try:
        load = os.getloadavg()[0]
    except OSError:
        return cores, f"{cores} physical cores, load unknown"
    n = max(1, min(cores, cores - int(load)))
    return n, f"{cores} physical cores at load average {load:.1f}"


def open_folder(spec: Spec, output_dir: str) -> Path:
    name = f"precision_{store.slug(Path(spec.model).name)}_{store.new_run_id()}"
    folder = store.create_run_dir(output_dir, name)
    return folder


# ---- one variant ----------------------------------------------------------------------------------------

def variant_dir(folder: Path, name: str) -> Path:
    return folder / "variants" / store.slug(name.replace(":", "-"))


def find_run(vdir: Path) -> Path | None:
    runs = sorted((p for p in vdir.glob("*/") if (p / "config.json").is_file()), key=lambda p: p.stat().st_mtime)
    return runs[-1] if runs else None


def run_status(run_dir: Path | None) -> str | None:
    if run_dir is None or not (run_dir / "run.json").is_file():
        return None
    try:
        return store.load_run(run_dir).status
    except Exception:  # noqa: BLE001  (an unreadable run.json is one to resume)
        return None


def run_variant(argv: list[str], log) -> tuple[int, str]:
    """`python -m harness run ARGV` in a child process; its output is passed through; (exit code, last error line)."""
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", *argv], stdout=sys.stdout.fileno() if _real(sys.stdout) else None,
                            stderr=subprocess.PIPE, text=True, env={**os.environ})
    tail: collections.deque[str] = collections.deque(maxlen=20)

    def pump():
        assert proc.stderr is not None
        for line in proc.stderr:
            tail.append(line.rstrip("\n"))
            log(line.rstrip("\n"), raw=True)

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    rc = proc.wait()
    t.join(timeout=5)
    errors = [x for x in tail if x.startswith("error:")]
    return rc, (errors[-1] if errors else (tail[-1] if tail else f"exit {rc}"))


def _real(stream) -> bool:
    try:
        stream.fileno()
        return True
    except (AttributeError, OSError, ValueError):
        return False


def ensure_run(spec: Spec, built: var.Built, vdir: Path, log) -> tuple[Path | None, str | None]:
    """The variant's complete run folder (running or resuming it as needed), or the reason there is none."""
    vdir.mkdir(parents=True, exist_ok=True)
    existing = find_run(vdir)
    status = run_status(existing)
    if existing is not None and status == "complete":
        log(f"{built.variant.name}: run already complete ({existing.name})")
        return existing, None
    if existing is not None:
        log(f"{built.variant.name}: resuming its run {existing.name}")
        rc, last = run_variant(["--resume", str(existing)], log)
    else:
        values = {**spec.run_values, "model": built.model, "backend": built.backend, "output_dir": str(vdir)}
        if built.dtype:
            values["dtype"] = built.dtype
        cfg_file = vdir / "run-settings.json"
        store.write_json_atomic(cfg_file, values)
        log(f"{built.variant.name}: running on {built.backend} ({built.model})")
        rc, last = run_variant(["--config", str(cfg_file)], log)
    run_dir = find_run(vdir)
    if rc == 0 and run_status(run_dir) == "complete":
        return run_dir, None
    return run_dir, f"its run failed (exit {rc}): {last}" + ("; `harness precision --resume` continues it" if run_dir else "")


def ensure_divergence(spec: Spec, folder: Path, built: var.Built, vdir: Path, is_reference: bool, log) -> dict | None:
    """divergence.json for the variant (computing the reference's distributions first if it is the reference)."""
    out = vdir / DIVERGENCE
    if out.is_file():
        return json.loads(out.read_text(encoding="utf-8"))
    ref_file = folder / REFERENCE
    texts = div.load_texts(spec.kl_texts)
    assert built.model is not None and built.backend is not None
    if is_reference:
        log(f"{built.variant.name}: next-token distributions on {len(texts.texts)} fixed texts (the reference)")
        tokens = div.tokenize(built.model, built.backend, texts.texts)
        ref, d = div.summarize_reference(tokens, div.variant_logprobs(built.model, built.backend, built.dtype, tokens,
                                                                      spec.run_values.get("n_threads")))
        ref.save(ref_file)
    else:
        if not ref_file.is_file():
            return None
        ref = div.Reference.load(ref_file)
        log(f"{built.variant.name}: next-token divergence from the reference on {len(texts.texts)} fixed texts")
        d = div.compare(ref, div.variant_logprobs(built.model, built.backend, built.dtype, ref.tokens, spec.run_values.get("n_threads")))
    record = {"kl_divergence_mean": d.kl_mean, "kl_divergence_p95": d.kl_p95, "kl_divergence_max": d.kl_max,
              "same_top_token": d.same_top_token, "perplexity": d.perplexity, "positions": d.positions,
              "reference_tail_mass_mean": d.tail_mass_mean, "engine": built.backend}
    store.write_json_atomic(out, record)
    return record


# ---- the whole matrix -----------------------------------------------------------------------------------

def run_matrix(spec: Spec, folder: Path, log=print) -> MatrixResult:
    """Build, run and measure every precision (the reference first), writing matrix.json after each."""
    from harness.precision.assemble import assemble, write_outputs

    now = var.fingerprint(spec.model)
    spec.fingerprint = spec.fingerprint or now
    if now != spec.fingerprint:
        raise ConfigError(f"the model at {spec.model} changed since this matrix began", "start a new matrix without --resume")
    spec.save(folder)
    device = str(spec.run_values.get("device") or "auto")
    device_type = "cuda" if device.startswith("cuda") else ("cpu" if device in ("cpu", "auto") and not _has_cuda() else device.split(":")[0])
    states = [VariantState(v) for v in var.parse_precisions(spec.precisions)]
    order = sorted(states, key=lambda s: s.variant.name != spec.reference)  # the reference first: the others need its distributions
    for st in order:
        name = st.variant.name
        vdir = variant_dir(folder, name)
        try:
            st.built = var.build(st.variant, spec.model, spec.fingerprint, device_type, log=lambda s, name=name: log(f"{name}: {s}"))
        except Exception as e:  # noqa: BLE001  (a failed build is that row's reason; the others go on)
            st.status, st.reason = "failed", f"build failed: {type(e).__name__}: {str(e)[:300]}"
            log(f"{name}: {st.reason}")
            write_outputs(folder, assemble(spec, folder, states, device_type), final=False)
            continue
        if st.built.reason:
            st.status, st.reason = "not_buildable", st.built.reason
            log(f"{name}: cannot be built here: {st.reason}")
            continue
        st.run_dir, reason = ensure_run(spec, st.built, vdir, log)
        if reason:
            st.status, st.reason = "failed", reason
            log(f"{name}: {reason}")
            write_outputs(folder, assemble(spec, folder, states, device_type), final=False)
            continue
        try:
            st.divergence = ensure_divergence(spec, folder, st.built, vdir, name == spec.reference, log)
        except Exception as e:  # noqa: BLE001  (the run stands; the divergence is reported missing)
            st.reason = f"divergence not measured: {type(e).__name__}: {str(e)[:300]}"
            log(f"{name}: {st.reason}")
        st.status = "complete"
        write_outputs(folder, assemble(spec, folder, states, device_type), final=False)
    matrix = assemble(spec, folder, states, device_type)
    write_outputs(folder, matrix, final=True)
    return matrix


def _has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001
        return False


__all__ = ["SPEC", "Spec", "VariantState", "ensure_run", "new_spec", "open_folder", "run_matrix", "run_variant"]
