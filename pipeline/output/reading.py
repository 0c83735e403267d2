"""The one reading path: which files are committed, and each clip's latest annotation, once.

Everything that reads clipnote output (the `read_committed` helper, nightly's "what is done",
`clipnote retry`, the `clipnote query` views) goes through this module, so crashes, resumed
runs, retries and re-runs look the same to every reader.

Public API
----------
Commit layout (written by `pipeline.output.commit`, trusted here):
    `<output>/clips/run_date=D/run_id=R/part-*.parquet`  data files (written by workers)
    `<output>/_runs/R/<attempt>/chunk-NNNNNN.json`        chunk record: files committed together
    `<output>/_runs/R.json`                              run record, written when an attempt
                                                         ends: its live attempts, the retired
                                                         ones, every live file, counts, config
    `<output>/_runs/R/_lease/NNNNNNNN.json`              writer lease (never read here)
    `<output>/_runs/R/<attempt>/plan/page-NNNNNN.parquet` the attempt's work, read by its
                                                         decode tasks (`pipeline.work_plan`),
                                                         removed with its run record
    A file is committed iff a visible record names it; files nobody names are invisible.

`snapshot(output, options) -> Snapshot`        the committed state: visible files and records
                                               (`pipeline.output.snapshot`)
`committed_files(output, options) -> list[str]` visible data files (URIs as written)
`iter_latest(output, options, columns=None) -> Iterator[pa.RecordBatch]`   the `clips` view
`read_latest(output, options, columns=None) -> pa.Table`                   same, collected
`fold_latest_keys(output, fold, options, extra=())`  `fold` over the `clips` rows' key columns,
                                               whole videos at a time in bounded memory
                                               (nightly's index of what is done)
`iter_all(output, options) -> Iterator[pa.RecordBatch]`    the `clips_all` view (history)
`read_all(output, options) -> pa.Table`
`latest_positions(keys: pa.Table) -> np.ndarray`  pure: which key rows are "latest"
`runs_table(output, options) -> pa.Table`      the `runs` view: one row per visible commit
                                               (this and below: `pipeline.output.views`)
`views_sql(files) -> list[str]`               DuckDB `CREATE VIEW` statements (clips_all, clips)
`CLIPS_VIEW_SQL`                               the `clips` rule as SQL over a `clips_all` view
`register_views(con, output, options)`          create `clips_all`, `clips`, `runs` in a DuckDB
                                               connection (S3 through an fsspec filesystem, no
                                               DuckDB extension needed)

Clip identity and the "latest" rule
-----------------------------------
A clip is `(video_uri, clip_index)`: the URI as listed (`shard.tar#member` for tar members),
not `video_id`, so a video replaced under the same URI (new size/ETag) supersedes its old
clips. `clip_index = -1` is the one row of a video that could not be decoded as a whole.

Each row's `fingerprint` is `<work key>:<clip_index>`; the work key hashes everything the
annotation depended on (video identity, model weights, prompts, clip and sampling settings,
token limits, dtype: `pipeline.annotate.work_key`). Rows are ordered by `created_at`, newest
first (`run_id` breaks ties): runs of one output are sequential (a lease refuses a second writer
of a run), and a re-run's rows are always created after the rows it replaces.

For each video_uri, its newest row decides the *work key* W and the *kind* (video-level error
row, or clip rows). The video's rows in `clips` are the newest row of each clip_index among its
rows with work key W and that kind. Consequences:
- retrying one failed clip of a multi-clip video writes only that clip; it replaces the failed
  row and the other clips stay as they were (same W, same kind);
- a video-level decode error followed by a successful run: the clip rows are newer, the `-1`
  row is dropped; a success followed by a decode error (say the object became unreadable)
  shows just the error row;
- a video whose clip count changed (new clip settings, model or prompts: a new W, always
  written as a whole video) shows only the new clips, never stale indices from the old plan;
- a crash that committed some chunks and a re-run that redid some of their videos: each clip
  appears once, the newest.
Writers keep the invariant this needs: every committed attempt of a video is complete (all its
clips, or the clips being retried, or its error row): `pipeline.output.commit` commits a
file only once every video with rows in it is complete.

Readers never see a half-written run (files without a record are invisible), and a re-run
removes files it retired only after a grace period, so a reader that listed them can still
read them; `read_latest` / `read_all` start over from a fresh snapshot if a file vanished
anyway (a reader slower than the grace period).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.core.storage import StorageOptions, filesystem, open_for_arrow
from pipeline.output.schema import CLIPS_SCHEMA, OPTIONAL_COLUMNS, conform
from pipeline.output.snapshot import snapshot
from pipeline.output.spill import partitioned

KEY_COLUMNS = ("video_uri", "clip_index", "fingerprint", "created_at", "run_id")


_RESTARTS = 3


T = TypeVar("T")


def committed_files(output: str, options: StorageOptions | None = None) -> list[str]:
    return snapshot(output, options).files


def latest_positions(keys: pa.Table) -> np.ndarray:
    """Positions (ascending) of the rows of `keys` that `clips` shows.

    `keys` holds at least `KEY_COLUMNS`; see the module docstring for the rule.
    """
    n = keys.num_rows
    if n == 0:
        return np.zeros(0, np.int64)
    parts = pc.split_pattern(keys["fingerprint"].fill_null(""), ":", max_splits=1)
    work = pc.list_element(parts, 0)
    video_error = pc.less(keys["clip_index"], 0)
    table = pa.table(
        {
            "uri": keys["video_uri"],
            "clip": keys["clip_index"],
            "at": keys["created_at"],
            "run": keys["run_id"].fill_null(""),
            "work": work,
            "verr": video_error,
            "pos": pa.array(np.arange(n, dtype=np.int64)),
        }
    )
    newest_first = [("at", "descending"), ("run", "descending"), ("clip", "descending")]
    table = table.take(pc.sort_indices(table, [("uri", "ascending"), *newest_first]))
    # Arrow compute throughout: no Python object per row (a group may hold 250k rows).
    uri = table["uri"]
    starts = np.ones(n, bool)
    starts[1:] = pc.not_equal(uri.slice(1), uri.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    head = pa.array(np.maximum.accumulate(np.where(starts, np.arange(n), 0)))
    same_work = pc.equal(table["work"], table["work"].take(head))
    same_kind = pc.equal(table["verr"], table["verr"].take(head))
    same_attempt_kind = pc.and_(same_work, same_kind).to_numpy(zero_copy_only=False)
    candidates = table.filter(pa.array(same_attempt_kind))
    firsts = candidates.group_by(["uri", "clip"], use_threads=False).aggregate([("pos", "first")])
    return np.sort(firsts["pos_first"].to_numpy())


class _Vanished(Exception):
    """A committed file disappeared while reading (retired and removed by a later run)."""


def _open_parquet(fs: Any, uri: str, columns: Sequence[str] | None) -> pa.Table:
    """A committed file's `columns` (all: None); an `OPTIONAL_COLUMNS` one that a file written
    before it existed lacks is left out here and filled with nulls by `conform`.

    Opened by `open_for_arrow` (a local file as Arrow's own, so no Arrow thread ever holds a
    Python object at exit: the exit abort) and read on this thread.
    """
    try:
        with open_for_arrow(fs, uri) as fh:
            parquet = pq.ParquetFile(fh)
            if columns is None:
                return parquet.read(use_threads=False)
            present = set(parquet.schema_arrow.names)
            wanted = [c for c in columns if c in present or c not in OPTIONAL_COLUMNS]
            return parquet.read(columns=wanted, use_threads=False)
    except FileNotFoundError as err:
        raise _Vanished(uri) from err


PARTITION_ROWS = 250_000
"""Key rows held at once while resolving "latest" (about 1.1 KB each at the peak, measured by
benchmarks/scale.py: some 280 MB): past this, pass 1 spills the key columns to local disk in
`SPILL_PARTITIONS` partitions by video (the rule is per video) and resolves one partition at a
time, so 16M key rows still resolve 250k at a time."""


def _keyed_files(fs: Any, files: Sequence[str], extra: Sequence[str]) -> Iterator[pa.Table]:
    """Each committed file's key columns (+ `extra`), with its index and row positions."""
    for index, uri in enumerate(files):
        part = _open_parquet(fs, uri, [*KEY_COLUMNS, *extra])
        yield part.append_column(
            "_file", pa.array(np.full(part.num_rows, index, np.int32))
        ).append_column("_row", pa.array(np.arange(part.num_rows, dtype=np.int32)))


