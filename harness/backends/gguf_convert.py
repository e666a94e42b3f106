"""Make a GGUF file from a Hugging Face model folder with the converter llama.cpp ships.

The converter is `convert_hf_to_gguf.py` from the llama.cpp sources vendored in the sdist of the
installed llama-cpp-python (the PyPI `gguf` package is too old for it; the converter puts its own
`gguf-py` on the path). The sdist is fetched once with `pip download` (pip's cache makes that cheap
right after installing the llamacpp extra) and the three parts the converter needs are kept under
~/.cache/cnllm-harness; $HARNESS_LLAMA_CPP_SRC can point at a llama.cpp checkout instead. The
tests' GGUF fixtures and benchmarks/llamacpp_direct.py both convert through `convert_to_gguf`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

CONVERTER_PARTS = ("convert_hf_to_gguf.py", "conversion", "gguf-py")


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cnllm-harness"


def _extract_converter(sdist: Path, dest: Path) -> None:
    """Unpack only the converter's parts of vendor/llama.cpp, then move them into place at once."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".staging-"))
    try:
        with tarfile.open(sdist) as tar:
            members = []
            for m in tar.getmembers():
                parts = Path(m.name).parts  # <name-version>/vendor/llama.cpp/<part>/...
                if len(parts) > 3 and parts[1:3] == ("vendor", "llama.cpp") and parts[3] in CONVERTER_PARTS and (m.isfile() or m.isdir()):
                    m.name = str(Path(*parts[3:]))
                    members.append(m)
            # the "data" filter refuses links and absolute paths (Python >= 3.10.12 / 3.11.4 have it)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(staging, members=members, filter="data")
            else:
                tar.extractall(staging, members=members)  # noqa: S202  (members were chosen above: no links, relative paths)
        if not (staging / CONVERTER_PARTS[0]).is_file():
            raise RuntimeError(f"{sdist.name} holds no vendor/llama.cpp/{CONVERTER_PARTS[0]}")
        try:
            staging.rename(dest)
        except OSError:  # another session got there first
            if not (dest / CONVERTER_PARTS[0]).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def llama_cpp_converter() -> Path:
    """The directory holding convert_hf_to_gguf.py with its siblings, fetched once and cached."""
    if os.environ.get("HARNESS_LLAMA_CPP_SRC"):
        return Path(os.environ["HARNESS_LLAMA_CPP_SRC"])
    version = metadata.version("llama-cpp-python")
    dest = _cache_root() / f"llama.cpp-from-llama-cpp-python-{version}"
    if (dest / CONVERTER_PARTS[0]).is_file():
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
               f"llama-cpp-python=={version}", "-d", tmp]
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
        sdists = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if not sdists:  # pip may fail on metadata after the download: the file is what we need
            raise RuntimeError(f"could not fetch the llama-cpp-python {version} sdist: {done.stderr[-500:]}")
        _extract_converter(sdists[0], dest)
    return dest


# Runs convert_hf_to_gguf.py once per "<model dir> <outfile> <outtype>" triple in ONE process,
# so torch and transformers are imported once (most of a conversion's time on a small model).
# The converter imports sentencepiece before it looks for a tokenizer.model, even for BPE
# tokenizers that need none: without the package, that step reports the missing file first, so
# the converter falls through to its BPE path as it would with the package installed.
_RUN_CONVERTER = """
import importlib.util, os, runpy, sys
script, jobs = sys.argv[1], sys.argv[2:]
here = os.path.dirname(script)
sys.path[:0] = [here, os.path.join(here, "gguf-py")]  # as `python convert_hf_to_gguf.py` would
if importlib.util.find_spec("sentencepiece") is None:
    from conversion import base
    original = base.TextModel._create_vocab_sentencepiece
    def without_sentencepiece(self):
        if not (self.dir_model / "tokenizer.model").is_file():
            raise FileNotFoundError(self.dir_model / "tokenizer.model")
        return original(self)
    base.TextModel._create_vocab_sentencepiece = without_sentencepiece
for i in range(0, len(jobs), 3):
    model_dir, outfile, outtype = jobs[i:i + 3]
    sys.argv = [script, model_dir, "--outfile", outfile, "--outtype", outtype]
    runpy.run_path(script, run_name="__main__")
"""


def convert_to_gguf(jobs: list[tuple[Path, Path]], outtype: str = "f32", timeout: float = 300) -> list[Path]:
    """Convert each (model dir, outfile) pair to `outtype` (f32, f16, bf16, q8_0); one converter
    process for all of them."""
    converter = llama_cpp_converter()
    cmd = [sys.executable, "-c", _RUN_CONVERTER, str(converter / "convert_hf_to_gguf.py")]
    for model_dir, outfile in jobs:
        cmd += [str(model_dir), str(outfile), outtype]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, env=env)
    missing = [str(out) for _, out in jobs if not Path(out).is_file()]
    if done.returncode != 0 or missing:
        raise RuntimeError(f"convert_hf_to_gguf failed ({done.returncode}, missing {missing}): {done.stderr[-2000:]}")
    return [Path(out) for _, out in jobs]


__all__ = ["convert_to_gguf", "llama_cpp_converter"]
