"""Decode as a `RowStage`: a planned video in, its clip rows out as they are decoded.

A thin face over `decode_video_rows`, which already keeps a video's failures inside the video
(an error row, never an exception), so a decode task is retried only when its worker is lost.
"""

from __future__ import annotations

from collections.abc import Iterator

from pipeline.core.records import VideoRef
from pipeline.core.stage import Resources, Row, RowStage
from pipeline.decode.video_rows import DecodeSettings, decode_video_rows


class DecodeStage(RowStage):
    """Decode one video (a row of `VideoRef` fields) into its clip rows, or its error row."""

    def __init__(self, settings: DecodeSettings, cpus: float = 1.0) -> None:
        self.settings = settings
        self.resources = Resources(cpus=cpus)
        self.retries = settings.limits.max_retries

    def process(self, item: Row) -> Iterator[Row]:
        yield from decode_video_rows(VideoRef.from_row(item), self.settings)
