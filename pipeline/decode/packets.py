"""Decode only the frames asked for and the reference frames they depend on, in bounded memory.

Sampling 16 frames from a 10 s window means decoding every frame from the keyframe before each
sampled frame up to it. But about half of those frames are non-reference frames (B-frames no
other frame is predicted from): nothing needs them unless they are sampled themselves. Here the
decoder is told, packet by packet, to discard non-reference frames that were not asked for
(libavcodec's `skip_frame = NONREF`), which roughly halves the decoding work while the frames
asked for come out bit-identical.

Two passes over the container, neither holding the stream in memory: the first demuxes every
packet once and keeps only its timestamp, keyframe and discard flags (`PacketIndex`: frame
numbers, real presentation times); the second demuxes forward again and feeds the codec only
the packet runs the wanted frames depend on, handing each frame out as it is decoded. No seek
is needed (so no container's seek precision matters) and memory does not grow with the video.

Frame numbers are presentation order over the frames the container shows: packets an MP4 edit
list cuts away (flagged discard by the demuxer) are decoded when a shown frame depends on them,
never numbered. Frame times come from the packets' pts, from 0 at the first shown frame.
Streams whose packets cannot be mapped to frames (no pts, repeated pts) are read by
`SequentialDecoder`, which numbers and times the frames the decoder outputs instead.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from pipeline.core.records import VideoSource


class PacketIndexError(ValueError):
    """The stream's packets cannot be mapped to frames (missing or repeated timestamps)."""


class TruncatedStreamError(ValueError):
    """The container's index lists more frames than its data holds (a cut-off file)."""


class NoVideoStreamError(ValueError):
    """The container holds no video stream."""


@dataclass(frozen=True)
class PacketIndex:
    """Where each shown frame (presentation order) sits in the packet list (decode order)."""

    packet_pts: np.ndarray  # [P] pts of each packet, decode order
    packet_of_frame: np.ndarray  # [N] decode-order position of frame i's packet
    keyframe_positions: np.ndarray  # [K] decode-order positions of keyframes, increasing
    last_duration: int = 0  # pts units the last shown frame lasts (0: unknown)

    @classmethod
    def from_packets(
        cls,
        pts: Sequence[int | None],
        keyframe: Sequence[bool],
        discard: Sequence[bool] | None = None,
        duration: Sequence[int] | None = None,
    ) -> PacketIndex:
        """Index from each packet's pts, keyframe and discard flags, in decode order."""
        if not pts:
            raise PacketIndexError("no video packets")
        if any(p is None for p in pts):
            raise PacketIndexError("packets without a presentation timestamp")
        pts_arr = np.asarray(pts, dtype=np.int64)
        shown = np.ones(len(pts_arr), bool) if discard is None else ~np.asarray(discard, bool)
        positions = np.flatnonzero(shown)
        if len(positions) == 0:
            raise PacketIndexError("every packet is cut by the edit list")
        order = positions[np.argsort(pts_arr[positions], kind="stable")]
        if np.any(np.diff(pts_arr[order]) == 0):
            raise PacketIndexError("two packets share a presentation timestamp")
        keys = np.flatnonzero(np.asarray(keyframe, dtype=bool))
        if len(keys) == 0 or keys[0] != 0:
            raise PacketIndexError("the stream does not start with a keyframe")
        last = int(duration[order[-1]]) if duration is not None else 0
        return cls(pts_arr, order, keys, max(last, 0))

    @property
    def num_frames(self) -> int:
        return len(self.packet_of_frame)

    @property
    def frame_pts(self) -> np.ndarray:
        """`[N]` pts of frame i (presentation order), increasing."""
        return self.packet_pts[self.packet_of_frame]

    def run_start(self, frame: int) -> int:
        """Decode position of the keyframe to start from to reconstruct `frame`.

        The last keyframe at or before the frame's packet, stepping back further while that
        keyframe would be shown after the frame (a leading picture of an open GOP refers to
        the previous GOP).
        """
        position = self.packet_of_frame[frame]
        pts = self.packet_pts[position]
        k = int(np.searchsorted(self.keyframe_positions, position, side="right")) - 1
        while k > 0 and self.packet_pts[self.keyframe_positions[k]] > pts:
            k -= 1
        return int(self.keyframe_positions[k])

    def runs(self, frames: Sequence[int]) -> list[tuple[int, int]]:
        """Inclusive decode-position ranges to feed so every frame in `frames` comes out.

        Frames that share a starting keyframe share one run (from it to the last of their
        packets); runs never overlap, so no packet is decoded twice.
        """
        ends: dict[int, int] = {}
        for frame in sorted(set(int(f) for f in frames)):
            if not 0 <= frame < self.num_frames:
                raise IndexError(f"frame {frame} outside 0..{self.num_frames - 1}")
            start = self.run_start(frame)
            ends[start] = max(ends.get(start, start), int(self.packet_of_frame[frame]))
        merged: list[tuple[int, int]] = []
        for start, end in sorted(ends.items()):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged


