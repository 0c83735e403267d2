"""Opening one video and reading chosen frames from it, upright and at the model's size."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model.processing import FrameProcessor
from pipeline.decode.packets import (
    FrameSource,
    NoVideoStreamError,
    PacketDecoder,
    PacketIndexError,
    TruncatedStreamError,
    VideoSource,
    open_frame_source,
)


class VideoDecodeError(RuntimeError):
    """The bytes are not a decodable video; the message says why, for the error row."""


@dataclass(frozen=True)
class VideoMeta:
    """What decode learns about a video from its index and first frame."""

    num_frames: int
    fps: float  # average: frames / duration
    width: int  # as displayed (after rotation)
    height: int
    duration_s: float = 0.0
    frame_times_s: np.ndarray = field(default_factory=lambda: np.zeros(0), compare=False)
    rotation: int = 0  # degrees counter-clockwise applied to decoded frames


@dataclass
class OpenedVideo:
    """A video's stream indexed once, and how its frames are turned to be shown upright."""

    frames: FrameSource
    rotation: int  # multiple of 90, counter-clockwise
    width: int  # displayed
    height: int

    @property
    def packets(self) -> PacketDecoder | None:
        """The packet decoder, when the stream could be indexed by packets."""
        return self.frames if isinstance(self.frames, PacketDecoder) else None


def _av_reason(err: Exception) -> str:
    """An FFmpeg error's text without its errno or the (meaningless) in-memory file name."""
    text = getattr(err, "strerror", None)
    if not text:
        lines = str(err).strip().splitlines()
        text = lines[0] if lines else type(err).__name__
    return str(text)[:200]


def upright_rotation(degrees: float | None) -> int:
    """The display matrix's counter-clockwise rotation, snapped to a multiple of 90."""
    if not degrees:
        return 0
    return round(float(degrees) / 90.0) % 4 * 90


def upright(frame: np.ndarray, rotation: int) -> np.ndarray:
    """`[H, W, 3]` turned counter-clockwise by `rotation` degrees (a view; 0: unchanged)."""
    return np.rot90(frame, rotation // 90) if rotation else frame


def open_video(source: VideoSource) -> OpenedVideo:
    """The video on in-memory bytes or a local file path, or `VideoDecodeError` with why."""
    import os

    import av

    if (len(source) if isinstance(source, bytes) else os.path.getsize(source)) == 0:
        raise VideoDecodeError("empty file (0 bytes)")
    try:
        frames = open_frame_source(source)
    except NoVideoStreamError as err:
        raise VideoDecodeError("not a readable video: no video stream") from err
    except (PacketIndexError, TruncatedStreamError) as err:
        raise VideoDecodeError(f"not a readable video: {err}") from err
    except av.FFmpegError as err:
        raise VideoDecodeError(f"not a readable video: {_av_reason(err)}") from err
    if len(frames.frame_times_s()) == 0:
        raise VideoDecodeError("video stream has no frames")
    try:
        first = next(iter(frames.iter_frames([0])), None)
    except av.FFmpegError as err:
        raise VideoDecodeError(f"not a readable video: {_av_reason(err)}") from err
    if first is None:
        raise VideoDecodeError("not a readable video: its first frame does not decode")
    frame = first[1]
    rotation = upright_rotation(getattr(frame, "rotation", 0))
    width, height = frame.width, frame.height
    if rotation in (90, 270):
        width, height = height, width
    return OpenedVideo(frames=frames, rotation=rotation, width=width, height=height)


def video_meta(video: OpenedVideo) -> VideoMeta:
    """Frame count, real times, duration, average rate and displayed size."""
    times = video.frames.frame_times_s()
    duration = video.frames.duration_s()
    return VideoMeta(
        num_frames=len(times),
        fps=len(times) / duration if duration > 0 else 0.0,
        width=video.width,
        height=video.height,
        duration_s=duration,
        frame_times_s=times,
        rotation=video.rotation,
    )


def _rgb(video: OpenedVideo, frame: Any) -> np.ndarray:
    """uint8 `[H, W, 3]` as displayed."""
    return upright(frame.to_ndarray(format="rgb24"), video.rotation)


def read_source_frames(video: OpenedVideo, indices: np.ndarray) -> np.ndarray:
    """uint8 `[T, H, W, 3]` frames at `indices`, upright at the source resolution.

    Repeated indices (short clips) are decoded once and repeated.
    """
    unique, inverse = np.unique(np.asarray(indices, dtype=np.int64), return_inverse=True)
    decoded = {n: _rgb(video, f) for n, f in video.frames.iter_frames(unique.tolist())}
    missing = [int(i) for i in unique if int(i) not in decoded]
    if missing:
        raise VideoDecodeError(f"frames unreadable: {missing[:5]} did not decode")
    return np.stack([decoded[int(i)] for i in unique])[inverse]  # [T, H, W, 3]


def resize_frames(frames: np.ndarray, processor: FrameProcessor | None) -> np.ndarray:
    """uint8 `[T, S, S, 3]`, resized as the model's processor would (None: unchanged)."""
    if processor is None or frames.shape[1:3] == (processor.size, processor.size):
        return np.ascontiguousarray(frames)
    import torch  # only here: the resize is the one tensor op of decode

    batch = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    resized = processor.resize_uint8(batch)
    return resized.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def read_frames(
    video: OpenedVideo, indices: np.ndarray, processor: FrameProcessor | None
) -> np.ndarray:
    """uint8 `[T, S, S, 3]` frames at `indices`, resized as `processor` would (None: as is)."""
    return resize_frames(read_source_frames(video, indices), processor)


def thumbnail_jpeg(frame: np.ndarray, size: int) -> bytes:
    """A small JPEG of one uint8 `[H, W, 3]` frame (longest side `size`)."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(frame))
    image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()
