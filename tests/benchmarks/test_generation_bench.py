"""`benchmarks.generation` compares what it says: the same answers both ways, less prefill."""

from __future__ import annotations

from benchmarks.generation import measure


def test_the_shared_path_answers_the_same_with_less_prefill_at_tiny_size():
    result = measure("tiny", batch=2, repeats=1)
    assert result["identical_answers"] is True
    assert result["video_tokens"] == 16
    # both prefill the two questions' own tokens; only the shared way prefills the common
    # prefix (system prompt, 16 video tokens) once instead of twice
    assert result["prefill_gflops_per_clip_shared"] < result["prefill_gflops_per_clip_scratch"]
