"""The worker's side of writing: one Parquet part per batch, and the small write result
that is all the driver ever sees of it.
"""

from __future__ import annotations

import io
import json
import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.errors import CommitError
from pipeline.core.storage import StorageOptions, filesystem, is_remote, join
from pipeline.output.coverage import file_coverage
from pipeline.output.layout import (
    CLIPS_DIR,
)
from pipeline.output.schema import CLIPS_SCHEMA
from pipeline.output.store import _put_bytes

VIDEO_ROWS = "_video_rows"
"""Extra column on rows bound for the sink: on a video's last row, how many rows that video
contributes to this attempt (its clips, the clips being retried, or 1 for its error row); 0 on
its other rows, because clips stream out of decode before the total is known. Not written."""


WRITE_RESULT_SCHEMA = pa.schema([("file", pa.string()), ("result", pa.string())])


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
