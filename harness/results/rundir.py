"""The run folder's life cycle: create a new one or reopen one to resume, hold it exclusively
while the run lasts, clean up what a killed run left behind, and refuse a resume whose data or
settings changed under it.

What a run folder holds besides results: config.json (settings, with a hash of them, so an edit
between runs is refused), data.json (a content hash per item and of each data file, so a changed
or inserted row is refused instead of being mixed in under an old id) and .lock (the holder's pid
and host; an flock, so a lock left by a dead process is free again and is taken over).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError, DataError, shown
from harness.results import store
from harness.safeio import open_in_run

DATA = "data.json"
LOCK = ".lock"
SETTINGS = "settings.json"  # the effective per-task settings (after cards and defaults) the run started with


@dataclass
class RunState:
    """What is already on disk for this run: finished sample keys and the files to append to."""

    run_id: str
    created: str
    done: set[str]
    new: bool
    session: str  # this process's session: batches.jsonl rows carry it, so each session's time adds up
    signum: int | None = None
    made_base: Path | None = None  # an --output-dir this run created: removed again if nothing was measured
    lock: RunLock | None = field(default=None, repr=False)
    notes: list[str] = field(default_factory=list)

    @staticmethod
    def samples_file(dist) -> str:
        return store.SAMPLES if dist.world == 1 else f"samples.rank{dist.rank}.jsonl"

    @staticmethod
    def batches_file(dist) -> str:
        return store.BATCHES if dist.world == 1 else f"batches.rank{dist.rank}.jsonl"


class RunLock:
    """An exclusive flock on RUN_DIR/.lock, holding {"pid", "host"} of its owner. The kernel drops an
    flock when its process dies, so a lock file that still names a holder but can be locked is stale."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK
        self._fd = None
        try:
            import fcntl
        except ImportError:  # pragma: no cover - no flock (Windows): run unlocked
            return
        # never through a symlink: RUN/.lock -> ~/.bashrc must not truncate the target (harness/safeio.py)
        fd = open_in_run(self.path, os.O_RDWR | os.O_CREAT, 0o666)  # the umask decides, as for every result file
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):  # a file system without flock: not "in use"
                print(f"note: {run_dir} is on a file system without file locks; nothing stops a second run using it",
                      file=sys.stderr)
                self._fd = fd
                return
            holder = _holder(fd)
            os.close(fd)
            raise ConfigError(f"run folder {run_dir} is in use by {holder or 'another process'}",
                              "wait for that run to finish (or stop it), then --resume") from None
        stale = _holder(fd)
        if stale:
            print(f"note: taking over the lock on {run_dir} left by {stale}, which is no longer running", file=sys.stderr)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode(), 0)
        self._fd = fd

    def release(self, *, remove: bool = False) -> None:
        """Unlock; `remove`: the run finished, so the lock file goes too (a finished folder holds results only)."""
        if self._fd is not None:
            if remove:
                self.path.unlink(missing_ok=True)
            else:
                os.ftruncate(self._fd, 0)  # an empty lock file names no holder: the next run takes it quietly
            os.close(self._fd)
            self._fd = None


def _holder(fd: int) -> str | None:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"null")
        return f"pid {int(info['pid'])} on host {str(info['host'])[:64]}"
    except (ValueError, TypeError, KeyError, OSError):
        return None


