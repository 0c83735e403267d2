"""Shot-based clips: PySceneDetect's content detector on a real H.264 file with known cuts."""

from __future__ import annotations

import numpy as np
import pytest

# No importorskip: scenedetect is in the `test` and `dev` extras, and a missing detector must
# fail the run, not quietly skip every shot test.
import scenedetect  # noqa: F401

from model.processing import FrameProcessor
from model.toy.video_io import write_mp4
from model.toy.world import make_clips, render_clip
from pipeline.clips.sampling import SamplingConfig
from pipeline.clips.windows import ClipConfig, shot_bounds
from pipeline.core.records import VideoRef
from pipeline.core.storage import StorageOptions
from pipeline.decode.video_rows import DecodeSettings, decode_video


@pytest.fixture()
def three_shots(tmp_path):
    """Three toy scenes of 48, 72 and 30 frames at 24 fps: cuts at 2.0 s and 5.0 s."""
    scenes = [
        render_clip(make_clips(seed, 1)[0].spec, n, 128) for seed, n in ((1, 48), (2, 72), (3, 30))
    ]
    path = tmp_path / "shots.mp4"
    write_mp4(np.concatenate(scenes), path, fps=24)
    return path


def test_shot_clips_follow_the_cuts(three_shots):
    settings = DecodeSettings(
        clips=ClipConfig(mode="shots", min_length_s=0.5),
        sampling=SamplingConfig(num_frames=4),
        processor=FrameProcessor(size=56),
        storage=StorageOptions(),
    )
    ref = VideoRef(uri=str(three_shots), size=three_shots.stat().st_size, version="1")
    rows = decode_video(ref, settings)
    assert [(r["start_s"], r["end_s"]) for r in rows] == [(0.0, 2.0), (2.0, 5.0), (5.0, 6.25)]
    for row in rows:
        times = row["frame_times_s"]
        assert np.all((times >= row["start_s"]) & (times < row["end_s"]))
        assert row["frames"].shape == (4, 56, 56, 3)


def test_short_shots_join_a_neighbour():
    assert shot_bounds(6.25, [0.3, 2.0, 2.5, 5.0], 1.0) == [(0.0, 2.5), (2.5, 5.0), (5.0, 6.25)]
    assert shot_bounds(0.5, [], 1.0) == [(0.0, 0.5)]
