"""Whether llama.cpp's extra CPU buffer types (AMX tiles, repacked weights) work on this machine.

On some VMs that advertise AMX (seen 2026-12-06 on a 2-core Intel Xeon VM with amx_tile/amx_bf16),
llama-cpp-python 0.3.36 segfaults in the first prefill of more than a couple of tokens unless
`llama_model_params.use_extra_bufts` is false; with it false the same model decodes normally. A
segfault cannot be caught, so the decision is a probe: a child process loads the model and
prefills 48 tokens with the extra buffer types on. If the child dies of a signal they are turned
off for this process (llama-cpp-python exposes no flag for it, so its default-parameters function
is wrapped). The result is cached per llama-cpp-python version and CPU flags;
HARNESS_LLAMA_CPP_EXTRA_BUFTS=0/1 decides without probing.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

_PROBE = """
import sys
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=128, n_threads=1, n_threads_batch=1, verbose=False)
toks = llm.tokenize(b"The quick brown fox jumps over the lazy dog. " * 6, add_bos=True, special=True)[:48]
llm.eval(toks)
print("ok")
"""

_decided: dict[str, tuple[bool, str]] = {}


def _machine_key(llama_cpp) -> str:
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        flags = ""
    return f"{getattr(llama_cpp, '__version__', '?')}|{hashlib.sha256(flags.encode()).hexdigest()[:16]}"


def _cache_file() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cnllm-harness" / "llama_cpp_extra_bufts.json"


def extra_bufts_ok(llama_cpp, model_path: str) -> tuple[bool, str]:
    """(whether the extra CPU buffer types may stay on, why)."""
    env = os.environ.get("HARNESS_LLAMA_CPP_EXTRA_BUFTS")
    if env in ("0", "1"):
        return env == "1", f"HARNESS_LLAMA_CPP_EXTRA_BUFTS={env}"
    key = _machine_key(llama_cpp)
    if key in _decided:
        return _decided[key]
    cache = _cache_file()
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        _decided[key] = (bool(known[key]["ok"]), known[key]["why"] + " (cached)")
        return _decided[key]
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, model_path], capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        return True, "probe timed out: left on"
    if done.returncode < 0:
        decision = (False, (f"a 48-token prefill with llama.cpp's extra CPU buffer types (AMX / repacked weights) died of signal "
                           f"{-done.returncode} on this machine, so they are off (use_extra_bufts=false)"))
    elif done.returncode == 0:
        decision = (True, "a 48-token prefill with llama.cpp's extra CPU buffer types worked here")
    else:
        return True, f"probe failed for another reason (exit {done.returncode}): left on"
    known[key] = {"ok": decision[0], "why": decision[1]}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1))
        os.replace(tmp, cache)
    except OSError:
        pass
    _decided[key] = decision
    return decision


def disable_extra_bufts(llama_cpp) -> None:
    """Turn llama.cpp's extra CPU buffer types off for every model this process loads (llama-cpp-python has
    no flag for `use_extra_bufts`, so its default-parameters function is wrapped)."""
    low = llama_cpp.llama_cpp  # Llama.__init__ reads the defaults through this submodule
    if getattr(low, "_harness_no_extra_bufts", False):
        return
    original = low.llama_model_default_params

    def defaults():
        params = original()
        params.use_extra_bufts = False
        return params

    low.llama_model_default_params = defaults
    llama_cpp.llama_model_default_params = defaults
    low._harness_no_extra_bufts = True


def apply(llama_cpp, model_path: str) -> str:
    """Turn the extra buffer types off for this process where the probe says they crash; the reason."""
    ok, why = extra_bufts_ok(llama_cpp, model_path)
    if not ok:
        disable_extra_bufts(llama_cpp)
    return why


__all__ = ["apply", "disable_extra_bufts", "extra_bufts_ok"]
