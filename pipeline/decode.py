"""Decoding only the frames the model needs, with decord, from bytes read once.

One `VideoReader` per video, opened on the bytes in memory (object storage is read once per
video); frames are fetched by index with `get_batch`, never by decoding a whole clip. Frames are
resized here to the model's input size with the same resampling the model's processor uses, so
uint8 `[T, S, S, 3]` crosses the object store and normalisation runs on the accelerator.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch

from model.processing import FrameProcessor


@dataclass(frozen=True)
class VideoMeta:
    """What decode learns about a video before any frame is read."""

    num_frames: int
    fps: float
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps if self.fps > 0 else 0.0


class VideoDecodeError(RuntimeError):
    """The bytes are not a decodable video; the message says why, for the error row."""


def open_video(data: bytes):
    """A decord `VideoReader` on in-memory bytes, or `VideoDecodeError` with the reason."""
    import decord

    if not data:
        raise VideoDecodeError("empty file (0 bytes)")
    try:
        reader = decord.VideoReader(io.BytesIO(data), ctx=decord.cpu(0), num_threads=1)
    except Exception as err:  # decord raises its own DECORDError and RuntimeError
        raise VideoDecodeError(f"not a readable video: {str(err).splitlines()[0][:200]}") from err
    if len(reader) == 0:
        raise VideoDecodeError("video stream has no frames")
    return reader


def video_meta(reader) -> VideoMeta:
    height, width = reader[0].shape[:2] if len(reader) else (0, 0)
    return VideoMeta(
        num_frames=len(reader), fps=float(reader.get_avg_fps()), width=width, height=height
    )


def read_frames(reader, indices: np.ndarray, processor: FrameProcessor | None) -> np.ndarray:
    """uint8 `[T, S, S, 3]` frames at `indices`, resized as `processor` would (None: as is).

    Repeated indices (short clips) are decoded once and repeated.
    """
    unique, inverse = np.unique(np.asarray(indices, dtype=np.int64), return_inverse=True)
    try:
        frames = reader.get_batch(unique.tolist()).asnumpy()  # [U, H, W, 3]
    except Exception as err:
        raise VideoDecodeError(f"frames unreadable: {str(err).splitlines()[0][:200]}") from err
    frames = frames[inverse]  # [T, H, W, 3]
    if processor is None or frames.shape[1:3] == (processor.size, processor.size):
        return np.ascontiguousarray(frames)
    resized = processor.resize_uint8(torch.from_numpy(frames).permute(0, 3, 1, 2))
    return resized.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
