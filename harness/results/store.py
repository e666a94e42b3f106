"""The results folder: naming, durable per-sample appends, atomic run.json, reading back.

samples.jsonl is append-only: each batch's rows are written, flushed and fsync'd before the next
batch starts, so a crash loses at most the batch in flight. A torn last line (the process died
mid-write) is detected on read and dropped. run.json and config.json are replaced atomically
(temp file, fsync, rename), so no reader ever sees half a file. The schema is harness/results/schema.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from harness.errors import ConfigError, HarnessError, shown
from harness.results import schema
from harness.results.schema import RunResult
from harness.safeio import check_no_link, open_in_run, os_problem
from harness.sanitize import clean
from harness.secrets import redact, redact_value

SAMPLES = "samples.jsonl"
BATCHES = "batches.jsonl"
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
        raise ConfigError(f"output directory {shown(str(base))} is not writable ({os_problem(e)})", "pass --output-dir to a folder you can write") from None
    path = (base / name).resolve()
    if base.resolve() not in path.parents:
        raise ConfigError(f"run folder {name!r} would escape {base}", "this is a bug: please report it")
    try:
        path.mkdir(parents=False, exist_ok=False)
    except OSError as e:  # a name too long for the file system, say
        raise ConfigError(f"cannot create a run folder in {shown(str(base))} ({os_problem(e)})", "pass a shorter --output-dir") from None
    return path


def write_json_atomic(path: Path, data: dict) -> None:
    """`data` redacted value by value (never the serialised text: a mask must not cut a key), then written atomically."""
    _write_atomic(path, json.dumps(redact_value(data), indent=2, ensure_ascii=False, allow_nan=False, default=_jsonable) + "\n")


def file_mode() -> int:
    """The mode `open()` gives a new file under the current umask. mkstemp makes 0600 files; every
    result file gets this one mode instead, so a run folder on a shared volume stays readable."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_text_atomic(path: Path, text: str) -> None:
    """Free text (a report) written atomically, with any known secret in it masked and escape
    sequences and control characters a server or model name carried removed (harness/sanitize.py)."""
    _write_atomic(path, clean(redact(text), newlines=True))  # a key a server echoed never reaches a file


