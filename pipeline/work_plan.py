"""A run's work: the streamed listing minus what is done, written as Parquet pages.

Why pages: the driver must never hold the listing (a `VideoRef` and its dataset row cost some
2 KB a video: 2 GB at 1M videos). The listing streams through `decide` a page at a time and
each page of work is written next to the attempt's chunk records
(`_runs/<run>/<attempt>/plan/`), where the decode tasks read it back: the driver keeps the page
names and counts, never the videos. Pages are removed when the attempt's run record is written.

What is done comes from the one reading path (`pipeline.output.reading`) as a `DoneIndex`: a sorted
array of 16-byte digests of (video uri, work key) for the videos whose latest committed rows
have that work key, 16 bytes a video, plus, for `clipnote retry`, the failed clips of the videos
that have any. The digest is BLAKE2b: two different (uri, work key) pairs share one with odds
near 2^-128, so a changed video is never mistaken for a done one in practice.

`decide` and `block_slices` are pure; `write_work_plan` and `read_page` do the I/O.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.annotate.fingerprint import work_key
from pipeline.core.records import VideoRef
from pipeline.core.status import STATUS_OK
from pipeline.core.storage import StorageOptions, join, read_bytes, write_bytes
from pipeline.input.names import in_pages
from pipeline.output.layout import PLAN_DIR, RUNS_DIR, work_key_of

RunMode = Literal["all", "incremental", "retry"]
REDO = "redo"
"""Work column: comma-separated clip indices to redo (`clipnote retry`); empty: every clip."""
PAGE_VIDEOS = 1024
"""Videos per plan page: 1,000 pages (files) at 1M videos, a few KB of driver state each."""
_REF_TYPES = {"size": pa.int64(), "offset": pa.int64()}
_FOLD_ROWS = 65_536  # rows turned into Python objects at once while building a DoneIndex


def _digest(uri: str, key: str) -> bytes:
    return hashlib.blake2b(f"{uri}\0{key}".encode(), digest_size=16).digest()


def _digests(pairs: Iterable[tuple[str, str]]) -> np.ndarray:
    return np.array([_digest(uri, key) for uri, key in pairs], dtype="S16")


@dataclass
class DoneIndex:
    """What the output already holds, as a run needs to know it, in 16 bytes a video."""

    done: np.ndarray = field(default_factory=lambda: np.zeros(0, "S16"))
    """Sorted digests of (uri, work key) of every video's latest committed work."""
    failed: dict[str, tuple[str, frozenset[int]]] = field(default_factory=dict)
    """uri -> (work key, clip indices whose latest row is an error; -1: the whole video)."""

    @classmethod
    def from_latest(
        cls, batches: Iterable[pa.RecordBatch | pa.Table], mode: RunMode = "incremental"
    ) -> DoneIndex:
        """From the `clips` view's `video_uri, clip_index, fingerprint, status` columns, as
        `pipeline.output.reading.fold_latest_keys` streams them (a video's rows share one work key).
        Only what `mode` asks about is kept: done digests, or (`retry`) the failed clips."""
        parts: list[np.ndarray] = []
        failed: dict[str, tuple[str, frozenset[int]]] = {}
        for group in batches:
            for batch in pa.table(group).to_batches(max_chunksize=_FOLD_ROWS):
                if mode == "retry":
                    _fold_failed(batch, failed)
                else:
                    parts.append(_done_digests(batch))
        done = np.unique(np.concatenate(parts)) if parts else np.zeros(0, "S16")
        return cls(done, failed)

    def contains(self, digests: np.ndarray) -> np.ndarray:
        """For each digest, whether it is in `done`."""
        if not len(self.done):
            return np.zeros(len(digests), bool)
        at = np.minimum(np.searchsorted(self.done, digests), len(self.done) - 1)
        return self.done[at] == digests


def _done_digests(batch: pa.RecordBatch) -> np.ndarray:
    """One batch's (uri, work key) digests, sorted and unique."""
    works = (work_key_of(fp) for fp in batch["fingerprint"].to_pylist())
    return np.unique(_digests(zip(batch["video_uri"].to_pylist(), works, strict=False)))


def _fold_failed(batch: pa.RecordBatch, failed: dict[str, tuple[str, frozenset[int]]]) -> None:
    """Add one batch's failed clips to `failed` (uri -> work key, clip indices)."""
    errors = batch.filter(pc.not_equal(batch["status"], STATUS_OK))
    columns = [errors[c].to_pylist() for c in ("video_uri", "fingerprint", "clip_index")]
    for uri, fingerprint, clip in zip(*columns, strict=True):
        work, known = failed.get(uri, (work_key_of(fingerprint), frozenset()))
        failed[uri] = (work, known | {int(clip)})


