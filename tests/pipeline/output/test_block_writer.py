"""The driver's write loop on plain generators standing in for Ray's iterator: parts closing
on their rows, on time while no block comes, errors raised as themselves, and stopping."""

from __future__ import annotations

import math
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.errors import CommitError
from pipeline.output import block_writer
from pipeline.output.block_writer import write_results
from pipeline.output.part_writer import PartTarget, PartWriter


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
    monkeypatch.setattr(block_writer, "STOP_WAIT_S", 0.1)
    then, closed = threading.Event(), threading.Event()
    blocks = _held_up(_clips("a", 1), then, _clips("b", 1), closed)
    results = write_results(blocks, _writer(tmp_path, 1))
    assert next(results).rows == 1
    results.close()  # as `run_pipeline` does when its loop raises
    assert not closed.is_set()  # the stream is still held up in its `next`
    then.set()
    assert closed.wait(WAIT_S)
