"""The `clips` table: exact schema, numpy values, NaN placeholders from Ray as nulls."""

from __future__ import annotations

import io
import math
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.status import STATUS_DECODE_ERROR, STATUS_OK
from pipeline.output.schema import CLIPS_SCHEMA, COLUMNS, rows_to_table

DESIGN_COLUMNS = [
    ("run_id", pa.string()), ("video_uri", pa.string()), ("video_id", pa.string()),
    ("clip_id", pa.string()), ("clip_index", pa.int32()), ("start_s", pa.float64()),
    ("end_s", pa.float64()), ("frame_indices", pa.list_(pa.int32())),
    ("frame_times_s", pa.list_(pa.float32())), ("video_duration_s", pa.float64()),
    ("video_fps", pa.float32()), ("width", pa.int32()), ("height", pa.int32()),
    ("caption", pa.string()), ("tags", pa.list_(pa.string())),
    ("tag_scores", pa.list_(pa.struct([("tag", pa.string()), ("score", pa.float32())]))),
    ("thumbnail", pa.binary()), ("model_id", pa.string()), ("fingerprint", pa.string()),
    ("prompt_id", pa.string()), ("status", pa.string()), ("error", pa.string()),
    ("decode_s", pa.float32()), ("annotate_s", pa.float32()),
    ("generated_tokens", pa.int32()), ("created_at", pa.timestamp("us", tz="UTC")),
    ("embedding", pa.list_(pa.float16(), 128)), ("embedding_key", pa.string()),
    ("footage", pa.list_(pa.float16(), 192)),
]  # fmt: skip


def _ok_row(**extra):
    """A row as the annotate actor sees it from Ray: numpy scalars and arrays."""
    row = {
        "run_id": "r1",
        "video_uri": "s3://in/a.mp4",
        "video_id": "abc",
        "clip_id": "abc:0",
        "clip_index": np.int64(0),
        "start_s": np.float64(0.0),
        "end_s": np.float64(1.0),
        "frame_indices": np.array([3, 9, 15, 21], dtype=np.int64),
        "frame_times_s": np.array([0.125, 0.375, 0.625, 0.875], dtype=np.float64),
        "video_duration_s": 2.0,
        "video_fps": np.float32(24.0),
        "width": np.int64(128),
        "height": np.int64(96),
        "caption": "a red circle moves left",
        "tags": ["red", "circle"],
        "tag_scores": [{"tag": "red", "score": 0.9}],
        "thumbnail": b"\xff\xd8jpeg",
        "model_id": "m-1234",
        "fingerprint": "fp",
        "prompt_id": "p",
        "status": STATUS_OK,
        "error": None,
        "decode_s": np.float64(0.01),
        "annotate_s": 0.2,
        "generated_tokens": np.int64(7),
        "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        "video_size": 1234,  # extra keys are not columns
        "video_version": "etag",
    }
    row.update(extra)
    return row


def test_schema_is_the_documented_table():
    assert [(f.name, f.type) for f in CLIPS_SCHEMA] == DESIGN_COLUMNS
    assert list(COLUMNS) == [name for name, _ in DESIGN_COLUMNS]


def test_rows_to_table_keeps_exactly_the_schema():
    table = rows_to_table([_ok_row(), _ok_row(clip_index=np.int32(1), clip_id="abc:1")])
    assert table.schema == CLIPS_SCHEMA
    assert table.num_rows == 2
    row = table.to_pylist()[0]
    assert row["frame_indices"] == [3, 9, 15, 21]
    assert row["frame_times_s"] == pytest.approx([0.125, 0.375, 0.625, 0.875])
    assert row["tag_scores"] == [{"tag": "red", "score": pytest.approx(0.9)}]
    assert row["created_at"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert "video_size" not in table.column_names
    # and it survives a Parquet round trip unchanged
    buf = io.BytesIO()
    pq.write_table(table, buf)
    assert pq.read_table(io.BytesIO(buf.getvalue())).schema == CLIPS_SCHEMA


def test_empty_rows_give_an_empty_table_of_the_schema():
    table = rows_to_table([])
    assert table.schema == CLIPS_SCHEMA and table.num_rows == 0


def test_nan_placeholders_in_non_float_columns_become_null():
    """Ray's numpy batches turn missing strings/bytes into NaN; those are nulls."""
    row = _ok_row(
        caption=np.float64("nan"),
        error=float("nan"),
        thumbnail=np.nan,
        model_id=np.float32("nan"),
        status=STATUS_DECODE_ERROR,
    )
    out = rows_to_table([row]).to_pylist()[0]
    assert out["caption"] is None
    assert out["error"] is None
    assert out["thumbnail"] is None
    assert out["model_id"] is None


def test_nan_in_float_columns_stays_a_number():
    out = rows_to_table([_ok_row(decode_s=float("nan"), start_s=np.nan)]).to_pylist()[0]
    assert math.isnan(out["decode_s"]) and math.isnan(out["start_s"])


def test_missing_columns_are_null():
    row = {"run_id": "r", "video_uri": "u", "status": STATUS_DECODE_ERROR, "error": "boom"}
    table = rows_to_table([row])
    assert table.schema == CLIPS_SCHEMA
    out = table.to_pylist()[0]
    assert out["error"] == "boom" and out["caption"] is None and out["frame_indices"] is None


def test_a_value_of_the_wrong_kind_is_an_error_not_a_silent_cast():
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        rows_to_table([_ok_row(clip_index="zero")])


def test_numpy_datetimes_and_bools_from_ray_batches_convert():
    """Ray's numpy batches carry timestamps as `np.datetime64` and flags as `np.bool_`, which
    Arrow refuses as they are. Catches dropping the conversion to Python values."""
    stamp = np.datetime64("2026-01-02T03:04:05.000006", "us")
    out = rows_to_table([_ok_row(created_at=stamp, caption=np.str_("a cat"))]).to_pylist()[0]
    assert out["created_at"] == datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    assert out["caption"] == "a cat" and type(out["caption"]) is str


def test_float32_scores_keep_their_value():
    """A score arriving as float32 lands as the same float32 (0.1f, not 0.1 rounded twice)."""
    out = rows_to_table([_ok_row(tag_scores=[{"tag": "red", "score": np.float32(0.1)}])])
    score = out.column("tag_scores").to_pylist()[0][0]["score"]
    assert np.float32(score) == np.float32(0.1)
