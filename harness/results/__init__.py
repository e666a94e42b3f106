"""The results folder: where a run's measurements live and how they are read back.

`store` owns the files (durable per-sample appends, atomic run.json, reading back); `summary`
assembles run.json from them; `rundir` owns a run folder's life cycle (create, resume, lock,
clean-up). The names below are the store's public face.
"""

from harness.results.store import (
    BATCHES,
    CONFIG,
    RUN,
    SAMPLES,
    SampleWriter,
    all_batches,
    all_samples,
    create_run_dir,
    is_error_row,
    json_lines,
    key_of,
    load_run,
    merge_shards,
    new_run_id,
    read_config,
    read_samples,
    repair_torn_tail,
    run_dir_name,
    sample_key,
    shard_files,
    slug,
    utc_now,
    write_json_atomic,
    write_text_atomic,
)

__all__ = ["BATCHES", "is_error_row", "json_lines", "key_of", "CONFIG", "RUN", "SAMPLES", "SampleWriter", "all_batches", "all_samples", "create_run_dir", "load_run", "merge_shards",
           "new_run_id", "read_config", "read_samples", "repair_torn_tail", "run_dir_name", "sample_key", "shard_files", "slug",
           "utc_now", "write_json_atomic", "write_text_atomic"]
