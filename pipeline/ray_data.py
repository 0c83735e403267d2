"""The only module that knows Ray: stages (`pipeline.core.stage`) become Ray Data operators.

The input is the run's work plan (`pipeline.work_plan`): each block is a few `(page, start, stop)`
pieces of the plan's Parquet pages, so the driver never builds or holds the videos' rows. A
`RowStage` (decode) runs as CPU tasks (`flat_map`: one piece in, the clip rows of its videos
out); a `BatchStage` (annotate) runs in an actor pool, each actor set up once (the model loads
once per actor). Ray Data's streaming executor keeps every stage busy and bounds what is in
flight. The output rows stream back to the driver block by block (an annotate batch each:
captions, tags, a thumbnail, two short vectors), and the `Writer` turns them into Parquet
parts there (`write_results`): Ray Data bundles rows by count only, and a part must also
close on time (`commit.chunk_seconds`), even while no block comes, so that written work
becomes committable on time. The blocks are pulled on a thread (`BlockFeed`) for that: the
driver waits for the next one only until the open part is due.

Ray is imported inside the functions that need it: importing this module (the run does) costs
nothing until a dataset is built.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from pipeline.core.stage import BatchStage, Row, RowStage, Writer
from pipeline.decode.stage import DecodeStage
from pipeline.decode.video_rows import DecodeSettings
from pipeline.output.open_part import OpenPart
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

FEED_DEPTH = 8
"""Output blocks pulled ahead of the driver: enough to keep the executor going while a part
is written, few enough that Ray Data's backpressure still holds."""
STOP_WAIT_S = 10.0
"""How long a driver that stops early (an error, an interrupt) waits for the block thread to
shut the executor down. The thread can only once Ray hands it the block it is waiting for,
which a slow GPU batch may hold back; past this the driver goes on and the thread finishes
on its own."""
PUT_POLL_S = 0.1
"""How often the block thread, held up by a full queue, looks whether the driver stopped."""

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


# -- writing on the driver ----------------------------------------------------------------


def write_results(
    blocks: Generator[pa.Table, None, None],
    writer: Writer[WriteResult],
    wake: Callable[[], float | None] = lambda: None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[WriteResult | None]:
    """Write the rows of `blocks` as parts with `writer`, here on the driver; yield each
    part's write result as it is written, and None when `wake`'s deadline passed and nothing
    was written (seconds from now, asked before each wait; None: no deadline).

    A part closes at `writer.batch_size` rows, `writer.part_seconds` after its first row
    (while no block comes too: `BlockFeed`), and at the end of `blocks`. `wake` is the
    caller's own deadline, the chunk tracker's: written files can wait for a chunk whose time
    comes while no part closes. A refused write raises the writer's own error, as itself.
    """
    part = OpenPart(writer.batch_size, writer.part_seconds, clock)
    with BlockFeed(blocks) as feed:
        while not feed.finished:
            block = feed.get(_soonest(part.wait_s(), wake()))
            if block is not None:
                for table in part.add(block):
                    yield writer.write(table)
            due = part.take_due()
            if due is not None:
                yield writer.write(due)
            elif block is None and not feed.finished:
                yield None
        rest = part.take()
        if rest is not None:
            yield writer.write(rest)


def _soonest(*waits: float | None) -> float | None:
    """The shortest of `waits` (None: none of them is a deadline: wait as long as it takes).
    An endless wait (a writer with no `part_seconds`) is no deadline either: a queue cannot
    wait that long (OverflowError)."""
    deadlines = [w for w in waits if w is not None and math.isfinite(w)]
    return min(deadlines) if deadlines else None


@dataclass(frozen=True)
class _Failed:
    """The block stream raised `error` (on the thread): the driver raises it as itself."""

    error: BaseException


_END = object()
"""The block stream is exhausted."""


class BlockFeed:
    """A block stream pulled on its own thread into a short queue, so the driver can wait for
    the next block with a timeout: Ray's iterator blocks until a block comes, and a part must
    close on time while a slow GPU batch holds the next one back.

    Stopping: a generator cannot be closed from another thread while it runs, so `close`
    tells the thread, which closes the stream itself (for Ray's, that shuts the executor
    down) once it has its current block back. An error of the stream is raised by `get`, on
    the driver, as itself (its type is how `find_error` finds a refusal).
    """

    def __init__(self, blocks: Generator[pa.Table, None, None], depth: int = FEED_DEPTH) -> None:
        self.finished = False
        """The stream has ended (every block was handed out) or failed."""
        self._blocks = blocks
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="output-blocks", daemon=True)

    def __enter__(self) -> BlockFeed:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, timeout: float | None) -> pa.Table | None:
        """The next block; None once `timeout` seconds pass first (None: wait as long as it
        takes) or the stream has ended (`finished`). The stream's error is raised here."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, _Failed):
            self.finished = True
            raise item.error
        if item is _END:
            self.finished = True
            return None
        return item  # type: ignore[return-value]

    def close(self) -> None:
        """Stop pulling: the thread closes the stream once its current block is back; wait
        for that at most `STOP_WAIT_S`."""
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:  # a thread held up by a full queue sees the stop sooner
                self._queue.get_nowait()
        self._thread.join(timeout=STOP_WAIT_S)

    def _pump(self) -> None:
        try:
            for block in self._blocks:
                if not self._put(block):
                    return
            self._put(_END)
        except BaseException as err:  # handed to the driver, which raises it
            self._put(_Failed(err))
        finally:
            self._blocks.close()

    def _put(self, item: object) -> bool:
        """Queue `item` unless the driver has stopped listening (False: it has)."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=PUT_POLL_S)
                return True
            except queue.Full:
                continue
        return False


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
