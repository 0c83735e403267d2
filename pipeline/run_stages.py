"""A run's stages, joined: what each step is handed and what it hands on.

The rooms define their steps in their own terms (`pipeline.decode.stage`: a video to its rows;
`pipeline.annotate.stage`: rows to output rows; `pipeline.output.part_writer`: rows to a Parquet
part). A run feeds decode pieces of its work plan, redoes only the clips a retry names, and
marks each video's row count on its last row for the writer; those joints need the work plan
and the writer together, so they live here, above the rooms. `pipeline.ray_data` schedules
the result and knows nothing of what the stages do.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pipeline.annotate.settings import AnnotateSettings
from pipeline.annotate.stage import AnnotateStage
from pipeline.config import RunConfig
from pipeline.core.stage import BatchStage, Resources, Row, RowStage, Writer
from pipeline.core.storage import StorageOptions
from pipeline.decode.stage import DecodeStage
from pipeline.decode.video_rows import DecodeSettings
from pipeline.output.part_writer import VIDEO_ROWS, PartTarget, PartWriter
from pipeline.output.records import WriteResult
from pipeline.work_plan import REDO, read_page


def select_redo(rows: list[dict[str, Any]], redo: str | None) -> list[dict[str, Any]]:
    """The rows a retry redoes: the named clips (a video-level error row always stays)."""
    if not redo:
        return rows
    wanted = {int(i) for i in str(redo).split(",") if i.strip()}
    kept = [r for r in rows if int(r["clip_index"]) in wanted or int(r["clip_index"]) < 0]
    return kept or rows  # none of them exists any more: the whole video, as a fresh attempt


def with_video_total(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """`VIDEO_ROWS` = 0 on every row but the last, which carries the video's row count: the
    writer counts a video complete when it has written that many rows."""
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


class PlannedDecode(RowStage):
    """Decode fed by the work plan: a `(page, start, stop)` piece of a plan page in, the rows
    of its videos out, video after video, each video's total on its last row."""

    def __init__(self, decode: RowStage, plan_options: StorageOptions | None = None) -> None:
        self.decode = decode
        self.plan_options = plan_options or StorageOptions()
        self.resources = decode.resources
        self.retries = decode.retries

    def setup(self) -> None:
        self.decode.ready()

    def process(self, item: Row) -> Iterator[Row]:
        for row in read_page(item["page"], item["start"], item["stop"], self.plan_options):
            yield from self.video_rows(row)

    def video_rows(self, row: Row) -> Iterator[Row]:
        """One planned video's rows, streamed as they are decoded: a task never holds all the
        clips of a long video (a retry of named clips, which must see them all to choose, is
        the exception)."""
        rows = self.decode.process(row)
        if row.get(REDO):
            rows = iter(select_redo(list(rows), row.get(REDO)))
        yield from with_video_total(rows)


@dataclass(frozen=True)
class RunStages:
    """Everything one attempt runs, in order: decode and annotate on the workers, the part
    writer on the driver."""

    decode: RowStage
    annotate: BatchStage
    write: Writer[WriteResult]


def run_stages(
    config: RunConfig,
    decode: DecodeSettings,
    annotate: AnnotateSettings,
    target: PartTarget,
    gpus_per_actor: float,
) -> RunStages:
    """The stages of a run of `config` writing to `target`, sized by its `resources`."""
    resources = config.resources
    options = config.storage.options()
    return RunStages(
        decode=PlannedDecode(DecodeStage(decode, resources.decode_cpus), options),
        annotate=AnnotateStage(
            annotate,
            batch_size=config.model.batch_size,
            workers=resources.annotate_actors,
            resources=Resources(cpus=resources.cpus_per_actor, gpus=gpus_per_actor),
        ),
        write=PartWriter(
            target,
            config.output_options.rows_per_file,
            config.commit.chunk_videos,
            config.commit.chunk_seconds,
        ),
    )
