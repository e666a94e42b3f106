"""SIGINT/SIGTERM handling: the first signal asks the run to stop after the batch in flight;
a second one stops at once (Interrupted raised where the program is). Either way the run folder
ends "interrupted" and resumable, and the exit code follows the shell's 128 + the FIRST signal's
number (130, 143), whatever the second one was."""

from __future__ import annotations

import signal
import threading

# Set by the first signal, for code that waits outside the batch loop (a backend's backoff sleeps,
# its in-flight HTTP reads): they end within seconds instead of after every retry.
STOP = threading.Event()


class StopSignals:
    def __init__(self) -> None:
        self._got: int | None = None
        self._old: dict = {}

    def received(self) -> int | None:
        return self._got

    def _handle(self, signum, frame):
        if self._got is not None:
            from harness.errors import Interrupted

            raise Interrupted(self._got)  # second signal: stop now
        self._got = signum
        STOP.set()
        import sys

        print(f"\nreceived signal {signum}: stopping after the batch in flight (again to stop now)", file=sys.stderr, flush=True)

    def __enter__(self) -> StopSignals:
        STOP.clear()
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        STOP.clear()
        for s, h in self._old.items():
            signal.signal(s, h)
