"""Cutting a video into clips: fixed windows, or the whole video. Pure functions.

Windows start every `stride_s` seconds and last `length_s`; the last window is cut at the
end of the video and kept only if it is at least `min_length_s` long. A video shorter than
`min_length_s` still gets one clip covering all of it, so no video is left without a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .records import ClipPlan
from .sampling import SamplingConfig, sample_frame_indices

_EPS = 1e-6


@dataclass(frozen=True)
class ClipConfig:
    mode: Literal["window", "whole"] = "window"
    length_s: float = 10.0
    stride_s: float = 10.0
    min_length_s: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in ("window", "whole"):
            raise ValueError(f"clips.mode must be 'window' or 'whole', got {self.mode!r}")
        if self.length_s <= 0 or self.stride_s <= 0:
            raise ValueError("clips.length_s and clips.stride_s must be > 0")
        if self.min_length_s < 0 or self.min_length_s > self.length_s:
            raise ValueError("clips.min_length_s must be in [0, clips.length_s]")


def clip_bounds(duration_s: float, config: ClipConfig) -> list[tuple[float, float]]:
    """`(start_s, end_s)` of each clip of a video lasting `duration_s`."""
    if duration_s <= 0:
        return []
    if config.mode == "whole":
        return [(0.0, duration_s)]
    bounds = []
    start = 0.0
    while start < duration_s - _EPS:
        end = min(start + config.length_s, duration_s)
        if end - start + _EPS >= config.min_length_s:
            bounds.append((start, end))
        if end >= duration_s - _EPS:
            break
        start += config.stride_s
    return bounds or [(0.0, duration_s)]


def plan_clips(
    num_frames: int, fps: float, clips: ClipConfig, sampling: SamplingConfig
) -> list[ClipPlan]:
    """Every clip of a video with its sampled frames and their presentation times."""
    duration = num_frames / fps if fps > 0 else 0.0
    plans = []
    for i, (start, end) in enumerate(clip_bounds(duration, clips)):
        indices = sample_frame_indices(num_frames, fps, start, end, sampling)
        times = (indices / fps).astype(np.float32)
        plans.append(ClipPlan(i, round(start, 6), round(end, 6), indices, times))
    return plans
