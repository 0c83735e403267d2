"""Which frames of a clip the model sees: pure functions over frame counts and times.

Uniform sampling takes the centre frame of `n` equal segments of the clip (the published
evaluation samples segment centres); a clip with fewer frames than `n` repeats frames so the
model always gets `n`. FPS sampling picks `round(duration * fps)` frames, capped, the same way.
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


def sample_frame_indices(
    num_frames: int, fps: float, start_s: float, end_s: float, config: SamplingConfig
) -> np.ndarray:
    """Frame indices the model sees for the clip `[start_s, end_s)` of a video."""
    first, end = frame_range(num_frames, fps, start_s, end_s)
    if config.mode == "uniform":
        if config.num_frames is None:
            raise ValueError("sampling.num_frames is unresolved; call with_frames() first")
        count = config.num_frames
    else:
        count = min(config.max_frames, max(1, round((end_s - start_s) * config.fps)))
    return uniform_indices(first, end, count)
