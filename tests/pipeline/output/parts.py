"""Clip rows made by hand for the output tests (not by the pipeline), and where they go."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa

from pipeline.core.storage import StorageOptions
from pipeline.output.part_writer import VIDEO_ROWS
from pipeline.output.schema import rows_to_table

DAY = date(2026, 1, 2)


T0 = datetime(2026, 1, 2, tzinfo=timezone.utc)


def clip_rows(videos: dict[str, int], run: str, minute: int = 0) -> pa.Table:
    """`videos[uri]` ok clips per video, made at `minute`, each video whole in the table."""
    rows = []
    for uri, clips in videos.items():
        for clip in range(clips):
            rows.append(
                {
                    "run_id": run, "video_uri": uri, "video_id": f"id-{uri}",
                    "clip_id": f"id-{uri}:{clip}", "clip_index": clip,
                    "fingerprint": f"W-{uri}:{clip}", "status": "ok", "caption": f"{run}",
                    "created_at": T0 + timedelta(minutes=minute),
                    "tags": [], "tag_scores": [], "frame_indices": [], "frame_times_s": [],
                }
            )  # fmt: skip
    table = rows_to_table(rows)
    expected = [videos[r["video_uri"]] for r in rows]
    return table.append_column(VIDEO_ROWS, pa.array(expected, pa.int32()))


def new_output(kind: str, tmp_path: Path, s3_client, s3_endpoint) -> tuple[str, StorageOptions]:
    """A fresh output root: a local folder, or a new bucket on the moto server."""
    if kind == "local":
        return str(tmp_path / "out"), StorageOptions()
    bucket = f"sink-{os.urandom(4).hex()}"
    s3_client.create_bucket(Bucket=bucket)
    return f"s3://{bucket}/out", StorageOptions(endpoint_url=s3_endpoint)