class FrameSource(Protocol):
    """What the decode stage needs from a video stream, whichever decoder reads it."""

    width: int  # coded size
    height: int

    def frame_times_s(self) -> np.ndarray: ...

    def duration_s(self) -> float: ...

    def iter_frames(self, frames: Sequence[int]) -> Iterator[tuple[int, Any]]: ...


def open_container(source: VideoSource) -> Any:
    """A PyAV input container on in-memory bytes or a local file."""
    import av

    return av.open(io.BytesIO(source) if isinstance(source, bytes) else source)


def _video_stream(container: Any) -> Any:
    if not container.streams.video:
        raise NoVideoStreamError("no video stream")
    stream = container.streams.video[0]
    stream.codec_context.thread_count = 1
    return stream


class PacketDecoder:
    """A video's frames decoded on demand from packet runs (see the module docstring).

    Single-threaded on purpose: decode tasks are one per video and one per core, so extra
    decoder threads would only contend with the neighbouring tasks.
    """

    def __init__(self, source: VideoSource) -> None:
        self._source = source
        pts: list[int | None] = []
        keys: list[bool] = []
        discard: list[bool] = []
        durations: list[int] = []
        with open_container(source) as container:
            stream = _video_stream(container)
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                pts.append(packet.pts)
                keys.append(packet.is_keyframe)
                discard.append(packet.is_discard)
                durations.append(packet.duration or 0)
            declared = stream.frames
            self.time_base = stream.time_base
            self.width = stream.codec_context.width
            self.height = stream.codec_context.height
        if declared and len(pts) < declared:
            raise TruncatedStreamError(
                f"truncated: {len(pts)} of the {declared} frames its index lists are present"
            )
        self.index = PacketIndex.from_packets(pts, keys, discard, durations)
        self.frames_decoded = 0  # frames the codec produced, asked for or not

    def frame_times_s(self) -> np.ndarray:
        """Presentation time of every shown frame, seconds from the first one."""
        frame_pts = self.index.frame_pts
        return (frame_pts - frame_pts[0]).astype(np.float64) * float(self.time_base)

    def duration_s(self) -> float:
        """From the first frame's start to the last frame's end."""
        return _duration(self.frame_times_s(), self.index.last_duration * float(self.time_base))

    def iter_frames(self, frames: Sequence[int]) -> Iterator[tuple[int, Any]]:
        """`(frame number, av.VideoFrame)` for each requested frame as it is decoded.

        Frames the decoder did not produce (a damaged stream) are simply not yielded; the
        caller decides what that means.
        """
        index = self.index
        pts = index.packet_pts
        wanted = {int(pts[index.packet_of_frame[f]]): int(f) for f in frames}
        runs = index.runs(list(wanted.values()))
        if not runs:
            return
        done: set[int] = set()
        with open_container(self._source) as container:
            stream = _video_stream(container)
            codec = stream.codec_context
            run = 0
            start, end = runs[0]
            position = -1
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                position += 1
                if position < start:
                    continue
                if position >= len(pts) or packet.pts != pts[position]:
                    raise PacketIndexError("the stream's packets changed between two reads")
                codec.skip_frame = "DEFAULT" if int(pts[position]) in wanted else "NONREF"
                yield from self._collect(_decode_packet(codec, packet), wanted, done)
                if position == end:
                    codec.skip_frame = "DEFAULT"
                    yield from self._collect(codec.decode(None), wanted, done)
                    codec.flush_buffers()
                    run += 1
                    if run == len(runs):
                        return
                    start, end = runs[run]

    def _collect(self, decoded, wanted: dict[int, int], done: set[int]):
        for frame in decoded:
            self.frames_decoded += 1
            number = wanted.get(frame.pts)
            if number is not None and number not in done:
                done.add(number)
                yield number, frame

    def rgb_frames(self, frames: Sequence[int]) -> dict[int, np.ndarray]:
        """uint8 `[H, W, 3]` (coded orientation) per requested frame that was decoded."""
        return {n: f.to_ndarray(format="rgb24") for n, f in self.iter_frames(frames)}


