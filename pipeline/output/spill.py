"""Regrouping key rows so that each group holds every row of its videos, in bounded memory.

The "latest" rule is per video, so pass 1 of a read can resolve any group of whole videos on
its own. While the key rows fit in the budget they form one group; past it they are spilled to
local disk in `SPILL_PARTITIONS` hash partitions by video and come back a partition at a time.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

SPILL_PARTITIONS = 64


def partitioned(tables: Iterator[pa.Table], budget: int) -> Iterator[pa.Table]:
    """`tables` regrouped so that each group holds every row of its videos: all of them at
    once while they fit in `budget` rows, else hash partitions spilled to a temporary folder."""
    held: list[pa.Table] = []
    rows = 0
    for table in tables:
        held.append(table)
        rows += table.num_rows
        if rows > budget:
            break
    else:
        if held:
            yield pa.concat_tables(held)
        return
    with tempfile.TemporaryDirectory(prefix="clipnote-latest-") as folder:
        paths = [os.path.join(folder, f"{p:03d}.arrow") for p in range(SPILL_PARTITIONS)]
        writers: list[Any] = [None] * SPILL_PARTITIONS
        try:
            for table in itertools.chain(held, tables):
                _spill(table, paths, writers)
            held = []
        finally:
            for writer in writers:
                if writer is not None:
                    writer.close()
        for path, writer in zip(paths, writers, strict=True):
            if writer is not None:
                with pa.memory_map(path) as source:
                    yield pa.ipc.open_stream(source).read_all()


def _spill(table: pa.Table, paths: list[str], writers: list[Any]) -> None:
    buckets = np.array(
        [hash(uri) % len(paths) for uri in table["video_uri"].to_pylist()], dtype=np.int64
    )
    for bucket in np.unique(buckets):
        if writers[bucket] is None:
            writers[bucket] = pa.ipc.new_stream(paths[bucket], table.schema)
        writers[bucket].write_table(table.filter(pa.array(buckets == bucket)))
