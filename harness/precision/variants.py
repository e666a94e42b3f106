"""Precision variants of one model: what each name means, which can be built here, and building them.

A precision name is one of
- a GGUF type (`f32`, `f16`, `bf16`, `q8_0`, `q6_k`, `q5_k_m`, `q4_k_m`, `q4_0`, ...): a GGUF built
  from the model's own weights with llama.cpp (its `convert_hf_to_gguf.py` for the float types,
  `llama_model_quantize` from the bf16 GGUF for the quantised ones) and run on llama.cpp, so every
  GGUF variant runs on the same engine and differs only in its weights;
- `hf:bf16`, `hf:f16`, `hf:f32`: the Hugging Face folder itself on transformers at that dtype;
- `torchao:int8wo`, `torchao:int4wo`, `bnb:int8`, `bnb:nf4`, `fp8`: quantise-on-load schemes of
  transformers. They are listed with the reason they cannot be built when the library, the device
  or the run pipeline lacks what they need; never silently dropped;
- a path to an existing `.gguf` file: run as given (nothing is built).

Built files are cached under $HARNESS_PRECISION_CACHE (default ~/.cache/cnllm-harness/precision),
keyed by a content fingerprint of the source model and the precision, and written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import util as import_util
from pathlib import Path
from typing import Literal

from harness.core.spec import parse as parse_spec
from harness.errors import ConfigError

Kind = Literal["gguf", "hf", "quantize_on_load", "given"]

# GGUF types and llama.cpp's nominal bits per weight (tools/quantize's table, Llama-3-8B figures for
# the k-quant mixes); the built file's own bits per weight replace these once it exists.
GGUF_BITS: dict[str, float] = {
    "f32": 32.0, "f16": 16.0, "bf16": 16.0, "q8_0": 8.5, "q6_k": 6.56, "q5_k_m": 5.69, "q5_k_s": 5.54,
    "q5_0": 5.5, "q5_1": 6.0, "q4_k_m": 4.89, "q4_k_s": 4.58, "q4_0": 4.5, "q4_1": 5.0,
    "q3_k_l": 4.27, "q3_k_m": 3.91, "q3_k_s": 3.5, "q2_k": 3.0,
}
FLOAT_GGUF = ("f32", "f16", "bf16")  # written by the converter itself
HF_DTYPES = {"hf:bf16": ("bfloat16", 16.0), "hf:f16": ("float16", 16.0), "hf:f32": ("float32", 32.0)}
ON_LOAD_BITS = {"torchao:int8wo": 8.0, "torchao:int4wo": 4.5, "bnb:int8": 8.0, "bnb:nf4": 4.5, "fp8": 8.0}

# Source folders known to be derived from a quantised file, so their "full precision" is not the
# original checkpoint's. The shared test models (../shared/models/get.sh) are the case at hand.
KNOWN_DERIVED = {
    "qwen2.5-coder-0.5b-instruct-bf16": (
        "this bfloat16 folder is itself dequantized from a Q4_K_M GGUF (../shared/models/get.sh), not the original "
        "checkpoint: it is the reference only for the variants derived from it, and a Q4_K_M built from it is a "
        "re-quantisation of already 4-bit weights"),
}


@dataclass(frozen=True)
class Variant:
    """One precision of the source model: how it is made and run."""

    name: str  # as the user wrote it, lower-cased (the matrix row's key)
    kind: Kind
    engine: str  # llamacpp or transformers
    nominal_bits: float | None = None
    dtype: str | None = None  # transformers dtype for hf:* variants
    path: Path | None = None  # for `given` variants


@dataclass
class Built:
    """A variant ready to run, or the reason it cannot be."""

    variant: Variant
    model: str | None  # what `harness run --model` gets
    backend: str | None
    dtype: str | None = None
    reason: str | None = None  # set when it cannot be built here
    cached: bool = False
    build_s: float | None = None
    weight_bytes: int | None = None
    bits_per_weight: float | None = None
    derived_from: str | None = None
    notes: list[str] = field(default_factory=list)


def parse_precisions(text: str | list[str]) -> list[Variant]:
    """The variants a `--precisions` value names, in order; an unknown name is one clear error."""
    names = [p.strip() for p in (text.split(",") if isinstance(text, str) else text) if p.strip()]
    if not names:
        raise ConfigError("--precisions names no precision", "e.g. --precisions bf16,q8_0,q4_k_m")
    out, seen = [], set()
    for raw in names:
        v = parse_one(raw)
        if v.name in seen:
            raise ConfigError(f"--precisions names {v.name} twice", "list each precision once")
        seen.add(v.name)
        out.append(v)
    return out


def parse_one(raw: str) -> Variant:
    name = raw.strip()
    if parse_spec(name).is_gguf:
        path = Path(name).expanduser()
        if not path.is_file():
            raise ConfigError(f"--precisions names a GGUF file that does not exist: {name}", "give the path to an existing .gguf")
        return Variant(name=path.name.lower(), kind="given", engine="llamacpp", path=path.resolve())
    key = name.lower()
    if key in GGUF_BITS:
        return Variant(key, "gguf", "llamacpp", GGUF_BITS[key])
    if key in HF_DTYPES:
        dtype, bits = HF_DTYPES[key]
        return Variant(key, "hf", "transformers", bits, dtype=dtype)
    if key in ON_LOAD_BITS:
        return Variant(key, "quantize_on_load", "transformers", ON_LOAD_BITS[key])
    import difflib

    known = [*GGUF_BITS, *HF_DTYPES, *ON_LOAD_BITS]
    close = difflib.get_close_matches(key, known, n=1)
    raise ConfigError(f"unknown precision {name!r}" + (f" (did you mean {close[0]}?)" if close else ""),
                      f"choose from {', '.join(known)}, or give a path to a .gguf file")


# ---- the source model ---------------------------------------------------------------------------------

def source_kind(model: str) -> Literal["hf", "gguf"]:
    p = Path(model).expanduser()
    if p.is_file() and p.suffix.lower() == ".gguf":
        return "gguf"
    if p.is_dir() and (p / "config.json").is_file():
        return "hf"
    raise ConfigError(f"precision needs a local model: a Hugging Face folder with config.json or a .gguf file, got {model!r}",
                      "download the model first (huggingface-cli download ...) and pass its folder")


def fingerprint(model: str) -> str:
    """sha256 over the source's files (names and contents): a changed weight or tokenizer file is a new source."""
    p = Path(model).expanduser().resolve()
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file() and not any(s.startswith(".") for s in f.relative_to(p).parts))
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() if p.is_file() else str(f.relative_to(p)).encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


