"""Where dedup's decisions live and how they are committed: the runs' own protocol, reused.

Each mode's decisions are an output of their own, `<output>/_dedup/<mode>/`, written by the
same `RunCommitter` as a run: Parquet parts under its `clips/` folder (of `DEDUP_SCHEMA`, not
the clips table), a chunk record after each part, a run record at the end, and a lease that
keeps one dedup of a mode at a time. The run id is fixed per mode (`dedup-<mode>`) and every
dedup is a resumed attempt of it, so a killed dedup leaves its committed chunks (decisions
that stay made), never half a part, and the next one decides only the clips still undecided:
each clip is decided exactly once. The main output's `_runs/` never names these files, so no
reader of the clips sees them as clips.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.errors import CommitError
from pipeline.core.storage import (
    StorageOptions,
    filesystem,
    is_remote,
    join,
    open_for_arrow,
)
from pipeline.output.chunks import Chunk
from pipeline.output.commit import RunCommitter, new_attempt_id
from pipeline.output.layout import absolute_output
from pipeline.output.records import RunDetails
from pipeline.output.snapshot import snapshot
from pipeline.output.store import _put_bytes

DEDUP_DIR = "_dedup"
MODES = ("footage", "semantic")

DEDUP_SCHEMA = pa.schema(
    [
        ("clip_id", pa.string()),
        ("video_uri", pa.string()),
        ("duplicate_of", pa.string()),  # NULL: kept
        ("distance", pa.float32()),  # cosine distance to the kept clip; NULL when kept
        ("mode", pa.string()),
        ("threshold", pa.float32()),
        ("created_at", pa.timestamp("us", tz="UTC")),
    ]
)


def dedup_root(output: str, mode: str) -> str:
    """The output of `mode`'s decisions, inside the clips' output (so `query` may read it)."""
    if mode not in MODES:
        raise ValueError(f"dedup mode must be one of {', '.join(MODES)}, got {mode!r}")
    return join(absolute_output(output), DEDUP_DIR, mode)


def decision_files(output: str, mode: str, options: StorageOptions | None = None) -> list[str]:
    """The committed decision files of `mode` (empty when dedup never ran)."""
    return snapshot(dedup_root(output, mode), options).files


def read_decisions(output: str, mode: str, options: StorageOptions | None = None) -> pa.Table:
    """Every committed decision of `mode`, one row per decided clip."""
    fs = filesystem(output, options)
    tables = []
    for uri in decision_files(output, mode, options):
        with open_for_arrow(fs, uri) as fh:
            tables.append(pq.ParquetFile(fh).read(use_threads=False).cast(DEDUP_SCHEMA))
    return pa.concat_tables(tables) if tables else DEDUP_SCHEMA.empty_table()


def decisions_table(
    clip_ids: list[str], uris: list[str], duplicate_of: list[str | None],
    distance: list[float | None], mode: str, threshold: float,
) -> pa.Table:  # fmt: skip
    now = datetime.now(timezone.utc)
    n = len(clip_ids)
    return pa.table(
        {
            "clip_id": clip_ids, "video_uri": uris, "duplicate_of": duplicate_of,
            "distance": distance, "mode": [mode] * n, "threshold": [threshold] * n,
            "created_at": [now] * n,
        },
        schema=DEDUP_SCHEMA,
    )  # fmt: skip


def commit_decisions(
    output: str,
    mode: str,
    decide: Callable[[], Iterable[pa.Table]],
    options: StorageOptions | None = None,
    details: RunDetails | None = None,
) -> tuple[int, int]:
    """Take `mode`'s lease, then commit each table `decide()` yields as one part and one
    chunk, then the run record; returns `(kept, duplicates)` committed.

    `decide` runs only once the lease is held: what it reads as undecided cannot be decided
    by another dedup meanwhile. A failure lets the lease go and keeps the committed chunks.
    """
    options = options or StorageOptions()
    root = dedup_root(output, mode)
    now = datetime.now(timezone.utc)
    committer = RunCommitter(
        root, f"dedup-{mode}", new_attempt_id(now), now.date(), options, mode="resume"
    )
    fs = filesystem(root, options)
    kept = duplicates = 0
    committer.on_write_start()
    try:
        for table in decide():
            if table.num_rows == 0:
                continue
            uri = committer.target.new_part_uri()
            buffer = io.BytesIO()
            pq.write_table(table.cast(DEDUP_SCHEMA), buffer, compression="zstd")
            try:
                _put_bytes(fs, uri, buffer.getvalue(), remote=is_remote(root))
            except Exception as err:
                raise CommitError(f"could not write {uri}: {type(err).__name__}: {err}") from err
            dup = table.num_rows - table["duplicate_of"].null_count
            counts = {"kept": table.num_rows - dup, "duplicate": dup}
            committer.commit_chunk(Chunk([uri], table.num_rows, counts, []))
            kept, duplicates = kept + counts["kept"], duplicates + dup
        committer.on_write_complete(details or RunDetails(mode="incremental"))
    except BaseException as err:
        committer.on_write_failed(err)
        raise
    return kept, duplicates
