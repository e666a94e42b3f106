"""A run as the CLI starts it: the pipeline with the live console attached, then the summary on stdout."""

from __future__ import annotations

import os
import sys

from harness.reports.console import RunProgress, resume_hint, summarize


def run_with_progress(cfg) -> int:
    import atexit

    atexit.register(_write_pending)  # before torch and worker pools register theirs: runs after them (LIFO)
    from harness.errors import Interrupted
    from harness.orchestration import pipeline

    main = int(os.environ.get("RANK", "0")) == 0
    show = RunProgress(tty=sys.stderr.isatty(), quiet=cfg.quiet or not main)
    try:
        run_dir = pipeline.run(cfg, progress=show)
    except (Interrupted, KeyboardInterrupt):
        show.close()
        folder = show.folder_path
        if main and folder is not None and folder.is_dir():
            print(resume_hint(folder), file=sys.stderr, flush=True)
        raise
    finally:
        show.close()
    if main:
        run = summarize(run_dir)
        _record(run, run_dir)
        if run.status in ("partial", "failed"):
            from harness.errors import RunFailed

            n = run.samples
            first = run.errors.first if run.errors else "see run.json"
            raise RunFailed(f"run {run.status}: {n.errors} of {n.errors + n.done} samples failed ({first[:200]})",
                            f"fix the cause, then `harness run --resume {run_dir}` retries only those samples")
    return 0


def _record(run, run_dir) -> None:
    """This run's phase times, for the time model of the plans after it (planning/timing.py),
    written at interpreter exit so the process's wall time includes its tear-down (worker pools
    closing), as a user's clock sees it. A record that cannot be written costs only a less
    informed plan later."""
    from harness.planning import timing
    from harness.planning.preflight import model_shape

    def write() -> None:
        try:
            timing.record_run(run, run_dir, timing.process_seconds(), model_shape(run.model.name_or_path))
        except Exception:  # noqa: BLE001
            if os.environ.get("HARNESS_DEBUG"):
                raise

    write()  # now, so a caller that does not exit (a test, a notebook) has it; again at exit with the tear-down counted
    _PENDING.append(write)


_PENDING: list = []


def _write_pending() -> None:
    while _PENDING:
        _PENDING.pop()()
