"""Judge a toy checkpoint end to end: MP4 -> decode -> frame sampling -> model -> answers.

    python -m jobs.toy.evaluate --checkpoint model/toy/checkpoint --seed 12345 --n 200

Fresh clips (a seed training never used) are written as H.264 MP4, read back with the
pipeline's own decode and uniform frame sampling, and asked the user-facing prompts. Reported:
exact-match caption accuracy (batches of 8 and one by one, and whether both agree), tag F1 of
the generated tag lists, F1 of taxonomy scoring at 0.5 (the pipeline's default, the likelihood
of listing each tag; the yes/no answers' F1 is shown beside it, without a threshold), and for
moving clips how often the frames fed in reverse order flip the predicted direction. Exits 1 if
a threshold is missed.
The pieces are plain functions so tests can run them on a handful of clips.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.processing import FrameProcessor
from model.prompts import CAPTION_PROMPT, TAG_PROMPT, TAXONOMY_QUESTION
from model.toy.video_io import write_toy_videos
from model.toy.world import _CAPTION_MOTION, TAXONOMY, ToyClip, reverse_direction
from pipeline.clips.sampling import SamplingConfig, sample_frame_indices
from pipeline.decode.video import open_video, read_frames, video_meta

DEFAULT_NUM_FRAMES = 8
THRESHOLDS = {
    "caption_acc_batched": 0.95,
    "caption_acc_single": 0.95,
    "batch_single_agreement": 1.0,
    "tag_f1": 0.95,
    "taxonomy_f1": 0.95,
    "reverse_flip_rate": 0.90,
}


@dataclass(frozen=True)
class EvalClip:
    """A decoded clip as the pipeline hands it to the model, with its ground truth."""

    frames: np.ndarray  # uint8 [T, S, S, 3]
    truth: ToyClip


def model_num_frames(model) -> int:
    """Frames per clip the checkpoint was trained on (`clipnote.num_frames` in its config)."""
    return int((model.config.raw.get("clipnote") or {}).get("num_frames", DEFAULT_NUM_FRAMES))


def decode_clip(path: Path, processor: FrameProcessor, num_frames: int) -> np.ndarray:
    """uint8 `[T, S, S, 3]`: the pipeline's decode and uniform sampling over the whole video."""
    reader = open_video(Path(path).read_bytes())
    meta = video_meta(reader)
    indices = sample_frame_indices(
        meta.num_frames, meta.fps, 0.0, meta.duration_s, SamplingConfig(num_frames=num_frames)
    )
    return read_frames(reader, indices, processor)


def write_and_decode(model, out_dir: Path, seed: int, n: int) -> list[EvalClip]:
    """Write `make_clips(seed, n)` as MP4 under `out_dir` and read them back for `model`."""
    written = write_toy_videos(out_dir, seed=seed, n=n)
    num_frames = model_num_frames(model)
    return [
        EvalClip(decode_clip(path, model.processor, num_frames), clip) for path, clip in written
    ]


def in_batches(fn, items: Sequence, batch_size: int) -> list:
    """`fn` over consecutive slices of `items`, results concatenated in order."""
    out: list = []
    for start in range(0, len(items), batch_size):
        out.extend(fn(list(items[start : start + batch_size])))
    return out


def caption_motion(caption: str) -> str | None:
    """The motion a caption states ('left', ..., 'still'), None if it states none."""
    for motion, phrase in _CAPTION_MOTION.items():
        if caption.endswith(phrase):
            return motion
    return None


def f1(predicted: Sequence[Sequence[str]], truth: Sequence[Sequence[str]]) -> float:
    """Micro F1 over all (clip, tag) pairs."""
    tp = sum(len(set(p) & set(t)) for p, t in zip(predicted, truth, strict=True))
    n_pred = sum(len(set(p)) for p in predicted)
    n_true = sum(len(set(t)) for t in truth)
    if n_pred + n_true == 0:
        return 1.0
    return 2 * tp / (n_pred + n_true)


def taxonomy_predictions(scores: np.ndarray, threshold: float = 0.5) -> list[list[str]]:
    """Tags whose yes-probability clears `threshold`, per clip."""
    return [[t for t, s in zip(TAXONOMY, row, strict=True) if s >= threshold] for row in scores]


def score_taxonomy_accuracy(scores: np.ndarray, truth: Sequence[Sequence[str]]) -> float:
    """Share of (clip, tag) yes/no decisions at 0.5 that match the truth."""
    expected = np.array([[t in tags for t in TAXONOMY] for tags in truth])
    return float(((scores >= 0.5) == expected).mean())


