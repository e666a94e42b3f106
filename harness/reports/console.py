"""What a person sees while a run goes: the plan, a loading phase, then samples done/total,
generated tokens/s and ETA (a bar on a terminal; a heartbeat line every HARNESS_HEARTBEAT_S
seconds, default 30, when stderr is a log); at the end where the results and reports are and
the headline numbers; on Ctrl-C the run folder and the command that resumes it. Only the main
process prints."""

from __future__ import annotations

import os
import shlex
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from harness.sanitize import clean

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

HEARTBEAT_S = 30.0


def resume_hint(run_dir) -> str:
    return f"run folder: {run_dir}\nresume with: harness run --resume {shlex.quote(str(run_dir))}"


class RunProgress:
    """Receives the pipeline's phases (see pipeline._hook) and shows them on stderr."""

    def __init__(self, *, tty: bool, quiet: bool = False, interval: float | None = None, stream=None, out=None):
        # the plan and the phases are results (stdout); the moving progress is stderr, so a failed run's
        # stderr holds only its one error line
        self.tty, self.quiet, self.stream, self.out = tty, quiet, stream or sys.stderr, out or sys.stdout
        self.interval = interval if interval is not None else float(os.environ.get("HARNESS_HEARTBEAT_S") or HEARTBEAT_S)
        self.folder_path = None
        self.total = self.done = self.tokens_done = 0
        self.live_tokens = 0  # ticked per decoding step or streamed delta (runtime/tokens.py), warm-up excluded
        self.expected_tokens = 0  # the plan's expected output tokens: the ETA's denominator
        self._unlisten: Callable[[], None] | None = None
        self.t0: float | None = None
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._lock = threading.Lock()

    # ---- phases -----------------------------------------------------------------------------------
    def plan(self, pre) -> None:
        self.expected_tokens = sum(t["requests"] * t["expected_tokens"] for t in pre.tasks)
        if not self.quiet:
            from harness.planning.preview import render

            self._print(render(pre), self.out)

    def folder(self, path) -> None:
        self.folder_path = path

    def loading(self, model: str) -> None:
        if not self.quiet:
            self._print(f"loading {model} ...", self.out)

    def probing(self, what: str) -> None:
        if not self.quiet:
            self._print(f"measuring the {what} (--batch-size auto) ...", self.out)

    def start(self, total: int) -> None:
        self.total, self.t0 = total, time.perf_counter()
        from harness.runtime import tokens

        self._unlisten = tokens.listen(self._tick)
        if self.quiet:
            return
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("run", total=total, rate="")
        elif self.interval > 0:
            self._beat = threading.Thread(target=self._heartbeat, name="harness-heartbeat", daemon=True)
            self._beat.start()

    def __call__(self, n: int) -> None:  # samples finished (generate_all's progress callback)
        with self._lock:
            self.done += n
        if self._bar is not None and self._task is not None:  # the task is added just after the bar starts
            self._bar.update(self._task, advance=n, rate=self._rate())

    def tokens(self, n: int) -> None:
        with self._lock:
            self.tokens_done += int(n or 0)

    def _tick(self, n: int) -> None:
        with self._lock:
            self.live_tokens += n
        if self._bar is not None and self._task is not None and self.live_tokens % 16 < n:  # refresh about every 16 tokens, never every step
            self._bar.update(self._task, rate=self._rate())

    def close(self) -> None:
        self._stop.set()
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    # ---- text ---------------------------------------------------------------------------------------
    def _tokens(self) -> int:
        """Tokens generated so far: the live step/stream count, or finished samples' tokens where an
        engine does not tick."""
        return max(self.live_tokens, self.tokens_done)

    def _rate(self) -> str:
        elapsed = time.perf_counter() - (self.t0 or time.perf_counter())
        toks = self._tokens()
        return f"{toks:,} tok, {toks / elapsed:.1f} tok/s" if elapsed > 0 and toks else ""

    def eta(self) -> str:
        """Remaining time from tokens (expected output tokens left over the token rate so far), else
        from finished samples; '?' before either has moved."""
        from harness.planning.estimate import human_seconds

        elapsed = time.perf_counter() - (self.t0 or time.perf_counter())
        toks = self._tokens()
        if toks and self.expected_tokens and elapsed > 0:
            return human_seconds(max(0, self.expected_tokens - toks) / (toks / elapsed))
        if self.done and self.total:
            return human_seconds(elapsed / self.done * (self.total - self.done))
        return "?"

    def line(self) -> str:
        elapsed = time.perf_counter() - (self.t0 or time.perf_counter())
        return (f"progress: {self.done}/{self.total} samples, {self._rate() or '0 tok, 0 tok/s'}, elapsed {elapsed:.0f} s, "
                f"ETA {self.eta()}")

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.interval):
            self._print(self.line())

    def _print(self, text: str, stream=None) -> None:
        print(text, file=stream or self.stream, flush=True)


def summarize(run_dir):
    from harness.reports.format import interval, pct
    from harness.reports.markdown import write_reports
    from harness.results.store import load_run

    run = load_run(run_dir)
    print(f"run folder: {run_dir}")
    if run.protocol is not None:
        print(f"prompt protocol: {run.protocol.name}" + (f" (from {run.protocol.source})" if run.protocol.source else ""))
    n = run.samples
    if n is not None:
        print(f"status: {run.status} ({n.done} answered, {n.errors or 0} failed, {n.planned} planned)")
    for name, t in run.tasks.items():
        acc = t.metrics["accuracy"]
        extra = "".join(f", {m} {pct(v.value)}" for m, v in t.metrics.items() if m.startswith(("pass@", "maj@")))
        print(f"{name}: accuracy {pct(acc.value)} {interval(acc.ci95)} "
              f"over {t.n} problems x {t.k}{extra}; truncated {pct(t.truncation_rate, 0)}"
              + (f"; {t.errors} failed samples left out" if t.errors else ""))
        if t.data is not None and t.data.selection != "official":
            print(f"  data ({t.data.selection}): {t.data.detail}")
    perf = run.perf
    tps = perf.output_tokens_per_s
    print(f"perf: {perf.wall_s:.2f} s generating, {tps:.1f} output tok/s ({perf.output_tokens:,} tokens / {perf.wall_s:.2f} s)"
          if tps and perf.output_tokens else f"perf: {perf.wall_s:.2f} s generating")
    from harness.claims.verdicts import verdict_label

    for c in run.claims:
        claimed = "no published value" if c.claimed is None else f"{100 * c.claimed:.1f}%"
        print(f"claim {c.task} {c.metric} {claimed}: {verdict_label(c)}")
        if c.reasons:
            print(f"  not comparable: {'; '.join(f'[{r.code}] {r.detail}' for r in c.reasons)}")
            if c.measured is not None:
                print(f"  measured {100 * c.measured:.1f}% (indicative only)")
        for caveat in c.caveats:
            print(f"  caveat: {caveat}")
    for w in run.warnings:
        print(f"warning: {clean(w)}")
    md, html = write_reports(run_dir)
    print(f"reports: {md}\n         {html}")
    return run
