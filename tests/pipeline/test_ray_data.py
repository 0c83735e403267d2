"""The Ray adapter's bodies on hand-built batches, without a cluster: what a task or actor
is handed, what it hands back, and how a writer's refusal keeps its type."""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pytest

from pipeline.core.errors import CommitError
from pipeline.core.stage import BatchStage, Row, RowStage
from pipeline.output.part_writer import VIDEO_ROWS, PartTarget, PartWriter
from pipeline.output.records import VideoProgress, WriteResult
from pipeline.ray_data import WRITTEN_SCHEMA, BatchActor, find_error, row_task, write_task


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


def test_a_write_task_hands_back_one_write_result_per_part(tmp_path):
    writer = PartWriter(PartTarget(str(tmp_path / "out"), "r", "2026-01-02", "a1"), 2)
    out = write_task(_clips("a", 2), writer)
    assert out.schema == WRITTEN_SCHEMA and out.num_rows == 1
    assert out["refusal"].to_pylist() == [None]
    result = WriteResult.from_json(out["result"][0].as_py())
    assert (result.rows, result.counts) == (2, {"ok": 2})
    assert result.videos == (VideoProgress("a", 2, 2, 0.0, ()),)


def test_a_refused_write_comes_back_as_the_writers_error(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "clips").write_text("a file where the folder must go")
    writer = PartWriter(PartTarget(str(tmp_path / "out"), "r", "2026-01-02", "a1"), 2)
    out = write_task(_clips("a", 1), writer)
    assert out["result"].to_pylist() == [None]
    refusal = pickle.loads(out["refusal"][0].as_py())
    assert type(refusal) is CommitError and "could not write" in str(refusal)


def test_an_unexpected_error_in_a_writer_is_not_shipped_as_data(tmp_path):
    class Broken(PartWriter):
        def write(self, batch: pa.Table) -> WriteResult:
            raise ValueError("a bug")

    writer = Broken(PartTarget(str(tmp_path / "out"), "r", "2026-01-02", "a1"), 2)
    with pytest.raises(ValueError, match="a bug"):
        write_task(_clips("a", 1), writer)


def test_find_error_looks_inside_ray_wrappers_and_chains():
    from ray.exceptions import RayTaskError

    inner = CommitError("could not write x")
    wrapped = RayTaskError("write_task", "Traceback ...", inner)
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
