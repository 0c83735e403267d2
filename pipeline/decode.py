"""Decoding only the frames the model needs, from bytes read once.

One decord `VideoReader` per video, opened on the bytes in memory (object storage is read once
per video): it validates the file and gives the frame numbering and metadata the published
loaders see. Sampled frames are decoded by `PacketDecoder`, which feeds the codec only the
packets those frames depend on (non-reference frames nobody asked for are skipped); when its
packet index does not agree with decord's frame index, decord's `get_batch` decodes them
instead. Either way a whole clip is never decoded to keep a few frames. Frames are resized
here to the model's input size with the resampling the model's processor uses, so uint8
`[T, S, S, 3]` crosses the object store and normalisation runs on the accelerator.
"""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from model.processing import FrameProcessor

from .packet_decode import PacketDecoder
from .planning import ClipConfig, plan_clips
from .records import ClipPlan, VideoRef
from .sampling import SamplingConfig
from .schema import STATUS_DECODE_ERROR, STATUS_OK
from .sources import SourceError, read_video
from .storage import StorageOptions


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


_DECORD_PREFIX = re.compile(r"^\[\d{2}:\d{2}:\d{2}\] \S+:\d+: ")


def _decord_reason(err: Exception) -> str:
    """First line of a decord error without its `[HH:MM:SS] file.cc:NNN: ` prefix.

    The timestamp would make the same failure a different `error` string every second, so
    `GROUP BY error` over the output would not group; the C++ source path tells users nothing.
    """
    lines = str(err).strip().splitlines() or [type(err).__name__]
    return _DECORD_PREFIX.sub("", lines[0])[:200]


@dataclass
class OpenedVideo:
    """A video's bytes opened once: decord's reader, and the packet decoder when it agrees
    with decord on every frame's number and time (None when it does not)."""

    reader: Any  # decord.VideoReader
    packets: PacketDecoder | None


def open_video(data: bytes) -> OpenedVideo:
    """The video on in-memory bytes, or `VideoDecodeError` with the reason."""
    import decord

    if not data:
        raise VideoDecodeError("empty file (0 bytes)")
    try:
        reader = decord.VideoReader(io.BytesIO(data), ctx=decord.cpu(0), num_threads=1)
    except Exception as err:  # decord raises its own DECORDError and RuntimeError
        raise VideoDecodeError(f"not a readable video: {_decord_reason(err)}") from err
    if len(reader) == 0:
        raise VideoDecodeError("video stream has no frames")
    return OpenedVideo(reader=reader, packets=_packet_decoder(data, reader))


def _packet_decoder(data: bytes, reader) -> PacketDecoder | None:
    """A `PacketDecoder` whose frame i is decord's frame i, else None (decord decodes)."""
    try:
        packets = PacketDecoder(data)
    except Exception:  # unusual containers or timestamps: decord's get_batch still works
        return None
    if packets.index.num_frames != len(reader):
        return None
    ours = packets.frame_times_s()
    theirs = reader.get_frame_timestamp(np.arange(len(reader)))[:, 0]
    if not np.allclose(ours - ours[0], theirs - theirs[0], atol=1e-3):
        return None
    return packets


def video_meta(video: OpenedVideo) -> VideoMeta:
    """Frame count and rate as decord sees them; the size from the packet decoder's stream
    when there is one, because decoding a frame with decord starts its background decoder
    thread, which then burns CPU for as long as the reader lives."""
    reader = video.reader
    if video.packets is not None:
        width, height = video.packets.width, video.packets.height
    else:
        height, width = reader[0].shape[:2]
    return VideoMeta(
        num_frames=len(reader), fps=float(reader.get_avg_fps()), width=width, height=height
    )


def read_source_frames(video: OpenedVideo, indices: np.ndarray) -> np.ndarray:
    """uint8 `[T, H, W, 3]` frames at `indices`, at the source resolution.

    Repeated indices (short clips) are decoded once and repeated.
    """
    unique, inverse = np.unique(np.asarray(indices, dtype=np.int64), return_inverse=True)
    frames = _packet_frames(video.packets, unique) if video.packets is not None else None
    if frames is None:
        try:
            frames = video.reader.get_batch(unique.tolist()).asnumpy()  # [U, H, W, 3]
        except Exception as err:
            raise VideoDecodeError(f"frames unreadable: {_decord_reason(err)}") from err
    return frames[inverse]  # [T, H, W, 3]


def _packet_frames(packets: PacketDecoder, unique: np.ndarray) -> np.ndarray | None:
    """`[U, H, W, 3]` from the packet decoder, or None if any frame did not come out."""
    try:
        decoded = packets.rgb_frames(unique.tolist())
    except Exception:  # a damaged stream: let decord try, and report its reason
        return None
    if len(decoded) != len(unique):
        return None
    return np.stack([decoded[int(i)] for i in unique])


