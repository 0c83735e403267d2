"""The only module that knows Ray: stages (`pipeline.core.stage`) become Ray Data operators.

The input is the run's work plan (`pipeline.work_plan`): each block is a few `(page, start, stop)`
pieces of the plan's Parquet pages, so the driver never builds or holds the videos' rows. A
`RowStage` (decode) runs as CPU tasks (`flat_map`: one piece in, the clip rows of its videos
out); a `BatchStage` (annotate) runs in an actor pool, each actor set up once (the model loads
once per actor). Ray Data's streaming executor keeps every stage busy and bounds what is in
flight. The output rows stream back to the driver block by block (an annotate batch each:
captions, tags, a thumbnail, two short vectors), and the `Writer` turns them into Parquet
parts there (`pipeline.output.block_writer`: each part closes on its rows or its age).

Ray is imported inside the functions that need it: importing this module (the run does) costs
nothing until a dataset is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from pipeline.core.stage import BatchStage, Row, RowStage, Writer
from pipeline.decode.stage import DecodeStage
from pipeline.decode.video_rows import DecodeSettings
from pipeline.output.block_writer import write_results
from pipeline.output.part_writer import VIDEO_ROWS
from pipeline.output.records import WriteResult
from pipeline.output.schema import rows_to_table
from pipeline.run_stages import PlannedDecode
from pipeline.work_plan import block_slices

VIDEOS_PER_BLOCK = 16
MIN_BLOCKS = 64
MAX_BLOCKS = 1024
"""Every block costs the driver tens of KB (its object and metadata): past this, blocks
grow instead of multiplying (a block's task streams its clip rows out as it goes)."""

E = TypeVar("E", bound=BaseException)


def num_blocks(videos: int) -> int:
    """Several videos per block (driver work and memory per block), enough blocks to spread
    the work, and at most `MAX_BLOCKS`."""
    wanted = min(MAX_BLOCKS, max(MIN_BLOCKS, -(-videos // VIDEOS_PER_BLOCK)))
    return max(1, min(videos, wanted))


def plan_blocks(pages: list[tuple[str, int]]) -> list[pa.Table]:
    """The dataset's input blocks: `num_blocks` runs of consecutive videos of the plan, each
    a small table of `(page, start, stop)` pieces."""
    blocks = num_blocks(sum(rows for _, rows in pages))
    return [
        pa.table({"page": [p[0] for p in b], "start": [p[1] for p in b], "stop": [p[2] for p in b]})
        for b in block_slices(pages, blocks)
    ]


def cluster_gpus() -> float:
    import ray

    return float(ray.cluster_resources().get("GPU", 0))


def cluster_has_gpus() -> bool:
    return cluster_gpus() > 0


# -- stages as Ray Data callables ---------------------------------------------------------


def row_task(row: Row, stage: RowStage) -> Iterator[Row]:
    """`flat_map` body of a `RowStage`; its copy in a task is set up once, before its first row."""
    yield from stage.ready().process(row)


class BatchActor:
    """Ray actor around a `BatchStage`: set up once, then numpy batch in, `clips` table out
    (with `VIDEO_ROWS` carried through for the writer)."""

    def __init__(self, stage: BatchStage) -> None:
        self.stage = stage.ready()

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        size = len(next(iter(batch.values())))
        rows = [{key: values[i] for key, values in batch.items()} for i in range(size)]
        table = rows_to_table(self.stage.process(rows))
        if VIDEO_ROWS in batch:
            table = table.append_column(VIDEO_ROWS, pa.array(batch[VIDEO_ROWS], pa.int32()))
        return table


# -- the dataset -----------------------------------------------------------------------------


def decode_row(row: Row, settings: DecodeSettings) -> Iterator[Row]:
    """One planned video's rows as the run's decode tasks make them (for driving decode alone,
    as tests and benchmarks do)."""
    yield from PlannedDecode(DecodeStage(settings)).video_rows(row)


def build_dataset(pages: list[tuple[str, int]], decode: RowStage, annotate: BatchStage) -> Any:
    """The lazy dataset of output rows for the plan's `pages` (`(uri, videos)`, written by
    `pipeline.work_plan.write_work_plan`); nothing runs until it is consumed."""
    import ray

    ds = ray.data.from_arrow(plan_blocks(pages))
    # Finite retries everywhere (Ray Data's default is to retry forever): a task whose worker
    # died is retried `decode.retries` times, a dead actor restarted `annotate.retries` times;
    # a video's own decode failures never reach Ray (isolation).
    ds = ds.flat_map(
        row_task,
        fn_kwargs={"stage": decode},
        num_cpus=decode.resources.cpus,
        num_gpus=decode.resources.gpus or None,
        max_retries=decode.retries,
    )
    return ds.map_batches(
        BatchActor,
        fn_constructor_kwargs={"stage": annotate},
        batch_size=annotate.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=annotate.workers),
        num_cpus=annotate.resources.cpus,
        num_gpus=annotate.resources.gpus,
        max_restarts=annotate.retries,
        # A task is retried for as long as its actor may come back: while a lost node is
        # being declared dead the actor is "unavailable" and a fixed count of retries runs out
        # in seconds; the restarts above are what bounds a batch that keeps killing its actor.
        max_task_retries=-1,
    )


def iter_write_results(
    ds: Any, writer: Writer[WriteResult], wake: Callable[[], float | None] = lambda: None
) -> Iterator[WriteResult | None]:
    """`write_results` over the output rows of `ds`, block by block as the annotate actors
    hand them back. Closing the generator stops the dataset: its executor shuts down once the
    block it is waiting for is back (`BlockFeed`)."""
    blocks = iter(ds.iter_batches(batch_format="pyarrow", batch_size=None))
    yield from write_results(blocks, writer, wake)


# -- errors ----------------------------------------------------------------------------------


def find_error(err: BaseException, kind: type[E]) -> E | None:
    """The `kind` error inside `err`, by type: `err` itself, its `__cause__`/`__context__`
    chain, or the exception a Ray wrapper (`RayTaskError`, `RayError`) carries as `.cause`.

    A worker's error reaches the driver as `RayTaskError(cause)`, its cause pickled; Ray Data
    first wraps a map function's error in `UserCodeException(...) from error`, and pickling
    keeps no `__cause__`, so the original is gone by then (only its text remains). The part
    writer runs on the driver, so a refused write (`CommitError`) never makes that trip.
    """
    from ray.exceptions import RayError

    seen: set[int] = set()
    todo: list[BaseException] = [err]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        cause = getattr(current, "cause", None) if isinstance(current, RayError) else None
        if isinstance(cause, BaseException):
            todo.append(cause)  # the original, before the wrapper (which may subclass it)
        elif isinstance(current, kind):
            return current
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
    return None
