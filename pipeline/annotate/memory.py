"""The largest annotate batch that fits a GPU, from memory the real forward was measured to use.

`model.memory` measures one batch: the model built on the meta device at the dtype an actor
loads it in, the annotator's calls run on it, the peak of live tensor bytes counted. Here:

- `search_batches` (pure) picks which batch sizes to measure: two to start (1 and 8), then
  where the straight line through the two measured sizes nearest the limit says the limit is,
  until the line points at nothing larger than the best fitting size measured. Memory is not
  quite linear in the batch (the vision tower runs in slices of 256 frames, so its
  activations stop growing once a batch fills a slice), which is why a line is only ever a
  guess of where to measure next: the recommended batch is always one that was measured and
  fits, never one the line reached on its own.
- `measure_for_gpu` reads the checkpoint's `config.json` and tokenizer (a few KB, from any
  storage; never the weights), builds the meta model and runs the search.

torch and the model are imported by `measure_for_gpu` only; the rest is plain Python.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.annotate.prompts import PromptSettings
from pipeline.clips.sampling import SamplingConfig
from pipeline.core.storage import StorageOptions, filesystem, is_remote, join, strip_scheme

START_BATCHES = (1, 8)
MOST_BATCH = 1024
"""The largest `model.batch_size` a config accepts."""
MAX_TRACES = 6
"""Measurements per search: seconds each at full size, so a handful."""
_TEXT_SUFFIXES = (".json", ".txt", ".model", ".tiktoken")
"""Checkpoint files the meta model needs (config, tokenizer, preprocessor); weights never."""


@dataclass(frozen=True)
class BatchSizing:
    """What the search found: `batch` 0 when not even one clip fits beside the weights."""

    batch: int
    gpu_bytes: int
    """Bytes of the GPU the weights and the batch may use (its memory less a margin)."""
    weights_bytes: int
    """Parameters and buffers at the dtype the actor loads them in (`dtype`)."""
    dtype: str
    frames: int
    """Frames per clip measured with (the most a clip gets)."""
    measured: dict[int, int]
    """Batch size -> peak bytes beyond the weights, as traced."""

    @property
    def per_clip_bytes(self) -> int | None:
        """Bytes one more clip adds, between the two largest measured sizes that fit."""
        fits = sorted(b for b, peak in self.measured.items() if self.fits(peak))
        if len(fits) < 2:
            return None
        lo, hi = fits[-2], fits[-1]
        return round((self.measured[hi] - self.measured[lo]) / (hi - lo))

    def fits(self, peak: int) -> bool:
        return self.weights_bytes + peak <= self.gpu_bytes


def fit_line(a: tuple[int, int], b: tuple[int, int]) -> tuple[float, float]:
    """(fixed, per clip) bytes of the line through two measured (batch, bytes) points."""
    (b1, p1), (b2, p2) = sorted([a, b])
    per_clip = (p2 - p1) / (b2 - b1)
    return p1 - per_clip * b1, per_clip


def next_batch(measured: dict[int, int], room: int, most: int = MOST_BATCH) -> int | None:
    """The next batch size to measure, or None when the search is done.

    `room`: bytes a batch may take beyond the weights. The line goes through the largest size
    that fits and the smallest that does not (or the two largest, when all fit); its guess is
    kept strictly between those two, so every step measures something new.
    """
    fits = sorted(b for b, peak in measured.items() if peak <= room)
    over = sorted(b for b, peak in measured.items() if peak > room)
    best = fits[-1] if fits else 0
    ceiling = over[0] if over else most + 1
    if ceiling - best <= 1:
        return None
    points = [best, ceiling] if fits and over else fits[-2:]
    if len(points) < 2:
        return None
    fixed, per_clip = fit_line(*((b, measured[b]) for b in points))
    guess = most if per_clip <= 0 else math.floor((room - fixed) / per_clip)
    guess = min(guess, ceiling - 1)
    return guess if guess > best else None


def search_batches(
    peak_at: Callable[[int], int],
    room: int,
    start: tuple[int, ...] = START_BATCHES,
    most: int = MOST_BATCH,
    traces: int = MAX_TRACES,
) -> dict[int, int]:
    """Measure `peak_at` (batch -> peak bytes beyond the weights) at the sizes `next_batch`
    picks; the largest measured size whose peak is within `room` is the answer."""
    measured = {b: peak_at(b) for b in sorted({min(b, most) for b in start})}
    while len(measured) < traces:
        batch = next_batch(measured, room, most)
        if batch is None:
            break
        measured[batch] = peak_at(batch)
    return measured


def largest_fitting(measured: dict[int, int], room: int) -> int:
    return max((b for b, peak in measured.items() if peak <= room), default=0)


def clip_frames(sampling: SamplingConfig, checkpoint_frames: int) -> int:
    """The most frames a clip gets: `num_frames` (or the checkpoint's) for uniform sampling,
    `max_frames` for fps sampling."""
    if sampling.mode == "fps":
        return sampling.max_frames
    return sampling.num_frames or checkpoint_frames


def measure_for_gpu(
    source: str,
    options: StorageOptions,
    dtype: str,
    frames: int,
    prompts: PromptSettings,
    tokens: tuple[int, int],
    gpu_bytes: int,
) -> BatchSizing:
    """Size the batch of the checkpoint at `source` for a GPU of which `gpu_bytes` may be used,
    with the run's prompts and token limits (`tokens`: caption, tags) at `dtype`."""
    import torch

    from model import load_tokenizer
    from model.checkpoint import read_config
    from model.memory import Questions, meta_model, peak_bytes, weight_bytes
    from model.processing import FrameProcessor

    asked = Questions(
        caption=prompts.caption, caption_tokens=tokens[0], tag_mode=prompts.tag_mode,
        tags=prompts.tags, tag_tokens=tokens[1], taxonomy=tuple(prompts.taxonomy),
        taxonomy_method=prompts.taxonomy_method, taxonomy_question=prompts.taxonomy_question,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="clipnote-memory-") as tmp:
        root = _text_files(source, options, Path(tmp))
        config = read_config(root)
        processor = FrameProcessor.from_checkpoint(root, default_size=config.image_size)
        model = meta_model(config, load_tokenizer(root), getattr(torch, dtype), processor)
    weights = weight_bytes(model)
    room = gpu_bytes - weights
    measured: dict[int, int] = {}
    if room > 0:
        measured = search_batches(lambda b: peak_bytes(model, b, frames, asked), room)
    return BatchSizing(
        batch=largest_fitting(measured, room), gpu_bytes=gpu_bytes, weights_bytes=weights,
        dtype=dtype, frames=frames, measured=measured,
    )  # fmt: skip


def _text_files(source: str, options: StorageOptions, into: Path) -> Path:
    """A local folder holding the checkpoint's config, tokenizer and preprocessor files: the
    checkpoint itself when it is local, else a copy of those files alone."""
    if not is_remote(source):
        return Path(source)
    fs = filesystem(source, options)
    for entry in fs.ls(strip_scheme(source), detail=True):
        name = str(entry["name"]).rsplit("/", 1)[-1]
        if entry.get("type") != "directory" and name.endswith(_TEXT_SUFFIXES):
            fs.get(strip_scheme(join(source, name)), str(into / name))
    return into
