"""The Ray adapter's bodies on hand-built batches, without a cluster: what a task or actor
is handed, what it hands back; and the driver's write loop on plain generators standing in
for Ray's iterator: parts closing on rows, on time while no block comes, errors raised as
themselves, and stopping."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import ray_data
from pipeline.core.errors import CommitError
from pipeline.core.stage import BatchStage, Row, RowStage
from pipeline.output.part_writer import VIDEO_ROWS, PartTarget, PartWriter
from pipeline.ray_data import BatchActor, find_error, row_task, write_results


class Doubler(RowStage):
    def __init__(self) -> None:
        self.set_up = 0

    def setup(self) -> None:
        self.set_up += 1

    def process(self, item: Row) -> Iterator[Row]:
        yield {"n": item["n"]}
        yield {"n": item["n"] * 10}


class Captioner(BatchStage):
    """Captions each ok clip with its index; an error row passes through."""

    batch_size = 2

    def __init__(self) -> None:
        self.set_up = 0

    def setup(self) -> None:
        self.set_up += 1

    def process(self, item: list[Row]) -> list[Row]:
        return [
            {**row, "caption": f"clip {row['clip_index']}" if row["status"] == "ok" else None}
            for row in item
        ]


def test_a_row_stage_task_sets_up_once_and_streams_its_rows():
    stage = Doubler()
    assert [r["n"] for r in row_task({"n": 1}, stage)] == [1, 10]
    assert [r["n"] for r in row_task({"n": 2}, stage)] == [2, 20]
    assert stage.set_up == 1


def test_a_batch_actor_turns_a_numpy_batch_into_clips_rows():
    batch = {
        "video_uri": np.array(["a", "b"], dtype=object),
        "clip_index": np.array([0, -1]),
        "status": np.array(["ok", "decode_error"], dtype=object),
        VIDEO_ROWS: np.array([1, 1]),
    }
    actor = BatchActor(Captioner())
    table = actor(batch)
    assert actor.stage.set_up == 1
    assert table.column("caption").to_pylist() == ["clip 0", None]
    assert table.column("status").to_pylist() == ["ok", "decode_error"]
    assert table.column(VIDEO_ROWS).to_pylist() == [1, 1]
    assert table.column("clip_id").to_pylist() == [None, None]  # a column the stage left out


def _clips(uri: str, n: int) -> pa.Table:
    from tests.pipeline.output.parts import clip_rows

    return clip_rows({uri: n}, "r")


def _writer(tmp_path, rows: int, seconds: float = math.inf) -> PartWriter:
    return PartWriter(
        PartTarget(str(tmp_path / "out"), "r", "2026-01-02", "a1"), rows, None, seconds
    )


WAIT_S = 30.0
"""The most a test waits for a thread; it only runs out when the code under test is wrong."""


def _held_up(first: pa.Table, then: threading.Event, last: pa.Table, closed: threading.Event):
    """Blocks as a slow GPU batch hands them out: `first`, then `last` only once `then` is set
    (a generator blocked in `next`, as Ray's is). `closed` is set when it is closed."""
    try:
        yield first
        assert then.wait(WAIT_S), "never released"
        yield last
    finally:
        closed.set()


def test_parts_close_at_their_row_limit_and_at_the_end(tmp_path):
    """Blocks of 3, 3 and 1 rows, parts of 4 rows -> 4 rows, then the last 3 at the end."""
    blocks = (b for b in [_clips("a", 3), _clips("b", 3), _clips("c", 1)])
    results = list(write_results(blocks, _writer(tmp_path, 4)))
    assert [r.rows for r in results] == [4, 3]
    assert [[v.uri for v in r.videos] for r in results] == [["a", "b"], ["b", "c"]]
    assert pq.read_table(results[0].file)["clip_id"].to_pylist() == [
        "id-a:0", "id-a:1", "id-a:2", "id-b:0"
    ]  # fmt: skip


def test_a_part_closes_on_time_while_no_block_comes(tmp_path):
    """The reason the blocks are pulled on a thread: Ray's iterator blocks until the next
    block, and the part holding the first one must close 0.2 s after it came, not then."""
    then, closed = threading.Event(), threading.Event()
    blocks = _held_up(_clips("a", 2), then, _clips("b", 1), closed)
    results = write_results(blocks, _writer(tmp_path, 1000, seconds=0.2))
    first = next(results)
    assert not then.is_set()  # written while the next block was still held up
    assert (first.rows, [v.uri for v in first.videos]) == (2, ["a"])
    then.set()
    assert [r.rows for r in results if r is not None] == [1]
    assert closed.is_set()


def test_a_writer_with_no_time_limit_waits_for_rows_as_long_as_it_takes(tmp_path):
    """Caught: an endless `part_seconds` became the queue's timeout, and waiting on an empty
    queue that long raised OverflowError."""

    def slow():
        yield _clips("a", 1)
        time.sleep(0.3)  # the driver waits on an empty queue with the part open
        yield _clips("b", 1)

    assert [r.rows for r in write_results(slow(), _writer(tmp_path, 1000))] == [2]


def test_the_callers_deadline_wakes_the_driver_with_nothing_written(tmp_path):
    """`wake` is the chunk tracker's deadline: the driver is woken for it (None: nothing was
    written) while the open part, with no time limit of its own, waits for rows."""
    then, closed = threading.Event(), threading.Event()
    blocks = _held_up(_clips("a", 1), then, _clips("b", 1), closed)
    results = write_results(blocks, _writer(tmp_path, 1000), wake=lambda: 0.05)
    assert next(results) is None and not then.is_set()
    then.set()
    assert [r.rows for r in results if r is not None] == [2]


class Refused(Exception):
    """An error of the block stream, of a type no library has."""


def test_an_error_of_the_blocks_is_raised_on_the_driver_as_itself(tmp_path):
    def failing():
        yield _clips("a", 1)
        raise Refused("from the thread")

    with pytest.raises(Refused, match="from the thread"):
        list(write_results(failing(), _writer(tmp_path, 1000)))


def test_a_refused_write_is_raised_as_the_writers_error_and_stops_the_blocks(tmp_path):
    """A refusal keeps its type (`find_error` finds it by type); the stream, however many
    blocks it has left, is closed by its own thread (for Ray's: the executor shuts down)."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "clips").write_text("a file where the folder must go")
    closed = threading.Event()

    def endless():
        try:
            while True:
                yield _clips("a", 1)
        finally:
            closed.set()

    with pytest.raises(CommitError, match="could not write") as raised:
        list(write_results(endless(), _writer(tmp_path, 1)))
    assert type(raised.value) is CommitError
    assert closed.wait(WAIT_S)


def test_a_driver_that_stops_goes_on_while_the_blocks_are_held_up(tmp_path, monkeypatch):
    """A generator cannot be closed while it runs: closing the results tells the thread,
    which closes the stream itself once its block is back; the driver waits for that only
    `STOP_WAIT_S`."""
    monkeypatch.setattr(ray_data, "STOP_WAIT_S", 0.1)
    then, closed = threading.Event(), threading.Event()
    blocks = _held_up(_clips("a", 1), then, _clips("b", 1), closed)
    results = write_results(blocks, _writer(tmp_path, 1))
    assert next(results).rows == 1
    results.close()  # as `run_pipeline` does when its loop raises
    assert not closed.is_set()  # the stream is still held up in its `next`
    then.set()
    assert closed.wait(WAIT_S)


def test_find_error_looks_inside_ray_wrappers_and_chains():
    from ray.exceptions import RayTaskError

    inner = CommitError("could not write x")
    wrapped = RayTaskError("annotate", "Traceback ...", inner)
    assert find_error(wrapped, CommitError) is inner
    assert find_error(wrapped.as_instanceof_cause(), CommitError) is inner
    try:
        try:
            raise inner
        except CommitError as err:
            raise RuntimeError("while committing") from err
    except RuntimeError as outer:
        assert find_error(outer, CommitError) is inner
    assert find_error(RuntimeError("CommitError: in the text only"), CommitError) is None
