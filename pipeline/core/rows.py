"""Rows of the `clips` table, filled in one place.

A row is made in two steps, by two stages in two processes: decode makes the clip's row (the
video's identity, the clip's times and frames, `ok` or why it failed) and annotation turns it
into the output row (who made it, and the caption or why the model failed). The driver makes
output rows too, for videos whose rows were lost. All of them come from here, so the columns a
failed video or a lost one gets cannot drift from an annotated clip's. `pipeline.output.schema`
turns these dicts into Arrow with the exact schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from pipeline.core.records import VideoRef
from pipeline.core.status import STATUS_DECODE_ERROR, STATUS_MODEL_ERROR

WHOLE_VIDEO = -1
"""`clip_index` of a row that stands for the whole video: it failed before any clip."""


ERROR_LIMIT = 500
"""Characters of a decode error kept in the row."""


@dataclass(frozen=True)
class Annotation:
    """What the model said about one clip."""

    caption: str
    tags: list[str]
    tag_scores: list[dict[str, Any]]
    generated_tokens: int
    embedding: np.ndarray | None = None
    """The clip's embedding (`annotate/embedding.py`), float16 `[EMBED_DIM]`."""
    footage: np.ndarray | None = None
    """The clip's footage fingerprint (`annotate/footage.py`), float16 `[FOOTAGE_DIM]`."""


@dataclass(frozen=True)
class RowIdentity:
    """Who made an output row. `model_id` and `prompt_id` are None when no model saw it."""

    run_id: str
    fingerprint: str
    model_id: str | None = None
    prompt_id: str | None = None
    embedding_key: str | None = None
    """`<embedding method>@<model key>` for the rows this identity embeds."""


def video_columns(ref: VideoRef) -> dict[str, Any]:
    """The columns that say which video (as listed) a row belongs to."""
    return {
        "video_uri": ref.uri,
        "video_id": ref.video_id,
        "video_version": ref.version,
        "video_size": ref.size,
    }


def error_row(
    ref: VideoRef, reason: str, decode_s: float = 0.0, frame_size: int = 0
) -> dict[str, Any]:
    """The decoded row a video that cannot be (fully) read contributes: it is never dropped.

    Its `frames` is an empty `[0, S, S, 3]` array so the column stays one tensor type.
    """
    return {
        **video_columns(ref),
        "clip_index": WHOLE_VIDEO,
        "start_s": 0.0,
        "end_s": 0.0,
        "frame_indices": np.zeros(0, np.int32),
        "frame_times_s": np.zeros(0, np.float32),
        "video_duration_s": 0.0,
        "video_fps": 0.0,
        "width": 0,
        "height": 0,
        "frames": np.zeros((0, frame_size, frame_size, 3), np.uint8),
        "thumbnail": None,
        "status": STATUS_DECODE_ERROR,
        "error": reason[:ERROR_LIMIT],
        "decode_s": decode_s,
    }


def output_row(
    decoded: Mapping[str, Any],
    identity: RowIdentity,
    outcome: Annotation | str | None = None,
    annotate_s: float = 0.0,
) -> dict[str, Any]:
    """The output row of one decoded row (its frames dropped).

    `outcome`: the model's `Annotation`; or the text of the model's error (the row becomes a
    `model_error`); or None for a row the model never saw (a decode error, a lost video),
    which keeps its status and error. `annotate_s` counts only when the model ran. Only an
    annotated row has an embedding, its key and a footage fingerprint; the rest hold nulls.
    """
    row = {key: value for key, value in decoded.items() if key != "frames"}
    row.update(
        run_id=identity.run_id,
        clip_id=f"{decoded['video_id']}:{int(decoded['clip_index'])}",
        model_id=identity.model_id,
        prompt_id=identity.prompt_id,
        fingerprint=identity.fingerprint,
        caption=None, tags=[], tag_scores=[], generated_tokens=0, annotate_s=0.0,
        created_at=datetime.now(timezone.utc), embedding=None, embedding_key=None, footage=None,
    )  # fmt: skip
    if isinstance(outcome, str):
        row.update(status=STATUS_MODEL_ERROR, error=outcome, annotate_s=annotate_s)
    elif outcome is not None:
        row.update(
            caption=outcome.caption, tags=outcome.tags, tag_scores=outcome.tag_scores,
            generated_tokens=outcome.generated_tokens, annotate_s=annotate_s,
            embedding=outcome.embedding, footage=outcome.footage,
            embedding_key=identity.embedding_key if outcome.embedding is not None else None,
        )  # fmt: skip
    return row
