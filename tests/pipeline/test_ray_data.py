"""The Ray adapter's bodies on hand-built batches, without a cluster: what a task or actor
is handed, what it hands back, and how errors are found inside Ray's wrappers. The driver's
write loop is tests/pipeline/output/test_block_writer.py's."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from pipeline.core.errors import CommitError
from pipeline.core.stage import BatchStage, Row, RowStage
from pipeline.output.part_writer import VIDEO_ROWS
from pipeline.ray_data import BatchActor, find_error, row_task


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
