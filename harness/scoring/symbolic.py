"""Symbolic equality through math-verify, with a time limit that does not depend on the clock of
the thread that asks.

math-verify bounds its own work with `signal.alarm`, which works only in the main thread and
makes the verdict depend on how busy the machine is (the same comparison can finish on an idle
machine and time out on a loaded one). Here math-verify runs with its alarms off
(`parsing_timeout=None`, `timeout_seconds=None`) in one worker process (a fresh `python -m harness.scoring.symbolic`, so
no forked model, CUDA state or unguarded main module comes along), and the limit is
enforced from outside: a comparison that takes longer than `LIMIT_S` (generous: real answers
take milliseconds; the grader's size caps keep sympy away from the inputs that take minutes) is
counted as not equal, the worker is replaced, and the caller is told, so the sample row records
it. The verdict therefore depends only on the two strings, except past the limit, which is
recorded.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

LIMIT_S = 60.0  # per comparison, parse included; recorded in run.json's scoring block

log = logging.getLogger(__name__)
_lock = threading.Lock()
_worker: subprocess.Popen | None = None


class ScoringUnavailable(RuntimeError):
    """The comparison worker died twice in a row (killed by a signal, out of memory): no verdict.
    The sample becomes an error row, retried on --resume, never a wrong answer."""


@dataclass(frozen=True)
class Verdict:
    equal: bool
    limit_hit: bool = False  # True: the comparison ran past the limit and counts as not equal


def compare(pred: str, gold: str, limit_s: float | None = None) -> Verdict:
    """Whether math-verify finds `pred` equal to `gold` (both without `$`), within the limit."""
    limit = LIMIT_S if limit_s is None else limit_s
    with _lock:  # one comparison at a time: the worker answers in order
        for attempt in range(2):  # a worker killed from outside is replaced once; twice is no verdict
            try:
                worker = _start()
                assert worker.stdin is not None  # _start opens the worker with stdin=PIPE
                worker.stdin.write(json.dumps([pred, gold]) + "\n")
                worker.stdin.flush()
                line = _read_line(worker, limit)
                break
            except OSError as e:
                _stop()
                if attempt:
                    raise ScoringUnavailable(f"the symbolic comparison worker failed twice ({e})") from None
                log.warning("symbolic comparison worker failed; starting a new one")
        if line is None:  # past the limit: kill the worker stuck in sympy, start afresh next time
            _stop()
            return Verdict(False, limit_hit=True)
        return Verdict(line.strip() == "1")


def _read_line(worker: subprocess.Popen, limit: float) -> str | None:
    deadline = time.monotonic() + limit
    assert worker.stdout is not None  # _start opens the worker with stdout=PIPE
    with selectors.DefaultSelector() as sel:
        sel.register(worker.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(timeout=left):
                return None
            line = worker.stdout.readline()
            if not line:
                raise OSError("the comparison worker exited")
            return line


def _start() -> subprocess.Popen:
    global _worker
    if _worker is None or _worker.poll() is not None:
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        # its own session: a Ctrl-C to the terminal's process group stops the run, not the grader mid-comparison
        _worker = subprocess.Popen([sys.executable, "-m", "harness.scoring.symbolic"], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1, env=env,
                                   start_new_session=True)
    return _worker


def _stop() -> None:
    global _worker
    worker, _worker = _worker, None
    if worker is not None and worker.poll() is None:
        worker.kill()
        worker.wait()


def shutdown() -> None:
    """Stop the worker (tests; the worker also exits when this process closes its pipe)."""
    with _lock:
        _stop()


def verify(pred: str, gold: str) -> bool:
    """math-verify with its own alarms switched off (in the worker, or directly in tests)."""
    from math_verify import parse
    from math_verify import verify as mv_verify

    try:
        gold_parsed = parse(f"${gold}$", parsing_timeout=None)
        pred_parsed = parse(f"${pred}$", parsing_timeout=None)
        if not gold_parsed or not pred_parsed:
            return False
        return bool(mv_verify(gold_parsed, pred_parsed, timeout_seconds=None))
    except Exception:  # math-verify and sympy raise many types on odd input
        return False


def _serve() -> None:
    logging.disable(logging.WARNING)  # "Timeout is disabled ..." on every call: the limit is ours
    for line in sys.stdin:
        pred, gold = json.loads(line)
        sys.stdout.write("1\n" if verify(pred, gold) else "0\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _serve()
