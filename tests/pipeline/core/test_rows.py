"""The one builder of `clips` rows: what a failed video, an annotated clip, a clip the model
failed on and a lost video each contribute, column by column, worked out by hand."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from pipeline.core.records import VideoRef
from pipeline.core.rows import Annotation, RowIdentity, error_row, output_row
from pipeline.output.schema import CLIPS_SCHEMA, rows_to_table

REF = VideoRef(uri="/data/v.mp4", size=1234, version="99")
IDENTITY = RowIdentity(run_id="r1", fingerprint="W:3", model_id="tiny@abc", prompt_id="p1")


def _decoded_clip() -> dict:
    return {
        "video_uri": "/data/v.mp4", "video_id": "vid", "video_version": "99",
        "video_size": 1234, "clip_index": 3, "start_s": 6.0, "end_s": 8.0,
        "frame_indices": np.array([1, 2], np.int32),
        "frame_times_s": np.array([0.5, 1.0], np.float32),
        "video_duration_s": 10.0, "video_fps": 2.0, "width": 64, "height": 48,
        "frames": np.zeros((2, 8, 8, 3), np.uint8), "thumbnail": b"jpeg",
        "status": "ok", "error": None, "decode_s": 0.25,
    }  # fmt: skip


def test_a_video_that_cannot_be_read_is_one_row_of_its_own():
    row = error_row(REF, "x" * 600, decode_s=1.5, frame_size=8)
    assert row["video_uri"] == "/data/v.mp4"
    assert row["video_id"] == REF.video_id
    assert (row["video_version"], row["video_size"]) == ("99", 1234)
    assert (row["clip_index"], row["start_s"], row["end_s"]) == (-1, 0.0, 0.0)
    assert (row["status"], row["error"], row["decode_s"]) == ("decode_error", "x" * 500, 1.5)
    assert row["frames"].shape == (0, 8, 8, 3) and row["frames"].dtype == np.uint8
    assert row["thumbnail"] is None and len(row["frame_indices"]) == 0


def test_an_annotated_clip():
    caption = Annotation("a dog", ["dog"], [{"tag": "dog", "score": 0.9}], generated_tokens=7)
    row = output_row(_decoded_clip(), IDENTITY, caption, annotate_s=0.5)
    assert "frames" not in row
    assert (row["run_id"], row["clip_id"], row["fingerprint"]) == ("r1", "vid:3", "W:3")
    assert (row["model_id"], row["prompt_id"]) == ("tiny@abc", "p1")
    assert (row["status"], row["error"], row["caption"]) == ("ok", None, "a dog")
    assert (row["tags"], row["tag_scores"]) == (["dog"], [{"tag": "dog", "score": 0.9}])
    assert (row["generated_tokens"], row["annotate_s"], row["decode_s"]) == (7, 0.5, 0.25)
    assert (row["start_s"], row["end_s"], row["thumbnail"]) == (6.0, 8.0, b"jpeg")
    assert isinstance(row["created_at"], datetime) and row["created_at"].tzinfo is not None


def test_a_clip_the_model_failed_on():
    row = output_row(_decoded_clip(), IDENTITY, "RuntimeError: out of memory", annotate_s=0.5)
    assert (row["status"], row["error"]) == ("model_error", "RuntimeError: out of memory")
    assert (row["caption"], row["tags"], row["tag_scores"]) == (None, [], [])
    assert (row["generated_tokens"], row["annotate_s"]) == (0, 0.5)
    assert row["thumbnail"] == b"jpeg"  # what decode found stays


def test_a_row_the_model_never_saw_keeps_its_error():
    """A decode error passed through, or a lost video's row made on the driver: no model, no
    annotation time, the decode error as it was."""
    lost = RowIdentity(run_id="r1", fingerprint="W:-1")
    row = output_row(error_row(REF, "no output produced"), lost, None, annotate_s=9.0)
    assert (row["status"], row["error"]) == ("decode_error", "no output produced")
    assert (row["model_id"], row["prompt_id"], row["caption"]) == (None, None, None)
    assert (row["annotate_s"], row["generated_tokens"]) == (0.0, 0)
    assert row["clip_id"] == f"{REF.video_id}:-1"


def test_every_built_row_fills_every_column_of_the_schema():
    """Catches a column added to the schema but not to the builder (it would be null)."""
    annotated = output_row(_decoded_clip(), IDENTITY, Annotation("c", [], [], 1), 0.1)
    failed = output_row(error_row(REF, "bad", frame_size=8), IDENTITY)
    for row in (annotated, failed):
        assert set(CLIPS_SCHEMA.names) <= set(row)
    table = rows_to_table([annotated, failed])
    assert table.column("status").to_pylist() == ["ok", "decode_error"]
    assert table.column("clip_id").to_pylist() == ["vid:3", f"{REF.video_id}:-1"]