def source_notes(model: str) -> list[str]:
    """What a reader must know about where the source's weights came from."""
    name = Path(model).expanduser().resolve().name.lower()
    notes = [note for key, note in KNOWN_DERIVED.items() if name == key]
    if source_kind(model) == "gguf":
        notes.append("the source is a GGUF file: other GGUF types are re-quantised from its weights, not from the original checkpoint")
    return notes


def cache_root() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cnllm-harness" / "precision"
    return Path(os.environ.get("HARNESS_PRECISION_CACHE", default))


# ---- building -----------------------------------------------------------------------------------------

def unbuildable_reason(v: Variant, device_type: str) -> str | None:
    """Why `v` cannot be built on this machine with this environment, or None."""
    if v.kind == "gguf" and import_util.find_spec("llama_cpp") is None:
        return "llama.cpp is not installed: pip install 'cnllm-harness[llamacpp]'"
    if v.kind != "quantize_on_load":
        return None
    if v.name.startswith("torchao:"):
        if import_util.find_spec("torchao") is None:
            return "torchao is not installed here (pip install torchao)"
        return ("torchao is installed, but the run pipeline's transformers backend has no quantise-on-load option yet, "
                "so a torchao variant cannot be run through `harness run`")
    if v.name.startswith("bnb:"):
        if device_type != "cuda":
            return f"bitsandbytes 8-bit and 4-bit kernels need a CUDA GPU; this run's device is {device_type}"
        if import_util.find_spec("bitsandbytes") is None:
            return "bitsandbytes is not installed here (pip install bitsandbytes)"
        return "the run pipeline's transformers backend has no quantise-on-load option yet"
    if v.name == "fp8":
        if device_type != "cuda":
            return f"FP8 matmuls need a CUDA GPU of compute capability 8.9 or newer (Ada, Hopper); this run's device is {device_type}"
        return "the run pipeline's transformers backend has no FP8 option yet"
    return None


def build(v: Variant, source: str, fp: str, device_type: str, log=lambda s: None) -> Built:
    """Make `v` from `source` (cached), or say why it cannot be made here. Errors during a build raise."""
    reason = unbuildable_reason(v, device_type)
    if reason:
        return Built(v, None, None, reason=reason)
    notes = source_notes(source)
    if v.kind == "given":
        return _with_size(Built(v, str(v.path), "llamacpp", derived_from="given as a file", cached=True,
                                notes=["run as given: not derived from --model by this command"]))
    if v.kind == "hf":
        if source_kind(source) != "hf":
            return Built(v, None, None, reason=f"{v.name} runs a Hugging Face folder on transformers; the source is a GGUF file")
        return _with_size(Built(v, str(Path(source).resolve()), "transformers", dtype=v.dtype, cached=True,
                                derived_from="the source folder as is", notes=notes))
    out = cache_root() / fp[:16] / f"{_stem(source)}-{v.name}.gguf"
    if out.is_file():
        return _with_size(Built(v, str(out), "llamacpp", cached=True, derived_from=_derived(v, source), notes=notes))
    t0 = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    kind = source_kind(source)
    if kind == "hf" and v.name in FLOAT_GGUF:
        log(f"converting {source} to a {v.name} GGUF with llama.cpp's converter")
        _convert(Path(source), out, v.name)
    else:
        base = Path(source) if kind == "gguf" else Path(build(parse_one("bf16"), source, fp, device_type, log).model or "")
        log(f"quantising {base.name} to {v.name.upper()} with llama.cpp's llama_model_quantize")
        quantize(base, out, v.name, allow_requantize=kind == "gguf")
    _write_meta(out, source, fp, v.name, time.perf_counter() - t0)
    return _with_size(Built(v, str(out), "llamacpp", build_s=time.perf_counter() - t0, derived_from=_derived(v, source), notes=notes))