def decide(
    refs: list[VideoRef], index: DoneIndex, settings_hash: str, mode: RunMode
) -> tuple[list[tuple[VideoRef, str]], int]:
    """The videos of `refs` to process, each with the clip indices to redo (`""`: all), and
    how many were skipped: done already (`incremental`) or with nothing to retry (`retry`)."""
    if mode == "all":
        return [(ref, "") for ref in refs], 0
    keys = [work_key(ref.uri, ref.size, ref.version, settings_hash) for ref in refs]
    if mode == "incremental":
        done = index.contains(_digests((ref.uri, key) for ref, key in zip(refs, keys, strict=True)))
        work = [(ref, "") for ref, is_done in zip(refs, done, strict=True) if not is_done]
        return work, len(refs) - len(work)
    work = []
    for ref, key in zip(refs, keys, strict=True):
        if ref.uri not in index.failed:
            continue
        failed_work, clips = index.failed[ref.uri]
        same = failed_work == key and -1 not in clips
        work.append((ref, ",".join(str(i) for i in sorted(clips)) if same else ""))
    return work, len(refs) - len(work)


def work_table(work: list[tuple[VideoRef, str]]) -> pa.Table:
    """One page's rows: the `VideoRef` fields and `REDO`, as compact Arrow columns."""
    names = list(VideoRef.__dataclass_fields__)
    columns = {name: [getattr(ref, name) for ref, _ in work] for name in names}
    columns[REDO] = [redo for _, redo in work]
    arrays = {name: pa.array(v, _REF_TYPES.get(name, pa.string())) for name, v in columns.items()}
    return pa.table(arrays)


@dataclass
class WorkPlan:
    """What a run does, as the driver keeps it: counts and page names."""

    listed: int = 0
    skipped: int = 0
    queued: int = 0
    pages: list[tuple[str, int]] = field(default_factory=list)
    """(page uri, videos in it), in listing order."""


def plan_folder(output: str, run_id: str, attempt: str) -> str:
    return join(output, RUNS_DIR, run_id, attempt, PLAN_DIR)


def write_work_plan(
    refs: Iterable[VideoRef],
    index: DoneIndex,
    settings_hash: str,
    mode: RunMode,
    folder: str,
    options: StorageOptions | None = None,
    on_page: Callable[[WorkPlan], None] | None = None,
) -> WorkPlan:
    """Stream `refs` through `decide`, writing each page of work to `folder`."""
    plan = WorkPlan()
    for page in in_pages(refs, PAGE_VIDEOS):
        work, skipped = decide(page, index, settings_hash, mode)
        plan.listed += len(page)
        plan.skipped += skipped
        if work:
            uri = join(folder, f"page-{len(plan.pages):06d}.parquet")
            buffer = io.BytesIO()
            pq.write_table(work_table(work), buffer, compression="zstd")
            write_bytes(uri, buffer.getvalue(), options)
            plan.pages.append((uri, len(work)))
            plan.queued += len(work)
        if on_page is not None:
            on_page(plan)
    return plan


def block_slices(pages: list[tuple[str, int]], blocks: int) -> list[list[tuple[str, int, int]]]:
    """`blocks` runs of consecutive videos, as even as can be, each as the
    `(page, start, stop)` pieces of the pages it covers."""
    total = sum(rows for _, rows in pages)
    if total == 0:
        return []
    size = -(-total // max(1, min(blocks, total)))
    out: list[list[tuple[str, int, int]]] = [[]]
    room = size
    for page, rows in pages:
        start = 0
        while start < rows:
            if room == 0:
                out.append([])
                room = size
            stop = min(rows, start + room)
            out[-1].append((page, start, stop))
            room -= stop - start
            start = stop
    return out


def read_page(
    page: str, start: int, stop: int, options: StorageOptions | None = None
) -> Iterator[dict[str, Any]]:
    """Rows `start:stop` of a plan page, as work rows (a worker reads its block's pieces)."""
    table = pq.read_table(pa.BufferReader(read_bytes(page, options)))
    yield from table.slice(start, stop - start).to_pylist()


def unwritten_videos(
    plan: WorkPlan, files: Iterable[str], options: StorageOptions | None = None
) -> list[VideoRef]:
    """Planned videos that have no row in `files` (an attempt's Parquet parts). A run asks
    only when its counts say some are missing, so this set of uris is built only then."""
    written: set[str] = set()
    for uri in files:
        table = pq.read_table(pa.BufferReader(read_bytes(uri, options)), columns=["video_uri"])
        written.update(table["video_uri"].to_pylist())
    return [
        VideoRef.from_row(row)
        for page, rows in plan.pages
        for row in read_page(page, 0, rows, options)
        if row["uri"] not in written
    ]