class SequentialDecoder:
    """Every frame decoded in order: for streams whose packets cannot be indexed.

    Frames are numbered in the order the decoder outputs them and timed by their best-effort
    timestamps (the frame rate where there are none). A first pass learns the times, and each
    request decodes from the start again, so this is slow and used only when it must be.
    """

    def __init__(self, source: VideoSource) -> None:
        self._source = source
        stamps: list[int | None] = []
        with open_container(source) as container:
            stream = _video_stream(container)
            for frame in container.decode(stream):
                stamps.append(frame.pts if frame.pts is not None else frame.dts)
            self.width = stream.codec_context.width
            self.height = stream.codec_context.height
            rate = stream.average_rate or stream.guessed_rate or 25
            time_base = stream.time_base
        if not stamps:
            raise PacketIndexError("the decoder produced no frames")
        if any(s is None for s in stamps) or time_base is None:
            times = np.arange(len(stamps), dtype=np.float64) / float(rate)
        else:
            times = np.asarray(stamps, dtype=np.float64) * float(time_base)
            times = np.maximum.accumulate(times - times[0])  # never backwards
        self._times = times
        self._frame_s = 1.0 / float(rate)
        self.frames_decoded = 0

    def frame_times_s(self) -> np.ndarray:
        return self._times

    def duration_s(self) -> float:
        return _duration(self._times, self._frame_s)

    def iter_frames(self, frames: Sequence[int]) -> Iterator[tuple[int, Any]]:
        wanted = sorted(set(int(f) for f in frames))
        if not wanted:
            return
        remaining = set(wanted)
        with open_container(self._source) as container:
            stream = _video_stream(container)
            for number, frame in enumerate(container.decode(stream)):
                self.frames_decoded += 1
                if number in remaining:
                    remaining.discard(number)
                    yield number, frame
                    if not remaining:
                        return


def _decode_packet(codec: Any, packet: Any) -> list[Any]:
    """Frames out of one packet; a damaged packet gives none (as FFmpeg's own tools go on),
    and the frames that depended on it are the ones that do not come out."""
    import av

    try:
        return codec.decode(packet)
    except av.InvalidDataError:
        return []


def _duration(times: np.ndarray, last_frame_s: float) -> float:
    """Last frame's time plus how long it lasts (its packet duration, else the last gap)."""
    if last_frame_s <= 0:
        last_frame_s = float(times[-1] - times[-2]) if len(times) > 1 else 0.0
    if last_frame_s <= 0:
        last_frame_s = 1.0 / 25  # a single frame of unknown length
    return float(times[-1]) + last_frame_s


def open_frame_source(source: VideoSource) -> FrameSource:
    """The packet decoder where the stream can be indexed, the sequential one otherwise."""
    try:
        return PacketDecoder(source)
    except PacketIndexError:
        return SequentialDecoder(source)