def open_run_dir(cfg, plan, dist) -> tuple[Path, RunState]:
    """A new run folder, or the --resume folder reopened: locked, cleaned, its finished keys read."""
    session = dist.broadcast(store.new_run_id())
    if cfg.resume:
        run_dir = Path(cfg.resume).resolve()
        lock = RunLock(run_dir) if dist.is_main else None
        dist.barrier()
        notes = []
        if dist.is_main:
            clean_temp_files(run_dir)
            dropped = drop_error_rows(run_dir)
            if dropped:
                notes.append(f"retrying {dropped} sample(s) that ended in an error")
            if not (run_dir / DATA).exists():
                store.write_json_atomic(run_dir / DATA, data_manifest(plan))
        dist.barrier()
        rows = store.all_samples(run_dir)
        stored = store.read_config(run_dir)
        previous = _readable_run(run_dir, notes)
        run_id = (previous.run_id if previous else None) or stored.get("_run_id") or run_dir.name.rsplit("_", 1)[-1]
        created = (previous.created_utc if previous else None) or stored.get("_created_utc") or store.utc_now()
        state = RunState(run_id, created, {store.key_of(r) for r in rows}, False, session, lock=lock, notes=notes)
        return run_dir, state
    run_id = dist.broadcast(store.new_run_id())
    name = dist.broadcast(store.run_dir_name(cfg.model, plan.tasks, run_id))
    made_base = None if Path(cfg.output_dir).exists() else Path(cfg.output_dir)
    created = store.utc_now()
    lock = None
    if dist.is_main:
        run_dir = store.create_run_dir(cfg.output_dir, name)
        lock = RunLock(run_dir)
        store.write_config(run_dir, cfg.stored(), run_id=run_id, created=created)
        store.write_json_atomic(run_dir / DATA, data_manifest(plan))
        store.write_json_atomic(run_dir / SETTINGS, effective_settings(plan))
        (run_dir / RunState.samples_file(dist)).touch()  # a run killed before its first sample is still a run folder
    dist.barrier()
    run_dir = Path(cfg.output_dir).resolve() / name
    return run_dir, RunState(run_id, created, set(), True, session, made_base=made_base, lock=lock)


def close_run_dir(run_dir: Path, state: RunState, *, failed: bool, finished: bool = False) -> None:
    """Release the lock (a `finished` run's lock file is removed); a new run that failed before
    measuring anything leaves no folder behind."""
    if state.lock is not None:
        state.lock.release(remove=finished)
    if failed and state.new and is_empty(run_dir):
        import shutil

        shutil.rmtree(run_dir, ignore_errors=True)
        base = state.made_base
        if base and base.is_dir() and not any(base.iterdir()):
            base.rmdir()


def is_empty(run_dir: Path) -> bool:
    """True when no sample was written (no shard files, or only empty ones)."""
    return all(f.stat().st_size == 0 for f in Path(run_dir).glob("samples*.jsonl"))


def check_resume(cfg, plan) -> None:
    """Refuse a resume whose settings or data differ from the run's; reads only, changes nothing."""
    run_dir = Path(cfg.resume)
    if not run_dir.is_dir():
        raise ConfigError(f"--resume folder not found: {run_dir}", "pass a run folder written by `harness run`")
    stored = store.read_config(run_dir)  # also refuses a config.json edited since the run began
    diff = cfg.differs_from(stored)
    if diff:
        raise ConfigError(f"--resume with settings that differ from the stored run: {', '.join(diff)}",
                          f"resume with the original settings (see {run_dir / store.CONFIG}) or start a new run")
    _check_settings(run_dir, plan)
    path = run_dir / DATA
    if not path.exists():
        return  # a folder from before data.json: nothing to compare with (it is written now)
    try:
        before = json.loads(path.read_text(encoding="utf-8"))["tasks"]
    except (ValueError, KeyError, TypeError):
        raise DataError(f"{path} is corrupt", "start a new run: the data this run measured cannot be checked") from None
    now = data_manifest(plan)["tasks"]
    for task, was in before.items():
        items = (now.get(task) or {}).get("items", {})
        for item_id, digest in was.get("items", {}).items():
            if items.get(item_id) != digest:
                what = "is gone from" if item_id not in items else "changed in"
                raise DataError(f"task {task} item {shown(item_id)} {what} {shown(was.get('source'))} since the run started",
                                "restore the data the run started with, or start a new run")
        extra = sorted(set(items) - set(was.get("items", {})))
        if extra:
            raise DataError(f"task {task}: item {shown(extra[0])} was not in the data when the run started",
                            "restore the data the run started with, or start a new run")


def effective_settings(plan) -> dict:
    """What each task actually ran with, after flags, cards and task defaults: the decoding settings,
    samples per item, and the prompt protocol. A resume must produce the same, or it would mix
    samples of two settings under one label."""
    import dataclasses

    protocol = getattr(plan, "protocol", None)
    return {"protocol": getattr(protocol, "name", None),
            "tasks": {name: {"k": tp.k, "sampling": dataclasses.asdict(tp.sampling)} for name, tp in plan.tasks.items()}}


