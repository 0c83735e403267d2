"""Writing a run's rows as Parquet, then a commit record, last.

Layout: `<output>/clips/run_date=YYYY-MM-DD/run_id=<id>/part-NNNNN.parquet` and
`<output>/_runs/<run_id>.json`. Readers trust only files named by a commit record, so a run
that died half way is invisible. Re-running a run id writes new files (named by attempt),
replaces the commit record, and only then removes the earlier attempt's files: rows are never
duplicated, and a re-run that fails leaves the earlier committed output as it was.
"""

from __future__ import annotations

import io
import json
import secrets
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
    attempt: str = field(default_factory=lambda: secrets.token_hex(4))
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
        if not is_remote(self.output):
            self.fs.makedirs(self._path(self.run_dir), exist_ok=True)

    def _remove_other_attempts(self) -> None:
        """Files of this run id (any run date) that the new commit record does not name."""
        keep = {self._path(uri) for uri in self.files}
        pattern = join(self.output, CLIPS_DIR, "run_date=*", f"run_id={self.run_id}", "*")
        for old in self.fs.glob(self._path(pattern)):
            if old.rstrip("/") not in keep and self.fs.isfile(old):
                self.fs.rm(old)

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
        uri = join(self.run_dir, f"part-{self.attempt}-{len(self.files):05d}.parquet")
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        with self.fs.open(self._path(uri), "wb") as fh:
            fh.write(buffer.getvalue())
        self.files.append(uri)
        self._pending, self._pending_rows = [], 0

    def _write_atomically(self, path: str, text: str) -> None:
        """An S3 PUT is atomic; a local file is written aside and renamed into place."""
        target = path if is_remote(self.output) else f"{path}.{self.attempt}.tmp"
        with self.fs.open(target, "w") as fh:
            fh.write(text)
        if target != path:
            self.fs.mv(target, path)

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
        self._write_atomically(self._path(uri), json.dumps(record, indent=2, default=str))
        self._remove_other_attempts()
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