def _stem(source: str) -> str:
    from harness.results.store import slug

    return slug(Path(source).expanduser().resolve().name.removesuffix(".gguf"))


def _derived(v: Variant, source: str) -> str:
    if source_kind(source) == "gguf":
        return f"re-quantised by llama.cpp from {Path(source).name}"
    if v.name in FLOAT_GGUF:
        return f"{v.name} GGUF converted by llama.cpp's convert_hf_to_gguf.py from {Path(source).name}"
    return f"quantised by llama.cpp's llama_model_quantize from the bf16 GGUF of {Path(source).name}"


def _with_size(b: Built) -> Built:
    p = Path(b.model or "")
    if p.is_file() and p.suffix == ".gguf":
        from harness.backends.gguf_file import read_header

        header = read_header(p)
        b.weight_bytes = header.tensor_bytes
        b.bits_per_weight = 8 * header.tensor_bytes / header.parameters if header.parameters else None
    elif p.is_dir():
        from harness.core.architecture import count_parameters

        config = json.loads((p / "config.json").read_text())
        params = count_parameters(config)
        if params and b.variant.nominal_bits:
            b.weight_bytes = int(params * b.variant.nominal_bits / 8)
            b.bits_per_weight = b.variant.nominal_bits
    return b


def _write_meta(out: Path, source: str, fp: str, precision: str, seconds: float) -> None:
    from importlib import metadata

    from harness.results.store import utc_now, write_json_atomic

    write_json_atomic(out.with_suffix(".json"), {"source": str(Path(source).resolve()), "fingerprint": fp, "precision": precision,
                                                 "built_utc": utc_now(), "build_s": round(seconds, 2),
                                                 "llama_cpp_python": metadata.version("llama-cpp-python")})


def _convert(src: Path, out: Path, outtype: str) -> None:
    from harness.backends.gguf_convert import convert_to_gguf

    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".convert-") as tmp:
        made = convert_to_gguf([(src, Path(tmp) / out.name)], outtype=outtype, timeout=3600)[0]
        os.replace(made, out)


# Runs llama_model_quantize in a child process: its per-tensor log goes to the child's captured
# stderr, and a crash inside the C library cannot take the matrix down with it.
_QUANTIZE = """
import ctypes, os, sys
import llama_cpp
src, dst, ftype, requant, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", int(sys.argv[5])
llama_cpp.llama_backend_init()
params = llama_cpp.llama_model_quantize_default_params()
params.ftype = ftype
params.nthread = threads
params.allow_requantize = requant
rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
sys.exit(0 if rc == 0 else 10 + (rc & 0x7f))
"""


def ftype_code(name: str) -> int:
    import llama_cpp

    for prefix in ("LLAMA_FTYPE_MOSTLY_", "LLAMA_FTYPE_ALL_"):
        code = getattr(llama_cpp, prefix + name.upper(), None)
        if code is not None:
            return int(code)
    raise ConfigError(f"this llama-cpp-python has no file type {name.upper()}", "upgrade llama-cpp-python, or pick another precision")


def quantize(src: Path, out: Path, name: str, *, allow_requantize: bool = False, threads: int | None = None) -> Path:
    """`src` GGUF -> `out` at GGUF type `name` with llama.cpp's quantizer (atomic: tmp file, then rename)."""
    from harness.backends.llamacpp import physical_cores

    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    cmd = [sys.executable, "-c", _QUANTIZE, str(src), str(tmp), str(ftype_code(name)), "1" if allow_requantize else "0",
           str(threads or physical_cores())]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
        if done.returncode != 0 or not tmp.is_file():
            tail = (done.stderr or done.stdout or "").strip().splitlines()[-3:]
            raise RuntimeError(f"llama_model_quantize {src.name} -> {name} failed (exit {done.returncode}): {' | '.join(tail)}")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


__all__ = ["Built", "Variant", "build", "cache_root", "fingerprint", "parse_precisions", "quantize", "source_notes", "unbuildable_reason"]
