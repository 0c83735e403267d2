"""Writing a run's rows as Parquet, then a commit record, last.

Layout: `<output>/clips/run_date=YYYY-MM-DD/run_id=<id>/part-NNNNN.parquet` and
`<output>/_runs/<run_id>.json`. Readers trust only files named by a commit record, so a run
that died half way is invisible. Re-running a run id first withdraws its commit record and
removes its files, so rows are never duplicated.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .schema import CLIPS_SCHEMA
from .storage import StorageOptions, filesystem, is_remote, join, strip_scheme

RUNS_DIR = "_runs"
CLIPS_DIR = "clips"


def commit_record_uri(output: str, run_id: str) -> str:
    return join(output, RUNS_DIR, f"{run_id}.json")


@dataclass
class RunWriter:
    """Streams Arrow batches of the `clips` schema into Parquet files of one run."""

    output: str
    run_id: str
    options: StorageOptions = field(default_factory=StorageOptions)
    rows_per_file: int = 10000
    run_date: date = field(default_factory=lambda: datetime.now(UTC).date())
    files: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    _pending: list[pa.Table] = field(default_factory=list)
    _pending_rows: int = 0

    def __post_init__(self) -> None:
        self.fs = filesystem(self.output, self.options)
        self.run_dir = join(
            self.output, CLIPS_DIR, f"run_date={self.run_date.isoformat()}", f"run_id={self.run_id}"
        )

    def _path(self, uri: str) -> str:
        return strip_scheme(uri)

    def begin(self) -> None:
        """Withdraw an earlier commit of this run id and remove its files (any run date)."""
        record = self._path(commit_record_uri(self.output, self.run_id))
        if self.fs.exists(record):
            self.fs.rm(record)
        pattern = self._path(join(self.output, CLIPS_DIR, "run_date=*", f"run_id={self.run_id}"))
        for old in self.fs.glob(pattern):
            self.fs.rm(old, recursive=True)
        if not is_remote(self.output):
            self.fs.makedirs(self._path(self.run_dir), exist_ok=True)

    def write(self, table: pa.Table) -> None:
        table = table.select(CLIPS_SCHEMA.names).cast(CLIPS_SCHEMA)
        self.counts.update(table.column("status").to_pylist())
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= self.rows_per_file:
            self._flush()

    def _flush(self) -> None:
        if not self._pending_rows:
            return
        table = pa.concat_tables(self._pending)
        uri = join(self.run_dir, f"part-{len(self.files):05d}.parquet")
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        with self.fs.open(self._path(uri), "wb") as fh:
            fh.write(buffer.getvalue())
        self.files.append(uri)
        self._pending, self._pending_rows = [], 0

    def commit(self, details: dict[str, Any]) -> str:
        """Flush the last file and write the commit record; returns the record's URI."""
        self._flush()
        record = {
            "run_id": self.run_id,
            "run_date": self.run_date.isoformat(),
            "committed_at": datetime.now(UTC).isoformat(),
            "files": self.files,
            "counts": dict(self.counts),
            "rows": sum(self.counts.values()),
            **details,
        }
        uri = commit_record_uri(self.output, self.run_id)
        if not is_remote(self.output):
            self.fs.makedirs(self._path(join(self.output, RUNS_DIR)), exist_ok=True)
        with self.fs.open(self._path(uri), "w") as fh:
            fh.write(json.dumps(record, indent=2, default=str))
        return uri


def committed_runs(output: str, options: StorageOptions | None = None) -> list[dict[str, Any]]:
    """Commit records under `output`, oldest first: what readers may see."""
    fs = filesystem(output, options)
    records = []
    for path in sorted(fs.glob(strip_scheme(join(output, RUNS_DIR, "*.json")))):
        with fs.open(path, "r") as fh:
            records.append(json.load(fh))
    return sorted(records, key=lambda r: r.get("committed_at", ""))


def read_committed(output: str, options: StorageOptions | None = None) -> pa.Table:
    """All committed rows under `output` (uncommitted files are ignored)."""
    fs = filesystem(output, options)
    tables = []
    for record in committed_runs(output, options):
        for uri in record["files"]:
            with fs.open(strip_scheme(uri), "rb") as fh:
                tables.append(pq.read_table(fh))
    return pa.concat_tables(tables) if tables else CLIPS_SCHEMA.empty_table()
