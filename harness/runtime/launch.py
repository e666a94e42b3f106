"""`harness run --num-processes N`: re-launch this command under `accelerate launch`, so users
never meet the launcher's CPU quirk (`--cpu --num_processes 2` starts one process; two gloo
ranks need `--multi_gpu`)."""

from __future__ import annotations

import os
import subprocess
import sys


def strip_flag(argv: list[str], flag: str) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == flag:
            skip = True
            continue
        if a.startswith(flag + "="):
            continue
        out.append(a)
    return out


def relaunch(argv: list[str], n: int) -> int:
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(n), "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "harness", *strip_flag(argv, "--num-processes")]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // n)))}
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 130
