"""Writing a run: Parquet parts on the workers, chunk commits and a run record on the driver.

Why this shape: the driver must not hold rows (1M videos would not fit), and a crash must lose
at most the work in flight. So workers write Parquet parts and hand back only a tiny write
result (file name, row counts per video); the driver groups results into chunks and commits
each chunk with a record naming its files, written after them. Layout and the reader's rules
are in `pipeline.output.reading` (the one place that says what is visible).

- `write_part` (worker): one Parquet file with a unique name, returns its write result.
- `ChunkTracker` (pure): which written files may be committed now. A file is committable only
  when every video with rows in it is complete (its other rows' files arrived too), so every
  committed attempt of a video is whole, which the reading rule and nightly's skipping rely on.
  A chunk is cut every `chunk_videos` complete videos or `chunk_seconds`, whichever first.
- `RunLease` (I/O): a create-if-absent object per run id; a second live writer is refused
  (`RunLocked`); a lease whose holder died (same host, pid gone) or expired is taken over by
  creating the next generation, create-if-absent again, so two takers cannot both win.
- `RunCommitter` (I/O): chunk records, the run record at the end, and clean-up. A resumed run
  (nightly) keeps its earlier attempts' chunks; a replacing run (`clipnote run` with the same
  run id) retires them in its run record and deletes their files only after `grace_s`, so
  readers that listed them can still read them. A failed write raises `CommitError` and
  leaves every committed chunk as it was.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pipeline.core.errors import CommitError, RunLocked
from pipeline.core.storage import StorageOptions, filesystem, is_remote, join, strip_scheme
from pipeline.output.chunks import Chunk
from pipeline.output.layout import (
    CHUNK_PREFIX,
    PLAN_DIR,
    RUNS_DIR,
    absolute_output,
    chunk_record_uri,
    run_record_uri,
)
from pipeline.output.lease import RunLease
from pipeline.output.part_writer import PartTarget
from pipeline.output.store import _atomic_text, _utcnow


def commit_record_uri(output: str, run_id: str) -> str:
    """The run record of `run_id` (written when an attempt ends)."""
    return run_record_uri(output, run_id)


def new_attempt_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


@dataclass
class RunCommitter:
    """Chunk records and the run record of one attempt of one run id."""

    output: str
    run_id: str
    attempt: str
    run_date: date
    options: StorageOptions = field(default_factory=StorageOptions)
    mode: str = "replace"  # "replace": retire earlier attempts at the end; "resume": keep them
    grace_s: float = 3600.0
    lease_ttl_s: float = 600.0
    chunks: int = 0
    files: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.output = absolute_output(self.output)
        self.fs = filesystem(self.output, self.options)
        self.remote = is_remote(self.output)
        self.lease = RunLease(self.output, self.run_id, self.options, self.lease_ttl_s)
        self._plans: set[str] = set()  # work plan folders of this run id's attempts

    @property
    def target(self) -> PartTarget:
        return PartTarget(
            self.output, self.run_id, self.run_date.isoformat(), self.attempt, self.options
        )

    def begin(self) -> None:
        self.lease.acquire()

    def commit_chunk(self, chunk: Chunk) -> str:
        """Record `chunk` (its files are already written); returns the record's URI."""
        self.chunks += 1
        uri = chunk_record_uri(self.output, self.run_id, self.attempt, self.chunks)
        record = {
            "run_id": self.run_id,
            "attempt": self.attempt,
            "seq": self.chunks,
            "run_date": self.run_date.isoformat(),
            "committed_at": _utcnow().isoformat(),
            "files": chunk.files,
            "rows": chunk.rows,
            "counts": chunk.counts,
            "videos": len(chunk.videos),
        }
        try:
            self.lease.check()
            _atomic_text(self.fs, uri, json.dumps(record, indent=1), remote=self.remote)
        except RunLocked:
            raise
        except Exception as err:
            raise CommitError(
                f"could not commit chunk {self.chunks} of run {self.run_id!r} to {uri}: "
                f"{type(err).__name__}: {err}; chunks committed before it are kept"
            ) from err
        self.files += chunk.files
        self.counts.update(chunk.counts)
        return uri

    def _attempt_records(self) -> dict[str, list[dict[str, Any]]]:
        """Chunk records of this run id, by attempt (one LIST of `_runs/<run_id>/`, which also
        finds the attempts' work plan folders for `finish` to remove)."""
        base = strip_scheme(join(self.output, RUNS_DIR, self.run_id))
        if hasattr(self.fs, "invalidate_cache"):
            self.fs.invalidate_cache(base)
        try:
            paths = self.fs.find(base)
        except FileNotFoundError:
            paths = []
        found: dict[str, list[dict[str, Any]]] = {}
        for path in sorted(paths):
            parts = posixpath.relpath(path, base).split("/")
            if len(parts) == 3 and parts[1] == PLAN_DIR:
                self._plans.add(posixpath.join(base, parts[0], PLAN_DIR))
            if len(parts) != 2 or not parts[1].startswith(CHUNK_PREFIX) or ".tmp" in parts[1]:
                continue
            try:
                with self.fs.open(path, "r") as fh:
                    found.setdefault(parts[0], []).append(json.load(fh))
            except FileNotFoundError:
                continue
        return found

    def _previous(self) -> dict[str, Any]:
        path = strip_scheme(run_record_uri(self.output, self.run_id))
        try:
            with self.fs.open(path, "r") as fh:
                return json.load(fh)
        except FileNotFoundError:
            return {}

    def finish(self, details: dict[str, Any]) -> str:
        """Write the run record (after every chunk), clean up, release the lease."""
        try:
            self.lease.check()
            previous = self._previous()
            by_attempt = self._attempt_records()
            retired: dict[str, Any] = dict(previous.get("retired", {}))
            earlier = [a for a in previous.get("attempts", []) if a != self.attempt]
            earlier += [
                a for a in by_attempt if a not in earlier and a != self.attempt and a not in retired
            ]
            previous_files = set(previous.get("files", []))
            attempt_files: dict[str, list[str]] = {}
            for attempt in earlier:
                files = [f for c in by_attempt.get(attempt, []) for f in c["files"]]
                if not files:  # its chunk records may be folded into the run record only
                    files = [f for f in previous_files if f"/part-{attempt}-" in f]
                attempt_files[attempt] = files
            now = _utcnow()
            live = [self.attempt]
            counts = Counter(self.counts)
            files = list(self.files)
            if self.mode == "resume":
                live = [*earlier, self.attempt]
                for attempt in earlier:
                    files = attempt_files[attempt] + files
                    for chunk in by_attempt.get(attempt, []):
                        counts.update(chunk.get("counts", {}))
                    if not by_attempt.get(attempt):
                        counts.update(previous.get("attempt_counts", {}).get(attempt, {}))
            else:
                for attempt in earlier:
                    retired[attempt] = {"at": now.isoformat(), "files": attempt_files[attempt]}
            attempt_counts = dict(previous.get("attempt_counts", {}))
            attempt_counts[self.attempt] = dict(self.counts)
            record = {
                "run_id": self.run_id,
                "run_date": self.run_date.isoformat(),
                "committed_at": now.isoformat(),
                "attempt": self.attempt,
                "attempts": live,
                "retired": retired,
                "files": files,
                "counts": dict(counts),
                "rows": sum(counts.values()),
                "attempt_counts": {a: attempt_counts.get(a, {}) for a in live},
                "chunks": self.chunks,
                **details,
            }
            uri = run_record_uri(self.output, self.run_id)
            text = json.dumps(record, indent=1, default=str)
            _atomic_text(self.fs, uri, text, remote=self.remote)
        except RunLocked:
            raise
        except Exception as err:
            raise CommitError(
                f"could not write the run record of {self.run_id!r}: {type(err).__name__}: "
                f"{err}; its {self.chunks} committed chunks are kept and a re-run resumes"
            ) from err
        self._clean(record, set(files))
        for folder in sorted(self._plans):  # only their own attempt reads them, and it ended
            self._rm_quiet(folder, recursive=True)
        self.lease.release()
        return uri

    def _clean(self, record: dict[str, Any], live_files: set[str]) -> None:
        """Delete retired attempts past the grace period, and old uncommitted parts."""
        cutoff = _utcnow() - timedelta(seconds=self.grace_s)
        retired = record["retired"]
        due = [a for a, info in retired.items() if datetime.fromisoformat(info["at"]) <= cutoff]
        for attempt in due:
            base = strip_scheme(join(self.output, RUNS_DIR, self.run_id, attempt))
            if self.fs.exists(base):
                self.fs.rm(base, recursive=True)
            for uri in record["retired"][attempt]["files"]:
                if uri not in live_files:
                    self._rm_quiet(strip_scheme(uri))
        self._clean_orphans(live_files, cutoff)
        if due:
            for attempt in due:
                del record["retired"][attempt]
            text = json.dumps(record, indent=1, default=str)
            _atomic_text(
                self.fs, run_record_uri(self.output, self.run_id), text, remote=self.remote
            )

    def _clean_orphans(self, live_files: set[str], cutoff: datetime) -> None:
        """Parts of crashed attempts that no record names, in this run's folder (one LIST)."""
        folder = strip_scheme(self.target.run_dir)
        live = {strip_scheme(f) for f in live_files}
        if hasattr(self.fs, "invalidate_cache"):
            self.fs.invalidate_cache(folder)
        try:
            entries = self.fs.ls(folder, detail=True)
        except FileNotFoundError:
            return
        retired_files = {
            strip_scheme(f)
            for info in self._previous().get("retired", {}).values()
            for f in info.get("files", [])
        }
        for entry in entries:
            name = entry["name"]
            if entry.get("type") != "file" or name in live or name in retired_files:
                continue
            modified = entry.get("LastModified") or entry.get("mtime")
            if isinstance(modified, int | float):
                modified = datetime.fromtimestamp(modified, UTC)
            if modified is not None and modified <= cutoff:
                self._rm_quiet(name)

    def _rm_quiet(self, path: str, *, recursive: bool = False) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(path, recursive=recursive)

    def abandon(self) -> None:
        """Stop renewing the lease after a failure; the next attempt takes it over."""
        self.lease.release()
