"""Cutting a video into clips: fixed windows, shots, or the whole video. Pure functions.

Windows start every `stride_s` seconds and last `length_s`; the last window is cut at the
end of the video and kept only if it is at least `min_length_s` long. `stride_s` follows
`length_s` unless set (back-to-back windows): a stride longer than the window leaves part of
every video uncaptioned, so it is refused unless `allow_gaps` says that is meant. Shots run from one
detected cut to the next; a shot shorter than `min_length_s` joins its neighbour. A video
shorter than `min_length_s` still gets one clip covering all of it, so no video is left
without a row.

Clips are bounded by real frames: a window that holds no frame of its own (a gap in the
stream, or timestamps that claim far more time than the frames fill) is not a clip. A 66 KB
file of 24 frames whose timestamps claimed 1,000,000 s once became 100,000 clips.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from pipeline.clips.sampling import SamplingConfig, sample_frames_at_times
from pipeline.core.records import ClipPlan

_EPS = 1e-6


@dataclass(frozen=True)
class ClipConfig:
    mode: Literal["window", "whole", "shots"] = "window"
    length_s: float = 10.0
    stride_s: float | None = None
    """None: equal to `length_s`, resolved when the config is made."""
    min_length_s: float | None = None
    """None: 1 s, or `length_s` when windows are shorter than that."""
    shot_threshold: float = 27.0
    allow_gaps: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("window", "whole", "shots"):
            raise ValueError(f"clips.mode must be window, whole or shots, got {self.mode!r}")
        if self.shot_threshold <= 0:
            raise ValueError("clips.shot_threshold must be > 0")
        if self.length_s <= 0:
            raise ValueError("clips.length_s must be > 0")
        if self.stride_s is None:
            object.__setattr__(self, "stride_s", self.length_s)  # frozen: resolved once, here
        if self.min_length_s is None:
            object.__setattr__(self, "min_length_s", min(1.0, self.length_s))
        if self.stride_s <= 0:
            raise ValueError("clips.stride_s must be > 0")
        if self.mode == "window" and self.stride_s > self.length_s + _EPS and not self.allow_gaps:
            gap = self.stride_s - self.length_s
            raise ValueError(
                f"clips.stride_s {self.stride_s:g} > clips.length_s {self.length_s:g} leaves "
                f"{gap:g} s of every {self.stride_s:g} s uncaptioned; leave stride_s unset for "
                "back-to-back windows, or set clips.allow_gaps: true if gaps are meant"
            )
        if self.min_length_s < 0 or self.min_length_s > self.length_s:
            raise ValueError("clips.min_length_s must be in [0, clips.length_s]")

    @property
    def step_s(self) -> float:
        """Seconds between window starts (`stride_s`, resolved)."""
        return float(self.stride_s if self.stride_s is not None else self.length_s)


def shot_bounds(
    duration_s: float, cuts_s: list[float], min_length_s: float
) -> list[tuple[float, float]]:
    """Shots between consecutive cuts; too-short shots are merged into the previous one."""
    edges = [0.0, *sorted(c for c in cuts_s if _EPS < c < duration_s - _EPS), duration_s]
    bounds: list[tuple[float, float]] = []
    for start, end in itertools.pairwise(edges):
        if bounds and end - start + _EPS < min_length_s:
            bounds[-1] = (bounds[-1][0], end)
        elif bounds and bounds[-1][1] - bounds[-1][0] + _EPS < min_length_s:
            bounds[-1] = (bounds[-1][0], end)  # a short first shot joins the next
        else:
            bounds.append((start, end))
    return bounds


def clip_bounds(
    duration_s: float, config: ClipConfig, cuts_s: list[float] | None = None
) -> list[tuple[float, float]]:
    """`(start_s, end_s)` of each clip of a video lasting `duration_s`.

    `cuts_s` (shot mode) are the times where shots start, from the scene detector.
    """
    if duration_s <= 0:
        return []
    if config.mode == "whole":
        return [(0.0, duration_s)]
    if config.mode == "shots":
        return shot_bounds(duration_s, cuts_s or [], config.min_length_s)
    bounds = []
    start = 0.0
    while start < duration_s - _EPS:
        end = min(start + config.length_s, duration_s)
        if end - start + _EPS >= config.min_length_s:
            bounds.append((start, end))
        if end >= duration_s - _EPS:
            break
        start += config.step_s
    return bounds or [(0.0, duration_s)]


def plan_clips(
    num_frames: int,
    fps: float,
    clips: ClipConfig,
    sampling: SamplingConfig,
    cuts_s: list[float] | None = None,
) -> list[ClipPlan]:
    """Every clip of a constant-rate video (frame i shown at `i / fps`)."""
    if num_frames <= 0 or fps <= 0:
        return []
    times = np.arange(num_frames, dtype=np.float64) / fps
    return plan_clips_at_times(times, num_frames / fps, clips, sampling, cuts_s)


def plan_clips_at_times(
    frame_times_s: np.ndarray,
    duration_s: float,
    clips: ClipConfig,
    sampling: SamplingConfig,
    cuts_s: list[float] | None = None,
) -> list[ClipPlan]:
    """Every clip of a video with its sampled frames and their presentation times.

    `frame_times_s` are the stream's real presentation times (presentation order, from 0 at
    the first frame); windows are cut in those seconds, so a variable frame rate moves which
    frames are picked, never where the windows are.
    """
    times = np.asarray(frame_times_s, dtype=np.float64)
    if len(times) == 0:
        return []
    if clips.mode == "window":
        bounds = list(_windows_with_frames(times, duration_s, clips)) or [(0.0, duration_s)]
    else:
        bounds = [b for b in clip_bounds(duration_s, clips, cuts_s) if _holds_frame(times, *b)]
    plans = []
    for i, (start, end) in enumerate(bounds):
        indices = sample_frames_at_times(times, start, end, sampling)
        plans.append(
            ClipPlan(i, round(start, 6), round(end, 6), indices, times[indices].astype(np.float32))
        )
    return plans


def _holds_frame(times: np.ndarray, start: float, end: float) -> bool:
    """A frame of the clip's own is shown inside `[start, end)`."""
    first = int(np.searchsorted(times, start - _EPS, side="left"))
    return first < len(times) and times[first] < end - _EPS


def _windows_with_frames(
    times: np.ndarray, duration_s: float, config: ClipConfig
) -> Iterator[tuple[float, float]]:
    """`clip_bounds`' windows, only those holding a frame of their own; empty stretches are
    jumped over, never walked, so the work follows the frames, not the claimed duration."""
    length, step, count = config.length_s, config.step_s, len(times)
    start = 0.0
    while start < duration_s - _EPS:
        end = min(start + length, duration_s)
        first = int(np.searchsorted(times, start - _EPS, side="left"))
        if first >= count:
            return  # no frame left: no more clips
        if times[first] < end - _EPS:
            if end - start + _EPS >= config.min_length_s:
                yield (start, end)
            if end >= duration_s - _EPS:
                return
            start += step
        else:  # the next frame is past this window: jump to the first window that reaches it
            jump = math.floor((times[first] - start - length) / step) + 1
            start += step * max(1, jump)  # at least one: a frame a hair past `end` moves on