def captions(model, frames: list[np.ndarray]) -> list[str]:
    """The model's captions of uint8 clips `frames` (one pass of the vision tower)."""
    return [a.text for a in model.caption(model.encode_frames(frames), CAPTION_PROMPT)]


def answers(model, frames: list[np.ndarray]) -> list[tuple[str, list[str], np.ndarray, np.ndarray]]:
    """Per clip: caption, generated tags, taxonomy scores (listing) and yes/no scores, all
    asked of one pass of the vision tower."""
    video = model.encode_frames(frames)
    caps = [a.text for a in model.caption(video, CAPTION_PROMPT)]
    tags = [t.tags for t in model.generate_tags(video, TAG_PROMPT)]
    listing = model.score_tags(video, list(TAXONOMY), TAG_PROMPT).scores
    yes_no = model.score_tags(video, list(TAXONOMY), TAXONOMY_QUESTION, method="yes_no").scores
    return list(zip(caps, tags, listing, yes_no, strict=True))


def reverse_flip_rate(model, clips: Sequence[EvalClip], batch_size: int = 8) -> float:
    """For moving clips: share whose reversed frames get the reversed direction in the caption."""
    moving = [c for c in clips if c.truth.spec.motion != "still"]
    if not moving:
        return 1.0
    reversed_frames = [np.ascontiguousarray(c.frames[::-1]) for c in moving]
    got = in_batches(lambda b: captions(model, b), reversed_frames, batch_size)
    hits = [
        caption_motion(cap) == reverse_direction(c.truth.spec.motion)
        for cap, c in zip(got, moving, strict=True)
    ]
    return float(np.mean(hits))


def evaluate(model, clips: Sequence[EvalClip], batch_size: int = 8) -> dict[str, float]:
    """All metrics of the module docstring for decoded clips."""
    frames = [c.frames for c in clips]
    truth_caps = [c.truth.caption for c in clips]
    truth_tags = [list(c.truth.tags) for c in clips]
    asked = in_batches(lambda b: answers(model, b), frames, batch_size)
    batched = [a[0] for a in asked]
    tags = [a[1] for a in asked]
    scores = np.stack([a[2] for a in asked])
    yes_no = np.stack([a[3] for a in asked])
    single = in_batches(lambda b: captions(model, b), frames, 1)
    return {
        "clips": float(len(clips)),
        "caption_acc_batched": float(
            np.mean([p == t for p, t in zip(batched, truth_caps, strict=True)])
        ),
        "caption_acc_single": float(
            np.mean([p == t for p, t in zip(single, truth_caps, strict=True)])
        ),
        "batch_single_agreement": float(
            np.mean([a == b for a, b in zip(batched, single, strict=True)])
        ),
        "tag_f1": f1(tags, truth_tags),
        "tag_exact": float(np.mean([p == t for p, t in zip(tags, truth_tags, strict=True)])),
        "taxonomy_f1": f1(taxonomy_predictions(scores), truth_tags),
        "taxonomy_acc": score_taxonomy_accuracy(scores, truth_tags),
        "yes_no_f1": f1(taxonomy_predictions(yes_no), truth_tags),
        "reverse_flip_rate": reverse_flip_rate(model, clips, batch_size),
    }


def failures(metrics: dict[str, float]) -> list[str]:
    """Names of the thresholds `metrics` misses."""
    return [k for k, bound in THRESHOLDS.items() if metrics[k] < bound]


def format_table(metrics: dict[str, float]) -> str:
    lines = [f"{'metric':<24} {'value':>8} {'needs':>8}  ok"]
    for key, value in metrics.items():
        bound = THRESHOLDS.get(key)
        need = f">={bound:.2f}" if bound is not None else ""
        ok = "" if bound is None else ("yes" if value >= bound else "NO")
        shown = f"{int(value)}" if key == "clips" else f"{value:.4f}"
        lines.append(f"{key:<24} {shown:>8} {need:>8}  {ok}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=Path("model/toy/checkpoint"))
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch

    from model import load_model

    torch.set_num_threads(args.threads)
    started = time.time()
    model = load_model(args.checkpoint, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        clips = write_and_decode(model, Path(tmp), args.seed, args.n)
    print(f"wrote and decoded {len(clips)} MP4 clips in {time.time() - started:.0f}s")
    metrics = evaluate(model, clips, args.batch_size)
    print(format_table(metrics))
    missed = failures(metrics)
    print(f"total {time.time() - started:.0f}s; " + (f"MISSED: {missed}" if missed else "all ok"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
