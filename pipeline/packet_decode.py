"""Decode only the frames asked for and the reference frames they depend on.

Sampling 16 frames from a 10 s window means decoding every frame from the keyframe before each
sampled frame up to it: `get_batch` does exactly that. But about half of those frames are
non-reference frames (B-frames no other frame is predicted from): nothing needs them unless
they are sampled themselves. Here the decoder is told, packet by packet, to discard
non-reference frames that were not asked for (libavcodec's `skip_frame = NONREF`), which roughly
halves the decoding work while the frames asked for come out bit-identical.

The planning (which packets to feed for which frames) is pure and lives in `PacketIndex`;
`PacketDecoder` is the thin PyAV adapter. Frame numbers are presentation order, the numbering
decord (and so the published loaders) use; `pipeline.decode` checks the two agree and falls
back to decord's `get_batch` when they do not.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class PacketIndexError(ValueError):
    """The stream's packets cannot be mapped to frames (missing or repeated timestamps)."""


@dataclass(frozen=True)
class PacketIndex:
    """Where each frame (presentation order) sits in the packet list (decode order)."""

    packet_pts: np.ndarray  # [N] pts of each packet, decode order
    packet_of_frame: np.ndarray  # [N] decode-order position of frame i's packet
    keyframe_positions: np.ndarray  # [K] decode-order positions of keyframes, increasing

    @classmethod
    def from_packets(cls, pts: Sequence[int | None], keyframe: Sequence[bool]) -> PacketIndex:
        """Index from each packet's pts and keyframe flag, in decode order."""
        if not pts:
            raise PacketIndexError("no video packets")
        if any(p is None for p in pts):
            raise PacketIndexError("packets without a presentation timestamp")
        pts_arr = np.asarray(pts, dtype=np.int64)
        order = np.argsort(pts_arr, kind="stable")  # decode positions in presentation order
        if np.any(np.diff(pts_arr[order]) == 0):
            raise PacketIndexError("two packets share a presentation timestamp")
        keys = np.flatnonzero(np.asarray(keyframe, dtype=bool))
        if len(keys) == 0 or keys[0] != 0:
            raise PacketIndexError("the stream does not start with a keyframe")
        return cls(packet_pts=pts_arr, packet_of_frame=order, keyframe_positions=keys)

    @property
    def num_frames(self) -> int:
        return len(self.packet_pts)

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


class PacketDecoder:
    """The video stream of in-memory bytes: packets demuxed once, frames decoded on demand.

    Single-threaded on purpose: decode tasks are one per video and one per core, so extra
    decoder threads would only contend with the neighbouring tasks.
    """

    def __init__(self, data: bytes) -> None:
        import av

        self._container = av.open(io.BytesIO(data))
        stream = self._container.streams.video[0]
        self._codec = stream.codec_context
        self._codec.thread_count = 1
        self._packets = [p for p in self._container.demux(stream) if p.size > 0]
        self.index = PacketIndex.from_packets(
            [p.pts for p in self._packets], [p.is_keyframe for p in self._packets]
        )
        self.time_base = stream.time_base
        self.width, self.height = self._codec.width, self._codec.height
        self.frames_decoded = 0  # frames the codec produced, asked for or not

    def frame_times_s(self) -> np.ndarray:
        """Presentation time of every frame, seconds from the stream's time origin."""
        return self.index.frame_pts.astype(np.float64) * float(self.time_base)

    def rgb_frames(self, frames: Sequence[int]) -> dict[int, np.ndarray]:
        """uint8 `[H, W, 3]` per requested frame number; frames the decoder did not produce
        (a damaged stream) are absent, for the caller to deal with."""
        pts = self.index.packet_pts
        wanted = {int(pts[self.index.packet_of_frame[f]]): int(f) for f in frames}
        out: dict[int, np.ndarray] = {}
        for start, end in self.index.runs(list(wanted.values())):
            self._codec.flush_buffers()
            for position in range(start, end + 1):
                asked = int(pts[position]) in wanted
                self._codec.skip_frame = "DEFAULT" if asked else "NONREF"
                self._collect(self._codec.decode(self._packets[position]), wanted, out)
            self._codec.skip_frame = "DEFAULT"
            self._collect(self._codec.decode(None), wanted, out)
        return out

    def _collect(self, decoded, wanted: dict[int, int], out: dict[int, np.ndarray]) -> None:
        for frame in decoded:
            self.frames_decoded += 1
            number = wanted.get(frame.pts)
            if number is not None and number not in out:
                out[number] = frame.to_ndarray(format="rgb24")
