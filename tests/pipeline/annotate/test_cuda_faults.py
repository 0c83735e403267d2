"""GPU faults on the CPU, by raising their exception types inside the real toy model's calls:
out of memory halves the batch and goes on; any other CUDA error ends the actor's process
instead of turning every remaining clip into a `model_error` row."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest
import torch

from model.toy.world import make_clips, render_clip
from pipeline.annotate.annotator import Annotator
from pipeline.annotate.cuda_faults import POISONED_EXIT_CODE, CudaFault
from pipeline.annotate.prompts import PromptSettings
from tests.pipeline.annotate.toy import toy_settings

pytestmark = pytest.mark.slow  # the real toy model

CLIPS = make_clips(5353, 4)
SETTINGS = toy_settings(
    "fault-test", PromptSettings(tag_mode="generate"), dtype="float32", device="cpu",
    max_new_tokens=8, tag_max_new_tokens=4,
)  # fmt: skip


def _rows() -> list[dict[str, Any]]:
    return [
        {"video_uri": f"file:///v{i}.mp4", "video_size": 1, "video_version": "1",
         "video_id": f"v{i}", "clip_index": 0, "status": "ok", "error": None,
         "frames": render_clip(clip.spec, 8, 64)}
        for i, clip in enumerate(CLIPS)
    ]  # fmt: skip


@pytest.fixture(scope="module")
def annotator() -> Annotator:
    return Annotator(SETTINGS)


def _inject(annotator: Annotator, monkeypatch, fault) -> list[int]:
    """Wrap the real `encode_frames`: `fault(batch size)` may raise; returns the sizes seen."""
    real = annotator.model.encode_frames
    sizes: list[int] = []

    def encode_frames(clips):
        sizes.append(len(clips))
        fault(len(clips))
        return real(clips)

    monkeypatch.setattr(annotator.model, "encode_frames", encode_frames)
    return sizes


def test_out_of_memory_halves_the_batch_and_every_clip_is_annotated(annotator, monkeypatch):
    expected = [(r["caption"], r["tags"]) for r in annotator.annotate(_rows())]

    def oom_above_two(size: int) -> None:
        if size > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    sizes = _inject(annotator, monkeypatch, oom_above_two)
    out = annotator.annotate(_rows())
    assert sizes == [4, 2, 2]  # halves, not clip by clip
    assert [r["status"] for r in out] == ["ok"] * 4
    assert [(r["caption"], r["tags"]) for r in out] == expected


def test_a_clip_that_alone_does_not_fit_is_its_own_model_error(annotator, monkeypatch):
    def oom_always(size: int) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    sizes = _inject(annotator, monkeypatch, oom_always)
    out = annotator.annotate(_rows()[:2])
    assert sizes == [2, 1, 1]
    assert [r["status"] for r in out] == ["model_error"] * 2
    assert out[0]["error"].startswith("OutOfMemoryError: CUDA out of memory")


def test_any_other_cuda_error_is_raised_never_written_as_rows(annotator, monkeypatch):
    def illegal_access(size: int) -> None:
        raise torch.AcceleratorError("CUDA error: an illegal memory access was encountered")

    _inject(annotator, monkeypatch, illegal_access)
    with pytest.raises(CudaFault, match="illegal memory access"):
        annotator.annotate(_rows())


def test_a_poisoned_context_ends_the_actor_process_in_one_line():
    """The stage, as a Ray actor runs it: the process exits (Ray restarts the actor and retries
    its batch) instead of answering with error rows."""
    script = textwrap.dedent(
        """
        import torch
        from tests.pipeline.annotate.test_cuda_faults import SETTINGS, _rows
        from pipeline.annotate.stage import AnnotateStage
        from pipeline.core.stage import Resources

        stage = AnnotateStage(SETTINGS, batch_size=4, workers=1, resources=Resources()).ready()
        def broken(clips):
            raise torch.AcceleratorError("CUDA error: uncorrectable ECC error encountered")
        stage._annotator.model.encode_frames = broken
        rows = stage.process(_rows())
        print("ANSWERED", [r["status"] for r in rows])
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert "ANSWERED" not in done.stdout
    assert done.returncode == POISONED_EXIT_CODE, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        "clipnote: annotate actor exits, its CUDA context is poisoned: "
        "AcceleratorError: CUDA error: uncorrectable ECC error encountered"
    )
