"""`python -m harness.load.launch llama_cpp.server ARGS...`: run llama-cpp-python's server with its
extra buffer types (AMX and repacked weights) switched off.

Why: on some CPUs llama.cpp's AMX matrix multiply crashes (SIGSEGV in ggml_backend_amx_mul_mat,
seen on this project's 2-core EPYC VM, whose CPU reports AMX). llama-cpp-python has no flag for
llama.cpp's `use_extra_bufts`, so this sets it in the default model parameters and then runs the
server module exactly as `python -m` would. harness.load.server uses it only after a probe of the
plain library crashed, and records that it did. The module name stays on the command line, so
`ps` still shows which server runs.
"""

from __future__ import annotations

import runpy
import sys


def _no_extra_bufts() -> None:
    import llama_cpp.llama as llama
    import llama_cpp.llama_cpp as lib

    default = lib.llama_model_default_params

    def params():  # type: ignore[no-untyped-def]
        p = default()
        p.use_extra_bufts = False
        return p

    lib.llama_model_default_params = params
    llama.llama_cpp.llama_model_default_params = params


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] != "llama_cpp.server":
        sys.exit("usage: python -m harness.load.launch llama_cpp.server ARGS...")
    _no_extra_bufts()
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
