"""The load folder: requests.jsonl appended durably from a writer thread, load.json written atomically.

Layout: <output-dir>/<date>-load-<model>-<id>/ with load.json (schema.LoadResult), requests.jsonl
(one schema.RequestRecord per line, warm-up included and marked), server.log (when harness started
the server) and report.html. Records go through a queue to a thread that appends and fsyncs each,
so the disk never stalls the event loop that timestamps tokens, and a killed test keeps every
record written before the kill. load.json is rewritten after every level, so it too survives.
"""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path

from harness.core.spec import parse as parse_spec
from harness.errors import ConfigError
from harness.load.schema import LoadResult, RequestRecord
from harness.results.store import SampleWriter, create_run_dir, new_run_id, slug, utc_now, write_json_atomic

LOAD_JSON, REQUESTS, SERVER_LOG, REPORT = "load.json", "requests.jsonl", "server.log", "report.html"


def new_folder(output_dir: str | Path, model: str) -> tuple[Path, str]:
    run_id = new_run_id()
    stem = Path(model).name.removesuffix(".gguf") if "/" in model or parse_spec(model).is_gguf else model
    stamp = utc_now().replace("-", "").replace(":", "")
    name = f"{stamp}_load_{slug(stem)}_{run_id}"
    return create_run_dir(output_dir, name), run_id


class RecordWriter:
    """`put(record)` from the event loop; a thread appends each to requests.jsonl with fsync."""

    def __init__(self, path: Path):
        self._writer = SampleWriter(path)
        self._q: queue.Queue[RequestRecord | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="load-records", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            rec = self._q.get()
            if rec is None:
                return
            try:
                self._writer.append([rec.model_dump(mode="json")])
            except BaseException as e:  # reported by close(); the test goes on measuring
                self._error = e

    def put(self, rec: RequestRecord) -> None:
        self._q.put(rec)

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=30)
        self._writer.close()
        if self._error is not None:
            raise self._error


def write_result(folder: Path, result: LoadResult) -> None:
    write_json_atomic(folder / LOAD_JSON, result.model_dump(mode="json"))


def is_load_folder(path: str | Path) -> bool:
    return (Path(path) / LOAD_JSON).is_file()


def read_result(folder: str | Path) -> LoadResult:
    path = Path(folder) / LOAD_JSON
    try:
        return LoadResult.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path} is not a readable load.json ({str(e).splitlines()[0][:200]})",
                          "pass a folder written by `harness load`") from None


def read_records(folder: str | Path) -> list[RequestRecord]:
    from harness.results.store import read_samples

    rows = read_samples(Path(folder) / REQUESTS, check=lambda r: None if isinstance(r, dict) and r.get("kind") == "request" else "not a request record")
    return [RequestRecord.model_validate(r) for r in rows]