def _check_settings(run_dir: Path, plan) -> None:
    path = run_dir / SETTINGS
    if not path.exists():
        return  # a folder from before settings.json
    try:
        before = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise ConfigError(f"{path} is corrupt", "start a new run: the settings this run used cannot be checked") from None
    now = json.loads(json.dumps(effective_settings(plan)))  # tuples as lists, as stored
    if before == now:
        return
    diffs = [f"protocol {before.get('protocol')} -> {now['protocol']}"] if before.get("protocol") != now["protocol"] else []
    for task, was in (before.get("tasks") or {}).items():
        cur = now["tasks"].get(task) or {}
        for key in sorted(set(was.get("sampling", {})) | set(cur.get("sampling", {}))):
            a, b = was.get("sampling", {}).get(key), cur.get("sampling", {}).get(key)
            if a != b:
                diffs.append(f"{task} {key} {a} -> {b}")
        if was.get("k") != cur.get("k"):
            diffs.append(f"{task} samples per item {was.get('k')} -> {cur.get('k')}")
    raise ConfigError(f"--resume would run with different effective settings than the run started with: {'; '.join(diffs[:4]) or 'tasks changed'}"
                      " (a card or a default changed since)", f"restore what changed (see {path}) or start a new run")


def data_manifest(plan) -> dict:
    """A content hash per planned item and of each local data file."""
    return {"tasks": {name: {"source": tp.data_file or tp.task.describe(), "sha256": file_sha256(tp.data_file),
                             "items": {it.id: item_sha256(it) for it in tp.items}} for name, tp in plan.tasks.items()}}


def item_sha256(item) -> str:
    body = json.dumps([item.question, item.target, list(item.choices)], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def file_sha256(path) -> str | None:
    if not path or not Path(path).is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def clean_temp_files(run_dir: Path) -> None:
    """Temp files of an atomic write that a kill interrupted (`.run.json.x.tmp`): never a result."""
    for tmp in Path(run_dir).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def drop_error_rows(run_dir: Path) -> int:
    """Remove rows that ended in an error, so --resume generates them again. Returns how many."""
    dropped = 0
    for f in [run_dir / store.SAMPLES, *store.shard_files(run_dir)]:
        store.repair_torn_tail(f)
        rows = store.read_samples(f)
        keep = [r for r in rows if not store.is_error_row(r)]
        if len(keep) != len(rows):
            dropped += len(rows) - len(keep)
            store.rewrite_rows(f, keep)
    return dropped


def _readable_run(run_dir: Path, notes: list[str]):
    """The previous run.json, or None (with a note) when it is missing, empty or not valid."""
    if not (run_dir / store.RUN).exists():
        return None
    try:
        return store.load_run(run_dir)
    except ConfigError as e:
        notes.append(f"{e.problem}: rebuilt from samples.jsonl and config.json")
        return None


def finished_run(resume: str, output_dir: str | None = None) -> str | None:
    """What `--resume` of an intact, complete run folder says instead of running again (None when the
    run is not finished or the folder is damaged: the full resume handles those). `--output-dir` with
    `--resume` is refused: a resumed run continues in its own folder."""
    if output_dir:
        raise ConfigError("--output-dir cannot be used with --resume: a resumed run continues in its own folder",
                          f"drop --output-dir (the run stays in {resume})")
    folder = Path(resume)
    try:
        run = json.loads((folder / "run.json").read_text())
        lock = (folder / LOCK).read_text() if (folder / LOCK).exists() else ""
        rows = [json.loads(line) for f in sorted(folder.glob("samples*.jsonl")) for line in f.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return None
    if not isinstance(run, dict) or lock.strip() or not all(isinstance(r, dict) for r in rows):
        return None  # a lock naming a holder (a run that never closed) or a damaged row
    samples = run.get("samples") or {}
    if run.get("status") == "complete" and samples.get("done") == samples.get("planned") == len(rows) and not samples.get("errors"):
        return (f"run {resume} is already complete ({samples.get('done')} of {samples.get('planned')} samples): nothing to resume; "
                "its files are left untouched (`harness report` rewrites its reports)")
    return None
