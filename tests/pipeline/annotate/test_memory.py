"""Sizing a batch from measured memory: the search (pure, on hand-made memory curves), and the
measurement it runs, on the toy checkpoint, against the annotator's own calls."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.annotate.memory import (
    BatchSizing,
    clip_frames,
    fit_line,
    largest_fitting,
    measure_for_gpu,
    next_batch,
    search_batches,
)
from pipeline.annotate.prompts import PromptSettings
from pipeline.clips.sampling import SamplingConfig
from pipeline.core.storage import StorageOptions


def _recorded(curve):
    calls: list[int] = []

    def peak_at(batch: int) -> int:
        calls.append(batch)
        return curve(batch)

    return peak_at, calls


def test_a_line_through_two_measured_batches():
    assert fit_line((1, 110), (8, 180)) == (100.0, 10.0)
    assert fit_line((8, 180), (1, 110)) == (100.0, 10.0)


def test_a_straight_curve_is_found_in_three_measurements():
    """100 + 10 b bytes, 1,000 of room: 1 and 8 measured, the line says 90, 90 is measured and
    fits, and the line through 8 and 90 points at nothing larger."""
    peak_at, calls = _recorded(lambda b: 100 + 10 * b)
    measured = search_batches(peak_at, room=1000)
    assert calls == [1, 8, 90] and measured == {1: 110, 8: 180, 90: 1000}
    assert largest_fitting(measured, 1000) == 90


def test_a_curve_that_steepens_is_never_trusted_past_what_was_measured():
    """10 b + 20 (b - 50) past 50 clips (100 bytes fixed), 1,000 of room: the true limit is 63.
    The first line (1, 8) says 90, which does not fit; each next line runs through the best
    fitting and the smallest failing batch measured: (8, 90) says 49, (49, 90) says 62 and
    (62, 90) says 63, which fits; 6 measurements, and 63 is one of them."""

    def curve(b: int) -> int:
        return 100 + 10 * b + 20 * max(0, b - 50)

    peak_at, calls = _recorded(curve)
    measured = search_batches(peak_at, room=1000)
    assert calls == [1, 8, 90, 49, 62, 63]
    assert largest_fitting(measured, 1000) == 63
    assert curve(64) > 1000  # 63 is the true limit


def test_nothing_fits_or_everything_fits():
    assert search_batches(lambda b: 2000 * b, room=1000) == {1: 2000, 8: 16000}
    assert largest_fitting({1: 2000, 8: 16000}, 1000) == 0
    measured = search_batches(lambda b: b, room=10**9, most=64)
    assert measured == {1: 1, 8: 8, 64: 64}  # capped at the largest batch a config takes
    assert next_batch(measured, 10**9, most=64) is None


def test_per_clip_bytes_come_from_the_two_largest_fitting_batches():
    sizing = BatchSizing(
        batch=90, gpu_bytes=1500, weights_bytes=500, dtype="bfloat16", frames=16,
        measured={1: 110, 8: 180, 90: 1000, 95: 1200},
    )  # fmt: skip
    assert sizing.per_clip_bytes == (1000 - 180) // (90 - 8) == 10
    assert sizing.fits(1000) and not sizing.fits(1001)


def test_frames_per_clip_are_the_most_a_clip_gets():
    assert clip_frames(SamplingConfig(), 16) == 16  # left to the checkpoint
    assert clip_frames(SamplingConfig(num_frames=8), 16) == 8
    assert clip_frames(SamplingConfig(mode="fps", fps=2.0, max_frames=40), 16) == 40


def test_the_trace_asks_what_the_annotator_asks():
    """The annotator's own `_annotate_clips` and `model.memory.annotate_batch` run on the same
    model and clips, on a CPU, hold the very same bytes at their peaks: the measured calls
    are the annotator's calls."""
    from model.memory import LiveBytes, Questions, annotate_batch
    from pipeline.annotate.annotator import Annotator
    from tests.pipeline.annotate.toy import toy_settings

    prompts = PromptSettings()
    annotator = Annotator(toy_settings("r", prompts, max_new_tokens=12, tag_max_new_tokens=6))
    rng = np.random.default_rng(3)
    clips = [rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8) for _ in range(2)]
    with LiveBytes("cpu") as theirs:
        annotator._annotate_clips(clips)
    asked = Questions(caption=prompts.caption, caption_tokens=12, tags=prompts.tags, tag_tokens=6)
    with LiveBytes("cpu") as ours:
        annotate_batch(annotator.model, clips, asked)
    assert ours.peak == theirs.peak > 0


def test_the_toy_checkpoint_is_sized_from_measured_batches_only():
    from model.checkpoint import TOY_CHECKPOINT_DIR

    gpu = 4_351_360 + 20_000_000  # the toy's bf16 weights and 20 MB
    sizing = measure_for_gpu(
        str(TOY_CHECKPOINT_DIR), StorageOptions(), "bfloat16", 8, PromptSettings(), (64, 32), gpu
    )
    assert sizing.weights_bytes == 4_351_360  # bf16, not the file's 4,368,928 bytes
    assert len(sizing.measured) >= 3 and sizing.batch in sizing.measured
    assert sizing.batch == max(b for b, p in sizing.measured.items() if sizing.fits(p)) > 8
    assert sizing.per_clip_bytes == pytest.approx(sizing.measured[8] / 8, rel=0.2)
