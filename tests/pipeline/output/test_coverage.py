"""Coverage, worked out by hand: what part of each video the ok clips span."""

from __future__ import annotations

import pytest

from pipeline.output.coverage import coverage_seconds


def _row(uri, start, end, duration, status="ok"):
    return {"video_uri": uri, "start_s": start, "end_s": end, "video_duration_s": duration,
            "status": status}  # fmt: skip


def test_back_to_back_windows_cover_everything():
    rows = [_row("a", 0, 4, 10), _row("a", 4, 8, 10), _row("a", 8, 10, 10)]
    assert coverage_seconds(rows) == (10.0, 10.0)


def test_a_stride_longer_than_the_window_leaves_gaps():
    """length 4, stride 10 on a 30 s video: 0-4, 10-14, 20-24 -> 12 of 30 s."""
    rows = [_row("a", 0, 4, 30), _row("a", 10, 14, 30), _row("a", 20, 24, 30)]
    assert coverage_seconds(rows) == (12.0, 30.0)


def test_overlaps_count_once_and_videos_add_up():
    rows = [_row("a", 0, 4, 6), _row("a", 2, 6, 6), _row("b", 0, 3, 5), _row("b", 1, 2, 5)]
    assert coverage_seconds(rows) == (9.0, 11.0)


def test_failed_clips_and_failed_videos_are_not_covered():
    rows = [
        _row("a", 0, 5, 10), _row("a", 5, 10, 10, "model_error"),
        _row("b", 0.0, 0.0, 0.0, "decode_error"),
    ]  # fmt: skip
    assert coverage_seconds(rows) == (5.0, 10.0)


def test_no_rows():
    assert coverage_seconds([]) == (0.0, 0.0)


def test_clip_past_the_reported_duration_is_capped():
    assert coverage_seconds([_row("a", 0, 10.5, 10)]) == pytest.approx((10.0, 10.0))
