"""Clip planning and frame sampling against values worked out by hand (comments show how).

Nothing here is computed by the code under test: every window, frame index and time is a
literal. Frame rates and lengths are picked so that each sampling target lands on a frame
exactly or clearly nearer one neighbour (no float ties), so the values hold for any correct
"segment centre, nearest real frame" sampler.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from pipeline.clips.sampling import (
    SamplingConfig,
    frame_range,
    frame_range_at_times,
    nearest_frames,
    sample_frame_indices,
    target_times,
    uniform_indices,
)
from pipeline.clips.windows import (
    ClipConfig,
    clip_bounds,
    plan_clips,
    plan_clips_at_times,
    shot_bounds,
)

FOUR = SamplingConfig(num_frames=4)


def _plan(plans) -> list[tuple[int, float, float, list[int]]]:
    return [(p.clip_index, p.start_s, p.end_s, p.frame_indices.tolist()) for p in plans]


def test_back_to_back_windows_with_a_short_tail() -> None:
    """240 frames at 24 fps = 10 s; 4 s windows; tail 8-10 s (2 s >= min 1 s) kept.

    Targets are segment centres: [0,4) -> 0.5 1.5 2.5 3.5 s -> frames x24 = 12 36 60 84;
    [4,8) -> 4.5.. -> 108 132 156 180; [8,10) segments of 0.5 s -> 8.25 8.75 9.25 9.75 s ->
    198 210 222 234.
    """
    plans = plan_clips(240, 24.0, ClipConfig(mode="window", length_s=4.0, min_length_s=1.0), FOUR)
    assert _plan(plans) == [
        (0, 0.0, 4.0, [12, 36, 60, 84]),
        (1, 4.0, 8.0, [108, 132, 156, 180]),
        (2, 8.0, 10.0, [198, 210, 222, 234]),
    ]
    assert plans[2].frame_times_s.tolist() == pytest.approx([8.25, 8.75, 9.25, 9.75])
    assert plans[0].frame_indices.dtype == np.int32
    assert plans[0].frame_times_s.dtype == np.float32


def test_a_tail_shorter_than_min_length_is_dropped() -> None:
    """Same 10 s video, min 2.5 s: the 2 s tail goes, the two full windows stay."""
    config = ClipConfig(mode="window", length_s=4.0, min_length_s=2.5)
    assert clip_bounds(10.0, config) == [(0.0, 4.0), (4.0, 8.0)]


def test_overlapping_windows() -> None:
    """Stride 2 s, length 4 s over 10 s: starts 0 2 4 6; the one from 6 ends at the video's
    end, so no window starts at 8."""
    config = ClipConfig(mode="window", length_s=4.0, stride_s=2.0)
    assert clip_bounds(10.0, config) == [(0.0, 4.0), (2.0, 6.0), (4.0, 8.0), (6.0, 10.0)]


def test_stride_follows_length_unless_set() -> None:
    """Only length given: back-to-back (a stride left at the default 10 s would skip 6 s of
    every 10 with 4 s windows)."""
    assert ClipConfig(mode="window", length_s=4.0).step_s == 4.0
    assert clip_bounds(12.0, ClipConfig(mode="window", length_s=4.0)) == [
        (0.0, 4.0),
        (4.0, 8.0),
        (8.0, 12.0),
    ]


def test_gaps_only_when_asked_for() -> None:
    with pytest.raises(ValueError, match="stride_s"):
        ClipConfig(mode="window", length_s=4.0, stride_s=5.0)
    gappy = ClipConfig(mode="window", length_s=4.0, stride_s=5.0, allow_gaps=True)
    # starts 0, 5; the next (10) is past the 9.5 s video
    assert clip_bounds(9.5, gappy) == [(0.0, 4.0), (5.0, 9.0)]


def test_video_shorter_than_min_length_still_gets_one_clip() -> None:
    """16 frames at 24 fps = 0.6667 s < min 1 s: one clip over all of it. Segments of 1/6 s,
    centres 1/12, 3/12, 5/12, 7/12 s -> x24 = frames 2 6 10 14."""
    plans = plan_clips(16, 24.0, ClipConfig(mode="window", length_s=4.0, min_length_s=1.0), FOUR)
    assert _plan(plans) == [(0, 0.0, 0.666667, [2, 6, 10, 14])]


def test_whole_mode_is_one_clip_over_the_video() -> None:
    """96 frames at 24 fps (4 s), 4 frames: same centres as the first window above."""
    plans = plan_clips(96, 24.0, ClipConfig(mode="whole"), FOUR)
    assert _plan(plans) == [(0, 0.0, 4.0, [12, 36, 60, 84])]


def test_fps_sampling_and_its_cap() -> None:
    """fps 2 over [0,4) s: round(4 x 2) = 8 targets 0.25 0.75 .. 3.75 s -> x24 = 6 18 .. 90.
    With max_frames 3: 3 segments of 4/3 s, centres 2/3, 2, 10/3 s -> x24 = 16 48 80."""
    fps2 = SamplingConfig(mode="fps", fps=2.0, max_frames=64)
    assert sample_frame_indices(96, 24.0, 0.0, 4.0, fps2).tolist() == [
        6, 18, 30, 42, 54, 66, 78, 90,
    ]  # fmt: skip
    capped = SamplingConfig(mode="fps", fps=2.0, max_frames=3)
    assert sample_frame_indices(96, 24.0, 0.0, 4.0, capped).tolist() == [16, 48, 80]


def test_fps_sampling_of_a_clip_shorter_than_one_period_takes_one_frame() -> None:
    """fps 1 over a 0.4 s clip: round(0.4) = 0 -> at least 1 target, its centre 0.2 s ->
    frame 0.2 x 30 = 6."""
    one = SamplingConfig(mode="fps", fps=1.0, max_frames=8)
    assert sample_frame_indices(30, 30.0, 0.0, 0.4, one).tolist() == [6]


def test_more_frames_asked_than_the_clip_has_repeats_frames() -> None:
    """8 targets over a 4-frame clip (4 frames at 4 fps = 1 s): the frames are 0 .25 .5 .75 s
    and each target takes the nearest, so frames repeat rather than leaving the clip."""
    eight = SamplingConfig(num_frames=8)
    got = sample_frame_indices(4, 4.0, 0.0, 1.0, eight).tolist()
    # targets .0625 .1875 .3125 .4375 .5625 .6875 .8125 .9375
    # nearest  0     1     1     2     2     3     3     3
    assert got == [0, 1, 1, 2, 2, 3, 3, 3]


def test_variable_frame_rate_picks_the_nearest_real_frame() -> None:
    """Frames at 0 .1 .2 .3 1.2 2.1 3.0 3.6 s of a 4 s video, one clip, 4 frames.
    Targets 0.5 1.5 2.5 3.5 s; nearest: .3 (idx 3, .2 away vs 1.2: .7), 1.2 (idx 4, .3 vs
    2.1: .6), 2.1 (idx 5, .4 vs 3.0: .5), 3.6 (idx 7, .1 vs 3.0: .5)."""
    times = np.array([0.0, 0.1, 0.2, 0.3, 1.2, 2.1, 3.0, 3.6])
    (plan,) = plan_clips_at_times(times, 4.0, ClipConfig(mode="whole"), FOUR)
    assert plan.frame_indices.tolist() == [3, 4, 5, 7]
    assert plan.frame_times_s.tolist() == pytest.approx([0.3, 1.2, 2.1, 3.6])


def test_variable_frame_rate_windows_stay_in_real_seconds() -> None:
    """Same frames, 2 s windows: [0,2) holds frames 0-4, [2,4) frames 5-7. Window 2 targets
    2.5 3.5 (2 frames): 2.1 (idx 5) and 3.6 (idx 7); window 1 targets .5 1.5: idx 3 and 4."""
    times = np.array([0.0, 0.1, 0.2, 0.3, 1.2, 2.1, 3.0, 3.6])
    two = SamplingConfig(num_frames=2)
    plans = plan_clips_at_times(times, 4.0, ClipConfig(mode="window", length_s=2.0), two)
    assert _plan(plans) == [(0, 0.0, 2.0, [3, 4]), (1, 2.0, 4.0, [5, 7])]


def test_a_window_in_a_gap_of_the_stream_is_not_a_clip() -> None:
    """Frames at 0, 0.5, 3.5 s of 4 s, 1 s windows: [1,2) and [2,3) hold no frame of their own,
    so they are not clips (issue 18, case 6: they once got the frame still on screen)."""
    times = np.array([0.0, 0.5, 3.5])
    plans = plan_clips_at_times(times, 4.0, ClipConfig(mode="window", length_s=1.0), FOUR)
    # targets at 0.125, 0.375, 0.625, 0.875 s: nearest of the frames at 0 and 0.5 s
    assert _plan(plans) == [(0, 0.0, 1.0, [0, 1, 1, 1]), (1, 3.0, 4.0, [2, 2, 2, 2])]


def test_timestamps_claiming_a_million_seconds_give_a_clip_per_frame_at_most() -> None:
    """24 frames spread over a claimed 1,000,000 s, 10 s windows: 100,000 windows, of which 24
    hold a frame; once every window was a clip."""
    times = np.arange(24) * (1_000_000 / 24)
    plans = plan_clips_at_times(times, 1_000_000.0, ClipConfig(length_s=10.0), FOUR)
    assert len(plans) == 24
    assert [p.start_s for p in plans] == [float(np.floor(t / 10) * 10) for t in times]
    assert all(list(p.frame_indices) == [i] * 4 for i, p in enumerate(plans))


def test_shot_bounds_merge_short_shots() -> None:
    """Cuts at 2, 2.3 and 7 s of 10 s, min 1 s: the 0.3 s shot 2-2.3 joins the one before."""
    assert shot_bounds(10.0, [2.0, 2.3, 7.0], 1.0) == [(0.0, 2.3), (2.3, 7.0), (7.0, 10.0)]


def test_short_first_shot_joins_the_next() -> None:
    assert shot_bounds(10.0, [0.5, 5.0], 1.0) == [(0.0, 5.0), (5.0, 10.0)]


def test_cuts_at_or_outside_the_ends_are_ignored() -> None:
    assert shot_bounds(10.0, [-1.0, 0.0, 10.0, 12.0], 1.0) == [(0.0, 10.0)]
    assert shot_bounds(10.0, [7.0, 3.0], 1.0) == [(0.0, 3.0), (3.0, 7.0), (7.0, 10.0)]  # unsorted


def test_empty_inputs_plan_nothing() -> None:
    assert plan_clips(0, 24.0, ClipConfig(mode="whole"), FOUR) == []
    assert plan_clips(10, 0.0, ClipConfig(mode="whole"), FOUR) == []
    assert clip_bounds(0.0, ClipConfig(mode="whole")) == []


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"mode": "scenes"}, "clips.mode must be window, whole or shots, got 'scenes'"),
        ({"length_s": 0.0}, "clips.length_s must be > 0"),
        ({"length_s": -1.0}, "clips.length_s must be > 0"),
        ({"stride_s": 0.0}, "clips.stride_s must be > 0"),
        ({"min_length_s": -0.1}, "clips.min_length_s must be in [0, clips.length_s]"),
        (
            {"length_s": 4.0, "min_length_s": 4.5},
            "clips.min_length_s must be in [0, clips.length_s]",
        ),
        ({"shot_threshold": 0.0}, "clips.shot_threshold must be > 0"),
        ({"shot_threshold": -2.0}, "clips.shot_threshold must be > 0"),
        (
            {"length_s": 4.0, "stride_s": 5.0},
            "clips.stride_s 5 > clips.length_s 4 leaves 1 s of every 5 s uncaptioned; leave "
            "stride_s unset for back-to-back windows, or set clips.allow_gaps: true if gaps "
            "are meant",
        ),
    ],
)
def test_bad_clip_settings_say_which_field_and_why(kwargs, message) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        ClipConfig(**kwargs)


def test_edge_values_that_are_allowed() -> None:
    """min_length_s may equal length_s or be 0; stride may equal length (no gap)."""
    assert ClipConfig(length_s=4.0, min_length_s=4.0).min_length_s == 4.0
    assert ClipConfig(length_s=4.0, min_length_s=0.0).min_length_s == 0.0
    assert ClipConfig(length_s=4.0, stride_s=4.0).step_s == 4.0
    assert ClipConfig(shot_threshold=0.5).shot_threshold == 0.5
    assert ClipConfig(mode="shots").mode == "shots"
    # min_length_s unset: 1 s, or the whole window when windows are shorter than that
    assert ClipConfig(length_s=4.0).min_length_s == 1.0
    assert ClipConfig(length_s=0.5).min_length_s == 0.5


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"mode": "random"}, "sampling.mode must be 'uniform' or 'fps', got 'random'"),
        ({"num_frames": 0}, "sampling.num_frames must be >= 1"),
        ({"fps": 0.0}, "sampling.fps must be > 0"),
        ({"max_frames": 0}, "sampling.max_frames must be >= 1"),
    ],
)
def test_bad_sampling_settings_say_which_field_and_why(kwargs, message) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        SamplingConfig(**kwargs)


def test_sampling_edge_values_that_are_allowed() -> None:
    assert SamplingConfig(num_frames=1).num_frames == 1
    assert SamplingConfig(max_frames=1).max_frames == 1
    assert SamplingConfig().with_frames(8).num_frames == 8
    assert SamplingConfig(num_frames=16).with_frames(8).num_frames == 16


# The building blocks, by hand.


def test_uniform_indices_are_segment_centres() -> None:
    """[0,48) in 8 segments of 6 frames: centres 3 9 .. 45; [10,13) in 2: floor(10.75),
    floor(12.25) = 10 12; 5 from 3 frames: floor(.3 .9 1.5 2.1 2.7) = 0 0 1 2 2."""
    assert uniform_indices(0, 48, 8).tolist() == [3, 9, 15, 21, 27, 33, 39, 45]
    assert uniform_indices(10, 13, 2).tolist() == [10, 12]
    assert uniform_indices(0, 3, 5).tolist() == [0, 0, 1, 2, 2]
    assert uniform_indices(0, 48, 8).dtype == np.int32
    with pytest.raises(ValueError, match=r"empty frame range \[5, 5\)"):
        uniform_indices(5, 5, 2)


def test_frame_range_of_a_constant_rate_video() -> None:
    """Frames i/25 in [1.0, 2.0): 25..49 -> [25, 50); [1.01, 2.0): first ceil(25.25) = 26;
    past the end is clipped to the 60 frames; a clip narrower than a frame gets one."""
    assert frame_range(100, 25.0, 1.0, 2.0) == (25, 50)
    assert frame_range(100, 25.0, 1.01, 2.0) == (26, 50)
    assert frame_range(60, 25.0, 2.0, 3.0) == (50, 60)
    assert frame_range(100, 25.0, 1.001, 1.002) == (26, 27)


def test_frame_range_at_real_times() -> None:
    times = np.array([0.0, 0.5, 1.0, 1.5, 3.5])
    assert frame_range_at_times(times, 0.0, 1.0) == (0, 2)  # 0 and .5; 1.0 is the next clip's
    assert frame_range_at_times(times, 1.0, 4.0) == (2, 5)
    assert frame_range_at_times(times, 2.0, 3.0) == (3, 4)  # gap: 1.5 s is on screen at 2 s
    assert frame_range_at_times(times, 0.2, 0.4) == (0, 1)  # narrower than a frame: frame 0
    with pytest.raises(ValueError, match=r"^no frames$"):
        frame_range_at_times(np.array([]), 0.0, 1.0)


def test_nearest_frames_prefers_the_earlier_on_a_tie_and_stays_in_range() -> None:
    times = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    targets = np.array([0.5, 1.4, 1.6, 2.5, 9.0, -3.0])
    # .5 tie -> 0; 1.4 -> 1; 1.6 -> 2; 2.5 tie -> 2; 9 -> last in range (3); -3 -> first (1)
    assert nearest_frames(times, targets, 0, 4).tolist() == [0, 1, 2, 2, 3, 0]
    assert nearest_frames(times, np.array([-3.0, 0.5]), 1, 4).tolist() == [1, 1]


def test_target_times() -> None:
    assert target_times(2.0, 4.0, SamplingConfig(num_frames=4)).tolist() == [2.25, 2.75, 3.25, 3.75]
    fps = SamplingConfig(mode="fps", fps=1.5, max_frames=10)
    assert target_times(0.0, 2.0, fps).tolist() == pytest.approx([1 / 3, 1.0, 5 / 3])
    with pytest.raises(ValueError, match="num_frames is unresolved"):
        target_times(0.0, 1.0, SamplingConfig())
    with pytest.raises(
        ValueError, match=r"^sampling\.num_frames is unresolved; call with_frames\(\) first$"
    ):
        target_times(0.0, 1.0, SamplingConfig())


def test_fps_sampling_of_a_window_that_does_not_start_at_zero() -> None:
    """fps 2 over [2,4) s: round(2 s x 2) = 4 targets 2.25 2.75 3.25 3.75 s -> x24 =
    54 66 78 90 (a count from `end + start` would give 12)."""
    fps2 = SamplingConfig(mode="fps", fps=2.0, max_frames=64)
    assert sample_frame_indices(96, 24.0, 2.0, 4.0, fps2).tolist() == [54, 66, 78, 90]


def test_a_nearer_frame_after_the_clip_is_not_taken() -> None:
    """Frames at 0, .1, 1.0 s; clip [0,1), 2 frames: targets .25 and .75. Inside the clip the
    nearest is .1 (idx 1) for both, although 1.0 s (idx 2) is nearer to .75: it belongs to
    the next clip."""
    times = np.array([0.0, 0.1, 1.0, 2.0])
    two = SamplingConfig(num_frames=2)
    plans = plan_clips_at_times(times, 2.0, ClipConfig(mode="window", length_s=1.0), two)
    assert _plan(plans) == [(0, 0.0, 1.0, [1, 1]), (1, 1.0, 2.0, [2, 2])]


def test_shots_mode_cuts_at_the_detected_cuts() -> None:
    """Shots mode plans from the cuts given (merging the 0.3 s shot as shot_bounds does);
    240 frames at 24 fps, 2 frames per clip: (0, 2.3) targets .575 1.725 -> x24 = 13.8, 41.4
    -> 14 41; (2.3, 7) targets 3.475 5.825 -> 83.4 139.8 -> 83 140; (7, 10) 7.75 9.25 -> 186
    222."""
    config = ClipConfig(mode="shots", min_length_s=1.0)
    cuts = [2.0, 2.3, 7.0]
    assert clip_bounds(10.0, config, cuts) == [(0.0, 2.3), (2.3, 7.0), (7.0, 10.0)]
    assert clip_bounds(10.0, config) == [(0.0, 10.0)]  # no cuts: one shot
    plans = plan_clips(240, 24.0, config, SamplingConfig(num_frames=2), cuts)
    assert _plan(plans) == [
        (0, 0.0, 2.3, [14, 41]),
        (1, 2.3, 7.0, [83, 140]),
        (2, 7.0, 10.0, [186, 222]),
    ]
    times = np.arange(240) / 24.0
    assert _plan(plan_clips_at_times(times, 10.0, config, SamplingConfig(num_frames=2), cuts)) == (
        _plan(plans)
    )


def test_a_shot_of_exactly_min_length_stands_alone() -> None:
    """1 s shots with min 1 s are long enough: kept, not merged."""
    assert shot_bounds(10.0, [2.0, 3.0], 1.0) == [(0.0, 2.0), (2.0, 3.0), (3.0, 10.0)]
    assert shot_bounds(10.0, [1.0, 5.0], 1.0) == [(0.0, 1.0), (1.0, 5.0), (5.0, 10.0)]


def test_a_cut_at_the_very_end_adds_no_empty_shot() -> None:
    assert shot_bounds(10.0, [10.0], 0.0) == [(0.0, 10.0)]
    assert shot_bounds(10.0, [0.0], 0.0) == [(0.0, 10.0)]


def test_gappy_windows_with_no_minimum_add_no_empty_window() -> None:
    """Starts 0, 5, then 10 = the video's end: no (10, 10) window even with min 0."""
    gappy = ClipConfig(mode="window", length_s=4.0, stride_s=5.0, allow_gaps=True, min_length_s=0)
    assert clip_bounds(10.0, gappy) == [(0.0, 4.0), (5.0, 9.0)]


