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

import itertools
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model.processing import FrameProcessor
from pipeline.clips.sampling import SamplingConfig
from pipeline.clips.windows import ClipConfig, plan_clips_at_times
from pipeline.core.errors import SourceError
from pipeline.core.records import ClipPlan, VideoRef
from pipeline.core.rows import error_row, video_columns
from pipeline.core.status import STATUS_OK, FailureKind
from pipeline.core.storage import StorageOptions
from pipeline.decode.hook import run_decode_hook
from pipeline.decode.isolation import DecodeLimits, Failure, supervise
from pipeline.decode.packets import (
    VideoSource,
)
from pipeline.decode.video import (
    OpenedVideo,
    VideoDecodeError,
    VideoMeta,
    _av_reason,
    _rgb,
    open_video,
    resize_frames,
    thumbnail_jpeg,
    video_meta,
)
from pipeline.input.fetch import fetch_video


@dataclass(frozen=True)
class DecodeSettings:
    """What the decode stage needs to know, shipped to every CPU task."""

    clips: ClipConfig
    sampling: SamplingConfig
    processor: FrameProcessor
    storage: StorageOptions
    thumbnail_size: int = 96
    limits: DecodeLimits = field(default_factory=DecodeLimits)
    max_clips: int = 100_000
    """`decode.max_clips`: clips past it end the video with an error row."""


def _shot_cuts(source: VideoSource, meta: VideoMeta, clips: ClipConfig) -> list[float]:
    from pipeline.clips.shots import detect_cuts

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
            cap = settings.max_clips
            for clip in iter_clips(video, plans[:cap], settings):
                now = time.perf_counter()
                yield _clip_row(ref, clip, meta, now - mark)
                mark = now
                emitted += 1
            if len(plans) > cap:
                raise VideoDecodeError(
                    f"the video has {len(plans)} clips, more than decode.max_clips ({cap})"
                )
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
        **video_columns(ref),
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


def _isolated_rows(
    ref: VideoRef, settings: DecodeSettings, scratch_dir: str
) -> Iterator[dict[str, Any]]:
    """The child process's body (module level, so it pickles by reference). The hook is a
    no-op unless the tests installed one (`pipeline.decode.hook`)."""
    run_decode_hook(ref)
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
            first = Failure("the decoder process ended without a row", FailureKind.EXIT)
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
