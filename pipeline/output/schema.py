"""The `clips` table: one row per clip (or per failed video), the contract between the
pipeline's stages, the Parquet files and every reader.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.core.vectors import EMBED_DIM, FOOTAGE_DIM

TAG_SCORE = pa.struct([("tag", pa.string()), ("score", pa.float32())])


CLIPS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("video_uri", pa.string()),
        ("video_id", pa.string()),
        ("clip_id", pa.string()),
        ("clip_index", pa.int32()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("frame_indices", pa.list_(pa.int32())),
        ("frame_times_s", pa.list_(pa.float32())),
        ("video_duration_s", pa.float64()),
        ("video_fps", pa.float32()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("caption", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("tag_scores", pa.list_(TAG_SCORE)),
        ("thumbnail", pa.binary()),
        ("model_id", pa.string()),
        ("fingerprint", pa.string()),
        ("prompt_id", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("decode_s", pa.float32()),
        ("annotate_s", pa.float32()),
        ("generated_tokens", pa.int32()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("embedding", pa.list_(pa.float16(), EMBED_DIM)),
        ("embedding_key", pa.string()),
        ("footage", pa.list_(pa.float16(), FOOTAGE_DIM)),
    ]
)
"""`embedding` (the model's pooled features), `embedding_key` (`<method>@<model key>`: which
embeddings compare) and `footage` (the frames' colour layout) are null on rows the model did
not annotate, and absent from outputs written before they existed: `OPTIONAL_COLUMNS`."""


COLUMNS = tuple(CLIPS_SCHEMA.names)


OPTIONAL_COLUMNS = ("embedding", "embedding_key", "footage")
"""Columns older outputs lack: every reader fills them with nulls (`conform`)."""


def conform(table: pa.Table, columns: Sequence[str] | None = None) -> pa.Table:
    """`table` (a committed file's columns) as `columns` (default: the whole schema) in the
    schema's types, with the `OPTIONAL_COLUMNS` an older file lacks as nulls."""
    names = list(columns) if columns else CLIPS_SCHEMA.names
    for name in names:
        if name not in table.column_names and name in OPTIONAL_COLUMNS:
            field = CLIPS_SCHEMA.field(name)
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    if not columns:
        return table.select(names).cast(CLIPS_SCHEMA)
    return table.select(names)


def _plain(value: Any, kind: pa.DataType) -> Any:
    """numpy scalars/arrays -> Python values Arrow converts without guessing.

    Ray's numpy batches turn missing strings/bytes into NaN; those are nulls here.
    """
    if (
        isinstance(value, float | np.floating)
        and math.isnan(value)
        and not pa.types.is_floating(kind)
    ):
        return None
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def rows_to_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Rows (dicts holding at least the schema's columns) -> a table with exactly the schema."""
    columns = {f.name: [_plain(row.get(f.name), f.type) for row in rows] for f in CLIPS_SCHEMA}
    return pa.Table.from_pydict(columns, schema=CLIPS_SCHEMA)