def _latest_keys_once(
    output: str, options: StorageOptions | None, extra: Sequence[str], budget: int
) -> tuple[list[str], Iterator[pa.Table]]:
    """The committed files, and the `clips` rows' key columns (+ `extra`, `_file`, `_row`),
    a group of whole videos at a time."""
    fs = filesystem(output, options)
    files = snapshot(output, options).files

    def groups() -> Iterator[pa.Table]:
        for group in partitioned(_keyed_files(fs, files, extra), budget):
            yield group.take(pa.array(latest_positions(group)))

    return files, groups()


def _iter_latest_once(
    output: str, options: StorageOptions | None, columns: Sequence[str] | None
) -> Iterator[pa.RecordBatch]:
    fs = filesystem(output, options)
    files, groups = _latest_keys_once(output, options, (), PARTITION_ROWS)
    owners, rows = [], []
    for group in groups:  # 8 bytes per winning row
        owners.append(group["_file"].to_numpy())
        rows.append(group["_row"].to_numpy())
    if not owners:
        return
    owner, row = np.concatenate(owners), np.concatenate(rows)
    order = np.lexsort((row, owner))
    owner, row = owner[order], row[order]
    bounds = np.searchsorted(owner, np.arange(len(files) + 1))
    del owners, rows, order
    for index, uri in enumerate(files):
        picked = row[bounds[index] : bounds[index + 1]]
        if not len(picked):
            continue
        table = _open_parquet(fs, uri, columns).take(pa.array(picked))
        yield from conform(table, columns).to_batches()