def test_one_frame_and_one_fps_videos() -> None:
    """One frame at 24 fps: one clip (0, 1/24) showing frame 0 for every target. Four frames
    at 1 fps (4 s), 2 targets 1 s and 3 s: frames 1 and 3."""
    assert _plan(plan_clips(1, 24.0, ClipConfig(mode="whole"), FOUR)) == [
        (0, 0.0, 0.041667, [0, 0, 0, 0])
    ]
    two = SamplingConfig(num_frames=2)
    assert _plan(plan_clips(4, 1.0, ClipConfig(mode="whole"), two)) == [(0, 0.0, 4.0, [1, 3])]
    single = plan_clips_at_times(np.array([0.0]), 0.04, ClipConfig(mode="whole"), two)
    assert _plan(single) == [(0, 0.0, 0.04, [0, 0])]
    assert plan_clips_at_times(np.array([]), 1.0, ClipConfig(mode="whole"), two) == []


def test_clip_bounds_are_rounded_to_microseconds() -> None:
    """Windows of 1/3 s over 1 s: starts 0, 0.333333, 0.666667 (6 decimals, both ends)."""
    config = ClipConfig(mode="window", length_s=1 / 3, min_length_s=0.1)
    plans = plan_clips(24, 24.0, config, SamplingConfig(num_frames=1))
    assert [(p.start_s, p.end_s) for p in plans] == [
        (0.0, 0.333333),
        (0.333333, 0.666667),
        (0.666667, 1.0),
    ]
