"""Writing a run: Parquet parts on the workers, chunk commits and a run record on the driver.

Why this shape: the driver must not hold rows (1M videos would not fit), and a crash must lose
at most the work in flight. So workers write Parquet parts and hand back only a tiny write
result (file name, row counts per video); the driver groups results into chunks and commits
each chunk with a record naming its files, written after them. Layout and the reader's rules
are in `pipeline.reading` (the one place that says what is visible).

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
import io
import json
import os
import posixpath
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .coverage import covered_seconds, file_coverage
from .reading import (
    CHUNK_PREFIX,
    CLIPS_DIR,
    LEASE_DIR,
    PLAN_DIR,
    RUNS_DIR,
    absolute_output,
    chunk_record_uri,
    read_all,
    read_latest,
    run_record_uri,
    snapshot,
)
from .schema import CLIPS_SCHEMA
from .storage import StorageOptions, filesystem, is_remote, join, strip_scheme

VIDEO_ROWS = "_video_rows"
"""Extra column on rows bound for the sink: on a video's last row, how many rows that video
contributes to this attempt (its clips, the clips being retried, or 1 for its error row); 0 on
its other rows, because clips stream out of decode before the total is known. Not written."""

WRITE_RESULT_SCHEMA = pa.schema([("file", pa.string()), ("result", pa.string())])

__all__ = [
    "CLIPS_DIR",
    "RUNS_DIR",
    "ChunkTracker",
    "CommitError",
    "PartTarget",
    "RunCommitter",
    "RunLease",
    "RunLocked",
    "commit_record_uri",
    "committed_runs",
    "new_attempt_id",
    "read_committed",
    "write_part",
]


class CommitError(RuntimeError):
    """The output could not be written; committed chunks are left as they were."""


class RunLocked(RuntimeError):
    """Another live writer holds this run id."""


def commit_record_uri(output: str, run_id: str) -> str:
    """The run record of `run_id` (written when an attempt ends)."""
    return run_record_uri(output, run_id)


def new_attempt_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


# -- worker side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PartTarget:
    """Where one attempt's parts go; picklable, shipped to the write tasks."""

    output: str
    run_id: str
    run_date: str
    attempt: str
    options: StorageOptions = field(default_factory=StorageOptions)

    @property
    def run_dir(self) -> str:
        return join(self.output, CLIPS_DIR, f"run_date={self.run_date}", f"run_id={self.run_id}")

    def new_part_uri(self) -> str:
        return join(self.run_dir, f"part-{self.attempt}-{secrets.token_hex(6)}.parquet")


def _put_bytes(fs: Any, uri: str, data: bytes, *, remote: bool) -> None:
    path = strip_scheme(uri)
    if not remote:
        fs.makedirs(posixpath.dirname(path), exist_ok=True)
    with fs.open(path, "wb") as fh:
        fh.write(data)


def write_part(table: pa.Table, target: PartTarget) -> dict[str, Any]:
    """Write `table` (clips schema, plus `VIDEO_ROWS`) as one Parquet part; its write result.

    The result names the file and, per video, its rows in this file and in the attempt, its
    duration and the merged spans of its ok clips here (the run's coverage, without reading
    the rows back).
    """
    expected = None
    if VIDEO_ROWS in table.column_names:
        expected = table[VIDEO_ROWS].to_pylist()
    data = table.select(CLIPS_SCHEMA.names).cast(CLIPS_SCHEMA)
    uri = target.new_part_uri()
    buffer = io.BytesIO()
    pq.write_table(data, buffer, compression="zstd")
    fs = filesystem(target.output, target.options)
    try:
        _put_bytes(fs, uri, buffer.getvalue(), remote=is_remote(target.output))
    except Exception as err:  # after the storage client's own retries
        raise CommitError(f"could not write {uri}: {type(err).__name__}: {err}") from err
    videos: dict[str, list[int]] = {}
    for i, uri_i in enumerate(data["video_uri"].to_pylist()):
        entry = videos.setdefault(uri_i, [0, 0])
        entry[0] += 1
        # Without the column every video is whole in this table; with it, the total is known
        # only from the video's last row (0: not in this file).
        entry[1] = max(entry[1], int(expected[i])) if expected else entry[0]
    counts = Counter(data["status"].to_pylist())
    columns = ["video_uri", "start_s", "end_s", "video_duration_s", "status"]
    spans = file_coverage(data.select(columns).to_pylist())
    return {
        "file": uri,
        "rows": data.num_rows,
        "counts": dict(counts),
        "videos": [[v, n, total, *spans[v]] for v, (n, total) in videos.items()],
    }


def write_results_table(results: Iterable[dict[str, Any]]) -> pa.Table:
    results = list(results)
    return pa.table(
        {"file": [r["file"] for r in results], "result": [json.dumps(r) for r in results]},
        schema=WRITE_RESULT_SCHEMA,
    )


# -- which files may be committed (pure) ---------------------------------------------------