def _write_atomic(path: Path, text: str) -> None:
    tmp = None
    try:  # creating the temp file can fail too (a full disk, a full quota)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        if hasattr(os, "fchmod"):  # not on Windows, where mkstemp's mode is not 0600 anyway
            os.fchmod(fd, file_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise HarnessError(f"could not write {path} ({os_problem(e)})", "free disk space or check permissions, then --resume") from None
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
        # O_NOFOLLOW: a samples.jsonl planted as a symlink must not make us append to its target
        self._f = open(path, "ab", buffering=0, opener=_no_follow)

    def append(self, rows: list[dict]) -> None:
        if not rows:
            return
        data = "".join(_line(r) for r in rows).encode("utf-8")
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
            raise HarnessError(f"could not append to {self.path} ({os_problem(e)})", "free disk space, then continue with --resume") from None

    def close(self) -> None:
        self._f.close()


def _no_follow(path: str, flags: int) -> int:
    """An `open()` opener that never follows a symlink and opens regular files only (harness/safeio.py)."""
    return open_in_run(path, flags, file_mode())


def repair_torn_tail(path: Path) -> int:
    """Drop an incomplete last line left by a crash mid-write. Returns the bytes removed."""
    check_no_link(path)
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with os.fdopen(open_in_run(path, os.O_RDWR), "rb+") as f:
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


def _line(row: dict) -> str:
    # ensure_ascii=False keeps text readable; U+2028/U+2029/U+0085 stay inside the JSON string and
    # readers split on "\n" only, so they can never cut a row in two. Values are redacted before
    # serialisation, so a mask never cuts the JSON structure.
    return json.dumps(redact_value(row), ensure_ascii=False, allow_nan=False, default=_jsonable) + "\n"


def json_lines(text: str) -> list[str]:
    """JSON Lines split by "\n" only: str.splitlines() would also cut at U+2028, U+0085 and others,
    which are legal inside a JSON string."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def read_samples(path: Path, check=None) -> list[dict]:
    """All complete rows; a torn last line is ignored (a torn line elsewhere is an error). Each row
    must look like a sample (an object with a task and an id), or the error names file:line."""
    check = check or sample_problem
    check_no_link(path)
    if not path.exists():
        return []
    rows = []
    with os.fdopen(open_in_run(path, os.O_RDONLY), "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        cut = raw.rstrip(b"\n").rfind(b"\n") + 1  # where the last line starts
        if e.start < cut:
            raise HarnessError(f"{path} is not UTF-8 (byte {e.start})", "restore the file, or start a new run") from None
        text = raw[:cut].decode("utf-8")  # a last line torn inside a multi-byte character: dropped like any torn line
    lines = json_lines(text)
    while lines and not lines[-1].strip():
        lines.pop()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            if n == len(lines):
                break
            raise HarnessError(f"{path}:{n} is corrupt", "remove that line, then --resume") from None
        problem = check(row)
        if problem:
            raise HarnessError(f"{path}:{n} is not a valid row ({problem})", "remove that line, then --resume")
        rows.append(row)
    return rows


def sample_problem(row) -> str | None:
    """Why `row` is not a samples.jsonl row, or None. Readers index these fields without checking."""
    if not isinstance(row, dict):
        return f"a JSON {type(row).__name__}, not an object"
    if not isinstance(row.get("task"), str) or not row["task"]:
        return "no task name"
    if not isinstance(row.get("id"), (str, int)) or isinstance(row.get("id"), bool):
        return "no item id"
    if not isinstance(row.get("sample", 0), int) or isinstance(row.get("sample", 0), bool):
        return "sample is not an integer"
    for name in ("input_tokens", "output_tokens", "ttft_s", "tpot_s", "e2e_s"):
        v = row.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            return f"{name} is not a number"
    for name in ("meta", "unmeasured"):
        if not isinstance(row.get(name, {}), dict):
            return f"{name} is not an object"
    return None


def is_error_row(row: dict) -> bool:
    """A sample whose request failed (the engine or server gave no answer): not done, retried on --resume."""
    return row.get("finish_reason") == "error"


def rewrite_rows(path: Path, rows: list[dict]) -> None:
    _write_atomic(path, "".join(_line(r) for r in rows))


def load_run(run_dir: str | Path) -> RunResult:
    """A run folder's run.json, validated against the schema (any 1.x file up to this version). An
    empty or unreadable one names the recovery: --resume rebuilds it from the samples."""
    path = Path(run_dir) / RUN
    check_no_link(path)
    if not path.exists():
        raise ConfigError(f"no run.json in {run_dir}", "pass a folder written by `harness run`")
    fix = f"rebuild it from the samples with `harness run --resume {run_dir}`"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError):
        raise ConfigError(f"{path} is empty or not valid JSON", fix) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds a JSON {type(data).__name__}, not a run", fix)
    return schema.validate(data, str(path))


def sample_key(row: dict) -> tuple[str, str, int]:
    return row["task"], str(row["id"]), int(row.get("sample", 0))


def key_of(row: dict) -> str:
    """The row's request key, "<task>/<id>/<sample>", as the plan names it."""
    return f"{row['task']}/{row['id']}/{row.get('sample', 0)}"


def config_digest(stored: dict) -> str:
    body = json.dumps({k: v for k, v in stored.items() if not k.startswith("_")}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def write_config(run_dir: Path, stored: dict, *, run_id: str, created: str) -> None:
    """config.json: the settings, plus a digest of them, so an edit between runs is refused. The
    digest is of the values as written (redacted first), so the file always matches it."""
    stored = redact_value(stored)
    write_json_atomic(Path(run_dir) / CONFIG, {**stored, "_run_id": run_id, "_created_utc": created, "_sha256": config_digest(stored)})


def read_config(run_dir: str | Path) -> dict:
    path = Path(run_dir) / CONFIG
    if not Path(run_dir).is_dir():
        raise ConfigError(f"run folder not found: {shown(run_dir)}", "pass a folder written by `harness run`")
    check_no_link(path)
    if not path.exists():
        raise ConfigError(f"{shown(run_dir)} has no {CONFIG}: not a run folder", "pass a folder written by `harness run`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError):
        raise ConfigError(f"{path} is corrupt", "start a new run") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is corrupt (not an object)", "start a new run")
    if "_sha256" in data and data["_sha256"] != config_digest(data):
        raise ConfigError(f"{path} was edited after the run started: its settings no longer match the samples already measured",
                          "restore the original config.json, or start a new run with the settings you want")
    return data


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
    """Every batch record once: a merge killed after writing batches.jsonl but before removing the
    shards leaves the same records in both, and they are the same batch."""
    run_dir = Path(run_dir)
    out, seen = [], set()
    for f in [run_dir / BATCHES, *shard_files(run_dir, "batches")]:
        for row in read_samples(f, check=_batch_problem):
            key = json.dumps(row, sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                out.append(row)
    return out


def _batch_problem(row) -> str | None:
    if not isinstance(row, dict):
        return f"a JSON {type(row).__name__}, not an object"
    bad = [k for k in ("rows", "wall_s") if isinstance(row.get(k), bool) or not isinstance(row.get(k), (int, float))]
    return f"{bad[0]} is not a number" if bad else None


def merge_shards(run_dir: Path, order: list[str]) -> list[dict]:
    """Fold per-process shards into samples.jsonl (atomically), in the plan's order, then remove them."""
    rows = all_samples(run_dir, repair=True)
    rank = {k: i for i, k in enumerate(order)}
    rows.sort(key=lambda r: rank.get(key_of(r), len(rank)))
    shards = shard_files(run_dir)
    if shards:  # every merged file is written (atomically, fsync'd) before any shard is removed
        batches = all_batches(run_dir)
        rewrite_rows(run_dir / SAMPLES, rows)
        rewrite_rows(run_dir / BATCHES, batches)
        for s in [*shards, *shard_files(run_dir, "batches")]:
            s.unlink()
    return rows
