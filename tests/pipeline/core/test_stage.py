"""The stage contract itself: what a runner may rely on, on hand-made stages."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pyarrow as pa

from pipeline.core.stage import BatchStage, Resources, Row, RowStage, Writer


class Counting(RowStage):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def setup(self) -> None:
        self.calls.append("setup")

    def process(self, item: Row) -> Iterator[Row]:
        self.calls.append(f"process {item['n']}")
        yield item


def test_a_stage_is_set_up_once_before_its_first_item():
    stage = Counting()
    for n in (1, 2):
        list(stage.ready().process({"n": n}))
    assert stage.calls == ["setup", "process 1", "process 2"]


def test_a_copy_shipped_to_a_worker_sets_itself_up_there():
    """A runner ships a stage to each worker as a pickled copy: a copy of a stage already set
    up here must still set itself up (and not carry what `setup` loaded)."""
    import pickle

    stage = Counting()
    stage.loaded = ("model",)
    stage.ready()
    stage.model = "weights"
    copy = pickle.loads(pickle.dumps(stage))
    assert not hasattr(copy, "model")
    copy.ready()
    assert copy.calls == ["setup", "setup"]  # its own setup, after the one it was copied from


def test_what_a_stage_asks_for_unless_it_says_otherwise():
    class Rows(RowStage):
        def process(self, item: Row) -> Iterator[Row]:
            yield item

    class Batches(BatchStage):
        def process(self, item: list[Row]) -> list[Row]:
            return item

    class Parts(Writer[int]):
        def write(self, batch: pa.Table) -> int:
            return batch.num_rows

    assert (Rows().resources, Rows().retries) == (Resources(cpus=1.0, gpus=0.0), 0)
    assert (Batches().batch_size, Batches().workers) == (1, 1)
    assert (Parts().batch_size, Parts().part_seconds) == (1, math.inf)
    assert Parts().write(pa.table({"a": [1, 2]})) == 2