@dataclass
class Chunk:
    files: list[str]
    rows: int
    counts: dict[str, int]
    videos: list[str]
    """Videos completed by this chunk."""


class ChunkTracker:
    """Groups write results into chunks whose videos are all complete.

    Files that share a video are committed together, and only once every video in any of
    them is complete: a file whose own videos are done can still hold the rows of a video
    that another, unfinished file holds too, and committing it alone would show part of
    that video.
    """

    def __init__(
        self,
        chunk_videos: int,
        chunk_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.chunk_videos = chunk_videos
        self.chunk_seconds = chunk_seconds
        self.clock = clock
        self._since = clock()
        self._open_videos: dict[str, list[Any]] = {}  # uri -> [rows, expected, duration, spans]
        self._file_waits: dict[str, int] = {}  # unreleased file -> incomplete videos in it
        self._file_videos: dict[str, set[str]] = {}  # unreleased file -> its videos
        self._video_files: dict[str, set[str]] = {}  # unreleased video -> its files
        self._file_results: dict[str, dict[str, Any]] = {}
        self._ready_files: list[str] = []
        self._ready_videos: list[str] = []
        self.completed_videos = 0
        """Videos completed so far (their rows all written): a count, so the driver holds
        nothing per video once its chunk is cut."""
        self.covered_s = 0.0
        """Seconds of the completed videos inside an ok clip (`pipeline.coverage`)."""
        self.video_s = 0.0
        """Seconds of the completed videos."""

    def add(self, result: dict[str, Any]) -> None:
        file = result["file"]
        self._file_results[file] = result
        self._file_waits[file] = 0
        self._file_videos[file] = set()
        for uri, rows, expected, *coverage in result["videos"]:
            entry = self._open_videos.setdefault(uri, [0, 0, 0.0, []])
            entry[0] += int(rows)
            entry[1] = max(entry[1], int(expected))  # 0 until the file with its last row
            if coverage:
                entry[2] = max(entry[2], float(coverage[0]))
                entry[3] += coverage[1]
            self._video_files.setdefault(uri, set()).add(file)
            self._file_videos[file].add(uri)
            self._file_waits[file] += 1
            if entry[1] and entry[0] >= entry[1]:
                self._complete(uri)
        self._release_ready()

    def _complete(self, uri: str) -> None:
        self._add_up(self._open_videos.pop(uri))
        for file in self._video_files[uri]:
            self._file_waits[file] -= 1

    def _add_up(self, entry: list[Any]) -> None:
        self.completed_videos += 1
        self.covered_s += covered_seconds(entry[3], entry[2])
        self.video_s += entry[2]

    def _component(self, file: str) -> tuple[set[str], set[str]]:
        """The files and videos linked to `file` through shared videos."""
        files, videos, todo = {file}, set(), [file]
        while todo:
            for uri in self._file_videos[todo.pop()]:
                if uri not in videos:
                    videos.add(uri)
                    new = self._video_files[uri] - files
                    files |= new
                    todo.extend(new)
        return files, videos

    def _release_ready(self) -> None:
        for file in list(self._file_videos):
            if file not in self._file_videos or self._file_waits[file]:
                continue
            files, videos = self._component(file)
            if any(self._file_waits[f] for f in files):
                continue
            for f in sorted(files):
                del self._file_waits[f], self._file_videos[f]
                self._ready_files.append(f)
            for uri in sorted(videos):
                del self._video_files[uri]
                self._ready_videos.append(uri)

    def due(self) -> bool:
        """A chunk should be committed now."""
        if not self._ready_files:
            return False
        if len(self._ready_videos) >= self.chunk_videos:
            return True
        return self.clock() - self._since >= self.chunk_seconds

    def take(self, *, force: bool = False) -> Chunk | None:
        """The committable files (with `force`: every file, complete or not)."""
        if force:
            for entry in self._open_videos.values():  # committed as they are: counted too
                self._add_up(entry)
            self._ready_videos.extend(self._video_files)
            self._ready_files.extend(self._file_videos)
            for held in (self._open_videos, self._file_waits, self._file_videos, self._video_files):
                held.clear()
        if not self._ready_files:
            return None
        files, self._ready_files = self._ready_files, []
        videos, self._ready_videos = self._ready_videos, []
        counts: Counter = Counter()
        rows = 0
        for file in files:
            result = self._file_results.pop(file)
            counts.update(result["counts"])
            rows += result["rows"]
        self._since = self.clock()
        return Chunk(files, rows, dict(counts), videos)

    @property
    def incomplete_videos(self) -> list[str]:
        return list(self._open_videos)


# -- the lease -----------------------------------------------------------------------------


def _create_exclusive(fs: Any, path: str, text: str, *, remote: bool) -> bool:
    """Create `path` only if absent (S3: If-None-Match: *; local: O_EXCL). False if present."""
    if remote:
        bucket, _, key = path.partition("/")
        try:
            fs.call_s3("put_object", Bucket=bucket, Key=key, Body=text.encode(), IfNoneMatch="*")
        except FileExistsError:
            return False
        return True
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    try:
        with open(path, "x") as fh:
            fh.write(text)
    except FileExistsError:
        return False
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLease:
    """Exclusive right to write one run id, as generation objects `_lease/NNNNNNNN.json`."""

    def __init__(
        self, output: str, run_id: str, options: StorageOptions | None = None, ttl_s: float = 600
    ) -> None:
        self.output, self.run_id, self.ttl_s = output, run_id, ttl_s
        self.fs = filesystem(output, options)
        self.remote = is_remote(output)
        self.dir = strip_scheme(join(output, RUNS_DIR, run_id, LEASE_DIR))
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.generation: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _generations(self) -> list[int]:
        if hasattr(self.fs, "invalidate_cache"):
            self.fs.invalidate_cache(self.dir)
        try:
            names = self.fs.ls(self.dir, detail=False)
        except FileNotFoundError:
            return []
        gens = []
        for name in names:
            stem = posixpath.basename(name.rstrip("/")).removesuffix(".json")
            if stem.isdigit():
                gens.append(int(stem))
        return sorted(gens)

    def _path(self, gen: int) -> str:
        return f"{self.dir}/{gen:08d}.json"

    def _body(self, released: bool = False) -> str:
        now = _utcnow()
        return json.dumps(
            {
                "owner": self.owner,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "acquired_at": now.isoformat(),
                "expires_at": (now + timedelta(seconds=self.ttl_s)).isoformat(),
                "released": released,
            }
        )

    def _read(self, gen: int) -> dict[str, Any] | None:
        try:
            with self.fs.open(self._path(gen), "r") as fh:
                return json.load(fh)
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    @staticmethod
    def _stale(holder: dict[str, Any] | None) -> bool:
        if holder is None or holder.get("released"):
            return True
        if datetime.fromisoformat(holder["expires_at"]) < _utcnow():
            return True
        same_host = holder.get("host") == socket.gethostname()
        return same_host and not _pid_alive(int(holder.get("pid", -1)))

    def acquire(self) -> None:
        """Take the lease or raise `RunLocked` naming the live holder."""
        for _ in range(5):
            gens = self._generations()
            gen = gens[-1] + 1 if gens else 0
            if gens:
                holder = self._read(gens[-1])
                if not self._stale(holder):
                    assert holder is not None
                    raise RunLocked(
                        f"run {self.run_id!r} in {self.output} is being written by "
                        f"{holder['host']} pid {holder['pid']} (lease until "
                        f"{holder['expires_at']}); a second writer would corrupt it. Wait for "
                        "it to finish, or use another run id."
                    )
            created = _create_exclusive(self.fs, self._path(gen), self._body(), remote=self.remote)
            # a create whose response was lost is retried and refused: it is still ours
            if created or (self._read(gen) or {}).get("owner") == self.owner:
                self.generation = gen
                self._start_heartbeat()
                return
        raise RunLocked(f"run {self.run_id!r}: lost the race for its lease five times")

    def check(self) -> None:
        """Raise `RunLocked` if someone took the lease over (we were presumed dead)."""
        gens = self._generations()
        if self.generation is None or (gens and gens[-1] != self.generation):
            raise RunLocked(f"run {self.run_id!r}: the lease was taken over by another writer")

    def renew(self) -> None:
        self.check()
        _atomic_text(self.fs, self._path(self.generation), self._body(), remote=self.remote)

    def _start_heartbeat(self) -> None:
        def beat() -> None:
            while not self._stop.wait(max(self.ttl_s / 3, 0.5)):
                try:
                    self.renew()
                except Exception:  # the next check() on the committing path reports it
                    return

        self._thread = threading.Thread(target=beat, name="clipnote-lease", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.generation is not None:
            body = self._body(released=True)
            _atomic_text(self.fs, self._path(self.generation), body, remote=self.remote)
            self.generation = None


# -- the committer ------------------------------------------------------------------------


def _atomic_text(fs: Any, uri: str, text: str, *, remote: bool) -> None:
    """An S3 PUT is atomic; a local file is written aside and renamed into place."""
    path = strip_scheme(uri)
    if remote:
        with fs.open(path, "w") as fh:
            fh.write(text)
        return
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    tmp = f"{path}.{secrets.token_hex(4)}.tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


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


# -- readers (through the one reading path) ------------------------------------------------


def committed_runs(output: str, options: StorageOptions | None = None) -> list[dict[str, Any]]:
    """Run records under `output`, oldest first (attempts that ended)."""
    records = snapshot(output, options).runs.values()
    return sorted(records, key=lambda r: r.get("committed_at", ""))


def read_committed(
    output: str, options: StorageOptions | None = None, *, latest: bool = True
) -> pa.Table:
    """Committed rows: each clip's latest annotation once (`latest=False`: every committed row
    with its run). Uncommitted files are never read."""
    if latest:
        return read_latest(output, options)
    return read_all(output, options)


def rows_of_run(table: pa.Table, run_id: str) -> pa.Table:
    return table.filter(pc.equal(table["run_id"], run_id))
