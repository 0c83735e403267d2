"""Clip planning: window bounds in seconds, short tails, short videos, whole mode."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.clips.sampling import SamplingConfig, frame_range
from pipeline.clips.windows import ClipConfig, clip_bounds, plan_clips


def _approx(bounds: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(round(s, 6), round(e, 6)) for s, e in bounds]


def test_windows_tile_the_video_when_stride_equals_length():
    bounds = clip_bounds(30.0, ClipConfig(length_s=10.0, stride_s=10.0))
    assert _approx(bounds) == [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)]


def test_overlapping_windows_when_stride_is_shorter_than_length():
    bounds = clip_bounds(10.0, ClipConfig(length_s=4.0, stride_s=2.0, min_length_s=1.0))
    # the window starting at 8 s is cut at the end (2 s >= min 1 s) and is the last one
    assert _approx(bounds) == [(0.0, 4.0), (2.0, 6.0), (4.0, 8.0), (6.0, 10.0)]


def test_gaps_between_windows_when_stride_is_longer_than_length():
    bounds = clip_bounds(
        10.0, ClipConfig(length_s=2.0, stride_s=3.0, min_length_s=1.0, allow_gaps=True)
    )
    assert _approx(bounds) == [(0.0, 2.0), (3.0, 5.0), (6.0, 8.0), (9.0, 10.0)]


def test_short_tail_is_dropped_below_min_length():
    cfg = ClipConfig(length_s=4.0, stride_s=4.0, min_length_s=2.0)
    assert _approx(clip_bounds(9.5, cfg)) == [(0.0, 4.0), (4.0, 8.0)]  # tail 1.5 s < 2 s
    assert _approx(clip_bounds(10.0, cfg)) == [(0.0, 4.0), (4.0, 8.0), (8.0, 10.0)]  # tail 2 s


def test_video_shorter_than_one_clip_still_gets_one_clip_covering_it():
    cfg = ClipConfig(length_s=10.0, stride_s=10.0, min_length_s=5.0)
    assert _approx(clip_bounds(0.5, cfg)) == [(0.0, 0.5)]
    assert _approx(clip_bounds(7.0, cfg)) == [(0.0, 7.0)]


def test_whole_mode_is_one_clip_of_the_whole_video():
    assert clip_bounds(123.4, ClipConfig(mode="whole")) == [(0.0, 123.4)]


def test_empty_video_has_no_clips():
    assert clip_bounds(0.0, ClipConfig()) == []
    assert plan_clips(0, 24.0, ClipConfig(), SamplingConfig(num_frames=4)) == []


@pytest.mark.parametrize(
    ("num_frames", "fps", "clips"),
    [
        (240, 24.0, ClipConfig(length_s=2.0, stride_s=2.0)),
        (100, 30.0, ClipConfig(length_s=1.0, stride_s=0.5, min_length_s=0.5)),
        (301, 29.97, ClipConfig(length_s=3.0, stride_s=4.0, min_length_s=1.0, allow_gaps=True)),
        (48, 24.0, ClipConfig(length_s=1.0, stride_s=1.0)),
        (7, 24.0, ClipConfig(length_s=10.0, stride_s=10.0)),  # shorter than one clip
        (90, 25.0, ClipConfig(mode="whole")),
    ],
)
@pytest.mark.parametrize("num_sampled", [1, 4, 16])
def test_frame_indices_lie_inside_each_clip(num_frames, fps, clips, num_sampled):
    plans = plan_clips(num_frames, fps, clips, SamplingConfig(num_frames=num_sampled))
    assert plans, "every non-empty video has at least one clip"
    assert [p.clip_index for p in plans] == list(range(len(plans)))
    for plan in plans:
        first, end = frame_range(num_frames, fps, plan.start_s, plan.end_s)
        idx = plan.frame_indices
        assert idx.dtype == np.int32 and len(idx) == num_sampled
        assert (idx >= first).all() and (idx < end).all()
        assert (idx >= 0).all() and (idx < num_frames).all()
        # their times are inside [start, end) of the clip
        times = plan.frame_times_s
        assert times.dtype == np.float32
        np.testing.assert_allclose(times, idx / fps, rtol=1e-6)
        assert (times >= plan.start_s - 1e-4).all() and (times < plan.end_s + 1e-4).all()
        assert np.all(np.diff(idx) >= 0)


def test_exact_bounds_in_seconds_for_a_48_frame_24fps_video():
    plans = plan_clips(
        48, 24.0, ClipConfig(length_s=1.0, stride_s=1.0), SamplingConfig(num_frames=4)
    )
    assert [(p.start_s, p.end_s) for p in plans] == [(0.0, 1.0), (1.0, 2.0)]
    # centre of 4 segments of frames [0, 24) and [24, 48)
    assert plans[0].frame_indices.tolist() == [3, 9, 15, 21]
    assert plans[1].frame_indices.tolist() == [27, 33, 39, 45]


def test_clip_bounds_are_rounded_to_microseconds():
    clips = ClipConfig(length_s=1.0, stride_s=1.0, min_length_s=0.3)
    plans = plan_clips(100, 30.0, clips, SamplingConfig(num_frames=2))
    assert [(p.start_s, p.end_s) for p in plans] == [(0, 1), (1, 2), (2, 3), (3.0, 3.333333)]
    assert plans[-1].frame_indices.tolist() == [92, 97]  # frames [90, 100)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"mode": "scenes"}, "clips.mode"),
        ({"length_s": 0}, "clips.length_s"),
        ({"stride_s": -1}, "clips.stride_s"),
        ({"min_length_s": -0.5}, "clips.min_length_s"),
        ({"length_s": 2.0, "min_length_s": 3.0}, "clips.min_length_s"),
    ],
)
def test_bad_clip_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ClipConfig(**kwargs)