def iter_latest(
    output: str, options: StorageOptions | None = None, columns: Sequence[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """The `clips` view, file by file: each clip's latest committed row, once.

    Memory: pass 1 resolves the rule on the key columns, at most `PARTITION_ROWS` key rows at
    once (more wait in a local spill, partitioned by video); it keeps 8 bytes per winning row
    (file, row). Pass 2 reads the winners one file at a time.
    """
    yield from _iter_latest_once(output, options, columns)


def _restarting(read: Callable[[], T], restarts: int = _RESTARTS) -> T:
    """`read()`, called again (it takes a fresh snapshot) while a file it listed vanished."""
    for _ in range(restarts):
        try:
            return read()
        except _Vanished:
            pass
    return read()


def _collect(make, restarts: int = _RESTARTS) -> list[pa.RecordBatch]:
    return _restarting(lambda: list(make()), restarts)


def fold_latest_keys(
    output: str,
    fold: Callable[[Iterator[pa.Table]], T],
    options: StorageOptions | None = None,
    extra: Sequence[str] = (),
    budget: int = PARTITION_ROWS,
) -> T:
    """`fold` over the `clips` rows' key columns (`KEY_COLUMNS` + `extra`), a group of whole
    videos at a time, never more than `budget` key rows in memory (the rest waits in a local
    spill); started over from a fresh snapshot if a file vanished. For readers that keep less
    than the rows, such as nightly's index of what is done."""
    return _restarting(lambda: fold(_latest_keys_once(output, options, extra, budget)[1]))


def read_latest(
    output: str, options: StorageOptions | None = None, columns: Sequence[str] | None = None
) -> pa.Table:
    """`iter_latest` collected; starts over from a fresh snapshot if a file vanished."""
    batches = _collect(lambda: _iter_latest_once(output, options, columns))
    if batches:
        return pa.Table.from_batches(batches)
    schema = pa.schema([CLIPS_SCHEMA.field(c) for c in columns]) if columns else CLIPS_SCHEMA
    return schema.empty_table()


def _iter_all_once(
    output: str, options: StorageOptions | None, columns: Sequence[str] | None
) -> Iterator[pa.RecordBatch]:
    fs = filesystem(output, options)
    for uri in snapshot(output, options).files:
        yield from conform(_open_parquet(fs, uri, columns), columns).to_batches()


def iter_all(
    output: str, options: StorageOptions | None = None, columns: Sequence[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """The `clips_all` view, file by file: every committed row with its run (history)."""
    yield from _iter_all_once(output, options, columns)


def read_all(
    output: str, options: StorageOptions | None = None, columns: Sequence[str] | None = None
) -> pa.Table:
    batches = _collect(lambda: _iter_all_once(output, options, columns))
    if batches:
        return pa.Table.from_batches(batches)
    schema = pa.schema([CLIPS_SCHEMA.field(c) for c in columns]) if columns else CLIPS_SCHEMA
    return schema.empty_table()
