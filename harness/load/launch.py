"""`python -m harness.load.launch llama_cpp.server ARGS...`: run llama-cpp-python's server with its
extra buffer types (AMX and repacked weights) switched off.

Why: on some CPUs llama.cpp's AMX matrix multiply crashes (SIGSEGV in ggml_backend_amx_mul_mat,
seen on this project's 2-core Xeon VM, whose CPU reports AMX). harness.backends.llamacpp_cpu sets
`use_extra_bufts` off in the default model parameters, then this runs the server module exactly as
`python -m` would. harness.load.server uses it only after a probe of the
plain library crashed, and records that it did. The module name stays on the command line, so
`ps` still shows which server runs.
"""

from __future__ import annotations

import runpy
import sys


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] != "llama_cpp.server":
        sys.exit("usage: python -m harness.load.launch llama_cpp.server ARGS...")
    import llama_cpp

    from harness.backends.llamacpp_cpu import disable_extra_bufts

    disable_extra_bufts(llama_cpp)
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
