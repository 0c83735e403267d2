"""Writing the output blocks that reach the driver as Parquet parts, each closed on its rows
or its age (pure of Ray: the blocks are any generator; the Ray adapter hands it Ray Data's).

Why on the driver: Ray Data bundles rows by count only, and a part must also close on time
(`commit.chunk_seconds`), even while no block comes, so that written work becomes committable
on time. The blocks are pulled on a thread (`BlockFeed`) for that: the driver waits for the
next one only until the open part is due.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass

import pyarrow as pa

from pipeline.core.stage import Writer
from pipeline.output.open_part import OpenPart
from pipeline.output.records import WriteResult

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
