"""`harness run --num-processes N`: re-launch this command under `accelerate launch`, so users
never meet the launcher's CPU quirk (`--cpu --num_processes 2` starts one process; two gloo
ranks need `--multi_gpu`). Signals to this process are forwarded to the ranks and waited for."""

from __future__ import annotations

import os
import signal
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
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)  # our own group: a terminal's Ctrl-C comes through us
    return wait_forwarding(proc)


def wait_forwarding(proc: subprocess.Popen) -> int:
    """Wait for the launcher, passing SIGINT/SIGTERM on to the ranks (its children), so each stops
    after its batch in flight and the run folder ends interrupted and resumable; then exit by the
    first signal (130, 143). The launcher itself is not signalled: it would signal the ranks again,
    which makes them stop at once instead of after the batch."""
    got: list[int] = []

    def forward(signum, frame):
        got.append(signum)
        for pid in _ranks(proc.pid) or [proc.pid]:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        rc = proc.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return 128 + got[0] if got else rc


def _ranks(pid: int) -> list[int]:
    """The harness processes under the launcher (the ranks), found by their command line."""
    try:
        import psutil

        return [p.pid for p in psutil.Process(pid).children(recursive=True) if "harness" in " ".join(p.cmdline())]
    except Exception:  # psutil missing, or the process is gone
        return []
