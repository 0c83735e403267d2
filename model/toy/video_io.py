"""Write toy-world clips as real H.264 MP4 files plus a ground-truth manifest.

Encoding through the same codec path as real footage (libx264, yuv420p) means the training
and caption checks exercise the real decode pipeline, chroma subsampling included.
"""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from model.toy.world import ToyClip, make_clips, render_clip

TRUTH_FILE = "truth.jsonl"
DEFAULT_CRF = 18  # visually lossless enough that colour masks survive the round trip
DEFAULT_GOP = 12  # short GOP keeps random-access decoding of sampled frames cheap


def write_mp4(
    frames: np.ndarray,
    path: str | Path,
    fps: int = 24,
    *,
    crf: int = DEFAULT_CRF,
    gop: int = DEFAULT_GOP,
) -> None:
    """Encode uint8 RGB frames ``[T, H, W, 3]`` to an H.264 (libx264, yuv420p) MP4.

    H and W must be even because yuv420p halves the chroma resolution in both axes.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    num_frames, height, width, _ = frames.shape
    if num_frames == 0 or height % 2 or width % 2:
        raise ValueError(f"need >= 1 frame and even H, W for yuv420p, got {frames.shape}")
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "g": str(gop), "preset": "medium"}
        for frame in frames:  # [H, W, 3]
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))  # flush delayed (B-)frames


def clip_record(
    name: str, clip: ToyClip, num_frames: int, size: int, fps: int
) -> dict[str, object]:
    """One truth.jsonl row: enough to re-render the clip and to score captions/tags."""
    return {
        "file": name,
        "caption": clip.caption,
        "tags": list(clip.tags),
        "num_frames": num_frames,
        "size": size,
        "fps": fps,
        "spec": dataclasses.asdict(clip.spec),
    }


def write_toy_videos(
    out_dir: str | Path,
    seed: int,
    n: int,
    num_frames: int = 48,
    size: int = 128,
    fps: int = 24,
) -> list[tuple[Path, ToyClip]]:
    """Render ``make_clips(seed, n)`` to ``out_dir/clip_NNNNN.mp4`` and write ``truth.jsonl``.

    Clips carry more frames (default 48 = 2 s at 24 fps) than a model samples (8-16), so
    frame sampling is exercised as it would be on real videos.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[tuple[Path, ToyClip]] = []
    with open(out / TRUTH_FILE, "w", encoding="utf-8") as truth:
        for index, clip in enumerate(make_clips(seed, n)):
            path = out / f"clip_{index:05d}.mp4"
            write_mp4(render_clip(clip.spec, num_frames, size), path, fps=fps)
            record = clip_record(path.name, clip, num_frames, size, fps)
            truth.write(json.dumps(record) + "\n")
            written.append((path, clip))
    return written
