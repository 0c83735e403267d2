"""Decode as a stage: a planned video's row in, its clip rows out; hand-made videos, no Ray."""

from __future__ import annotations

import numpy as np

from model.processing import FrameProcessor
from pipeline.clips.sampling import SamplingConfig
from pipeline.clips.windows import ClipConfig
from pipeline.core.records import VideoRef
from pipeline.core.stage import Resources
from pipeline.core.status import STATUS_DECODE_ERROR, STATUS_OK
from pipeline.core.storage import StorageOptions
from pipeline.decode.isolation import DecodeLimits
from pipeline.decode.stage import DecodeStage
from pipeline.decode.video_rows import DecodeSettings
from tests.helpers import encode_frames


def _settings() -> DecodeSettings:
    return DecodeSettings(
        clips=ClipConfig(length_s=1.0, stride_s=1.0, min_length_s=0.5),
        sampling=SamplingConfig(num_frames=4),
        processor=FrameProcessor(size=32),
        storage=StorageOptions(),
        limits=DecodeLimits(isolate=False, max_retries=5),
    )


def test_a_two_second_video_becomes_two_clip_rows(tmp_path):
    """48 frames at 24 fps: clips 0-1 s and 1-2 s, each 4 frames of 32x32."""
    path = tmp_path / "v.mp4"
    path.write_bytes(encode_frames(np.zeros((48, 64, 64, 3), np.uint8), 24))
    ref = VideoRef(str(path), path.stat().st_size, "v1")
    stage = DecodeStage(_settings(), cpus=0.5).ready()
    rows = list(stage.process(ref.to_row()))
    assert [(r["clip_index"], r["start_s"], r["end_s"], r["status"]) for r in rows] == [
        (0, 0.0, 1.0, STATUS_OK),
        (1, 1.0, 2.0, STATUS_OK),
    ]
    assert all(np.asarray(r["frames"]).shape == (4, 32, 32, 3) for r in rows)
    assert (stage.resources, stage.retries) == (Resources(cpus=0.5), 5)


def test_a_video_that_is_not_there_is_one_error_row(tmp_path):
    ref = VideoRef(str(tmp_path / "gone.mp4"), 10, "v1")
    (row,) = DecodeStage(_settings()).ready().process(ref.to_row())
    assert (row["video_uri"], row["clip_index"], row["status"]) == (
        ref.uri, -1, STATUS_DECODE_ERROR,
    )  # fmt: skip