def resize_frames(frames: np.ndarray, processor: FrameProcessor | None) -> np.ndarray:
    """uint8 `[T, S, S, 3]`, resized as the model's processor would (None: unchanged)."""
    if processor is None or frames.shape[1:3] == (processor.size, processor.size):
        return np.ascontiguousarray(frames)
    resized = processor.resize_uint8(torch.from_numpy(frames).permute(0, 3, 1, 2))
    return resized.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def read_frames(
    video: OpenedVideo, indices: np.ndarray, processor: FrameProcessor | None
) -> np.ndarray:
    """uint8 `[T, S, S, 3]` frames at `indices`, resized as `processor` would (None: as is)."""
    return resize_frames(read_source_frames(video, indices), processor)


@dataclass(frozen=True)
class DecodeSettings:
    """What the decode stage needs to know, shipped to every CPU task."""

    clips: ClipConfig
    sampling: SamplingConfig
    processor: FrameProcessor
    storage: StorageOptions
    thumbnail_size: int = 96


def thumbnail_jpeg(frame: np.ndarray, size: int) -> bytes:
    """A small JPEG of one uint8 `[H, W, 3]` frame (longest side `size`)."""
    from PIL import Image

    image = Image.fromarray(frame)
    image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def _video_row(ref: VideoRef) -> dict[str, Any]:
    return {"video_uri": ref.uri, "video_id": ref.video_id, "video_version": ref.version,
            "video_size": ref.size}  # fmt: skip


def error_row(
    ref: VideoRef, reason: str, decode_s: float = 0.0, frame_size: int = 0
) -> dict[str, Any]:
    """The one row a video that cannot be read contributes: it is never dropped.

    Its `frames` is an empty `[0, S, S, 3]` array so the column stays one tensor type.
    """
    return {
        **_video_row(ref),
        "clip_index": -1,
        "start_s": 0.0,
        "end_s": 0.0,
        "frame_indices": np.zeros(0, np.int32),
        "frame_times_s": np.zeros(0, np.float32),
        "video_duration_s": 0.0,
        "video_fps": 0.0,
        "width": 0,
        "height": 0,
        "frames": np.zeros((0, frame_size, frame_size, 3), np.uint8),
        "thumbnail": None,
        "status": STATUS_DECODE_ERROR,
        "error": reason,
        "decode_s": decode_s,
    }


def _shot_cuts(data: bytes, meta: VideoMeta, clips: ClipConfig) -> list[float]:
    from .shots import detect_cuts

    return detect_cuts(
        data, meta.fps, meta.width, meta.height, clips.shot_threshold, clips.min_length_s
    )


def _decode_clip(
    video: OpenedVideo, plan: ClipPlan, settings: DecodeSettings
) -> tuple[np.ndarray, bytes]:
    """Model-size frames of one clip and a thumbnail of its middle frame at source aspect."""
    source = read_source_frames(video, plan.frame_indices)  # [T, H, W, 3]
    thumbnail = thumbnail_jpeg(source[len(source) // 2], settings.thumbnail_size)
    return resize_frames(source, settings.processor), thumbnail


def decode_video(ref: VideoRef, settings: DecodeSettings) -> list[dict[str, Any]]:
    """All clip rows of one video (frames at model size), or its one error row."""
    started = time.perf_counter()
    try:
        data = read_video(ref, settings.storage)
        video = open_video(data)
        meta = video_meta(video)
        cuts = _shot_cuts(data, meta, settings.clips) if settings.clips.mode == "shots" else None
        plans = plan_clips(meta.num_frames, meta.fps, settings.clips, settings.sampling, cuts)
        if not plans:
            raise VideoDecodeError("video has no frames to sample")
        clips = [_decode_clip(video, plan, settings) for plan in plans]
    except Exception as err:  # any failure of one video becomes its error row, never a crash
        known = isinstance(err, VideoDecodeError | SourceError)
        reason = str(err) if known else f"{type(err).__name__}: {err}"
        elapsed = time.perf_counter() - started
        return [error_row(ref, reason[:500], elapsed, settings.processor.size)]
    per_clip = (time.perf_counter() - started) / len(plans)
    rows = []
    for plan, (clip, thumbnail) in zip(plans, clips, strict=True):
        rows.append(
            {
                **_video_row(ref),
                "clip_index": plan.clip_index,
                "start_s": plan.start_s,
                "end_s": plan.end_s,
                "frame_indices": plan.frame_indices,
                "frame_times_s": plan.frame_times_s,
                "video_duration_s": meta.duration_s,
                "video_fps": meta.fps,
                "width": meta.width,
                "height": meta.height,
                "frames": clip,  # [T, S, S, 3] uint8
                "thumbnail": thumbnail,
                "status": STATUS_OK,
                "error": None,
                "decode_s": per_clip,
            }
        )
    return rows
