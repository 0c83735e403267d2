"""Writing a part: one Parquet file per batch of output rows, and the small write result
the chunk tracker works from. It runs on the driver, which gathers the batch (`open_part`):
output rows are small (captions, tags, a 96 px thumbnail, two short vectors), and only the
driver can close a part on time.
"""

from __future__ import annotations

import io
import math
import secrets
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.errors import CommitError
from pipeline.core.stage import Writer
from pipeline.core.storage import StorageOptions, filesystem, is_remote, join
from pipeline.output.coverage import file_coverage
from pipeline.output.layout import CLIPS_DIR
from pipeline.output.records import VideoProgress, WriteResult
from pipeline.output.schema import CLIPS_SCHEMA
from pipeline.output.store import _put_bytes

VIDEO_ROWS = "_video_rows"
"""Extra column on rows bound for the sink: on a video's last row, how many rows that video
contributes to this attempt (its clips, the clips being retried, or 1 for its error row); 0 on
its other rows, because clips stream out of decode before the total is known. Not written."""


@dataclass(frozen=True)
class PartTarget:
    """Where one attempt's parts go (picklable: a plain value)."""

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


def write_part(table: pa.Table, target: PartTarget) -> WriteResult:
    """Write `table` (clips schema, plus `VIDEO_ROWS`) as one Parquet part; its write result.

    The result names the file and, per video, its rows in this file and in the attempt, its
    duration and the merged spans of its ok clips here (the run's coverage, without reading
    the rows back). A failed write raises `CommitError`.
    """
    totals = table[VIDEO_ROWS].to_pylist() if VIDEO_ROWS in table.column_names else None
    data = table.select(CLIPS_SCHEMA.names).cast(CLIPS_SCHEMA)
    uri = target.new_part_uri()
    buffer = io.BytesIO()
    pq.write_table(data, buffer, compression="zstd")
    fs = filesystem(target.output, target.options)
    try:
        _put_bytes(fs, uri, buffer.getvalue(), remote=is_remote(target.output))
    except Exception as err:  # after the storage client's own retries
        raise CommitError(f"could not write {uri}: {type(err).__name__}: {err}") from err
    counts = Counter(data["status"].to_pylist())
    return WriteResult(uri, data.num_rows, dict(counts), _progress(data, totals))


def _progress(data: pa.Table, totals: list[int] | None) -> tuple[VideoProgress, ...]:
    """Per video of `data`, in order of first row: its rows, total, duration and ok spans."""
    rows: dict[str, list[int]] = {}  # uri -> [rows here, total]
    for i, uri in enumerate(data["video_uri"].to_pylist()):
        seen = rows.setdefault(uri, [0, 0])
        seen[0] += 1
        # Without the column every video is whole in this table; with it, the total is known
        # only from the video's last row (0: not in this file).
        seen[1] = max(seen[1], int(totals[i])) if totals else seen[0]
    columns = ["video_uri", "start_s", "end_s", "video_duration_s", "status"]
    coverage = file_coverage(data.select(columns).to_pylist())
    progress = []
    for uri, (n, total) in rows.items():
        duration, spans = coverage[uri]
        progress.append(VideoProgress(uri, n, total, duration, tuple((a, b) for a, b in spans)))
    return tuple(progress)


class PartWriter(Writer[WriteResult]):
    """The part writer as a `Writer`: a part closes at `rows_per_file` rows, early at
    `chunk_videos` rows, or `chunk_seconds` after its first row.

    A chunk needs at least one row per video, so a part of `chunk_videos` rows never holds
    back more than one chunk's worth of work; and one open `chunk_seconds` never holds back
    work longer than a chunk may wait. With parts as large as `rows_per_file` alone (10,000 by
    default) a night of a few hundred videos wrote one part, and so committed one chunk, at
    its very end; with the row limits alone, so did a slow night of a dozen videos. A refused
    write raises `CommitError`."""

    def __init__(
        self,
        target: PartTarget,
        rows_per_file: int,
        chunk_videos: int | None = None,
        chunk_seconds: float = math.inf,
    ) -> None:
        self.target = target
        self.batch_size = min(rows_per_file, chunk_videos or rows_per_file)
        self.part_seconds = chunk_seconds

    def write(self, batch: pa.Table) -> WriteResult:
        return write_part(batch, self.target)
