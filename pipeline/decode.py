"""Decoding only the frames the model needs, at the right times, in bounded memory and time.

A video is fetched (`fetch`: by path when it is a local file, read in bounded chunks and
spilled to scratch disk when it is a large object), indexed once from its packets
(`packet_decode`: real presentation times from the packets' pts, frame numbers in
presentation order) and cut into clips in real seconds (`planning`). The wanted frames of all
clips are then decoded in one forward pass that feeds the codec only the packets they depend
on; each frame is turned upright from the stream's display matrix, resized at once to the
model's input size (uint8 `[S, S, 3]`, the resampling the model's processor uses) and each
clip row is handed on as soon as its last frame is decoded. So memory holds the frames of the
clips in progress, never a whole video. Normalisation runs on the accelerator.

By default the whole thing runs in a supervised child process (`isolation`) with a time and a
memory budget, so a decoder that crashes, hangs or balloons on one file costs that file an
error row and nothing else.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from model.processing import FrameProcessor

from .fetch import fetch_video
from .isolation import DecodeLimits, Failure, supervise
from .packet_decode import (
    FrameSource,
    NoVideoStreamError,
    PacketDecoder,
    PacketIndexError,
    TruncatedStreamError,
    VideoSource,
    open_frame_source,
)
from .planning import ClipConfig, plan_clips_at_times
from .records import ClipPlan, VideoRef
from .sampling import SamplingConfig
from .schema import STATUS_DECODE_ERROR, STATUS_OK
from .sources import SourceError
from .storage import StorageOptions


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
    batch = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    resized = processor.resize_uint8(batch)
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
    limits: DecodeLimits = field(default_factory=DecodeLimits)


def thumbnail_jpeg(frame: np.ndarray, size: int) -> bytes:
    """A small JPEG of one uint8 `[H, W, 3]` frame (longest side `size`)."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(frame))
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
    """The row a video that cannot be (fully) read contributes: it is never dropped.

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
        "error": reason[:500],
        "decode_s": decode_s,
    }


def _shot_cuts(source: VideoSource, meta: VideoMeta, clips: ClipConfig) -> list[float]:
    from .shots import detect_cuts

    if isinstance(source, bytes):
        data = source
    else:
        with open(source, "rb") as fh:
            data = fh.read()
    return detect_cuts(
        data, meta.fps, meta.width, meta.height, clips.shot_threshold, clips.min_length_s
    )


@dataclass
class DecodedClip:
    plan: ClipPlan
    frames: np.ndarray  # [T, S, S, 3] uint8
    thumbnail: bytes


def iter_clips(
    video: OpenedVideo, plans: list[ClipPlan], settings: DecodeSettings
) -> Iterator[DecodedClip]:
    """Each planned clip, in order, as soon as its frames are decoded (one forward pass).

    Frames are resized as they come out and kept only until the last clip using them has
    gone; a thumbnail is cut from each clip's middle frame at source aspect.
    """
    users: dict[int, int] = {}
    for plan in plans:
        for number in set(plan.frame_indices.tolist()):
            users[number] = users.get(number, 0) + 1
    middles = {int(plan.frame_indices[len(plan.frame_indices) // 2]) for plan in plans}
    ready: dict[int, np.ndarray] = {}
    thumbs: dict[int, bytes] = {}
    pending = 0
    for number, frame in video.frames.iter_frames(sorted(users)):
        rgb = _rgb(video, frame)
        if number in middles:
            thumbs[number] = thumbnail_jpeg(rgb, settings.thumbnail_size)
        ready[number] = resize_frames(rgb[None], settings.processor)[0]
        while pending < len(plans) and all(i in ready for i in plans[pending].frame_indices):
            yield _clip(plans[pending], ready, thumbs, users)
            pending += 1
    if pending == len(plans):
        return
    failed = []  # a damaged stream: hand on the clips that did decode, then say which did not
    for plan in plans[pending:]:
        if all(int(i) in ready for i in plan.frame_indices):
            yield _clip(plan, ready, thumbs, users)
        else:
            failed.append(plan)
    missing = sorted({int(i) for i in failed[0].frame_indices if int(i) not in ready})
    names = ", ".join(str(p.clip_index) for p in failed[:10])
    raise VideoDecodeError(
        f"frames unreadable: clip(s) {names} not decoded (frame {missing[0]} did not decode)"
    )


def _clip(plan: ClipPlan, ready: dict, thumbs: dict, users: dict[int, int]) -> DecodedClip:
    frames = np.stack([ready[int(i)] for i in plan.frame_indices])
    thumbnail = thumbs[int(plan.frame_indices[len(plan.frame_indices) // 2])]
    for number in set(plan.frame_indices.tolist()):
        users[number] -= 1
        if users[number] == 0:
            del ready[number]
            thumbs.pop(number, None)
    return DecodedClip(plan, frames, thumbnail)


def iter_video_rows(
    ref: VideoRef, settings: DecodeSettings, scratch_dir: str | None = None
) -> Iterator[dict[str, Any]]:
    """One video's clip rows as they are decoded, in this process; an error row ends a video
    that fails (after the clips that did decode, which are kept)."""
    import av

    started = time.perf_counter()
    mark = started
    emitted = 0
    limits = settings.limits
    try:
        with fetch_video(ref, settings.storage, scratch_dir, limits.spill_mb << 20) as source:
            video = open_video(source)
            meta = video_meta(video)
            cuts = (
                _shot_cuts(source, meta, settings.clips) if settings.clips.mode == "shots" else None
            )
            plans = plan_clips_at_times(
                meta.frame_times_s, meta.duration_s, settings.clips, settings.sampling, cuts
            )
            if not plans:
                raise VideoDecodeError("video has no frames to sample")
            for clip in iter_clips(video, plans, settings):
                now = time.perf_counter()
                yield _clip_row(ref, clip, meta, now - mark)
                mark = now
                emitted += 1
    except Exception as err:  # any failure of one video becomes its error row, never a crash
        if isinstance(err, VideoDecodeError | SourceError):
            reason = str(err)
        elif isinstance(err, av.FFmpegError):
            reason = f"decode failed: {_av_reason(err)}"
        elif isinstance(err, MemoryError):
            reason = "decode ran out of memory (decode.max_memory_mb)"
        else:
            reason = f"{type(err).__name__}: {err}"
        yield error_row(
            ref, _after(emitted, reason), time.perf_counter() - started, settings.processor.size
        )


def _after(emitted: int, reason: str) -> str:
    return f"stopped after {emitted} clips: {reason}" if emitted else reason


def _clip_row(ref: VideoRef, clip: DecodedClip, meta: VideoMeta, seconds: float):
    plan = clip.plan
    return {
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
        "frames": clip.frames,  # [T, S, S, 3] uint8
        "thumbnail": clip.thumbnail,
        "status": STATUS_OK,
        "error": None,
        "decode_s": seconds,
    }


FAULT_MAGIC = b"clipnote-test-fault:"
"""With `CLIPNOTE_FAULT_INJECTION=1` in the environment (the test suite and the poison
benchmark set it; nothing else does), a file starting with this and then `crash` or `hang`
makes its isolated decoder die of SIGSEGV or hang for good: the deterministic poison and
hanging videos of the isolation tests (no real file crashes today's FFmpeg on demand). Only
the supervised child looks, and never unless asked to."""
FAULT_INJECTION_ENV = "CLIPNOTE_FAULT_INJECTION"


def _injected_fault(ref: VideoRef) -> None:
    if os.environ.get(FAULT_INJECTION_ENV) != "1":
        return
    if ref.shard_uri is not None or ref.uri.startswith("s3://") or ref.size > 4096:
        return
    try:
        with open(ref.uri, "rb") as fh:
            head = fh.read(64)
    except OSError:
        return
    if not head.startswith(FAULT_MAGIC):
        return
    fault = head[len(FAULT_MAGIC) :].strip()
    if fault == b"crash":
        import ctypes

        ctypes.string_at(0)  # a real native crash: SIGSEGV
    if fault == b"hang":
        while True:
            time.sleep(1)


def _isolated_rows(
    ref: VideoRef, settings: DecodeSettings, scratch_dir: str
) -> Iterator[dict[str, Any]]:
    """The child process's body (module level, so it pickles by reference)."""
    _injected_fault(ref)
    yield from iter_video_rows(ref, settings, scratch_dir)


def decode_video_rows(
    ref: VideoRef, settings: DecodeSettings, stats: dict[str, float] | None = None
) -> Iterator[dict[str, Any]]:
    """One video's rows, streamed: in a supervised child process unless isolation is off.

    Always at least one row; a child killed for a budget or by a signal ends the video with
    an error row saying which (clips it sent before are kept). `stats` receives the child's
    CPU seconds and peak resident MB (benchmarks).
    """
    limits = settings.limits
    scratch = tempfile.mkdtemp(prefix="clipnote-decode-", dir=limits.scratch_dir)
    try:
        if not limits.isolate:
            yield from iter_video_rows(ref, settings, scratch)
            return
        started = time.perf_counter()
        emitted = 0
        try:
            rows = supervise(_isolated_rows, (ref, settings, scratch), limits, stats)
            first = next(rows, None)
        except OSError as err:  # no child process can start here: decode without isolation
            logging.getLogger(__name__).warning(
                "decode isolation unavailable (%s); decoding %s in process", err, ref.uri
            )
            yield from iter_video_rows(ref, settings, scratch)
            return
        if first is None:
            first = Failure("the decoder process ended without a row", "exit")
        for item in itertools.chain([first], rows):
            if isinstance(item, Failure):
                elapsed = time.perf_counter() - started
                reason = _after(emitted, item.reason)
                yield error_row(ref, reason, elapsed, settings.processor.size)
                return
            emitted += item["status"] == STATUS_OK
            yield item
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def decode_video(ref: VideoRef, settings: DecodeSettings) -> list[dict[str, Any]]:
    """All rows of one video (clip rows at model size, or an error row), as a list."""
    return list(decode_video_rows(ref, settings))
