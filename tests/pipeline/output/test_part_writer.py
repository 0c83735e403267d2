"""Writing a part: a Parquet part per batch, and the write result the chunk tracker works
from instead of its rows."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.errors import CommitError
from pipeline.output.part_writer import PartTarget, PartWriter, write_part
from pipeline.output.records import VideoProgress
from tests.pipeline.output.parts import DAY, clip_rows


def _target(tmp_path) -> PartTarget:
    return PartTarget(str(tmp_path / "out"), "r", DAY.isoformat(), "a1")


def _set(table: pa.Table, name: str, values: list) -> pa.Table:
    index = table.schema.get_field_index(name)
    return table.set_column(index, name, pa.array(values, table.schema.field(name).type))


def test_a_write_result_carries_each_videos_duration_and_ok_spans(tmp_path):
    """Video a: clips 0-2 s and 2-4 s ok, 3-5 s failed, 6 s long -> ok spans [0, 4]; video b:
    one ok clip 0-1 s of a 1 s video."""
    rows = clip_rows({"a": 3, "b": 1}, "r")
    rows = _set(rows, "start_s", [0.0, 2.0, 3.0, 0.0])
    rows = _set(rows, "end_s", [2.0, 4.0, 5.0, 1.0])
    rows = _set(rows, "video_duration_s", [6.0, 6.0, 6.0, 1.0])
    rows = _set(rows, "status", ["ok", "ok", "model_error", "ok"])
    result = write_part(rows, _target(tmp_path))
    assert result.videos == (
        VideoProgress("a", 3, 3, 6.0, ((0.0, 4.0),)),
        VideoProgress("b", 1, 1, 1.0, ((0.0, 1.0),)),
    )
    assert (result.rows, result.counts) == (4, {"ok": 3, "model_error": 1})


def test_the_part_holds_the_rows_without_the_writers_own_column(tmp_path):
    rows = clip_rows({"a": 2}, "r")
    result = PartWriter(_target(tmp_path), rows_per_file=2).write(rows)
    assert result.file.startswith(str(tmp_path / "out" / "clips" / "run_date=2026-01-02"))
    assert "/run_id=r/part-a1-" in result.file
    written = pq.read_table(result.file)
    assert written["clip_id"].to_pylist() == ["id-a:0", "id-a:1"]
    assert "_video_rows" not in written.column_names


def test_a_video_without_its_last_row_here_has_no_total_yet(tmp_path):
    """Decode marks a video's total on its last row only (0 on the others)."""
    rows = _set(clip_rows({"a": 2}, "r"), "_video_rows", [0, 0])
    (video,) = write_part(rows, _target(tmp_path)).videos
    assert (video.rows, video.total) == (2, 0)


def test_a_write_that_storage_refuses_raises_commit_error(tmp_path):
    target = _target(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "clips").write_text("a file where the folder must go")
    writer = PartWriter(target, rows_per_file=2)
    with pytest.raises(CommitError, match=r"could not write .*/run_id=r/part-a1-"):
        writer.write(clip_rows({"a": 1}, "r"))


def test_a_part_closes_at_the_smaller_row_limit_or_the_chunks_seconds(tmp_path):
    """A chunk needs a row per video: a part of more than `chunk_videos` rows would hold back
    more than a chunk; one open longer than `chunk_seconds` would hold it back too long."""
    assert PartWriter(_target(tmp_path), 10_000, 500, 300.0).batch_size == 500
    assert PartWriter(_target(tmp_path), 3, 500, 300.0).batch_size == 3
    assert PartWriter(_target(tmp_path), 10_000, 500, 300.0).part_seconds == 300.0
    assert PartWriter(_target(tmp_path), 3).part_seconds == float("inf")
