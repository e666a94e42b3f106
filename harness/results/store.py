"""The results folder: naming, durable per-sample appends, atomic run.json, reading back.

samples.jsonl is append-only: each batch's rows are written, flushed and fsync'd before the next
batch starts, so a crash loses at most the batch in flight. A torn last line (the process died
mid-write) is detected on read and dropped. run.json and config.json are replaced atomically
(temp file, fsync, rename), so no reader ever sees half a file. The schema is harness/results/schema.py.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from harness.errors import ConfigError, HarnessError
from harness.results import schema
from harness.results.schema import RunResult

SAMPLES = "samples.jsonl"
RUN = "run.json"
CONFIG = "config.json"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def slug(text: str, limit: int = 48) -> str:
    """A file-name-safe slug: no separators, no '..', so a model id can never escape the folder."""
    s = _SAFE.sub("-", text.replace("/", "--")).strip("-.")
    s = re.sub(r"\.{2,}", ".", s)
    return (s or "x")[:limit]


def new_run_id() -> str:
    return secrets.token_hex(4)


def run_dir_name(model: str, tasks: Iterable[str], run_id: str, when: datetime | None = None) -> str:
    stamp = (when or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}_{slug(model)}_{slug('+'.join(tasks), 40)}_{run_id}"


def create_run_dir(output_dir: str | Path, name: str) -> Path:
    base = Path(output_dir)
    try:
        base.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=base, prefix=".probe", delete=True)
        probe.close()
    except OSError as e:
        raise ConfigError(f"output directory {base} is not writable ({e.strerror or e})", "pass --output-dir to a folder you can write") from None
    path = (base / name).resolve()
    if base.resolve() not in path.parents:
        raise ConfigError(f"run folder {name!r} would escape {base}", "this is a bug: please report it")
    path.mkdir(parents=False, exist_ok=False)
    return path


def write_json_atomic(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False, default=_jsonable) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    tmp = None
    try:  # creating the temp file can fail too (a full disk, a full quota)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise HarnessError(f"could not write {path} ({e.strerror or e})", "free disk space or check permissions, then --resume") from None
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def _jsonable(obj):
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class SampleWriter:
    """Appends rows to a JSONL file durably; one `append` call is one written, fsync'd batch.

    Unbuffered, so a failed append (a full disk) leaves no data behind in a buffer to be flushed
    later; the partial batch is cut off again, so the file keeps whole rows only."""

    def __init__(self, path: Path):
        self.path = path
        repair_torn_tail(path)
        self._f = open(path, "ab", buffering=0)

    def append(self, rows: list[dict]) -> None:
        if not rows:
            return
        data = "".join(json.dumps(r, ensure_ascii=False, allow_nan=False, default=_jsonable) + "\n" for r in rows).encode("utf-8")
        start = os.fstat(self._f.fileno()).st_size
        try:
            view = memoryview(data)
            while view:  # a raw write may be partial
                view = view[self._f.write(view):]
            os.fsync(self._f.fileno())
        except OSError as e:
            try:
                os.ftruncate(self._f.fileno(), start)
            except OSError:
                pass  # a torn last line is still dropped on read and on --resume
            raise HarnessError(f"could not append to {self.path} ({e.strerror or e})", "free disk space, then continue with --resume") from None

    def close(self) -> None:
        self._f.close()


def repair_torn_tail(path: Path) -> int:
    """Drop an incomplete last line left by a crash mid-write. Returns the bytes removed."""
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with open(path, "rb+") as f:
        data = f.read()
        if data.endswith(b"\n"):
            last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
            try:
                json.loads(last)
                return 0
            except ValueError:
                keep = len(data.rstrip(b"\n")) - len(last)
        else:
            keep = data.rfind(b"\n") + 1
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
        return len(data) - keep


def read_samples(path: Path) -> list[dict]:
    """All complete rows; a torn last line is ignored (a torn line elsewhere is an error)."""
    if not path.exists():
        return []
    rows = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            if n == len(lines):
                break
            raise HarnessError(f"{path}:{n} is corrupt", "remove that line, then --resume") from None
    return rows


def load_run(run_dir: str | Path) -> RunResult:
    """A run folder's run.json, validated against the schema (any 1.x file up to this version)."""
    path = Path(run_dir) / RUN
    if not path.exists():
        raise ConfigError(f"no run.json in {run_dir}", "pass a folder written by `harness run`")
    return schema.load(path)


def sample_key(row: dict) -> tuple[str, str, int]:
    return row["task"], str(row["id"]), int(row.get("sample", 0))


def read_config(run_dir: str | Path) -> dict:
    path = Path(run_dir) / CONFIG
    if not Path(run_dir).is_dir():
        raise ConfigError(f"run folder not found: {run_dir}", "pass a folder written by `harness run`")
    if not path.exists():
        raise ConfigError(f"{run_dir} has no {CONFIG}: not a run folder", "pass a folder written by `harness run`")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise ConfigError(f"{path} is corrupt", "start a new run") from None


def shard_files(run_dir: Path, stem: str = "samples") -> list[Path]:
    return sorted(run_dir.glob(f"{stem}.rank*.jsonl"))


def all_samples(run_dir: str | Path, *, repair: bool = False) -> list[dict]:
    """Every finished sample of a run, from samples.jsonl and any per-process shards, each once."""
    run_dir = Path(run_dir)
    files = [run_dir / SAMPLES, *shard_files(run_dir)]
    seen, rows = set(), []
    for f in files:
        if repair:
            repair_torn_tail(f)
        for row in read_samples(f):
            key = sample_key(row)
            if key not in seen:
                seen.add(key)
                rows.append(row)
    return rows


def all_batches(run_dir: str | Path) -> list[dict]:
    run_dir = Path(run_dir)
    out = []
    for f in [run_dir / "batches.jsonl", *shard_files(run_dir, "batches")]:
        out.extend(read_samples(f))
    return out


def merge_shards(run_dir: Path, order: list[str]) -> list[dict]:
    """Fold per-process shards into samples.jsonl (atomically), in the plan's order, then remove them."""
    rows = all_samples(run_dir, repair=True)
    rank = {k: i for i, k in enumerate(order)}
    rows.sort(key=lambda r: rank.get(f"{r['task']}/{r['id']}/{r.get('sample', 0)}", len(rank)))
    shards = shard_files(run_dir)
    if shards:
        fd, tmp = tempfile.mkstemp(dir=run_dir, prefix=".samples.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False, default=_jsonable) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, run_dir / SAMPLES)
        _fsync_dir(run_dir)
        for s in shards:
            s.unlink()
        batches = all_batches(run_dir)
        for s in shard_files(run_dir, "batches"):
            s.unlink()
        with open(run_dir / "batches.jsonl", "w", encoding="utf-8") as f:
            f.write("".join(json.dumps(b) + "\n" for b in batches))
    return rows
