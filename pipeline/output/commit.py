"""Writing a run, all on the driver: Parquet parts, chunk commits and a run record.

Why this shape: the driver must not hold rows (1M videos would not fit), and a crash must lose
at most the work in flight. So the driver holds one open part's rows at most (`open_part`),
writes it as a Parquet part and keeps only its tiny write result (file name, row counts per
video); it groups results into chunks and commits each chunk with a record naming its files,
written after them. Layout and the reader's rules
are in `pipeline.output.reading` (the one place that says what is visible).

- `write_part` (`pipeline.output.part_writer`): one Parquet file with a unique name, returns
  its `WriteResult`; `OpenPart` (pure, `pipeline.output.open_part`) says when the rows
  gathered for it are a part: at its row limit, or `chunk_seconds` after its first row.
- `ChunkTracker` (pure): which written files may be committed now. A file is committable only
  when every video with rows in it is complete (its other rows' files arrived too), so every
  committed attempt of a video is whole, which the reading rule and nightly's skipping rely on.
  A chunk is cut every `chunk_videos` complete videos or `chunk_seconds`, whichever first.
- `RunLease` (I/O): a create-if-absent object per run id; a second live writer is refused
  (`RunLocked`); a lease whose holder died (same host, pid gone) or expired is taken over by
  creating the next generation, create-if-absent again, so two takers cannot both win.
- `RunCommitter` (I/O): the driver side of the write lifecycle (`WriteLifecycle`): the lease on
  start, a chunk record per chunk, the run record on completion (worked out by the pure
  `pipeline.output.run_record.build_run_record`) and clean-up; on failure it lets the lease go
  so the next attempt takes over. A resumed run (nightly) keeps its earlier attempts' chunks;
  a replacing run (`clipnote run` with the same run id) retires them in its run record and
  deletes their files only after `grace_s`, so readers that listed them can still read them.
  A failed write raises `CommitError` and leaves every committed chunk as it was.

Every record's JSON form is in `pipeline.output.records`.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import secrets
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone

from pipeline.core.errors import CommitError, RunLocked
from pipeline.core.stage import WriteLifecycle
from pipeline.core.storage import StorageOptions, filesystem, is_remote, join, strip_scheme
from pipeline.output.chunks import Chunk
from pipeline.output.layout import (
    PLAN_DIR,
    RUNS_DIR,
    absolute_output,
    chunk_record_uri,
    record_place,
    run_record_uri,
)
from pipeline.output.lease import RunLease
from pipeline.output.part_writer import PartTarget
from pipeline.output.records import AttemptWork, ChunkRecord, RunDetails, RunRecord
from pipeline.output.run_record import CommitMode, build_run_record
from pipeline.output.store import _atomic_text, _utcnow


def commit_record_uri(output: str, run_id: str) -> str:
    """The run record of `run_id` (written when an attempt ends)."""
    return run_record_uri(output, run_id)


def new_attempt_id(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


@dataclass
class RunCommitter(WriteLifecycle[RunDetails]):
    """Chunk records and the run record of one attempt of one run id."""

    output: str
    run_id: str
    attempt: str
    run_date: date
    options: StorageOptions = field(default_factory=StorageOptions)
    mode: CommitMode = "replace"  # "replace": retire earlier attempts at the end; "resume": keep
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

    def on_write_start(self) -> None:
        """Take the run's lease (`RunLocked` if another live writer holds it)."""
        self.lease.acquire()

    def commit_chunk(self, chunk: Chunk) -> str:
        """Record `chunk` (its files are already written); returns the record's URI."""
        seq = self.chunks + 1  # counted once written: a failed chunk is not "committed"
        uri = chunk_record_uri(self.output, self.run_id, self.attempt, seq)
        record = ChunkRecord(
            run_id=self.run_id,
            attempt=self.attempt,
            seq=seq,
            run_date=self.run_date.isoformat(),
            committed_at=_utcnow().isoformat(),
            files=tuple(chunk.files),
            rows=chunk.rows,
            counts=chunk.counts,
            videos=len(chunk.videos),
        )
        try:
            self.lease.check()
            _atomic_text(self.fs, uri, record.to_json(), remote=self.remote)
        except RunLocked:
            raise
        except Exception as err:
            raise CommitError(
                f"could not commit chunk {seq} of run {self.run_id!r} to {uri}: "
                f"{type(err).__name__}: {err}"
            ) from err
        self.chunks = seq
        self.files += chunk.files
        self.counts.update(chunk.counts)
        return uri

    def _attempt_records(self) -> dict[str, list[ChunkRecord]]:
        """Chunk records of this run id, by attempt (one LIST of `_runs/<run_id>/`, which also
        finds the attempts' work plan folders for `on_write_complete` to remove)."""
        base = strip_scheme(join(self.output, RUNS_DIR, self.run_id))
        if hasattr(self.fs, "invalidate_cache"):
            self.fs.invalidate_cache(base)
        try:
            paths = self.fs.find(base)
        except FileNotFoundError:
            paths = []
        found: dict[str, list[ChunkRecord]] = {}
        for path in sorted(paths):
            parts = posixpath.relpath(path, base).split("/")
            if len(parts) == 3 and parts[1] == PLAN_DIR:
                self._plans.add(posixpath.join(base, parts[0], PLAN_DIR))
            place = record_place(posixpath.dirname(base), path)
            if place is None or place.attempt is None or place.run_id != self.run_id:
                continue
            try:
                with self.fs.open(path, "r") as fh:
                    found.setdefault(parts[0], []).append(ChunkRecord.from_dict(json.load(fh)))
            except FileNotFoundError:
                continue
        return found

    def _previous(self) -> RunRecord | None:
        path = strip_scheme(run_record_uri(self.output, self.run_id))
        try:
            with self.fs.open(path, "r") as fh:
                return RunRecord.from_dict(json.load(fh))
        except FileNotFoundError:
            return None

    def _work(self) -> AttemptWork:
        return AttemptWork(
            self.run_id, self.run_date.isoformat(), self.attempt, tuple(self.files),
            dict(self.counts), self.chunks,
        )  # fmt: skip

    def on_write_complete(self, details: RunDetails) -> str:
        """Write the run record (after every chunk), clean up, release the lease."""
        uri = run_record_uri(self.output, self.run_id)
        try:
            self.lease.check()
            previous, chunks = self._previous(), self._attempt_records()
            record = build_run_record(previous, chunks, self._work(), self.mode, details, _utcnow())
            _atomic_text(self.fs, uri, record.to_json(), remote=self.remote)
        except RunLocked:
            raise
        except Exception as err:
            raise CommitError(
                f"could not write the run record of {self.run_id!r}: {type(err).__name__}: "
                f"{err}; its {self.chunks} committed chunks are kept and a re-run resumes"
            ) from err
        self._clean(record)
        for folder in sorted(self._plans):  # only their own attempt reads them, and it ended
            self._rm_quiet(folder, recursive=True)
        self.lease.release()
        return uri

    def _clean(self, record: RunRecord) -> None:
        """Delete retired attempts past the grace period, and old uncommitted parts."""
        cutoff = _utcnow() - timedelta(seconds=self.grace_s)
        live_files = set(record.files)
        due = [a for a, info in record.retired.items() if info.at <= cutoff]
        for attempt in due:
            base = strip_scheme(join(self.output, RUNS_DIR, self.run_id, attempt))
            if self.fs.exists(base):
                self.fs.rm(base, recursive=True)
            for uri in record.retired[attempt].files:
                if uri not in live_files:
                    self._rm_quiet(strip_scheme(uri))
        retired_files = {f for info in record.retired.values() for f in info.files}
        self._clean_orphans(live_files | retired_files, cutoff)
        if due:
            kept = {a: info for a, info in record.retired.items() if a not in due}
            text = replace(record, retired=kept).to_json()
            _atomic_text(
                self.fs, run_record_uri(self.output, self.run_id), text, remote=self.remote
            )

    def _clean_orphans(self, named: set[str], cutoff: datetime) -> None:
        """Parts of crashed attempts that no record names, in this run's folder (one LIST)."""
        folder = strip_scheme(self.target.run_dir)
        keep = {strip_scheme(f) for f in named}
        if hasattr(self.fs, "invalidate_cache"):
            self.fs.invalidate_cache(folder)
        try:
            entries = self.fs.ls(folder, detail=True)
        except FileNotFoundError:
            return
        for entry in entries:
            name = entry["name"]
            if entry.get("type") != "file" or name in keep:
                continue
            modified = entry.get("LastModified") or entry.get("mtime")
            if isinstance(modified, int | float):
                modified = datetime.fromtimestamp(modified, timezone.utc)
            if modified is not None and modified <= cutoff:
                self._rm_quiet(name)

    def _rm_quiet(self, path: str, *, recursive: bool = False) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(path, recursive=recursive)

    def on_write_failed(self, error: BaseException) -> None:
        """Stop renewing the lease after `error`; the next attempt takes it over. Committed
        chunks stay: a re-run resumes from them.

        Never raises: on a full disk writing the released lease fails too, and that second
        error once replaced the first, the one that says what went wrong. A lease that could
        not be released is taken over all the same: its pid is gone, or it expires."""
        with contextlib.suppress(Exception):
            self.lease.release()
