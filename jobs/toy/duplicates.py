"""A corpus of duplicate footage with known answers, for footage dedup and `similar`.

Toy-world originals, each followed by copies that are the same footage as people re-upload it
(re-encoded at another quality, rescaled, cropped by up to 10%, cut up to half a second later),
plus different footage with the same caption (same colour, shape and motion; another
background and path), which footage dedup must never group. `truth.jsonl` says, per file,
what it is and which original it copies. The tests, the fingerprint measurement and
`benchmarks/similar.py` all generate it; nothing is stored.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from model.toy.video_io import DEFAULT_CRF, write_mp4
from model.toy.world import make_clips, make_toy_clip, render_clip, sample_clip_spec

COPY_KINDS = ("reencoded", "rescaled", "cropped", "shifted")
TRUTH = "truth.jsonl"


@dataclass(frozen=True)
class CorpusVideo:
    """One file of the corpus: `source` is the original it copies (None: not a copy)."""

    name: str
    kind: str
    """`original`, one of `COPY_KINDS`, or `same_caption` (different footage)."""
    caption: str
    source: str | None = None


def _even(n: float) -> int:
    return max(2, round(n / 2) * 2)


def _resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.stack(
        [np.asarray(Image.fromarray(f).resize((width, height), Image.BILINEAR)) for f in frames]
    )


def copy_frames(
    frames: np.ndarray, kind: str, rng: np.random.Generator, fps: int
) -> tuple[np.ndarray, int]:
    """`frames` as a copy of `kind` would show them, and the CRF to encode them with."""
    t, h, w, _ = frames.shape
    if kind == "reencoded":
        return frames, int(rng.integers(30, 37))
    if kind == "rescaled":
        scale = float(rng.choice([0.75, 1.25]))
        return _resize(frames, _even(h * scale), _even(w * scale)), DEFAULT_CRF
    if kind == "cropped":
        frac = float(rng.uniform(0.05, 0.10))  # of each side's length, in all
        ch, cw = _even(h * (1 - frac)), _even(w * (1 - frac))
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        return frames[:, top : top + ch, left : left + cw], DEFAULT_CRF
    if kind == "shifted":
        drop = round(float(rng.uniform(0.25, 0.5)) * fps)
        return frames[min(drop, t - 1) :], DEFAULT_CRF
    raise ValueError(f"unknown copy kind {kind!r}")


def write_duplicate_corpus(
    out_dir: str | Path,
    seed: int,
    originals: int,
    *,
    copies_per_original: int = 1,
    same_caption: int = 0,
    num_frames: int = 48,
    size: int = 128,
    fps: int = 24,
) -> list[CorpusVideo]:
    """Write the corpus under `out_dir` (MP4s and `truth.jsonl`); its videos in file order.

    Original `i` gets `copies_per_original` copies, their kinds cycling through `COPY_KINDS`
    from `i`; the first `same_caption` originals get a different-footage twin each.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    videos: list[CorpusVideo] = []

    def write(frames: np.ndarray, video: CorpusVideo, crf: int = DEFAULT_CRF) -> None:
        write_mp4(np.ascontiguousarray(frames), out / video.name, fps=fps, crf=crf)
        videos.append(video)

    for i, clip in enumerate(make_clips(seed, originals)):
        frames = render_clip(clip.spec, num_frames, size)
        original = f"v{i:04d}_original.mp4"
        write(frames, CorpusVideo(original, "original", clip.caption))
        for c in range(copies_per_original):
            kind = COPY_KINDS[(i + c) % len(COPY_KINDS)]
            copied, crf = copy_frames(frames, kind, rng, fps)
            write(copied, CorpusVideo(f"v{i:04d}_{kind}{c}.mp4", kind, clip.caption, original), crf)
        if i < same_caption:
            s = clip.spec
            twin = make_toy_clip(
                sample_clip_spec(rng, colour=s.colour, shape=s.shape, motion=s.motion)
            )
            name = f"v{i:04d}_same_caption.mp4"
            write(
                render_clip(twin.spec, num_frames, size),
                CorpusVideo(name, "same_caption", twin.caption),
            )
    with open(out / TRUTH, "w", encoding="utf-8") as fh:
        for video in videos:
            fh.write(json.dumps(asdict(video)) + "\n")
    return videos


def duplicate_pairs(videos: list[CorpusVideo]) -> set[frozenset[str]]:
    """Every pair of names that is the same footage (an original with each of its copies, and
    copies of one original with each other)."""
    groups: dict[str, list[str]] = {}
    for video in videos:
        if video.kind != "same_caption":
            groups.setdefault(video.source or video.name, []).append(video.name)
    return {frozenset((a, b)) for names in groups.values() for a in names for b in names if a < b}
