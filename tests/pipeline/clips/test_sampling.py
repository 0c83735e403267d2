"""Frame sampling: uniform centres, fps with a cap, repeats for short clips."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.clips.sampling import (
    SamplingConfig,
    frame_range,
    sample_frame_indices,
    uniform_indices,
)


def test_uniform_takes_the_centre_of_equal_segments():
    assert uniform_indices(0, 16, 4).tolist() == [2, 6, 10, 14]
    assert uniform_indices(10, 20, 5).tolist() == [11, 13, 15, 17, 19]
    assert uniform_indices(0, 100, 1).tolist() == [50]


def test_uniform_repeats_frames_when_the_clip_is_shorter_than_n():
    idx = uniform_indices(5, 8, 8)  # 3 frames, 8 wanted
    assert len(idx) == 8 and idx.dtype == np.int32
    assert set(idx.tolist()) == {5, 6, 7}
    assert np.all(np.diff(idx) >= 0)
    assert uniform_indices(3, 4, 4).tolist() == [3, 3, 3, 3]


def test_uniform_rejects_an_empty_range():
    with pytest.raises(ValueError, match="empty frame range"):
        uniform_indices(4, 4, 2)


def test_frame_range_is_the_frames_whose_timestamps_are_in_the_clip():
    assert frame_range(48, 24.0, 0.0, 1.0) == (0, 24)
    assert frame_range(48, 24.0, 1.0, 2.0) == (24, 48)
    assert frame_range(100, 30.0, 0.5, 1.5) == (15, 45)
    assert frame_range(10, 24.0, 0.0, 10.0) == (0, 10)  # cut at the last frame
    # a clip narrower than one frame still gets the frame at its start
    assert frame_range(48, 24.0, 0.5, 0.51) == (12, 13)


def test_uniform_sampling_of_a_clip():
    cfg = SamplingConfig(mode="uniform", num_frames=4)
    assert sample_frame_indices(48, 24.0, 1.0, 2.0, cfg).tolist() == [27, 33, 39, 45]


def test_uniform_needs_a_resolved_frame_count():
    with pytest.raises(ValueError, match="num_frames is unresolved"):
        sample_frame_indices(48, 24.0, 0.0, 2.0, SamplingConfig())
    assert SamplingConfig().with_frames(16).num_frames == 16
    assert SamplingConfig(num_frames=4).with_frames(16).num_frames == 4


def test_fps_sampling_takes_duration_times_fps_frames():
    cfg = SamplingConfig(mode="fps", fps=2.0, max_frames=64)
    idx = sample_frame_indices(240, 24.0, 0.0, 10.0, cfg)
    assert len(idx) == 20
    assert (idx >= 0).all() and (idx < 240).all()
    # one frame per half second: the centres of 12-frame segments
    assert idx.tolist() == [6 + 12 * k for k in range(20)]


def test_fps_sampling_is_capped_at_max_frames():
    cfg = SamplingConfig(mode="fps", fps=10.0, max_frames=8)
    idx = sample_frame_indices(2400, 24.0, 0.0, 100.0, cfg)
    assert len(idx) == 8
    assert idx.tolist() == [150 + 300 * k for k in range(8)]  # centres of 8 equal shares


def test_fps_sampling_takes_at_least_one_frame():
    cfg = SamplingConfig(mode="fps", fps=0.1)
    assert len(sample_frame_indices(24, 24.0, 0.0, 1.0, cfg)) == 1


def test_fps_sampling_repeats_frames_of_a_short_low_fps_clip():
    cfg = SamplingConfig(mode="fps", fps=8.0, max_frames=64)
    idx = sample_frame_indices(4, 2.0, 0.0, 2.0, cfg)  # 16 wanted from 4 frames
    assert len(idx) == 16 and set(idx.tolist()) == {0, 1, 2, 3}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"mode": "random"}, "sampling.mode"),
        ({"num_frames": 0}, "sampling.num_frames"),
        ({"fps": 0}, "sampling.fps"),
        ({"fps": -2.0}, "sampling.fps"),
        ({"max_frames": 0}, "sampling.max_frames"),
    ],
)
def test_bad_sampling_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SamplingConfig(**kwargs)
