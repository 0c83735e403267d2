"""The only module that knows Ray Data: stages become operators, nothing more.

The input is the run's work plan (`pipeline.work_plan`): each block is a few `(page, start, stop)`
pieces of the plan's Parquet pages, so the driver never builds or holds the videos' rows. Decode
runs as CPU tasks (`flat_map`: one piece in, the clip rows of its videos out; several videos
per block); annotation runs in an actor pool that loads the model once per actor; writing runs on
the workers too (`map_batches` over `sink.write_part`, Datasink-style), so what streams back to
the driver is one small write result per Parquet file, never rows. Ray Data's streaming
executor keeps every stage busy and bounds what is in flight.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.annotate.annotator import Annotator
from pipeline.annotate.settings import AnnotateSettings
from pipeline.core.records import VideoRef
from pipeline.core.storage import StorageOptions
from pipeline.decode.video_rows import DecodeSettings, decode_video_rows
from pipeline.output.part_writer import VIDEO_ROWS, PartTarget, write_part, write_results_table
from pipeline.output.schema import rows_to_table
from pipeline.work_plan import REDO, block_slices, read_page

VIDEOS_PER_BLOCK = 16
MIN_BLOCKS = 64
MAX_BLOCKS = 1024
"""Every block costs the driver tens of KB (its object and metadata): past this, blocks
grow instead of multiplying (a block's task streams its clip rows out as it goes)."""
ANNOTATE_MAX_RESTARTS = 3


def select_redo(rows: list[dict[str, Any]], redo: str | None) -> list[dict[str, Any]]:
    """The rows a retry redoes: the named clips (a video-level error row always stays)."""
    if not redo:
        return rows
    wanted = {int(i) for i in str(redo).split(",") if i.strip()}
    kept = [r for r in rows if int(r["clip_index"]) in wanted or int(r["clip_index"]) < 0]
    return kept or rows  # none of them exists any more: the whole video, as a fresh attempt


def decode_row(row: dict[str, Any], settings: DecodeSettings) -> Iterator[dict[str, Any]]:
    """One video's rows, streamed as they are decoded: a task never holds all the clips of a
    long video (a retry of named clips, which must see them all to choose, is the exception)."""
    rows = decode_video_rows(VideoRef.from_row(row), settings)
    if row.get(REDO):
        rows = iter(select_redo(list(rows), row.get(REDO)))
    yield from with_video_total(rows)


def decode_piece(
    piece: dict[str, Any], settings: DecodeSettings, plan_options: StorageOptions
) -> Iterator[dict[str, Any]]:
    """The rows of the videos in one piece of a plan page, video after video."""
    for row in read_page(piece["page"], piece["start"], piece["stop"], plan_options):
        yield from decode_row(row, settings)


def with_video_total(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """`VIDEO_ROWS` = 0 on every row but the last, which carries the video's row count: the
    sink counts a video complete when it has written that many rows."""
    previous: dict[str, Any] | None = None
    count = 0
    for current in rows:
        if previous is not None:
            previous[VIDEO_ROWS] = 0
            yield previous
        previous, count = current, count + 1
    if previous is not None:
        previous[VIDEO_ROWS] = count
        yield previous


def write_batch(batch: pa.Table, target: PartTarget) -> pa.Table:
    """One Parquet part per batch, written here on the worker; returns its write result."""
    return write_results_table([write_part(batch, target)])


def num_blocks(videos: int) -> int:
    """Several videos per block (driver work and memory per block), enough blocks to spread
    the work, and at most `MAX_BLOCKS`."""
    wanted = min(MAX_BLOCKS, max(MIN_BLOCKS, -(-videos // VIDEOS_PER_BLOCK)))
    return max(1, min(videos, wanted))


class AnnotateActor:
    """Ray actor around `Annotator`: numpy batch in, `clips`-schema Arrow table out."""

    def __init__(self, settings: AnnotateSettings) -> None:
        self.annotator = Annotator(settings)

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        size = len(next(iter(batch.values())))
        rows = [{key: values[i] for key, values in batch.items()} for i in range(size)]
        table = rows_to_table(self.annotator.annotate(rows))
        if VIDEO_ROWS in batch:
            table = table.append_column(VIDEO_ROWS, pa.array(batch[VIDEO_ROWS], pa.int32()))
        return table


def cluster_has_gpus() -> bool:
    import ray

    return ray.cluster_resources().get("GPU", 0) > 0


def plan_blocks(pages: list[tuple[str, int]]) -> list[pa.Table]:
    """The dataset's input blocks: `num_blocks` runs of consecutive videos of the plan, each
    a small table of `(page, start, stop)` pieces."""
    blocks = num_blocks(sum(rows for _, rows in pages))
    return [
        pa.table({"page": [p[0] for p in b], "start": [p[1] for p in b], "stop": [p[2] for p in b]})
        for b in block_slices(pages, blocks)
    ]


def build_dataset(
    pages: list[tuple[str, int]],
    plan_options: StorageOptions,
    decode: DecodeSettings,
    annotate: AnnotateSettings,
    *,
    batch_size: int,
    decode_cpus: float,
    actors: int,
    cpus_per_actor: float,
    gpus_per_actor: float,
) -> Any:
    """The lazy dataset of output rows for the plan's `pages` (`(uri, videos)`, written by
    `pipeline.work_plan.write_work_plan`); nothing runs until it is consumed."""
    import ray

    ds = ray.data.from_arrow(plan_blocks(pages))
    # Finite retries everywhere (Ray Data's default is to retry forever): a task whose worker
    # died is retried `decode.max_retries` times, a dead annotation actor restarted at most
    # ANNOTATE_MAX_RESTARTS times; a video's own decode failures never reach Ray (isolation).
    ds = ds.flat_map(
        decode_piece,
        fn_kwargs={"settings": decode, "plan_options": plan_options},
        num_cpus=decode_cpus,
        max_retries=decode.limits.max_retries,
    )
    return ds.map_batches(
        AnnotateActor,
        fn_constructor_kwargs={"settings": annotate},
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus_per_actor,
        num_gpus=gpus_per_actor,
        max_restarts=ANNOTATE_MAX_RESTARTS,
        # A task is retried for as long as its actor may come back: while a lost node is
        # being declared dead the actor is "unavailable" and a fixed count of retries runs out
        # in seconds; the restarts above are what bounds a batch that keeps killing its actor.
        max_task_retries=-1,
    )


def iter_tables(ds: Any) -> Iterator[pa.Table]:
    """Output rows as Arrow tables, streamed to the driver as they complete."""
    yield from ds.iter_batches(batch_format="pyarrow", batch_size=None)


def iter_write_results(ds: Any, target: PartTarget, rows_per_file: int) -> Iterator[dict]:
    """Write `ds` (output rows) as Parquet parts on the workers; yield each part's write
    result (file name and per-video row counts) as it lands on the driver."""
    import json

    written = ds.map_batches(
        write_batch,
        fn_kwargs={"target": target},
        batch_size=rows_per_file,
        batch_format="pyarrow",
        num_cpus=0,
    )
    for batch in written.iter_batches(batch_format="pyarrow", batch_size=None):
        for text in batch["result"].to_pylist():
            yield json.loads(text)
