"""Which frames of a clip the model sees: pure functions over the stream's real frame times.

Uniform sampling aims at the centre time of each of `n` equal segments of the clip (the
published evaluation samples segment centres) and takes the real frame nearest to each target
among the frames shown inside the clip; a clip with fewer frames than `n` repeats frames so the
model always gets `n`. FPS sampling aims at `round(duration * fps)` targets, capped, the same
way. Targets are in seconds and frames are picked by their presentation times, so a variable
frame rate stream gets the frames actually shown at those times (`frame / avg_fps` would drift
by seconds). For a constant rate these are exactly the centre frames of equal segments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

_EPS = 1e-6


@dataclass(frozen=True)
class SamplingConfig:
    """How many frames per clip: a fixed `num_frames`, or `fps` with `max_frames` as the cap.

    `num_frames=None` means "what the model was trained with" and is resolved from the
    checkpoint before the run starts (`with_frames`); 16 for the published checkpoints.
    """

    mode: Literal["uniform", "fps"] = "uniform"
    num_frames: int | None = None
    fps: float = 1.0
    max_frames: int = 64

    def __post_init__(self) -> None:
        if self.mode not in ("uniform", "fps"):
            raise ValueError(f"sampling.mode must be 'uniform' or 'fps', got {self.mode!r}")
        if self.num_frames is not None and self.num_frames < 1:
            raise ValueError("sampling.num_frames must be >= 1")
        if self.fps <= 0:
            raise ValueError("sampling.fps must be > 0")
        if self.max_frames < 1:
            raise ValueError("sampling.max_frames must be >= 1")

    def with_frames(self, default: int) -> SamplingConfig:
        """This config with `num_frames` filled in when it was left to the model."""
        return self if self.num_frames is not None else replace(self, num_frames=default)


def uniform_indices(first: int, end: int, n: int) -> np.ndarray:
    """Centre frame of each of `n` equal segments of frames `[first, end)`, int32."""
    if end <= first:
        raise ValueError(f"empty frame range [{first}, {end})")
    span = end - first
    centres = first + np.floor((np.arange(n) + 0.5) * span / n)
    return np.clip(centres, first, end - 1).astype(np.int32)


def frame_range(num_frames: int, fps: float, start_s: float, end_s: float) -> tuple[int, int]:
    """Frames whose timestamps `i / fps` fall in `[start_s, end_s)`, as `[first, end)`."""
    first = max(0, math.ceil(start_s * fps - _EPS))
    end = min(num_frames, math.ceil(end_s * fps - _EPS))
    return first, max(end, min(first + 1, num_frames))


def frame_range_at_times(times_s: np.ndarray, start_s: float, end_s: float) -> tuple[int, int]:
    """Frames shown inside `[start_s, end_s)`, as `[first, end)` over increasing `times_s`.

    A clip with no frame inside (a gap in a variable-rate stream, or narrower than one frame)
    gets the frame on screen at its start, so it is never empty.
    """
    count = len(times_s)
    if count == 0:
        raise ValueError("no frames")
    first = int(np.searchsorted(times_s, start_s - _EPS, side="left"))
    end = int(np.searchsorted(times_s, end_s - _EPS, side="left"))
    if end > first:
        return first, end
    shown = max(0, int(np.searchsorted(times_s, start_s + _EPS, side="right")) - 1)
    return shown, shown + 1


def target_times(start_s: float, end_s: float, config: SamplingConfig) -> np.ndarray:
    """`[T]` times (s) to sample in `[start_s, end_s)`: the centres of equal segments."""
    if config.mode == "uniform":
        if config.num_frames is None:
            raise ValueError("sampling.num_frames is unresolved; call with_frames() first")
        count = config.num_frames
    else:
        count = min(config.max_frames, max(1, round((end_s - start_s) * config.fps)))
    return start_s + (np.arange(count) + 0.5) * ((end_s - start_s) / count)


def nearest_frames(times_s: np.ndarray, targets_s: np.ndarray, first: int, end: int) -> np.ndarray:
    """int32 index in `[first, end)` of the frame nearest each target (the earlier on a tie)."""
    window = times_s[first:end]
    before = np.clip(np.searchsorted(window, targets_s, side="right") - 1, 0, len(window) - 1)
    after = np.minimum(before + 1, len(window) - 1)
    later_is_nearer = (window[after] - targets_s) < (targets_s - window[before]) - 1e-9
    return (first + np.where(later_is_nearer, after, before)).astype(np.int32)


def sample_frames_at_times(
    times_s: np.ndarray, start_s: float, end_s: float, config: SamplingConfig
) -> np.ndarray:
    """Frame indices the model sees for the clip `[start_s, end_s)`, from real frame times.

    `times_s` is every frame's presentation time (presentation order, increasing).
    """
    first, end = frame_range_at_times(times_s, start_s, end_s)
    return nearest_frames(times_s, target_times(start_s, end_s, config), first, end)


def sample_frame_indices(
    num_frames: int, fps: float, start_s: float, end_s: float, config: SamplingConfig
) -> np.ndarray:
    """Frame indices the model sees for `[start_s, end_s)` of a constant-rate video."""
    times = np.arange(num_frames, dtype=np.float64) / fps
    return sample_frames_at_times(times, start_s, end_s, config)
